"""Execute the book's notebooks with papermill, then build the Jupyter Book from the executed copies.

This is what ``make book`` and the book test run::

    python -m dgtrs_lib.publishing.runner --profile auto --book      # every notebook, then the HTML book
    python -m dgtrs_lib.publishing.runner --profile smoke --only 09   # one notebook (name or number prefix)
    python -m dgtrs_lib.publishing.runner --profile cpu --book --skip-exec   # rebuild HTML from existing copies

Steps, in order:

1. **Which notebooks**: those listed in ``_toc.yml`` (book order), nothing else. A notebook
   that is being written but not yet in the TOC is not run.
2. **Execute** each with papermill (``PROFILE`` injected, ``DGTRS_PROFILE`` set, working
   directory = repository root, Hugging Face offline unless ``DGTRS_ONLINE=1``, live widgets
   off with ``DGTRS_WIDGETS=0`` unless set). The executed
   copy goes to ``_build/executed/<profile>/``; a thread polls the kernel's process tree with
   psutil to record the peak resident memory. Wall time and peak RSS go to
   ``notebook_times.csv`` (rewritten after each notebook and copied to ``results/<profile>/``).
   A failure names the notebook and the cell (index, execution count, exception), keeps the
   executed copy for inspection and stops the run with a non-zero exit.
3. **Build** (``--book``): a source tree is staged in ``_build/book-src/<profile>/`` with the prose
   (``book/``), ``_config.yml``, ``_toc.yml`` and the *executed* notebooks at their TOC paths
   (``notebooks/NN-name.ipynb``, so launch buttons point at the repository's notebooks). Jupyter
   Book 1.x (Sphinx) builds it with ``execute_notebooks: off``, in nit-picky mode, with every
   warning an error (``-W -n --keep-going``). Before the build, every executed notebook is
   checked for error outputs and papermill's error banner, so a notebook error fails the build.
   The HTML lands in ``_build/html/``.

papermill conventions: nteract/papermill (``parameters`` cell tag, ``PapermillExecutionError``);
Jupyter Book 1.x options: jupyter-book 1.0.4 ``build -W -n --keep-going``.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import platform
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dgtrs_lib.env import repo_root, results_dir, set_offline
from dgtrs_lib.profiles import get_profile, resolve_profile

TIMES_CSV = "notebook_times.csv"
CSV_FIELDS = ("notebook", "profile", "status", "wall_s", "peak_rss_mb", "failed_cell",
              "error", "started_utc", "hardware")
PAPERMILL_BANNER = "An Exception was encountered at"


class RunnerError(RuntimeError):
    """A notebook failed, a file is missing, or the book build reported warnings/errors."""


# --------------------------------------------------------------------------------------------
# The table of contents
# --------------------------------------------------------------------------------------------

def _toc_files(node) -> list[str]:
    """Every ``file:`` entry of a (parsed) jb-book TOC, in reading order."""
    out: list[str] = []
    if isinstance(node, dict):
        if "root" in node:
            out.append(str(node["root"]))
        if "file" in node:
            out.append(str(node["file"]))
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                out.extend(_toc_files(child))
    elif isinstance(node, list):
        for child in node:
            out.extend(_toc_files(child))
    return out


def toc_entries(root: Path | None = None) -> list[str]:
    """All document paths of ``_toc.yml`` (without extension), in book order."""
    import yaml

    root = Path(root or repo_root())
    toc_path = root / "_toc.yml"
    if not toc_path.exists():
        raise RunnerError(f"{toc_path}: not found (the book's table of contents)")
    try:
        toc = yaml.safe_load(toc_path.read_text())
    except yaml.YAMLError as exc:
        raise RunnerError(f"{toc_path}: not valid YAML: {exc}") from exc
    if not isinstance(toc, dict) or "root" not in toc:
        raise RunnerError(f"{toc_path}: expected a jb-book TOC with a 'root:' key")
    return [str(Path(entry).with_suffix("")) if entry.endswith((".md", ".ipynb")) else entry
            for entry in _toc_files(toc)]


def toc_notebooks(root: Path | None = None) -> list[Path]:
    """The notebooks listed in ``_toc.yml`` (``notebooks/NN-name``), in book order.

    A listed notebook that does not exist is an error naming the TOC line to fix."""
    root = Path(root or repo_root())
    notebooks = []
    for entry in toc_entries(root):
        if not entry.startswith("notebooks/"):
            continue
        path = root / f"{entry}.ipynb"
        if not path.exists():
            raise RunnerError(
                f"_toc.yml lists '{entry}' but {path} does not exist: add the notebook or remove "
                "its line from _toc.yml")
        notebooks.append(path)
    return notebooks


def select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Keep the notebooks whose stem equals or starts with one of ``only`` (e.g. ``09`` or
    ``09-reproduction-report``); an unknown name is an error listing the valid ones."""
    if not only:
        return list(notebooks)
    chosen = []
    for name in only:
        stem = Path(name).stem
        hits = [nb for nb in notebooks if nb.stem == stem or nb.stem.startswith(stem)]
        if not hits:
            raise RunnerError(f"--only {name!r}: not in _toc.yml; choose from "
                              + ", ".join(nb.stem for nb in notebooks))
        chosen.extend(nb for nb in hits if nb not in chosen)
    return [nb for nb in notebooks if nb in chosen]


