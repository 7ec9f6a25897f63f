"""dgtrs_lib.publishing.paper_numbers, results_files and report: the paper's public numbers, reading results files, merging, 'not run yet'."""
import json

import pytest

from dgtrs_lib.publishing import paper_numbers, report, results_files
from dgtrs_lib.publishing.paper_numbers import ResultsFormatError


def _results(path, run="eval-tiny", profile="cpu", rows=None, **top):
    doc = {"run": run, "model": {"name": "tiny-kps-dgcl"}, "profile": profile,
           "hardware": "2 CPU cores, x86_64", "date": "2026-11-27T05:00:00+00:00",
           "versions": {"torch": "2.14.1"}, "protocol": {}, "results": rows or [], **top}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_paper_numbers_are_public_and_sourced():
    rows = paper_numbers.load_paper_numbers()
    assert all(r["source"].strip() for r in rows)
    headline = {(r["task"], r["dataset"], r["metric"]): r for r in rows if r["model"] == "LRSCLIP (v1)"}
    # The v1 abstract's numbers (arXiv:2503.19311v1 abstract), and nothing invented.
    assert headline[("zero_shot_classification", "average (datasets not stated)", "top1")]["value"] == 75.75
    assert headline[("semantic_localization", "AIR-SLT", "Rmi")]["value"] == 0.7653
    assert headline[("short_text_retrieval", "RSICD", "i2t_R@1")]["value"] == 2.93
    assert headline[("short_text_retrieval", "RSICD", "i2t_R@1")]["kind"] == "gain"
    assert len(headline) == 9
    geo = [r for r in rows if r["model"] == "GeoRSCLIP ViT-B/32" and r["metric"] == "mR"]
    assert {r["dataset"]: r["value"] for r in geo} == {"RSITMD": 35.33, "RSICD": 26.06}
    assert {r["task"] for r in rows} == set(paper_numbers.TASKS)


@pytest.mark.parametrize("row, message", [
    ({"task": "x", "dataset": "d", "metric": "m", "value": 1, "model": "M", "kind": "absolute"}, r"rows\[0\] has no 'source'"),
    ({"task": "x", "dataset": "d", "metric": "m", "value": None, "model": "M", "kind": "gain", "source": "s"}, "no 'display'"),
    ({"task": "x", "dataset": "d", "metric": "m", "value": 1, "model": "M", "kind": "best", "source": "s"}, "kind must be"),
    ({"task": "x", "dataset": "d", "metric": "m", "value": 1, "model": "M", "kind": "gain", "source": " "}, "source is empty"),
])
def test_bad_paper_numbers_name_the_file_and_field(tmp_path, row, message):
    path = tmp_path / "paper.json"
    path.write_text(json.dumps({"rows": [row]}))
    with pytest.raises(ResultsFormatError, match=message) as err:
        paper_numbers.load_paper_numbers(path)
    assert str(path) in str(err.value)


def test_results_file_rows_carry_their_provenance(tmp_path):
    path = _results(tmp_path / "cpu" / "eval.json", rows=[
        {"task": "Long-text retrieval", "dataset": "SynDG-RS test", "metric": "mR", "value": 41.5},
        {"task": "classification", "dataset": "SynDG-RS", "metric": "accuracy", "value": 0.8, "seed": 1}])
    rows = results_files.read_results_file(path)
    assert [r["task"] for r in rows] == ["long_text_retrieval", "zero_shot_classification"]
    assert rows[1]["metric"] == "top1" and rows[1]["seed"] == 1
    assert rows[0]["profile"] == "cpu" and rows[0]["hardware"] == "2 CPU cores, x86_64"
    assert rows[0]["date"].startswith("2026-11-27") and rows[0]["model"] == "tiny-kps-dgcl"
    assert rows[0]["source"] == path.as_posix()


def test_non_results_json_is_skipped_but_broken_results_are_errors(tmp_path):
    log = tmp_path / "cpu" / "train_log.json"
    log.parent.mkdir(parents=True)
    log.write_text(json.dumps({"loss": [1.0, 0.5]}))
    assert results_files.read_results_file(log) is None
    bad = _results(tmp_path / "cpu" / "bad.json", rows=[{"task": "selo", "dataset": "d", "metric": "Rmi"}])
    with pytest.raises(ResultsFormatError, match=r"bad.json: results\[0\] has no 'value'"):
        results_files.read_results_file(bad)
    nan_text = _results(tmp_path / "cpu" / "bad2.json", rows=[{"task": "selo", "dataset": "d", "metric": "Rmi", "value": "0.7"}])
    with pytest.raises(ResultsFormatError, match=r"results\[0\].value must be a number"):
        results_files.read_results_file(nan_text)
    no_date = tmp_path / "cpu" / "bad3.json"
    no_date.write_text(json.dumps({"run": "r", "profile": "cpu", "hardware": "h", "results": []}))
    with pytest.raises(ResultsFormatError, match="bad3.json: missing top-level 'date'"):
        results_files.read_results_file(no_date)


