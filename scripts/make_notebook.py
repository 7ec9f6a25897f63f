"""Build a book notebook with the project's standard frame, from a list of cells.

Every notebook in ``notebooks/`` starts the same way -- title, Colab badge, what you will learn,
how long it runs, one ``parameters`` cell with a string ``PROFILE`` -- and ends with a run
manifest. Use this to create or regenerate a notebook (outputs are never stored)::

    from make_notebook import build, md, code
    build("notebooks/02-long-text-encoder.ipynb", title="...", learn=[...],
          runtime={"smoke": "10 s", "cpu": "30 s", "gpu": "1 min"}, cells=[md("..."), code("...")])

``python scripts/make_notebook.py --check`` verifies every notebook's badge matches the
repository URL in ``_config.yml`` (the one place the URL is set).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


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

# smoke (CI, seconds) / cpu (this machine, minutes) / gpu (Colab, H100). Papermill injects PROFILE
# below this cell; otherwise DGTRS_PROFILE is used, else "auto" (gpu if CUDA is present, else cpu).
PROFILE = os.environ.get("DGTRS_PROFILE", "auto")'''

COLAB_SETUP = '''import subprocess, sys

# On Colab: fetch the repository and install the library (Colab keeps its own torch).
if "google.colab" in sys.modules and not os.path.exists("dgtrs_lib"):
    subprocess.run(["git", "clone", "--depth", "1", "{url}", "dgtrs-book"], check=True)
    os.chdir("dgtrs-book")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", ".[notebooks]"], check=True)
if os.path.basename(os.getcwd()) == "notebooks":
    os.chdir("..")  # run from the repository root so artifacts/ and results/ are shared
sys.path.insert(0, os.getcwd())

from dgtrs_lib.publishing.notebook import start, print_manifest

run = start(PROFILE)
print(f"profile={run.profile} device={run.device}")'''

MANIFEST = '''# Run manifest: what produced the numbers above.
print_manifest(run.manifest(notebook="{name}"))'''


def build(path: str | Path, *, title: str, learn: list[str], runtime: dict[str, str], cells: list) -> Path:
    path = ROOT / path if not Path(path).is_absolute() else Path(path)
    slug, _ = repo_slug()
    header = (
        f"# {title}\n\n{colab_badge(path.name)}\n\n**What you will learn**\n\n"
        + "\n".join(f"- {item}" for item in learn)
        + "\n\n**How long it runs**: "
        + ", ".join(f"`{k}` {v}" for k, v in runtime.items())
        + ". Set the profile with the `PROFILE` parameter or the `DGTRS_PROFILE` environment variable."
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [md(header), code(PARAMETERS, tags=["parameters"]),
                code(COLAB_SETUP.replace("{url}", f"https://github.com/{slug}")), *cells,
                md("## Run manifest"), code(MANIFEST.replace("{name}", path.stem))]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{path.stem[:2]}-{i:03d}"
    nbformat.validate(nb)
    path.write_text(nbformat.writes(nb) + "\n")
    return path


def check() -> list[str]:
    """Problems with committed notebooks: wrong badge, outputs, missing parameters cell."""
    problems = []
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        if colab_badge(nb_path.name) not in nb.cells[0].source:
            problems.append(f"{nb_path.name}: Colab badge does not match _config.yml's repository")
        if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
            problems.append(f"{nb_path.name}: no cell tagged 'parameters'")
        if any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in nb.cells):
            problems.append(f"{nb_path.name}: has stored outputs")
        if not re.match(r"^\d\d-[a-z0-9-]+\.ipynb$", nb_path.name):
            problems.append(f"{nb_path.name}: name must be NN-words-with-hyphens.ipynb")
    return problems


if __name__ == "__main__":
    if "--check" in sys.argv:
        issues = check()
        print("\n".join(issues) or "notebooks OK")
        sys.exit(1 if issues else 0)
    print(__doc__)
