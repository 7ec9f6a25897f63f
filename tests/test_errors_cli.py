"""Issue #14, the command lines: one error boundary (``dgtrs_lib.errors.run_cli``), one line per
library error with a documented exit code, ``--debug`` for the traceback, and every argument and
dataset spec checked before a model is resolved."""
import json

import numpy as np
import pytest
from PIL import Image

from dgtrs_lib.errors import (
    EXIT_CODES,
    ConflictError,
    DataError,
    DgtrsError,
    ModelError,
    OfflineError,
    RunError,
    UsageError,
    run_cli,
)
from dgtrs_lib.evaluation import evaluate as evaluate_module
from dgtrs_lib.evaluation.evaluate import main


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    return lines[0]


@pytest.fixture
def no_model_loading(monkeypatch):
    """Fail the test if the evaluation resolves a model (or trains one)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was resolved before the arguments were checked")

    monkeypatch.setattr(evaluate_module, "resolve_source", refuse)


@pytest.fixture
def karpathy_data(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    images = []
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.jpg")
        images.append({"filename": f"{i}.jpg", "split": "test", "sentences": [{"raw": f"caption {i}"}]})
    (tmp_path / "k.json").write_text(json.dumps({"images": images}))
    return f"short_retrieval=karpathy:toy:{tmp_path / 'k.json'}:{tmp_path / 'imgs'}"


# ----------------------------------------------------------------------------- the boundary itself
def test_exit_codes_are_distinct_and_documented():
    kinds = (UsageError, DataError, ModelError, OfflineError, ConflictError, RunError)
    codes = [k.exit_code for k in kinds]
    assert len(set(codes)) == len(codes) and all(c in EXIT_CODES for c in codes)
    from dgtrs_lib.data.common import DataFormatError
    from dgtrs_lib.evaluation.datasets import EvaluationError
    from dgtrs_lib.model.checkpoint import CheckpointError
    from dgtrs_lib.model.sources import SourceOfflineError
    from dgtrs_lib.profiles import resolve_profile

    assert (DataFormatError.exit_code, CheckpointError.exit_code, EvaluationError.exit_code) == (3, 4, 2)
    assert SourceOfflineError.exit_code == 5 and issubclass(SourceOfflineError, CheckpointError)
    with pytest.raises(UsageError):
        resolve_profile("bogus")
    for cls in (DataFormatError, CheckpointError, EvaluationError):      # still what callers caught before
        assert issubclass(cls, ValueError) and issubclass(cls, DgtrsError)


def test_run_cli_one_line_debug_and_bugs(capsys, monkeypatch):
    def bad_input(argv):
        raise DataError("a.json: line 3: field 'x' must be a string,\n got int")

    monkeypatch.delenv("DGTRS_DEBUG", raising=False)
    assert run_cli(bad_input, []) == 3
    assert one_error_line(capsys) == "error: a.json: line 3: field 'x' must be a string, got int"
    assert run_cli(bad_input, ["--debug"]) == 3                           # --debug: the traceback too
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().endswith("got int")
    monkeypatch.setenv("DGTRS_DEBUG", "1")
    assert run_cli(bad_input, []) == 3 and "Traceback" in capsys.readouterr().err
    monkeypatch.delenv("DGTRS_DEBUG")
    seen = []
    assert run_cli(lambda argv: seen.append(argv), ["--debug", "x"]) == 0 and seen == [["x"]]   # flag removed

    def bug(argv):
        return 1 / 0

    assert run_cli(bug, []) == 1                                         # a bug: traceback + "please report"
    err = capsys.readouterr().err
    assert "Traceback" in err and "this is a bug" in err


# ----------------------------------------------------------------------------- the evaluate cases
@pytest.mark.parametrize("case, args, code, words", [
    ("missing Karpathy JSON", ["--tasks", "short_retrieval", "--dataset", "short_retrieval=karpathy:x:{tmp}/nope.json:{tmp}"],
     3, ["nope.json: not found", "expected a Karpathy JSON"]),
    ("missing class folder", ["--tasks", "classification", "--dataset", "classification=folder:x:{tmp}/nofolder"],
     3, ["nofolder: not found", "one sub-folder of images per class"]),
    ("missing AIR-SLT root", ["--tasks", "selo", "--dataset", "selo=airslt:x:{tmp}/noslt"],
     3, ["noslt: not found", "annotations/anno.json"]),
    ("bad dataset spec", ["--tasks", "selo", "--dataset", "selo=airsl:x:y"], 2, ["dataset spec 'airsl:x:y'", "airslt:NAME:ROOT"]),
    ("spec for a task it has no view for", ["--tasks", "selo", "--dataset", "selo=karpathy:a:{tmp}:{tmp}"],
     2, ["this task reads syndg, sentinel, airslt"]),
    ("--profile bogus", ["--profile", "bogus"], 2, ["unknown profile 'bogus'", "smoke, cpu, gpu"]),
    ("--batch-size 0", ["--batch-size", "0"], 2, ["--batch-size", "expected a whole number >= 1, got 0"]),
    ("--device cuda:7", ["--device", "cuda:7"], 2, ["device 'cuda:7'", "expected cpu"]),
    ("--tasks typo", ["--tasks", "retrieval"], 2, ["tasks ['retrieval']", "long_retrieval"]),
    ("--dataset without TASK=", ["--dataset", "syndg"], 2, ["--dataset 'syndg'", "TASK=SPEC"]),
])
def test_cli_bad_arguments_fail_in_one_line_before_any_model(case, args, code, words, tmp_path, tmp_outputs, capsys,
                                                             no_model_loading):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    argv = ["--model", "tiny-random", *(["--profile", "smoke"] if "--profile" not in args else []), *args]
    assert main(argv) == code, case
    line = one_error_line(capsys)
    for w in words:
        assert w in line, (case, line)
    assert not (tmp_outputs / "artifacts" / "smoke" / "pipeline").exists()       # nothing trained
    assert not list((tmp_outputs / "results").rglob("*.json"))                    # nothing written


@pytest.mark.parametrize("case, model, code, words", [
    ("missing checkpoint", "{tmp}/final.pth", 4, ["final.pth: file not found", "near misses", "final.pt"]),
    ("missing local dir/file.pt", "{tmp}/no/such/file.pt", 4, ["file.pt: file not found", "does not exist"]),
    ("truncated checkpoint", "{tmp}/final.pt", 4, ["final.pt: truncated or corrupt checkpoint"]),
    ("unknown baseline name", "remoteclip-vit-b16", 4, ["unknown model source", "remoteclip-vit-b-32", "dgtrs-clip-b",
                                                         "did you mean"]),
    ("offline dgtrs-clip-b", "dgtrs-clip-b", 5, ["MitsuiChen14/DGTRS-CLIP-ViT-B-16", "needs network access", "DGTRS_ONLINE=1"]),
    ("offline openai:ViT-B-16", "openai:ViT-B-16", 5, ["openai:ViT-B-16", "needs network access"]),
])
def test_cli_bad_models_fail_in_one_line(case, model, code, words, tmp_path, tmp_outputs, capsys, monkeypatch,
                                         karpathy_data):
    monkeypatch.delenv("DGTRS_ONLINE", raising=False)
    (tmp_path / "final.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 200)          # a truncated zip
    argv = ["--profile", "smoke", "--model", model.replace("{tmp}", str(tmp_path)), "--tasks", "short_retrieval",
            "--dataset", karpathy_data]
    assert main(argv) == code, case
    line = one_error_line(capsys)
    for w in words:
        assert w in line, (case, line)
    assert "weights_only" not in line


def test_cli_results_are_never_overwritten_silently(tmp_path, tmp_outputs, capsys, karpathy_data):
    argv = ["--profile", "smoke", "--model", "tiny-random", "--tasks", "short_retrieval", "--dataset", karpathy_data]
    assert main(argv) == 0
    written = capsys.readouterr().out.strip().splitlines()[-1].split()[1]
    before = open(written).read()
    assert main(argv) == 6                                                         # the same command again
    assert "already exists" in one_error_line(capsys) and open(written).read() == before
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads(open(written).read())["date"] >= json.loads(before)["date"]
    capsys.readouterr()
    assert main([*argv, "--run", "mine"]) == 0 and main([*argv, "--run", "mine"]) == 6
