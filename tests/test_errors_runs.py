"""Issue #14, results and runs overwritten or inconsistent: unique result names, no silent replace,
JSON + CSV as one unit, one trainer per folder (a lock naming its holder), stale temporary files
removed, the step checkpoint before the resume state, files 0644."""
import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from dgtrs_lib.errors import LockedError, ResultExistsError
from dgtrs_lib.evaluation.evaluate import default_run_name, evaluation_identity, plan_datasets
from dgtrs_lib.io import atomic_save, atomic_write_text, locked
from dgtrs_lib.results import read_results, results_doc, rows_csv, write_results

ROOT = Path(__file__).resolve().parent.parent


def _doc(run, value, **extra):
    return {"run": run, "profile": "smoke", "date": "d", "hardware": "h",
            "results": [{"task": "t", "dataset": "d", "metric": "m", "value": float(value), "n": 1}], **extra}


# ----------------------------------------------------------------------------- names and replacing
def test_default_result_names_are_unique_per_evaluation(tmp_path):
    for run in ("a", "b"):
        (tmp_path / run / "tr" / "ref").mkdir(parents=True)
        (tmp_path / run / "tr" / "ref" / "final.pt").write_bytes(b"x")
    specs = plan_datasets(["long_retrieval", "selo"], None)

    def name(source, tasks=("long_retrieval",), profile="smoke", data=None):
        return default_run_name(evaluation_identity(source, tasks, data or {t: specs[t] for t in tasks}, profile))

    a, b = str(tmp_path / "a/tr/ref/final.pt"), str(tmp_path / "b/tr/ref/final.pt")
    names = [name(a), name(b), name(a, ("selo",)), name(a, profile="cpu"),
             name(a, data={"long_retrieval": [{"kind": "karpathy", "name": "x", "json": "j", "images": "i"}]})]
    assert len(set(names)) == len(names), names
    assert name(a) == name(a) and names[0].startswith("evaluate-tr-ref-final-")   # stable, readable, and the hash tells a from b


def test_results_are_replaced_only_when_asked(tmp_path):
    out = tmp_path / "r.json"
    write_results(_doc("r", 1, identity={"model": "m1"}), out)
    with pytest.raises(ResultExistsError, match="r.json: a result already exists .*--overwrite was not given"):
        write_results(_doc("r", 2, identity={"model": "m1"}), out, overwrite=False)
    with pytest.raises(ResultExistsError, match="holds another result"):
        write_results(_doc("r", 2, identity={"model": "m2"}), out)              # another evaluation, same file
    assert json.loads(out.read_text())["results"][0]["value"] == 1
    write_results(_doc("r", 3, identity={"model": "m1"}), out)                  # the same evaluation again
    write_results(_doc("r", 4, identity={"model": "m2"}), out, overwrite=True)
    assert json.loads(out.read_text())["results"][0]["value"] == 4


def test_evaluate_refuses_to_replace_another_result_before_loading(tmp_outputs, monkeypatch):
    from dgtrs_lib.evaluation import evaluate as ev

    out = tmp_outputs / "x.json"
    write_results(_doc("x", 1, identity={"model": "someone else"}), out)
    monkeypatch.setattr(ev, "resolve_source", lambda *a, **k: pytest.fail("model resolved"))
    with pytest.raises(ResultExistsError):
        ev.evaluate("tiny-random", ["selo"], "smoke", out=out, overwrite=False)


_WRITER = textwrap.dedent("""
    import sys
    from dgtrs_lib.results import write_results
    out, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(n):
        rows = [{"task": "t", "dataset": who, "metric": f"m{j}", "value": float(i), "n": 1} for j in range(50)]
        write_results({"run": "same", "profile": "smoke", "date": who, "hardware": "h", "results": rows}, out,
                      overwrite=True)
""")


