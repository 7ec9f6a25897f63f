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


# ---------------------------------------------------------------------------- issue #16: teaching frame

def test_every_library_module_names_the_chapter_that_teaches_it():
    """Each module's docstring ends its story with 'Taught in: <chapter title> (<page>)', and the
    page exists and has that title (so a reader of the source can get to the chapter)."""
    import ast

    def page_title(page: str) -> str:
        if page.endswith(".ipynb"):
            return nbformat.read(ROOT / page, as_version=4).cells[0].source.splitlines()[0].lstrip("# ").strip()
        return (ROOT / page).read_text().splitlines()[0].lstrip("# ").strip()

    missing, wrong = [], []
    for path in sorted((ROOT / "dgtrs_lib").rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        m = re.search(r"^Taught in: (.+) \(((?:notebooks|book)/[\w.-]+\.(?:ipynb|md))\)$", doc, re.M)
        rel = path.relative_to(ROOT).as_posix()
        if not m:
            missing.append(rel)
            continue
        title, page = m.groups()
        if not (ROOT / page).exists() or page_title(page) != title:
            wrong.append(f"{rel}: {page!r} titled {title!r}")
    assert not missing, f"modules without a 'Taught in:' line: {missing}"
    assert not wrong, f"'Taught in:' names a page that does not exist or has another title: {wrong}"


def _frame_notebook(tmp_path, mutate=None):
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_notebook

    nb = nbformat.read(ROOT / "notebooks" / "02-long-text-encoder.ipynb", as_version=4)
    if mutate:
        mutate(nb)
    return make_notebook.frame_problems("x.ipynb", nb) + make_notebook.code_problems("x.ipynb", nb)


def test_frame_check_passes_on_a_committed_notebook_and_catches_each_rule(tmp_path):
    assert _frame_notebook(tmp_path) == []

    def visible_setup(nb):
        nb.cells[2].metadata["tags"] = []

    def no_exercises(nb):
        nb.cells = [c for c in nb.cells if not c.source.startswith("## Exercises")]

    def long_line(nb):
        nb.cells[3 + next(i for i, c in enumerate(nb.cells[3:]) if c.cell_type == "code")].source += "\nx = " + "1" * 90

    def small_font(nb):
        code = next(c for c in nb.cells[3:] if c.cell_type == "code")
        code.source += "\nplt.title('t', fontsize=7)\nplt.figure(figsize=(14, 3))"

    def shown_manifest(nb):
        nb.cells[-1].metadata["tags"] = []

    assert any("Colab set-up cell must be tagged 'remove-cell'" in p for p in _frame_notebook(tmp_path, visible_setup))
    assert any("must end with '## Takeaways', '## Exercises'" in p for p in _frame_notebook(tmp_path, no_exercises))
    assert any("> 88 characters" in p for p in _frame_notebook(tmp_path, long_line))
    problems = _frame_notebook(tmp_path, small_font)
    assert any("fontsize=7" in p for p in problems) and any("14 in wide" in p for p in problems)
    assert any("manifest cell must be tagged 'remove-input'" in p for p in _frame_notebook(tmp_path, shown_manifest))


def test_every_exercise_has_a_folded_worked_answer():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        ex = next(c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
        assert 2 <= len(re.findall(r"^\d+\.\s", ex, re.M)) <= 3, path.name
        assert ex.count("<details><summary>Worked answer</summary>") == ex.count("</details>") >= 2, path.name


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"(?<![\w.])[-+]?\d+\.\d+", text)]


def test_sentences_state_the_numbers_of_the_reference_results():
    """A sentence rendered from a results file states that file's numbers, nothing else."""
    import json

    from dgtrs_lib.publishing import interpret

    doc = json.loads((ROOT / "results" / "reference" / "evaluate-pipeline-dgcl-final-cpu.json").read_text())
    rows = doc["results"]
    values = {round(r["value"], 2) for r in rows} | {round(r["value"], 4) for r in rows}
    for task in ("long_text_retrieval", "short_text_retrieval"):
        text = interpret.retrieval_sentence(rows, task)
        stated = _numbers(text)
        n = next(r["n"] for r in rows if r["task"] == task)
        assert stated and all(v in values or abs(v - 100 / n) < 0.01 for v in stated), (task, text)
    classes = {k: len(v["classnames"]) for k, v in doc["details"]["zero_shot_classification"].items()}
    text = interpret.classification_sentence(rows, classes)
    assert all(v in values or any(abs(v - 100 / k) < 0.05 for k in classes.values()) for v in _numbers(text)), text
    text = interpret.selo_sentence(rows)
    assert _numbers(text) and all(v in values for v in _numbers(text)), text



