"""Build a book notebook with the project's standard frame, from a list of cells; check and format
the committed ones.

Every notebook in ``notebooks/`` starts the same way -- title, Colab badge, what you will learn,
what it builds on, how long it runs -- then two cells a reader of the book never sees (Jupyter
Book's ``remove-cell`` tag): the ``parameters`` cell with a string ``PROFILE`` and the Colab
set-up. It ends with **Takeaways**, two or three **Exercises** a reader can run, each with a worked
answer folded in a ``<details>`` toggle (collapsed in Jupyter, Colab and the book alike), and the
run manifest, whose code is hidden (``remove-input``) and whose output is a collapsed note::

    from make_notebook import build, md, code
    build("notebooks/02-long-text-encoder.ipynb", title="...", learn=[...], builds_on="...",
          runtime={"smoke": "10 s", "cpu": "30 s", "gpu": "1 min"}, cells=[md("..."), code("...")],
          takeaways=["...", "..."], exercises=[("Set keep = 0 and rerun ...", "The first rows ...")])

Commands::

    python scripts/make_notebook.py --check    # every rule below; exit status 1 on a problem
    python scripts/make_notebook.py --format   # ruff format every code cell (88 columns)

``--check`` verifies, for every committed notebook: the Colab badge matches the repository URL in
``_config.yml`` (the one place the URL is set); the parameters and set-up cells are tagged
``remove-cell`` and the manifest ``remove-input``; the header says what the chapter builds on;
the chapter ends with Takeaways and 2-3 exercises, each with a folded worked answer; no code line
is longer than ``MAX_LINE`` characters (what fits the book's content column), ``MAX_FENCED_LINE``
in a code block of the prose (the worked answers' toggle is narrower); no literal
``fontsize`` is below 10 pt and no literal figure is wider than the content column; no outputs
are stored; the file name is ``NN-words.ipynb``.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE = 88            # characters of code that fit the book's content column
MAX_FENCED_LINE = 80     # code shown in the prose (worked answers sit in a narrower toggle)
MIN_FONT_PT = 10         # the smallest font a figure may use
MAX_FIG_WIDTH_IN = 6.7   # dgtrs_lib.publishing.notebook.CONTENT_WIDTH_IN
SETUP_TAGS = ["remove-cell"]
BUILDS_ON = "**What it builds on**"
ANSWER_OPEN = "<details><summary>Worked answer</summary>"


def repo_slug() -> tuple[str, str]:
    """(owner/name, branch) from ``_config.yml``'s ``repository`` block."""
    text = (ROOT / "_config.yml").read_text()
    url = re.search(r"^\s*url:\s*https://github\.com/([^\s/]+/[^\s/]+?)/?\s*$", text, re.M)
    branch = re.search(r"^\s*branch:\s*(\S+)", text, re.M)
    if not url:
        raise SystemExit("_config.yml: repository.url must be https://github.com/OWNER/NAME")
    return url.group(1), (branch.group(1) if branch else "main")


def colab_badge(nb_name: str) -> str:
    slug, branch = repo_slug()
    link = f"https://colab.research.google.com/github/{slug}/blob/{branch}/notebooks/{nb_name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({link})"


def md(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source.strip("\n"))


