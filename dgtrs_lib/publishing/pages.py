"""What the book build does to an executed notebook before Jupyter Book renders it.

The committed notebook is written for Jupyter and Colab; its page in the book is written for a
reader. ``prepare_page`` turns the first into the second, on the staged copy only:

* **No plumbing.** papermill's injected-parameters cell is removed from the page (Jupyter Book's
  ``remove-cell`` tag, jupyterbook.org "Hide or remove content"); the committed set-up and
  parameters cells carry that tag already (``scripts/make_notebook.py`` writes it). The Colab badge
  (an external image) is dropped: the page's launch button opens the same notebook in Colab.
* **How the page was run**, in one line closing the chapter's header: profile, device, machine,
  wall time and date, read from the notebook's own run manifest.
* **Library <-> chapter.** Every ``dgtrs_lib`` function or class the notebook's code calls is
  listed at the end of the chapter with a link to its source lines on the repository (the URL and
  branch of ``_config.yml``), and inline mentions of ``dgtrs_lib.*`` names in the prose link to
  the same place (``link_library_names``). The other direction is each library module's docstring,
  whose ``Taught in:`` line names the chapter.

``library_calls`` and ``source_url`` are the two halves of the links; ``tests/test_book_pages.py``
checks them on the repository's notebooks.

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path

from dgtrs_lib.env import repo_root

BADGE_RE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*$", re.M)
LIBRARY_HEADING = "## Library functions in this chapter"


# --------------------------------------------------------------------------------------------
# Where a library object lives on the repository
# --------------------------------------------------------------------------------------------

def repository(root: Path | None = None) -> tuple[str, str]:
    """``(https://github.com/OWNER/NAME, branch)`` from ``_config.yml``'s ``repository`` block."""
    import yaml

    root = Path(root or repo_root())
    cfg = yaml.safe_load((root / "_config.yml").read_text()) or {}
    repo = cfg.get("repository") or {}
    return str(repo.get("url", "")).rstrip("/"), str(repo.get("branch") or "main")


@dataclass(frozen=True)
class LibraryObject:
    name: str          # dotted name, e.g. dgtrs_lib.training.curriculum.get_schedule
    path: str          # file relative to the repository root
    start: int | None  # first line (None for a module)
    end: int | None
    summary: str       # first line of the docstring

    def url(self, repo_url: str, branch: str) -> str:
        return source_url(self, repo_url, branch)


def source_url(obj: LibraryObject, repo_url: str, branch: str) -> str:
    """``{repo}/blob/{branch}/{path}#L{start}-L{end}`` (the whole file for a module)."""
    anchor = f"#L{obj.start}-L{obj.end}" if obj.start else ""
    return f"{repo_url}/blob/{branch}/{obj.path}{anchor}"


def resolve(dotted: str, root: Path | None = None) -> LibraryObject | None:
    """The library object named ``dotted`` (module, function, class or method), or None."""
    root = Path(root or repo_root()).resolve()
    if not dotted.startswith("dgtrs_lib"):
        return None
    parts = dotted.split(".")
    obj, module = None, None
    for cut in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # noqa: BLE001 - not a module (or one that cannot import here)
            continue
        obj = module
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        break
    if obj is None:
        return None
    target = obj if (inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj)) else None
    if target is None:
        return None
    target = inspect.unwrap(target)
    try:
        file = Path(inspect.getsourcefile(target) or "").resolve()
        rel = file.relative_to(root).as_posix()
    except (TypeError, ValueError, OSError):
        return None
    if not rel.startswith("dgtrs_lib/"):
        return None
    start = end = None
    if not inspect.ismodule(target):
        try:
            lines, start = inspect.getsourcelines(target)
            end = start + len(lines) - 1
        except (OSError, TypeError):
            start = end = None
    doc = inspect.getdoc(target) or ""
    summary = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
    return LibraryObject(name=dotted, path=rel, start=start, end=end, summary=summary)


# --------------------------------------------------------------------------------------------
# Which library objects a notebook calls
# --------------------------------------------------------------------------------------------

def library_calls(sources: list[str]) -> list[str]:
    """Dotted names of the ``dgtrs_lib`` objects used by these code cells, in first-use order:
    names imported with ``from dgtrs_lib... import x`` that the code uses, and attributes of
    imported library modules (``pipeline.get_or_train``)."""
    aliases: dict[str, str] = {}   # local name -> dotted library name
    used: list[str] = []

    def add(name: str):
        if name not in used:
            used.append(name)

    trees = []
    for src in sources:
        try:
            trees.append(ast.parse(_strip_magics(src)))
        except SyntaxError:
            continue
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dgtrs_lib"):
                for alias in node.names:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("dgtrs_lib"):
                        aliases[alias.asname or alias.name.split(".")[0]] = (
                            alias.name if alias.asname else alias.name.split(".")[0])
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                dotted = _dotted(node)
                if dotted and dotted.split(".")[0] in aliases:
                    head, *rest = dotted.split(".")
                    add(".".join([aliases[head], *rest]))
            elif isinstance(node, ast.Name) and node.id in aliases and isinstance(node.ctx, ast.Load):
                add(aliases[node.id])
    # keep the most specific names: drop a module when one of its members is listed
    out = []
    for name in used:
        resolved = resolve(name)
        if resolved is None:
            # an attribute of a returned object (run.profile...): keep the longest resolvable prefix
            parts = name.split(".")
            while len(parts) > 1 and resolve(".".join(parts)) is None:
                parts.pop()
            name = ".".join(parts)
            if resolve(name) is None:
                continue
        if name not in out:
            out.append(name)
    return [n for n in out if not any(o != n and o.startswith(n + ".") for o in out)]