# --------------------------------------------------------------------------------------------
# Peak memory of the kernel process tree
# --------------------------------------------------------------------------------------------

class PeakMemory:
    """Poll the RSS of this process's children (the kernel and anything it starts) in a thread.

    ``peak_mb`` is the largest sum of RSS over the child process tree seen while running; the
    runner's own memory is not counted."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        try:
            children = psutil.Process(os.getpid()).children(recursive=True)
        except psutil.Error:
            return 0
        for child in children:
            try:
                total += child.memory_info().rss
            except psutil.Error:  # exited between listing and reading
                pass
        return total

    def _poll(self):
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


# --------------------------------------------------------------------------------------------
# Executing notebooks
# --------------------------------------------------------------------------------------------

@dataclass
class NotebookRun:
    notebook: str
    profile: str
    status: str  # "ok" | "failed"
    wall_s: float
    peak_rss_mb: float
    failed_cell: str = ""
    error: str = ""
    started_utc: str = ""
    hardware: str = field(default_factory=lambda: hardware_string())
    output: str = ""


def hardware_string() -> str:
    """What ran the notebooks, e.g. ``2 CPU cores, x86_64`` or ``NVIDIA H100 80GB HBM3``."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - torch missing or broken: still report the CPU
        pass
    return f"{os.cpu_count()} CPU cores, {platform.machine()}"