def code(source: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


PARAMETERS = '''import os

# smoke (CI, seconds) / cpu (this machine, minutes) / gpu (Colab, H100). Papermill
# injects PROFILE below this cell; otherwise DGTRS_PROFILE is used, else "auto" (gpu if
# CUDA is present, else cpu).
PROFILE = os.environ.get("DGTRS_PROFILE", "auto")'''

COLAB_SETUP = '''import subprocess
import sys

# On Colab: fetch the repository and install the library (Colab keeps its own torch).
if "google.colab" in sys.modules and not os.path.exists("dgtrs_lib"):
    url = "{url}"
    subprocess.run(["git", "clone", "--depth", "1", url, "dgtrs-book"], check=True)
    os.chdir("dgtrs-book")
    pip = [sys.executable, "-m", "pip", "install", "-q", "-e", ".[notebooks]"]
    subprocess.run(pip, check=True)
if os.path.basename(os.getcwd()) == "notebooks":
    os.chdir("..")  # run from the repository root so artifacts/ and results/ are shared
sys.path.insert(0, os.getcwd())

from dgtrs_lib.publishing.notebook import print_manifest, start

run = start(PROFILE)
print(f"profile={run.profile} device={run.device}")'''

MANIFEST = '''# Run manifest: what produced the numbers above.
print_manifest(run.manifest(notebook="{name}"))'''


def exercises_markdown(exercises: list[tuple[str, str]]) -> str:
    """``## Exercises``: numbered questions, each with its worked answer in a ``<details>``."""
    items = []
    for i, (question, answer) in enumerate(exercises, 1):
        items.append(f"{i}. {question.strip()}\n\n{ANSWER_OPEN}\n\n{answer.strip()}\n\n</details>")
    return "## Exercises\n\n" + "\n\n".join(items)


def build(path: str | Path, *, title: str, learn: list[str], runtime: dict[str, str], cells: list,
          builds_on: str = "", takeaways: list[str] | None = None,
          exercises: list[tuple[str, str]] | None = None) -> Path:
    path = ROOT / path if not Path(path).is_absolute() else Path(path)
    slug, _ = repo_slug()
    header = (
        f"# {title}\n\n{colab_badge(path.name)}\n\n**What you will learn**\n\n"
        + "\n".join(f"- {item}" for item in learn)
        + (f"\n\n{BUILDS_ON}: {builds_on}" if builds_on else "")
        + "\n\n**How long it runs**: "
        + ", ".join(f"`{k}` {v}" for k, v in runtime.items())
        + ". Set the profile with the `PROFILE` parameter or the `DGTRS_PROFILE` environment variable."
    )
    closing = []
    if takeaways:
        closing.append(md("## Takeaways\n\n" + "\n".join(f"- {t}" for t in takeaways)))
    if exercises:
        closing.append(md(exercises_markdown(exercises)))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [md(header), code(PARAMETERS, tags=["parameters", *SETUP_TAGS]),
                code(COLAB_SETUP.replace("{url}", f"https://github.com/{slug}"), tags=SETUP_TAGS),
                *cells, *closing, md("## Run manifest"),
                code(MANIFEST.replace("{name}", path.stem), tags=["remove-input"])]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{path.stem[:2]}-{i:03d}"
    nbformat.validate(nb)
    write(nb, path)
    return path


def write(nb, path: Path) -> None:
    """Write a notebook in the repository's format (nbformat's JSON, indent 1, one final newline)."""
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------- checks

def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _is_setup(cell) -> bool:
    return cell.cell_type == "code" and "google.colab" in cell.source


def _section(cells, heading: str) -> str | None:
    """The source of the markdown cell that starts with ``heading``, or None."""
    for cell in cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith(heading):
            return cell.source
    return None


def frame_problems(name: str, nb) -> list[str]:
    """The frame: tags of the plumbing cells, the opening and the closing sections."""
    problems = []
    cells = nb.cells
    params = [c for c in cells if "parameters" in _tags(c)]
    if not params:
        problems.append(f"{name}: no cell tagged 'parameters'")
    for cell in params + [c for c in cells if _is_setup(c)]:
        if "remove-cell" not in _tags(cell):
            kind = "parameters" if "parameters" in _tags(cell) else "Colab set-up"
            problems.append(f"{name}: the {kind} cell must be tagged 'remove-cell' (it is plumbing, "
                            "not part of the page)")
    if not any(_is_setup(c) for c in cells):
        problems.append(f"{name}: no Colab set-up cell (scripts/make_notebook.py COLAB_SETUP)")
    manifest = [c for c in cells if c.cell_type == "code" and "print_manifest(" in c.source]
    if not manifest:
        problems.append(f"{name}: no run manifest cell")
    elif cells[-1] is not manifest[-1]:
        problems.append(f"{name}: the run manifest must be the last cell")
    elif "remove-input" not in _tags(manifest[-1]):
        problems.append(f"{name}: the run manifest cell must be tagged 'remove-input'")
    if cells and BUILDS_ON not in cells[0].source:
        problems.append(f"{name}: the header must say what the chapter builds on ({BUILDS_ON}: ...)")
    headings = [c.source.lstrip().split("\n")[0] for c in cells if c.cell_type == "markdown"]
    order = [h for h in headings if h in ("## Takeaways", "## Exercises", "## Run manifest")]
    if order != ["## Takeaways", "## Exercises", "## Run manifest"]:
        problems.append(f"{name}: the chapter must end with '## Takeaways', '## Exercises', "
                        f"'## Run manifest' in that order (found {order})")
    ex = _section(cells, "## Exercises")
    if ex is not None:
        n_questions = len(re.findall(r"^\d+\.\s", ex, re.M))
        n_answers = ex.count(ANSWER_OPEN)
        if not 2 <= n_questions <= 3:
            problems.append(f"{name}: {n_questions} exercise(s); write 2 or 3")
        if n_answers != n_questions or ex.count("</details>") != n_answers:
            problems.append(f"{name}: every exercise needs one worked answer in "
                            f"'{ANSWER_OPEN} ... </details>' ({n_answers} for {n_questions})")
    tk = _section(cells, "## Takeaways")
    if tk is not None and len(re.findall(r"^[-*]\s", tk, re.M)) < 2:
        problems.append(f"{name}: Takeaways need at least two points")
    return problems


def code_problems(name: str, nb) -> list[str]:
    """Code that does not fit the page: long lines, small fonts, figures wider than the column."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for block in re.findall(r"^```[^\n]*\n(.*?)^```", cell.source, re.S | re.M):
                for line in block.splitlines():
                    if len(line) > MAX_FENCED_LINE:
                        problems.append(f"{name}: cell {i} has a code line of {len(line)} > "
                                        f"{MAX_FENCED_LINE} characters in its prose: {line[:40]!r}")
            continue
        if cell.cell_type != "code":
            continue
        for n, line in enumerate(cell.source.splitlines(), 1):
            if len(line) > MAX_LINE:
                problems.append(f"{name}: cell {i} line {n} has {len(line)} > {MAX_LINE} characters "
                                "(python scripts/make_notebook.py --format, then wrap strings)")
        for m in re.finditer(r"fontsize\s*=\s*(\d+(?:\.\d+)?)", cell.source):
            if float(m.group(1)) < MIN_FONT_PT:
                problems.append(f"{name}: cell {i} uses fontsize={m.group(1)} (< {MIN_FONT_PT} pt)")
        for m in re.finditer(r"figsize\s*=\s*\(\s*(\d+(?:\.\d+)?)\s*,", cell.source):
            if float(m.group(1)) > MAX_FIG_WIDTH_IN:
                problems.append(f"{name}: cell {i} makes a figure {m.group(1)} in wide (> "
                                f"{MAX_FIG_WIDTH_IN} in, the content column)")
    return problems


def check() -> list[str]:
    """Problems with committed notebooks (see the module docstring)."""
    problems = []
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        if colab_badge(nb_path.name) not in nb.cells[0].source:
            problems.append(f"{nb_path.name}: Colab badge does not match _config.yml's repository")
        if any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in nb.cells):
            problems.append(f"{nb_path.name}: has stored outputs")
        if not re.match(r"^\d\d-[a-z0-9-]+\.ipynb$", nb_path.name):
            problems.append(f"{nb_path.name}: name must be NN-words-with-hyphens.ipynb")
        problems += frame_problems(nb_path.name, nb)
        problems += code_problems(nb_path.name, nb)
    return problems


# ------------------------------------------------------------------------------------- format

def ruff_binary() -> str:
    exe = Path(sys.executable).with_name("ruff")
    return str(exe) if exe.exists() else (shutil.which("ruff") or "ruff")


def format_source(source: str) -> str:
    """One code cell through ``ruff format`` at ``MAX_LINE`` columns (unchanged if ruff cannot
    parse it, e.g. an IPython magic)."""
    proc = subprocess.run([ruff_binary(), "format", "--no-cache", f"--line-length={MAX_LINE}",
                           "--stdin-filename", "cell.py", "-"], input=source, text=True,
                          capture_output=True, cwd=ROOT)
    return proc.stdout.rstrip("\n") if proc.returncode == 0 else source


def format_notebooks(paths: list[Path] | None = None) -> list[Path]:
    """ruff-format every code cell of the notebooks; cell ids and the JSON layout are kept."""
    changed = []
    paths = [Path(p).resolve() for p in paths] if paths else sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        nb = json.loads(path.read_text())
        dirty = False
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            new = format_source(src)
            if new != src:
                lines = new.splitlines(keepends=True)
                cell["source"] = lines
                dirty = True
        if dirty:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(path)
    return changed


if __name__ == "__main__":
    if "--check" in sys.argv:
        issues = check()
        print("\n".join(issues) or "notebooks OK")
        sys.exit(1 if issues else 0)
    if "--format" in sys.argv:
        done = format_notebooks([Path(a) for a in sys.argv[2:] if a.endswith(".ipynb")] or None)
        print("\n".join(f"formatted {p.relative_to(ROOT)}" for p in done) or "nothing to format")
        sys.exit(0)
    print(__doc__)
