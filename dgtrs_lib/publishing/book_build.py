"""Build the HTML book from the executed notebooks (Jupyter Book 1.x), refusing any error.

1. **Check**: every executed notebook listed in ``_toc.yml`` must exist and hold no error output
   and no papermill error banner (``notebook_errors``), so a notebook error fails the build.
2. **Stage**: a source tree is assembled in ``_build/book-src/<profile>/`` with the prose
   (``book/``), ``_config.yml``, ``_toc.yml`` and the *executed* notebooks at their TOC paths
   (``notebooks/NN-name.ipynb``, so launch buttons point at the repository's notebooks), each
   turned into its page by ``dgtrs_lib.publishing.pages.prepare_page`` (no plumbing cells, a
   "how this page was run" line, links from the chapter to the library's source). MathJax 3 is
   vendored into the book's static files from an installed registry package
   (``django-static-mathjax`` on PyPI, MathJax 3.2.2; ``vendor_mathjax``), so formulas render
   without a network -- Sphinx's default loads it from a CDN.
3. **Build**: Jupyter Book 1.x (Sphinx; jupyter-book 1.0.4, ``book/references.bib`` key
   ``jupyterbook2020``) builds it with ``execute_notebooks: off``, in nit-picky mode, with every
   warning an error -- what ``jupyter-book build -W -n --keep-going`` does (jupyterbook.org,
   "Command-line interface"). The HTML lands in ``_build/html/`` with ``_dgtrs_build.json`` naming
   the profile and staged source, which the browser check reads to count each page's figures.

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from dgtrs_lib.env import repo_root
from dgtrs_lib.io import atomic_write_text, now
from dgtrs_lib.profiles import resolve_profile
from dgtrs_lib.publishing.execute import executed_dir
from dgtrs_lib.publishing.pages import prepare_markdown, prepare_page
from dgtrs_lib.publishing.toc import RunnerError, toc_notebooks

PAPERMILL_BANNER = "An Exception was encountered at"
# Where the staged book keeps its static files (``_config.yml``: html_static_path, mathjax_path).
STATIC_DIR = "book/_static"
MATHJAX_DIR = "mathjax"
MATHJAX_PACKAGE = "django-static-mathjax"  # PyPI: MathJax 3.2.2 as static files, no dependencies
# What of MathJax's es5 build the pages need: the TeX+MathML -> CHTML component, its fonts, the
# TeX extensions it loads on demand, the menu and the accessibility parts it may load.
MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output/chtml", "a11y", "ui", "adaptors", "sre")


def mathjax_source() -> Path:
    """The ``es5`` folder of MathJax 3 shipped by the installed ``django-static-mathjax``."""
    try:
        import mathjax
    except ImportError as exc:
        raise RunnerError(f"MathJax is not installed: pip install {MATHJAX_PACKAGE} (make venv "
                          "installs it from requirements.txt); the book serves MathJax itself so "
                          "that formulas render offline") from exc
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").exists():
        raise RunnerError(f"{es5}: no tex-mml-chtml.js; reinstall {MATHJAX_PACKAGE}")
    return es5


def vendor_mathjax(static: Path) -> Path:
    """Copy MathJax's es5 build (the parts in ``MATHJAX_PARTS``) into ``static/mathjax``."""
    src = mathjax_source()
    dest = Path(static) / MATHJAX_DIR
    if dest.exists():
        shutil.rmtree(dest)
    for part in MATHJAX_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part)
        elif (src / part).exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / part, dest / part)
    return dest


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
    import nbformat

    root = Path(root or repo_root())
    build_dir = Path(build_dir or root / "_build")
    src = build_dir / "book-src" / profile
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copyfile(root / name, src / name)
    shutil.copytree(root / "book", src / "book")
    for page in (src / "book").glob("*.md"):
        page.write_text(prepare_markdown(page.read_text(), root=root))
    vendor_mathjax(src / STATIC_DIR)
    (src / "notebooks").mkdir()
    executed = executed_dir(profile, build_dir)
    problems = []
    for nb in toc_notebooks(root):
        copy = executed / nb.name
        if not copy.exists():
            problems.append(f"{nb.name}: no executed copy in {executed} (run without --skip-exec)")
            continue
        problems.extend(notebook_errors(copy))
        page = prepare_page(nbformat.read(copy, as_version=4), root=root)
        nbformat.write(page, src / "notebooks" / nb.name)
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
    atomic_write_text(html / "_dgtrs_build.json", json.dumps(
        {"profile": profile, "source": str(src.resolve()), "built_utc": now()}, indent=1))
    return html
