"""The whole book, as CI builds it: every TOC notebook executed on `smoke`, the strict Jupyter Book
build, and every page opened in headless Chromium. One module-scoped build, shared by the tests."""
import csv
import json
from pathlib import Path

import pytest

from dgtrs_lib.publishing import book_build, browser_check, execute, toc

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """Run the runner exactly as `python -m dgtrs_lib.publishing.runner --profile smoke --book` does, into a
    temporary build folder, with artifacts/results/cache isolated like a fresh clone."""
    tmp = tmp_path_factory.mktemp("book")
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("DGTRS_ARTIFACTS", "artifacts"), ("DGTRS_RESULTS", "results"), ("DGTRS_CACHE", "cache")):
            mp.setenv(var, str(tmp / sub))
        mp.setenv("DGTRS_PROFILE", "smoke")  # restored afterwards (the runner sets it for the kernels)
        build = tmp / "_build"
        runs = execute.run_notebooks("smoke", root=ROOT, build_dir=build)
        html = book_build.build_book("smoke", root=ROOT, build_dir=build)
        yield {"runs": runs, "html": html, "build": build, "results": tmp / "results"}


def test_every_toc_notebook_executes_on_smoke(book):
    expected = [p.stem for p in toc.toc_notebooks(ROOT)]
    assert [r.notebook for r in book["runs"]] == expected
    assert all(r.status == "ok" for r in book["runs"])
    rows = list(csv.DictReader((book["build"] / "executed" / "smoke" / "notebook_times.csv").open()))
    assert sorted(r["notebook"] for r in rows) == sorted(expected)
    for row in rows:
        assert float(row["wall_s"]) > 0 and float(row["peak_rss_mb"]) > 0, row
    assert (book["results"] / "smoke" / "notebook_times.csv").exists()
    for name in expected:
        assert book_build.notebook_errors(book["build"] / "executed" / "smoke" / f"{name}.ipynb") == []


def test_book_has_every_page_and_colab_launch_buttons(book):
    html = book["html"]
    assert (html / "index.html").exists()
    for entry in toc.toc_entries(ROOT):
        page = html / f"{entry}.html"
        assert page.exists(), f"missing page {page}"
        if entry.startswith("notebooks/"):
            text = page.read_text()
            link = f"colab.research.google.com/github/dgtrs-book/dgtrs-book/blob/main/{entry}.ipynb"
            assert link in text, f"{entry}: no Colab launch button to {link}"
    assert json.loads((html / "_dgtrs_build.json").read_text())["profile"] == "smoke"


def test_report_page_reads_this_run(book):
    # The report notebook ran last and saw the other notebooks' timings from this very run.
    text = (book["html"] / "notebooks" / "09-reproduction-report.html").read_text()
    assert "Reproduction report" in text
    earlier = [r.notebook for r in book["runs"] if r.notebook != "09-reproduction-report"]
    for name in earlier:
        assert name in text
    assert (book["results"] / "smoke" / "reproduction_comparison.csv").exists()


def test_executed_notebooks_show_no_absolute_path_user_or_host(book):
    """What a page prints is relative to the repository root: no path of the build machine, no
    home folder, no host name, in any output of any executed notebook."""
    import nbformat

    machine = browser_check.machine_strings(ROOT) + [str(book["build"].parent)]
    found = []
    for nb_path in sorted((book["build"] / "executed" / "smoke").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for i, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items()
                                                 if k.startswith("text/")]
                for text in texts:
                    text = "".join(text) if isinstance(text, list) else str(text)
                    hits = browser_check.absolute_paths(text, machine)
                    if hits:
                        found.append(f"{nb_path.name} cell {i}: {hits[0]}")
    assert not found, "\n".join(found[:20])