def executed_dir(profile: str, build_dir: Path | None = None) -> Path:
    """Where the executed copies of one profile go: ``_build/executed/<profile>/``."""
    build_dir = Path(build_dir or repo_root() / "_build")
    path = build_dir / "executed" / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def execute_notebook(nb_path: Path, out_path: Path, profile: str, *, cwd: Path,
                     timeout: int | None = None, log_output: bool = False) -> NotebookRun:
    """Run one notebook with papermill; return its timing (status ``failed`` on an error)."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    status, failed_cell, error = "ok", "", ""
    with PeakMemory() as mem:
        try:
            pm.execute_notebook(
                str(nb_path), str(out_path), parameters={"PROFILE": profile},
                kernel_name="python3", cwd=str(cwd), progress_bar=False,
                log_output=log_output, execution_timeout=timeout,
                request_save_on_cell_execute=True,
            )
        except PapermillExecutionError as exc:
            status = "failed"
            first = next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
            failed_cell = f"cell {exc.cell_index} (In [{exc.exec_count}]): {first.strip()[:80]}"
            error = f"{exc.ename}: {exc.evalue}"
        except Exception as exc:  # cell timeout, kernel died...: name the cell that was running
            status = "failed"
            failed_cell = _running_cell(out_path)
            error = f"{type(exc).__name__}: {exc}"
    return NotebookRun(notebook=nb_path.stem, profile=profile, status=status,
                       wall_s=round(time.perf_counter() - t0, 1), peak_rss_mb=mem.peak_mb,
                       failed_cell=failed_cell, error=error.strip().splitlines()[0] if error else "",
                       started_utc=started, output=str(out_path))


def _running_cell(out_path: Path) -> str:
    """The cell that was running when execution stopped (a timeout or a dead kernel): the cell
    papermill still marks running, else the last one it started; ``cell N: first line``."""
    import nbformat

    try:
        nb = nbformat.read(out_path, as_version=4)
    except Exception:  # noqa: BLE001 - no copy written: nothing more to say
        return "?"
    started = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
               and c.get("metadata", {}).get("papermill", {}).get("start_time")]
    running = [i for i in started if nb.cells[i].metadata.papermill.get("status") == "running"]
    if not (running or started):
        return "?"
    i = (running or started)[-1]  # after a timeout papermill marks the cell completed: the last one
    first = next((ln for ln in nb.cells[i].source.splitlines() if ln.strip()), "")
    return f"cell {i}: {first.strip()[:80]}"


# Per-cell time limits (seconds) by profile: a hung cell fails, naming itself, instead of hanging
# the run; gpu has none (training a ViT may take hours). --timeout overrides.


def _write_times(path: Path, runs: list[NotebookRun]) -> None:
    """Rewrite ``notebook_times.csv`` keeping rows of notebooks not run this time (atomic)."""
    rows: dict[str, dict] = {}
    if path.exists():
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("notebook"):
                    rows[row["notebook"]] = row
    for run in runs:
        rows[run.notebook] = {k: v for k, v in asdict(run).items() if k in CSV_FIELDS}
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for name in sorted(rows):
            writer.writerow({k: rows[name].get(k, "") for k in CSV_FIELDS})
    os.replace(tmp, path)


def run_notebooks(profile: str = "auto", *, only: list[str] | None = None,
                  root: Path | None = None, build_dir: Path | None = None,
                  notebooks: list[Path] | None = None, timeout: int | None = None,
                  log_output: bool = False, keep_going: bool = False,
                  echo=print) -> list[NotebookRun]:
    """Execute the TOC's notebooks (or ``notebooks``) in order under one profile.

    Returns the runs; raises ``RunnerError`` naming the notebook and cell at the first failure
    (after writing the CSV and keeping the executed copy), or with ``keep_going`` after running
    the rest, naming every failure."""
    root = Path(root or repo_root())
    profile = resolve_profile(profile)
    set_offline()
    # The kernels inherit the runner's environment: the profile, and (no one can move a slider in
    # a headless run, and ipywidgets comms under nbclient hang intermittently -- seen here as an
    # idle kernel with nbclient waiting forever) DGTRS_WIDGETS=0 so notebooks skip live widgets
    # unless it is set. Both are restored when the run ends.
    env = {"DGTRS_PROFILE": profile, "DGTRS_WIDGETS": os.environ.get("DGTRS_WIDGETS", "0")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return _run(profile, notebooks, only, root, build_dir, timeout, log_output, keep_going, echo)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run(profile, notebooks, only, root, build_dir, timeout, log_output, keep_going, echo):
    """The loop of ``run_notebooks`` (environment already set)."""
    if notebooks is None:
        notebooks = toc_notebooks(root)
        for extra in sorted(set((root / "notebooks").glob("*.ipynb")) - set(notebooks)):
            echo(f"note: {extra.name} is not in _toc.yml, so it is not run (add one line to _toc.yml)")
    nbs = select(notebooks, only)
    if timeout is None:
        timeout = get_profile(profile).notebook_timeout_s
    out_dir = executed_dir(profile, build_dir or root / "_build")
    csv_path = out_dir / TIMES_CSV
    runs: list[NotebookRun] = []
    for i, nb in enumerate(nbs, 1):
        echo(f"[{i}/{len(nbs)}] {nb.name} (profile={profile}) ...")
        run = execute_notebook(nb, out_dir / nb.name, profile, cwd=root, timeout=timeout,
                               log_output=log_output)
        runs.append(run)
        _write_times(csv_path, runs)
        shutil.copyfile(csv_path, results_dir(profile) / TIMES_CSV)
        echo(f"    {run.status}: {run.wall_s:.1f} s, peak RSS {run.peak_rss_mb:.0f} MiB")
        if run.status != "ok" and not keep_going:
            break
    failed = [r for r in runs if r.status != "ok"]
    if failed:
        raise RunnerError("\n".join(
            f"notebook {r.notebook}.ipynb failed at {r.failed_cell}: {r.error}\n"
            f"  executed copy kept for inspection: {r.output}" for r in failed))
    return runs


# --------------------------------------------------------------------------------------------
# Checking executed notebooks and building the book
# --------------------------------------------------------------------------------------------

def notebook_errors(nb_path: Path) -> list[str]:
    """Error outputs and papermill error banners in an executed notebook, one line each."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and PAPERMILL_BANNER in cell.source:
            problems.append(f"{nb_path.name}: papermill error banner in cell {i}")
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                problems.append(f"{nb_path.name}: cell {i} raised "
                                f"{out.get('ename')}: {out.get('evalue')}")
    if not any(c.cell_type == "code" and c.get("execution_count") for c in nb.cells):
        problems.append(f"{nb_path.name}: no code cell was executed")
    return problems


