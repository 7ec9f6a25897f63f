"""The book's sources: badges in step with _config.yml, truthful library tour, resolvable citations."""
import re
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def test_badges_match_config_and_notebooks_are_clean():
    # scripts/make_notebook.py --check: badge = _config.yml's repository, parameters cell, no outputs.
    proc = subprocess.run([sys.executable, "scripts/make_notebook.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "notebooks OK" in proc.stdout


def test_badge_check_catches_a_wrong_repository(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_notebook

    fake = tmp_path / "repo"
    (fake / "notebooks").mkdir(parents=True)
    (fake / "_config.yml").write_text((ROOT / "_config.yml").read_text().replace(
        "github.com/dgtrs-book/dgtrs-book", "github.com/someone-else/fork"))
    nb = nbformat.read(ROOT / "notebooks" / "09-reproduction-report.ipynb", as_version=4)
    nbformat.write(nb, fake / "notebooks" / "09-reproduction-report.ipynb")
    monkeypatch.setattr(make_notebook, "ROOT", fake)
    assert make_notebook.check() == ["09-reproduction-report.ipynb: Colab badge does not match "
                                     "_config.yml's repository"]


def test_library_tour_examples_run_as_written():
    text = (ROOT / "book" / "library-tour.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"library-tour.md python block {i}", "exec"), namespace)  # noqa: S102


def test_every_citation_is_in_references_bib():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, re.M))
    sources = [p.read_text() for p in (ROOT / "book").glob("*.md")]
    sources += [c.source for p in (ROOT / "notebooks").glob("*.ipynb")
                for c in nbformat.read(p, as_version=4).cells if c.cell_type == "markdown"]
    cited = {k.strip() for s in sources for group in re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", s)
             for k in group.split(",")}
    assert cited, "the book cites nothing"
    assert cited <= keys, f"cited but not in references.bib: {sorted(cited - keys)}"
    for key in ("chen2025dgtrs", "zhang2024longclip", "radford2021clip", "liu2024remoteclip",
                "zhang2024rs5m", "wang2024skyscript", "yuan2022selo", "mcfeeters1996ndwi", "rouse1974ndvi"):
        assert key in cited, f"{key} is in the bibliography but never cited"


def test_toc_has_intro_how_to_run_tour_and_references():
    from dgtrs_lib.publishing.toc import toc_entries

    entries = toc_entries(ROOT)
    assert entries[0] == "book/intro"
    for page in ("book/how-to-run", "book/library-tour", "book/bibliography",
                 "notebooks/09-reproduction-report"):
        assert page in entries
        assert (ROOT / f"{page}.md").exists() or (ROOT / f"{page}.ipynb").exists()


def test_every_committed_notebook_is_in_the_toc():
    """A notebook that is committed but not listed in _toc.yml would never be run or published."""
    from dgtrs_lib.publishing.toc import toc_notebooks

    proc = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=ROOT, capture_output=True, text=True)
    committed = {Path(p).stem for p in proc.stdout.split()} if proc.returncode == 0 else \
        {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    listed = {p.stem for p in toc_notebooks(ROOT)}
    assert committed <= listed, f"add to _toc.yml: {sorted(committed - listed)}"
