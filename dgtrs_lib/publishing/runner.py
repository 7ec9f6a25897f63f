"""The command line of the book: execute the notebooks with papermill, then build the Jupyter Book
from the executed copies (and, if asked, check it in a browser).

This is what ``make book`` and the book test run::

    python -m dgtrs_lib.publishing.runner --profile auto --book      # every notebook, then the HTML book
    python -m dgtrs_lib.publishing.runner --profile smoke --only 09   # one notebook (name or number prefix)
    python -m dgtrs_lib.publishing.runner --profile cpu --book --skip-exec   # rebuild HTML from existing copies

Steps, in order, each in its own module:

1. **Which notebooks** (``dgtrs_lib.publishing.toc``): those listed in ``_toc.yml`` (book order),
   nothing else. A notebook that is being written but not yet in the TOC is not run.
2. **Execute** (``dgtrs_lib.publishing.execute``): each with papermill under one profile; the
   executed copies go to ``_build/executed/<profile>/``, wall time and peak memory to
   ``notebook_times.csv``; a failure names the notebook and the cell and stops the run.
3. **Build** (``--book``, ``dgtrs_lib.publishing.book_build``): the prose and the executed notebooks
   are staged and built by Jupyter Book 1.x with every Sphinx warning an error; the HTML lands in
   ``_build/html/``.
4. **Browser check** (``--browser-check``, ``dgtrs_lib.publishing.browser_check``): every page in
   headless Chromium.

papermill conventions: nteract/papermill (``parameters`` cell tag, ``PapermillExecutionError``);
Jupyter Book 1.x options: jupyter-book 1.0.4 ``build -W -n --keep-going`` (``book/references.bib``
key ``jupyterbook2020``).

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import sys
from pathlib import Path

from dgtrs_lib.env import repo_root
from dgtrs_lib.errors import RunError, cli_parser, run_cli
from dgtrs_lib.profiles import resolve_profile
from dgtrs_lib.publishing.book_build import build_book
from dgtrs_lib.publishing.execute import TIMES_CSV, executed_dir, run_notebooks


def _flush_print(line: str) -> None:
    """Progress lines reach a pipe (``make book | tee``) as they are printed."""
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (``dgtrs_lib.errors``: a failure is one line, 7)."""
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    parser = cli_parser(
        prog="python -m dgtrs_lib.publishing.runner",
        description="Execute the book's notebooks (in _toc.yml order) with papermill and "
                    "optionally build the Jupyter Book from the executed copies.")
    parser.add_argument("--profile", default="auto",
                        help="smoke | cpu | gpu | auto (gpu when CUDA is available, else cpu)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these notebooks (stem or number prefix, e.g. 04 09)")
    parser.add_argument("--book", action="store_true", help="also build the HTML book")
    parser.add_argument("--skip-exec", action="store_true",
                        help="do not execute; build from the existing executed copies")
    parser.add_argument("--browser-check", action="store_true",
                        help="after --book, open every page in headless Chromium")
    parser.add_argument("--build-dir", type=Path, default=None, help="default: <repo>/_build")
    parser.add_argument("--keep-going", action="store_true",
                        help="run the remaining notebooks after a failure (still exits non-zero)")
    parser.add_argument("--timeout", type=int, default=None,
                        help="per-cell time limit in seconds (default: smoke 900, cpu 7200, gpu none)")
    parser.add_argument("--log-output", action="store_true", help="stream cell output")
    parser.add_argument("--quiet", action="store_true",
                        help="one line per notebook: no per-cell lines and no progress bars")
    args = parser.parse_args(argv)

    root = repo_root()
    profile = resolve_profile(args.profile)
    build_dir = args.build_dir or root / "_build"
    if not args.skip_exec:
        runs = run_notebooks(profile, only=args.only, root=root, build_dir=build_dir,
                             timeout=args.timeout, log_output=args.log_output,
                             keep_going=args.keep_going, quiet=args.quiet,
                             echo=_flush_print)
        total = sum(r.wall_s for r in runs)
        print(f"executed {len(runs)} notebook(s) in {total:.0f} s; times in "
              f"{executed_dir(profile, build_dir) / TIMES_CSV}")
    if args.book:
        html = build_book(profile, root=root, build_dir=build_dir)
        print(f"book built: {html / 'index.html'}")
        if args.browser_check:
            from dgtrs_lib.publishing.browser_check import check_book

            report = check_book(html, root=root)
            print(report.summary())
            if not report.ok:
                raise RunError(f"{html}: the browser check found problems (listed above); expected every page to "
                               "render without errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
