"""The book's table of contents (``_toc.yml``): which documents the book has, in reading order, and
which notebooks the runner executes.

``_toc.yml`` is Jupyter Book 1.x's external TOC in the ``jb-book`` format (``root:``, then ``parts``
/ ``chapters`` / ``sections`` of ``file:`` entries; jupyter-book.org, "Structure the Table of
Contents", ``book/references.bib`` key ``jupyterbook2020``). The runner executes the notebooks it
lists (``toc_notebooks``, narrowed by ``--only`` with ``select``), the book build stages them, and
the browser check opens every entry (``toc_entries``). ``RunnerError`` is the one error of the book
machinery (TOC, notebook execution, book build); it is defined here, at the bottom of the
publishing chain ``toc`` < ``execute`` < ``book_build`` < ``runner``, so every module can raise it.

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

from pathlib import Path

from dgtrs_lib.env import repo_root
from dgtrs_lib.errors import RunError


class RunnerError(RunError):
    """A notebook failed, a file is missing, or the book build reported warnings/errors."""


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