def stage_book(profile: str, *, root: Path | None = None, build_dir: Path | None = None) -> Path:
    """Copy the prose, the config and the executed notebooks into ``_build/book-src/<profile>``."""
    root = Path(root or repo_root())
    build_dir = Path(build_dir or root / "_build")
    src = build_dir / "book-src" / profile
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copyfile(root / name, src / name)
    shutil.copytree(root / "book", src / "book")
    (src / "notebooks").mkdir()
    executed = executed_dir(profile, build_dir)
    problems = []
    for nb in toc_notebooks(root):
        copy = executed / nb.name
        if not copy.exists():
            problems.append(f"{nb.name}: no executed copy in {executed} (run without --skip-exec)")
            continue
        problems.extend(notebook_errors(copy))
        shutil.copyfile(copy, src / "notebooks" / nb.name)
    if problems:
        raise RunnerError("cannot build the book:\n  " + "\n  ".join(problems))
    return src


def build_book(profile: str = "auto", *, root: Path | None = None,
               build_dir: Path | None = None, echo=print) -> Path:
    """Stage and build the HTML book (Jupyter Book 1.x, ``-W -n --keep-going``); return the
    HTML folder (``_build/html``). Any Sphinx warning or notebook error raises ``RunnerError``."""
    from jupyter_book.sphinx import build_sphinx

    root = Path(root or repo_root())
    profile = resolve_profile(profile)
    build_dir = Path(build_dir or root / "_build")
    src = stage_book(profile, root=root, build_dir=build_dir)
    html = build_dir / "html"
    if html.exists():
        shutil.rmtree(html)
    echo(f"building the book from {src} -> {html}")
    status = build_sphinx(
        src, html, noconfig=True, path_config=str(src / "_config.yml"),
        confoverrides={"external_toc_path": (src / "_toc.yml").as_posix(), "nitpicky": True,
                       "latex_individualpages": False},
        doctreedir=build_dir / ".doctrees" / profile, freshenv=True, force_all=True,
        warningiserror=True, keep_going=True, quiet=True,
    )
    if isinstance(status, Exception) or status != 0:
        raise RunnerError(f"the book build failed (Sphinx status {status!r}); "
                          "the warnings are printed above")
    if not (html / "index.html").exists():
        raise RunnerError(f"the book build wrote no {html / 'index.html'}")
    # Which executed notebooks this HTML shows (the browser check counts their figures).
    (html / "_dgtrs_build.json").write_text(json.dumps(
        {"profile": profile, "source": str(src.resolve()),
         "built_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}, indent=1))
    return html


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)

    root = repo_root()
    profile = resolve_profile(args.profile)
    build_dir = args.build_dir or root / "_build"
    try:
        if not args.skip_exec:
            runs = run_notebooks(profile, only=args.only, root=root, build_dir=build_dir,
                                 timeout=args.timeout, log_output=args.log_output,
                                 keep_going=args.keep_going)
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
                    return 1
    except RunnerError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