def test_json_and_csv_are_one_unit_with_two_writers(tmp_path):
    """Two writers of one results file: every pair read under the folder's lock is consistent
    (before: 23 % of reads paired a JSON and a CSV of different runs)."""
    out = tmp_path / "res" / "same.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(out), who, "40"], env=env) for who in ("A", "B")]
    reads = mismatched = 0
    deadline = time.time() + 120
    while any(p.poll() is None for p in procs) and time.time() < deadline:
        if not out.exists():
            time.sleep(0.01)
            continue
        with locked(out.parent, "results", timeout=30):
            doc = json.loads(out.read_text())
            with open(out.with_suffix(".csv"), newline="") as fh:
                text = fh.read()
        reads += 1
        mismatched += text != rows_csv(doc["results"])
        doc2, derived = read_results(out)                 # the reader API never pairs wrong either
        assert derived == rows_csv(doc2["results"])
    assert all(p.wait(60) == 0 for p in procs)
    assert reads and mismatched == 0, (reads, mismatched)


def test_read_results_derives_the_csv_from_the_json(tmp_path):
    out = write_results(_doc("r", 1), tmp_path / "r.json")
    atomic_write_text(out.with_suffix(".csv"), rows_csv(_doc("r", 2)["results"]))   # a CSV of another write
    doc, text = read_results(out)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert float(rows[0]["value"]) == doc["results"][0]["value"] == 1.0


# ----------------------------------------------------------------------------- locks
_HOLDER = textwrap.dedent("""
    import sys, time
    from dgtrs_lib.io import locked
    with locked(sys.argv[1], "training"):
        print("held", flush=True)
        time.sleep(60)
""")


def test_a_second_trainer_in_one_folder_fails_naming_the_first(tmp_path):
    from test_train import cfg, tiny_long, toy_data

    from dgtrs_lib.training.trainer import train

    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError) as err:
            train(tiny_long(), toy_data(8), cfg(steps=1), run)
        msg = str(err.value)
        assert f"pid {holder.pid} on " in msg and "since 20" in msg and "command: -c" in msg and str(run) in msg
        assert not (run / "metrics.jsonl").exists()                             # nothing touched
    finally:
        holder.kill()
        holder.wait()
    train(tiny_long(), toy_data(8), cfg(steps=1), run)                          # the lock died with its holder


def test_results_folder_lock_waits_then_names_the_holder(tmp_path):
    with locked(tmp_path, "results"):
        with pytest.raises(LockedError, match=rf"in use by another results run \(pid {os.getpid()} on"):
            with locked(tmp_path, "results", timeout=0.2):
                pass


# ----------------------------------------------------------------------------- training files
def test_stale_tmp_files_are_removed_and_step_checkpoint_comes_first(tmp_path, monkeypatch):
    from test_train import cfg, tiny_long, toy_data

    from dgtrs_lib.training.trainer import train

    stale = tmp_path / ".final.pt.k3j2.tmp"
    stale.write_bytes(b"left by kill -9 during atomic_save")
    order, real_replace = [], os.replace

    def recording_replace(src, dst, *a, **kw):          # every atomic write ends in one os.replace
        order.append(Path(dst).name)
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", recording_replace)
    train(tiny_long(), toy_data(16), cfg(steps=4, ckpt_every=2), tmp_path)
    assert not stale.exists() and not list(tmp_path.glob(".*.tmp"))
    checkpoints = [n for n in order if n.endswith(".pt")]
    assert checkpoints == ["step_000002.pt", "train_state.pt", "train_state.pt", "final.pt"], order


def test_files_are_written_0644_under_the_usual_umask(tmp_path):
    from dgtrs_lib import create_model, save_official

    old = os.umask(0o022)
    try:
        paths = [atomic_write_text(tmp_path / "a.txt", "x"), atomic_save(tmp_path / "b.pt", {"x": torch.zeros(1)}),
                 write_results(results_doc("r", "smoke", []), tmp_path / "r.json"), tmp_path / "r.csv",
                 save_official(create_model("tiny"), tmp_path / "m.pt"), tmp_path / "m.json"]
        assert {oct(p.stat().st_mode & 0o777) for p in paths} == {"0o644"}
        os.umask(0o077)
        assert atomic_write_text(tmp_path / "private.txt", "x").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