def _study():
    import json

    return json.loads((ROOT / "results" / "reference" / "ablations-cpu.json").read_text())


def test_committed_study_verdicts_follow_from_its_own_rows():
    """The verdicts the book renders are those the committed per-seed rows give under the
    pre-registered rules: a hand-edited or stale verdict fails here."""
    from dgtrs_lib.experiments.ablations import claim_table, claim_verdicts
    from dgtrs_lib.publishing import interpret

    study = _study()
    assert "contrasts" in study, "results/reference/ablations-cpu.json predates the pre-registered study"
    again = claim_table(study["results"])
    stored = {(c["better"], c["worse"], c["endpoint"]): c for c in study["contrasts"] if c["family"] == "primary"}
    assert {(c["better"], c["worse"], c["endpoint"]) for c in again} == set(stored)
    for c in again:
        s = stored[(c["better"], c["worse"], c["endpoint"])]
        assert c["verdict"] == s["verdict"] and abs(c["mean_diff"] - s["mean_diff"]) < 1e-9, c
    assert [c["verdict"] for c in claim_verdicts(again)] == [c["verdict"] for c in study["claims"]]
    text = interpret.study_sentences(study)
    from dgtrs_lib.experiments.ablations import unconverged_runs

    for c in study["claims"]:
        assert f"**{c['claim']}** (`{c['better']}` vs `{c['worse']}`): **{c['verdict']}**." in text
        bad, runs = unconverged_runs(study, c)  # the convergence note beside it reads the arms' checks
        assert runs == len(study["protocol"]["arms"][c["better"]]["seeds"]) + len(study["protocol"]["arms"][c["worse"]]["seeds"])
        assert (f"{len(bad)} of the {runs} runs" if bad else f"All {runs} runs") in text
    for c in study["contrasts"]:  # every contrast row names the failing runs of its arms
        assert c["unconverged"] == unconverged_runs(study, c)[0], c
    summary = interpret.claim_summary(study)
    assert all(c["claim"] in summary and c["verdict"] in summary for c in study["claims"])