def test_executed_notebooks_have_no_warnings_widgets_or_stderr(book):
    import nbformat

    found = []
    for nb_path in sorted((book["build"] / "executed" / "smoke").glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(nb_path, as_version=4).cells):
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                if out.get("name") == "stderr":
                    found.append(f"{nb_path.name} cell {i}: stderr {out.get('text', '')[:120]!r}")
                if "application/vnd.jupyter.widget-view+json" in out.get("data", {}):
                    found.append(f"{nb_path.name} cell {i}: a widget (progress bar?) in the page")
    assert not found, "\n".join(found[:20])


@pytest.mark.browser
def test_every_page_in_headless_chromium(book):
    if browser_check.find_chromium() is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver); "
                    "CI installs it in .ci/run")
    result = browser_check.check_book(book["html"], root=ROOT)
    assert result.ok, result.summary()
    assert len(result.pages) == len(toc.toc_entries(ROOT))
    report_page = next(p for p in result.pages if p.page == "notebooks/09-reproduction-report")
    assert report_page.expected_images >= 1 and report_page.images >= report_page.expected_images
    names = sorted(p.name for p in result.screenshots)
    assert names == ["chapter-03.png", "chapter-08.png", "evaluation.png", "landing.png"]
    for shot in result.screenshots:
        assert shot.parent == book["html"] / "_screenshots"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@pytest.mark.browser
def test_browser_check_fails_on_traceback_missing_figure_and_missing_page(book, tmp_path):
    if browser_check.find_chromium() is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)")
    import re
    import shutil

    html = tmp_path / "html"
    shutil.copytree(book["html"], html)
    report_page = html / "notebooks" / "09-reproduction-report.html"
    text = report_page.read_text()
    figure = re.search(r'<img[^>]+src="\.\./(_images/[^"]+\.png)"', text).group(1)
    (html / figure).unlink()  # a figure that no longer renders
    intro = html / "book" / "intro.html"
    intro.write_text(intro.read_text().replace(
        "</article>", "<pre>Traceback (most recent call last):\n  ValueError: boom</pre></article>", 1))
    (html / "book" / "how-to-run.html").unlink()
    tour = html / "book" / "library-tour.html"
    tour.write_text(tour.read_text().replace("</article>", "<p>| a | b |\n|---|---|</p></article>", 1))
    # issue #16: plumbing and the build machine on a page, and a page that does not fit
    setup = ('<div class="cell docutils container"><div class="cell_input docutils container">'
             '<pre>if "google.colab" in sys.modules:\n    pass</pre></div></div>')
    machine = f"<p>checkpoint: {ROOT}/artifacts/smoke/final.pt and /home/someone/x.pt</p>"
    long_code = "<pre>" + "x = " + "1" * 300 + "</pre>"
    wide = "<table><tr>" + "".join(f"<td>column_{i:03d}_wide_label</td>" for i in range(30)) + "</tr></table>"
    tex = "<p>the loss is \\mathcal{L}_{long} + \\frac{1}{2}</p>"
    warn = ('<div class="cell_output docutils container"><div class="output stderr"><pre>'
            "x.py:3: UserWarning: something</pre></div></div>")
    page = html / "notebooks" / "03-curriculum-training.html"
    page.write_text(page.read_text().replace(
        "</article>", setup + machine + long_code + wide + tex + warn + "</article>", 1))
    result = browser_check.check_book(html, root=ROOT, screenshots=False)
    assert not result.ok
    problems = "\n".join(result.problems)
    nb03 = "notebooks/03-curriculum-training: "
    assert nb03 + "shows a set-up cell ('google.colab' in a visible code cell)" in problems
    assert nb03 + "shows an absolute path or the build machine's name" in problems
    assert nb03 + "a code line overflows the content column" in problems
    assert nb03 + "a table is wider than the content column" in problems
    assert nb03 + "raw TeX in the text" in problems
    assert nb03 + "a warning in an output: 'UserWarning: something'" in problems
    assert "book/how-to-run: missing" in problems
    assert "book/intro: shows 'Traceback (most recent call last)'" in problems
    assert "notebooks/09-reproduction-report:" in problems and "broken image" in problems
    assert "book/library-tour: shows an unrendered Markdown table" in problems
