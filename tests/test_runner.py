"""The notebook runner: TOC order, failures naming the notebook and cell, timings, strict build."""
import csv
import json
import os
import textwrap
from pathlib import Path

import nbformat
import pytest

from dgtrs_lib.publishing import book_build, execute, runner, toc
from dgtrs_lib.publishing.toc import RunnerError


def _nb(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('PROFILE = "auto"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), params,
                *[nbformat.v4.new_code_cell(s) for s in sources]]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _toc(root: Path, *files: str) -> None:
    chapters = "\n".join(f"      - file: {f}" for f in files)
    (root / "_toc.yml").write_text(
        f"format: jb-book\nroot: book/intro\nparts:\n  - caption: Notebooks\n    chapters:\n{chapters}\n")


def test_toc_order_and_notebooks(tmp_path):
    _toc(tmp_path, "notebooks/02-b", "book/page", "notebooks/01-a.ipynb")
    for name in ("01-a", "02-b"):
        _nb(tmp_path / "notebooks" / f"{name}.ipynb", "1")
    assert toc.toc_entries(tmp_path) == ["book/intro", "notebooks/02-b", "book/page", "notebooks/01-a"]
    assert [p.stem for p in toc.toc_notebooks(tmp_path)] == ["02-b", "01-a"]  # TOC order, not name order


def test_toc_listing_a_missing_notebook_is_a_clear_error(tmp_path):
    _toc(tmp_path, "notebooks/03-not-written-yet")
    with pytest.raises(RunnerError, match=r"_toc.yml lists 'notebooks/03-not-written-yet'.*does not exist"):
        toc.toc_notebooks(tmp_path)


def test_repository_toc_lists_only_existing_notebooks_in_order():
    notebooks = toc.toc_notebooks()
    stems = [p.stem for p in notebooks]
    assert stems == sorted(stems), "book order must follow the NN- prefixes"
    assert "09-reproduction-report" in stems


def test_select_by_prefix_and_unknown_name(tmp_path):
    nbs = [tmp_path / "01-a.ipynb", tmp_path / "04-long-text-retrieval.ipynb", tmp_path / "09-report.ipynb"]
    assert toc.select(nbs, ["09", "04"]) == [nbs[1], nbs[2]]  # book order kept
    assert toc.select(nbs, None) == nbs
    with pytest.raises(RunnerError, match="--only '07'.*01-a, 04-long-text-retrieval, 09-report"):
        toc.select(nbs, ["07"])


def test_failure_names_notebook_and_cell_keeps_copy_and_times(tmp_path, tmp_outputs):
    good = _nb(tmp_path / "nb" / "01-good.ipynb",
               "import os\nassert os.environ['DGTRS_PROFILE'] == PROFILE == 'smoke'\n"
               "assert os.environ['DGTRS_WIDGETS'] == '0'  # headless: live widgets off",
               "import time\nbuf = b'x' * (120 * 2**20)  # touched pages: RSS grows\ntime.sleep(0.8)  # >= 2 polls")
    bad = _nb(tmp_path / "nb" / "02-bad.ipynb", "x = 1", "raise ValueError('boom in cell three')", "never = 1")
    build = tmp_path / "_build"
    before = {k: os.environ.get(k) for k in ("DGTRS_PROFILE", "DGTRS_WIDGETS")}
    with pytest.raises(RunnerError) as err:
        execute.run_notebooks("smoke", root=tmp_path, build_dir=build, notebooks=[good, bad], echo=lambda *_: None)
    assert {k: os.environ.get(k) for k in before} == before  # the kernels' environment is undone
    msg = str(err.value)
    # Cell numbers are those of the executed copy (papermill adds the injected-parameters cell).
    assert "02-bad.ipynb" in msg and "ValueError: boom in cell three" in msg
    assert "cell 4 (In [4]): raise ValueError('boom in cell three')" in msg
    kept = build / "executed" / "smoke" / "02-bad.ipynb"
    assert kept.exists() and str(kept) in msg
    executed = nbformat.read(kept, as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert book_build.notebook_errors(kept)  # the book build would refuse it

    rows = {r["notebook"]: r for r in csv.DictReader((build / "executed/smoke/notebook_times.csv").open())}
    assert rows["01-good"]["status"] == "ok" and rows["02-bad"]["status"] == "failed"
    assert rows["02-bad"]["failed_cell"].startswith("cell 4 (In [4])")
    assert float(rows["01-good"]["wall_s"]) > 0
    assert float(rows["01-good"]["peak_rss_mb"]) > 120  # the kernel tree held the 120 MiB buffer
    copy = tmp_outputs / "results" / "smoke" / "notebook_times.csv"
    assert copy.read_text() == (build / "executed/smoke/notebook_times.csv").read_text()


def test_notebook_errors_finds_error_outputs_and_papermill_banner(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1/0", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])]
    banner = nbformat.v4.new_markdown_cell('<span style="color:red">An Exception was encountered at '
                                           '<a href="#papermill-error-cell">In [1]</a>.</span>')
    ok = nbformat.v4.new_code_cell("1", execution_count=2)
    nb.cells = [banner, cell, ok]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    problems = book_build.notebook_errors(path)
    assert any("papermill error banner in cell 0" in p for p in problems)
    assert any("cell 1 raised ZeroDivisionError: division by zero" in p for p in problems)
    nb.cells = [ok]
    nbformat.write(nb, path)
    assert book_build.notebook_errors(path) == []


def _mini_book(root: Path, intro: str) -> None:
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text(intro)
    (root / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: 'off'\nonly_build_toc_files: true\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")


def test_book_build_succeeds_then_fails_on_a_sphinx_warning(tmp_path):
    good = tmp_path / "good"
    _mini_book(good, "# Intro\n\nHello.\n")
    html = book_build.build_book("smoke", root=good, build_dir=good / "_build", echo=lambda *_: None)
    assert (html / "book" / "intro.html").exists()
    assert json.loads((html / "_dgtrs_build.json").read_text())["profile"] == "smoke"

    bad = tmp_path / "bad"
    _mini_book(bad, textwrap.dedent("""\
        # Intro

        See {doc}`a page that does not exist <nowhere>`.
        """))
    with pytest.raises(RunnerError, match="book build failed"):
        book_build.build_book("smoke", root=bad, build_dir=bad / "_build", echo=lambda *_: None)


def test_build_refuses_missing_executed_copies(tmp_path):
    _mini_book(tmp_path, "# Intro\n")
    _nb(tmp_path / "notebooks" / "01-a.ipynb", "1")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/01-a\n")
    with pytest.raises(RunnerError, match="01-a.ipynb: no executed copy"):
        book_build.stage_book("smoke", root=tmp_path, build_dir=tmp_path / "_build")


def test_cli_reports_errors_with_nonzero_exit(capsys):
    assert runner.main(["--profile", "smoke", "--only", "99-no-such-notebook"]) == 7   # RunError (dgtrs_lib.errors)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--only '99-no-such-notebook'" in err and len(err.strip().splitlines()) == 1


def test_keep_going_runs_the_rest_and_names_every_failure(tmp_path, tmp_outputs):
    bad1 = _nb(tmp_path / "nb" / "01-bad.ipynb", "raise KeyError('first')")
    good = _nb(tmp_path / "nb" / "02-good.ipynb", "x = 1")
    bad2 = _nb(tmp_path / "nb" / "03-bad.ipynb", "import nonexistent_module_xyz")
    with pytest.raises(RunnerError) as err:
        execute.run_notebooks("smoke", root=tmp_path, build_dir=tmp_path / "_build",
                             notebooks=[bad1, good, bad2], keep_going=True, echo=lambda *_: None)
    msg = str(err.value)
    assert "01-bad.ipynb failed" in msg and "KeyError" in msg
    assert "03-bad.ipynb failed" in msg and "ModuleNotFoundError" in msg
    assert "02-good" not in msg
    assert (tmp_path / "_build" / "executed" / "smoke" / "02-good.ipynb").exists()


def test_a_hung_cell_times_out_and_is_named(tmp_path, tmp_outputs):
    slow = _nb(tmp_path / "nb" / "01-slow.ipynb", "x = 1", "import time\ntime.sleep(60)")
    with pytest.raises(RunnerError) as err:
        execute.run_notebooks("smoke", root=tmp_path, build_dir=tmp_path / "_build", notebooks=[slow],
                             timeout=3, echo=lambda *_: None)
    msg = str(err.value)
    assert "01-slow.ipynb failed at cell 4: import time" in msg and "Timeout" in msg


def test_progress_shows_cells_and_library_bars_and_no_tcp_warning(tmp_path, tmp_outputs, capfd):
    """The terminal sees each cell and the library's tqdm bars (routed by start() to the runner);
    the page gets no progress widget; the kernel talks over IPC, so ipykernel prints no TCP
    warning. quiet keeps one line per notebook."""
    root = Path(__file__).resolve().parent.parent
    nb = _nb(tmp_path / "nb" / "01-progress.ipynb",
             f"import sys\nsys.path.insert(0, {str(root)!r})\nfrom dgtrs_lib.publishing.notebook import start\n"
             "run = start(PROFILE)",
             "from tqdm.auto import tqdm\nimport time\nbar = tqdm(total=8, desc='train (cosine)', unit='step')\n"
             "for i in range(8):\n    time.sleep(0.6)\n    bar.update(1)\n    bar.set_postfix(loss=f'{3 - i / 10:.3f}')\n"
             "bar.close()")
    lines = []
    execute.run_notebooks("smoke", root=tmp_path, build_dir=tmp_path / "_build", notebooks=[nb],
                         echo=lines.append)
    text = "\n".join(lines)
    assert "[1/1] 01-progress.ipynb (profile=smoke" in text
    assert "cell 4 [" in text and "from tqdm.auto import tqdm" in text
    assert "train (cosine)" in text and "/8 step" in text and "loss=" in text and "done in" in text
    assert "without encryption" not in capfd.readouterr().err
    executed = nbformat.read(tmp_path / "_build" / "executed" / "smoke" / "01-progress.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert not any(o.get("name") == "stderr" for o in outputs)

    lines.clear()
    execute.run_notebooks("smoke", root=tmp_path, build_dir=tmp_path / "_build", notebooks=[nb],
                         echo=lines.append, quiet=True)
    assert lines[0].startswith("[1/1] 01-progress.ipynb (profile=smoke, last run ")
    assert not any("cell " in ln or "train (cosine)" in ln for ln in lines)


def test_progress_helpers():
    from dgtrs_lib.publishing.progress import cell_label, describe_bar, fmt_duration

    assert fmt_duration(8) == "8 s" and fmt_duration(75) == "1 min 15 s" and fmt_duration(3900) == "1 h 05 min"
    cells = [{"cell_type": "markdown", "source": "# T\n\n## Training"}, {"cell_type": "code", "source": "\nx = 1\n"}]
    assert cell_label(cells, 1) == "Training | x = 1"
    line = describe_bar({"desc": "train", "n": 50, "total": 200, "unit": "step", "rate": 10.0,
                         "elapsed": 5.0, "postfix": "loss=2.100"})
    assert line == "train, 50/200 step, loss=2.100, 5 s elapsed, ~15 s left"