def _static_prose():
    """(where, text) of every hand-written paragraph that could state a verdict: the book's
    Markdown pages and the Markdown cells of the study and report chapters."""
    import nbformat

    out = [(p.name, p.read_text()) for p in (ROOT / "book").glob("*.md")]
    for name in ("08-ablations", "09-reproduction-report"):
        nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        out += [(f"{name} cell {i}", c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    return out


def test_prose_types_no_verdict_of_a_claim():
    """No hand-written sentence says a claim held, reversed or stayed open: verdicts are rendered
    from the results file (study_sentences / claim_summary), so the prose cannot contradict it."""
    import re

    claim_words = re.compile(r"\b(KPS|curriculum|DGCL|granularit)", re.I)
    verdict_words = re.compile(r"\b(holds(?=\s*[.,;:)]|\s+in miniature|\s+on\b)|held|reversed|inconclusive|"
                               r"does not hold|confirmed|refuted|beats? naive|direction of an effect)\b", re.I)
    definitional = re.compile(r"verdict|all three|holds\*\* \(|\*\*holds\*\*|\"holds\"", re.I)
    bad = []
    for where, text in _static_prose():
        text = re.sub(r"```.*?```", " ", text, flags=re.S).replace("held-out", "")
        for sentence in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
            if claim_words.search(sentence) and verdict_words.search(sentence) and not definitional.search(sentence):
                bad.append(f"{where}: {sentence.strip()[:160]}")
    assert not bad, "\n".join(bad)


def test_forest_plot_reads_contrast_rows_generically():
    import matplotlib

    matplotlib.use("Agg")
    from dgtrs_lib.publishing.figures import forest_plot

    primary = [c for c in _study()["contrasts"] if c["family"] == "primary"]
    fig = forest_plot(primary)
    labels = list(dict.fromkeys(c["label"] for c in primary))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == len(labels)
    n_pairs = len({(c["better"], c["worse"]) for c in primary})
    assert all(len(ax.get_yticks()) == n_pairs for ax in panels)
    # another study: other claims, other metrics, no better/worse keys, only seed ranges
    other = [{"claim": f"c{i}", "metric": m, "mean_diff": 0.1 * i, "min_diff": -0.1, "max_diff": 0.3,
              "verdict": "inconclusive"} for i in range(3) for m in ("m1", "m2", "m3")]
    fig = forest_plot(other)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["m1", "m2", "m3"]
    assert fig.get_size_inches()[0] <= 6.7 + 1e-9


def test_kps_schematic_is_measured_from_the_library():
    from dgtrs_lib.model.kps import kps_length
    from dgtrs_lib.publishing.figures import kps_source_positions

    pos = kps_source_positions(12, keep=4, ratio=3)
    assert len(pos) == kps_length(12, 4, 3) == 3 * 12 - 2 * 4
    assert list(pos[:4]) == [0, 1, 2, 3]                       # kept rows
    assert pos[4 + 3 * 2] == 6 and abs(pos[5] - (4 + 1 / 3)) < 1e-9   # row k + r(p - k) holds p


def test_pages_link_library_calls_to_their_source_and_drop_plumbing():
    from dgtrs_lib.publishing import pages

    names = pages.library_calls([
        "from dgtrs_lib.experiments import pipeline\nfrom dgtrs_lib.training.losses import pca_reconstruct",
        "final = pipeline.get_or_train(p)\nx = pca_reconstruct(v, 3)\nfinal.checkpoint",
    ])
    assert names == ["dgtrs_lib.experiments.pipeline.get_or_train", "dgtrs_lib.training.losses.pca_reconstruct"]
    repo, branch = pages.repository(ROOT)
    obj = pages.resolve("dgtrs_lib.training.losses.pca_reconstruct")
    assert obj.path == "dgtrs_lib/training/losses.py" and obj.start and obj.end >= obj.start
    url = obj.url(repo, branch)
    assert url.startswith("https://github.com/dgtrs-book/dgtrs-book/blob/main/dgtrs_lib/training/losses.py#L")
    text = pages.link_library_names("see `dgtrs_lib.training.curriculum` and\n```python\n`dgtrs_lib.env`\n```",
                                    repo, branch)
    assert "[`dgtrs_lib.training.curriculum`](https://github.com/" in text and "\n`dgtrs_lib.env`\n" in text

    nb = nbformat.read(ROOT / "notebooks" / "03-curriculum-training.ipynb", as_version=4)
    injected = nbformat.v4.new_code_cell('# Parameters\nPROFILE = "smoke"')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(2, injected)
    manifest = nb.cells[-1]
    manifest.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": '{"profile": "smoke", '
                        '"device": "cpu", "hardware": "x86_64 CPU, 2 cores", "wall_time_s": 12.0, "date": "2026-01-01"}'})]
    page = pages.prepare_page(nb, root=ROOT)
    assert "remove-cell" in page.cells[2].metadata["tags"]
    assert "colab-badge.svg" not in page.cells[0].source
    assert "**How this page was run**: by papermill, profile `smoke`, on cpu (x86_64 CPU, 2 cores), in 12 s" \
        in page.cells[0].source
    table = next(c.source for c in page.cells if c.source.startswith(pages.LIBRARY_HEADING))
    assert "experiments.pipeline.get_or_train" in table and "/blob/main/dgtrs_lib/experiments/pipeline.py#L" in table


def test_display_path_never_shows_the_machine(tmp_path, monkeypatch):
    from dgtrs_lib.publishing.notebook import display_path, display_paths

    monkeypatch.setenv("DGTRS_ARTIFACTS", str(tmp_path / "art"))
    assert display_path(ROOT / "results" / "reference" / "x.json") == "results/reference/x.json"
    assert display_path(tmp_path / "art" / "smoke" / "final.pt") == "artifacts/smoke/final.pt"
    assert display_paths({"source": f"file:{ROOT}/a.pt", "n": 1}) == {"source": "file:a.pt", "n": 1}
    assert not display_path("/opt/elsewhere/model.pt").startswith("/")


def test_code_in_the_prose_pages_fits_the_content_column():
    """Code blocks of book/*.md are wrapped like the notebooks' code (the browser check measures
    the rendered width; this catches it before a build)."""
    long = []
    for page in sorted((ROOT / "book").glob("*.md")):
        for block in re.findall(r"^```(?!\{)[^\n]*\n(.*?)^```", page.read_text(), re.S | re.M):
            long += [f"{page.name}: {line}" for line in block.splitlines() if len(line) > 86]
    assert not long, "\n".join(long)