def test_nothing_measured_reads_as_not_run_yet(tmp_path):
    measured = results_files.load_measured(base=tmp_path / "no-results-yet")
    assert measured.rows == [] and measured.files == []
    status = report.task_status(measured.rows)
    assert [s["status"] for s in status] == ["not run yet"] * 4
    side = report.compare(paper_numbers.load_paper_numbers(), measured.rows, models=["LRSCLIP (v1)"])
    assert len(side) == 9 and {s["status"] for s in side} == {"not run yet"}
    assert results_files.read_notebook_times("smoke", base=tmp_path) == []


def test_load_measured_and_compare(tmp_path):
    _results(tmp_path / "cpu" / "eval.json", rows=[
        {"task": "semantic_localization", "dataset": "SynDG-SeLo", "metric": "Rmi", "value": 0.61},
        {"task": "short_text_retrieval", "dataset": "RSITMD", "metric": "mR", "value": 30.0}])
    _results(tmp_path / "reference" / "ref.json", run="ref", profile="gpu", rows=[
        {"task": "semantic_localization", "dataset": "AIR-SLT", "metric": "Rmi", "value": 0.70}])
    (tmp_path / "cpu" / "history.json").write_text("[1, 2]")
    measured = results_files.load_measured(profiles=("smoke", "cpu"), base=tmp_path)
    assert len(measured.rows) == 3 and len(measured.files) == 2
    assert any(s.endswith("history.json") for s in measured.skipped)
    assert {r["origin"] for r in measured.rows} == {"cpu", "reference"}
    status = {s["task"]: s for s in report.task_status(measured.rows)}
    assert status["semantic_localization"]["status"] == "measured"
    assert status["semantic_localization"]["profiles"] == "cpu, gpu"
    assert status["long_text_retrieval"]["status"] == "not run yet"

    paper = [{"task": "semantic_localization", "dataset": "AIR-SLT", "metric": "Rmi", "value": 0.7653,
              "model": "P", "kind": "absolute", "source": "s"}]
    side = report.compare(paper, measured.rows)
    assert {(s["our_dataset"], s["same_dataset"]) for s in side} == {("SynDG-SeLo", False), ("AIR-SLT", True)}
    assert all(s["paper_value"] == 0.7653 and s["status"] == "measured" for s in side)


def test_summarize_seeds_and_markdown():
    rows = [{"profile": "cpu", "task": "t", "dataset": "d", "metric": "mR", "value": v, "config": "kps",
             "seed": s, "source": "f.json"} for s, v in enumerate((10.0, 12.0, 14.0))]
    rows.append({"profile": "cpu", "task": "t", "dataset": "d", "metric": "mR", "value": 5.0,
                 "config": {"stretch": "linear"}, "source": "f.json"})
    summary = {r["config"]: r for r in results_files.summarize_seeds(rows)}
    assert summary["kps"]["n_seeds"] == 3 and summary["kps"]["mean"] == 12.0
    assert summary["kps"]["std"] == pytest.approx(2.0)  # sample standard deviation
    assert summary['{"stretch": "linear"}']["std"] == 0.0
    table = report.to_markdown([{"a": 0.76531, "b": 41.234, "c": None, "d": True, "e": "x|y", "n": 3}],
                               [(k, k.upper()) for k in "abcden"])
    assert table.splitlines()[2] == "| 0.7653 | 41.23 | — | yes | x\\|y | 3 |"
    assert report.to_markdown([], [("a", "A")], empty="not run yet") == "not run yet"


def test_task_and_metric_names_normalise():
    assert paper_numbers.normalize_task("Long-text retrieval") == "long_text_retrieval"
    assert paper_numbers.normalize_task("SeLo") == "semantic_localization"
    assert paper_numbers.normalize_task("zero-shot classification") == "zero_shot_classification"
    assert paper_numbers.normalize_task("ablation_extra") == "ablation_extra"
    assert paper_numbers.normalize_metric("Top-1") == "top1" and paper_numbers.normalize_metric("i2t_R@1") == "i2t_R@1"


def test_pivot_and_provenance():
    rows = [{"source": "a.json", "dataset": "d", "metric": m, "value": v, "profile": "cpu", "model": "M",
             "run": "r", "hardware": "h", "date": "t", "config": cfg}
            for cfg in ({"stage": "s1"}, "") for m, v in (("i2t_R@1", 1.0), ("mR", 2.0))]
    table, metrics = results_files.pivot(rows)
    assert metrics == ["i2t_R@1", "mR"]
    assert [(t["config"], t["i2t_R@1"], t["mR"]) for t in table] == [("stage=s1", 1.0, 2.0), ("", 1.0, 2.0)]
    prov = results_files.provenance(rows)
    assert prov == [{"source": "a.json", "run": "r", "model": "M", "profile": "cpu", "hardware": "h",
                     "date": "t", "n_results": 4}]
    assert results_files._model_name({"class": "LongCLIP", "source": "/x/artifacts/cpu/pipeline/dgcl/final.pt"}) \
        == "LongCLIP (pipeline/dgcl/final.pt)"