def _strip_magics(src: str) -> str:
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines())


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def library_table(names: list[str], repo_url: str, branch: str, root: Path | None = None) -> str:
    """The closing section of a chapter: each library object with a link to its source."""
    rows = []
    for name in names:
        obj = resolve(name, root)
        if obj is None:
            continue
        what = obj.summary.replace("|", "\\|")
        what = what if len(what) <= 110 else what[:107].rstrip() + "..."
        short = name.removeprefix("dgtrs_lib.")
        rows.append(f"| [`{short}`]({obj.url(repo_url, branch)}) | {what} |")
    if not rows:
        return ""
    return (f"{LIBRARY_HEADING}\n\nThe `dgtrs_lib` functions and classes this chapter's code calls, "
            "each linked to its source on the repository.\n\n| in `dgtrs_lib` | what it does |\n"
            "|---|---|\n" + "\n".join(rows) + "\n")


_FENCE_RE = re.compile(r"(^```.*?^```|^~~~.*?^~~~)", re.S | re.M)
_NAME_RE = re.compile(r"(?<!\[)`(dgtrs_lib(?:\.[A-Za-z_]\w*)+)(?:\(\))?`(?!\]\()")


def link_library_names(markdown: str, repo_url: str, branch: str, root: Path | None = None) -> str:
    """Inline ``dgtrs_lib.x.y`` code spans (outside code fences) become links to their source."""
    def link(m: re.Match) -> str:
        obj = resolve(m.group(1), root)
        return f"[{m.group(0)}]({obj.url(repo_url, branch)})" if obj else m.group(0)

    pieces = _FENCE_RE.split(markdown)
    return "".join(p if _FENCE_RE.fullmatch(p) else _NAME_RE.sub(link, p) for p in pieces)


# --------------------------------------------------------------------------------------------
# How the page was run
# --------------------------------------------------------------------------------------------

def run_manifest(nb) -> dict | None:
    """The run manifest a notebook printed (the JSON of its last ``print_manifest``), or None."""
    for cell in reversed(nb.cells):
        if cell.cell_type != "code" or "print_manifest" not in cell.source:
            continue
        for out in cell.get("outputs", []):
            text = out.get("text") if out.get("output_type") == "stream" else out.get("data", {}).get("text/plain")
            if isinstance(text, list):
                text = "".join(text)
            try:
                doc = json.loads(text or "")
            except ValueError:
                continue
            if isinstance(doc, dict) and "profile" in doc:
                return doc
    return None


def run_note(manifest: dict | None) -> str:
    """One line: how this page was run (profile, device, machine, wall time, date). It closes the
    chapter's header, after "How long it runs" (a margin note would collide with the page's
    table of contents at common window widths)."""
    if not manifest:
        return ""
    wall = manifest.get("wall_time_s")
    wall = f"{wall:.0f} s" if isinstance(wall, (int, float)) else "?"
    date = str(manifest.get("date", ""))[:10]
    return (f"**How this page was run**: by papermill, profile `{manifest.get('profile')}`, on "
            f"{manifest.get('device')} ({manifest.get('hardware')}), in {wall} on {date}; the run "
            "manifest at the end of the page has the details.")


# --------------------------------------------------------------------------------------------
# The whole transformation
# --------------------------------------------------------------------------------------------

def _add_tag(cell, tag: str) -> None:
    tags = list(cell.metadata.get("tags", []))
    if tag not in tags:
        tags.append(tag)
    cell.metadata["tags"] = tags


def prepare_page(nb, *, root: Path | None = None, link_source: bool = True):
    """Turn an executed notebook into its book page (in place; also returned)."""
    import nbformat

    root = Path(root or repo_root())
    repo_url, branch = repository(root)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            _add_tag(cell, "remove-cell")
    if nb.cells and nb.cells[0].cell_type == "markdown":
        first = BADGE_RE.sub("", nb.cells[0].source)
        first = re.sub(r"\n{3,}", "\n\n", first)
        note = run_note(run_manifest(nb))
        if note:
            first = first.rstrip() + "\n\n" + note
        nb.cells[0].source = first
    if link_source and repo_url:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = link_library_names(cell.source, repo_url, branch, root)
        names = library_calls([c.source for c in nb.cells if c.cell_type == "code"
                               and "remove-cell" not in c.metadata.get("tags", [])])
        table = library_table(names, repo_url, branch, root)
        if table:
            at = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                       and c.source.strip().startswith("## Run manifest")), len(nb.cells))
            cell = nbformat.v4.new_markdown_cell(table)
            cell["id"] = "dgtrs-library-links"
            nb.cells.insert(at, cell)
    return nb


def prepare_markdown(text: str, *, root: Path | None = None) -> str:
    """A prose page of ``book/``: inline ``dgtrs_lib.*`` names linked to their source."""
    repo_url, branch = repository(root)
    return link_library_names(text, repo_url, branch, root) if repo_url else text
