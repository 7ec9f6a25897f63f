"""The evaluation entry point end to end: smoke data, a tiny model, the results file, real formats."""
import csv
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from dgtrs_lib.evaluation.datasets import EvaluationError, parse_dataset_spec
from dgtrs_lib.evaluation.evaluate import evaluate, main
from dgtrs_lib.model.checkpoint import CheckpointError
from dgtrs_lib.model.sources import BASELINES, resolve_source, tiny_random_model


def test_evaluate_all_four_tasks_on_smoke_data(tmp_outputs):
    doc = evaluate(model=tiny_random_model(), profile="smoke", run="t",
                   datasets={"classification": ["syndg"], "selo": ["syndg"]}, progress=False)
    path = tmp_outputs / "results" / "smoke" / "t.json"
    assert doc["path"] == str(path)
    saved = json.loads(path.read_text())
    for key in ("run", "model", "profile", "hardware", "date", "versions", "protocol", "data", "results"):
        assert key in saved, key
    got = {(r["task"], r["metric"]) for r in saved["results"]}
    for task in ("long_text_retrieval", "short_text_retrieval"):
        assert {(task, m) for m in ("i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@5", "t2i_R@10", "mR")} <= got
    assert {("zero_shot_classification", "top1"), ("zero_shot_classification", "mean_per_class_recall")} <= got
    assert {("semantic_localization", m) for m in ("Rsu", "Ras", "Rda", "Rmi")} <= got
    for r in saved["results"]:
        assert math.isfinite(r["value"]) and r["n"] > 0
        if r["task"] == "semantic_localization":
            assert 0 <= r["value"] <= 1
        else:
            assert 0 <= r["value"] <= 100
    cm = np.array(saved["details"]["zero_shot_classification"]["SynDG-RS"]["confusion_matrix"])
    assert cm.sum() == saved["details"]["zero_shot_classification"]["SynDG-RS"]["n_images"]
    with open(path.with_suffix(".csv")) as f:
        assert len(list(csv.DictReader(f))) == len(saved["results"])
    # the book's report reads the file
    from dgtrs_lib.publishing.results_files import read_results_file

    assert len(read_results_file(path)) == len(saved["results"])


def _tiny_open_clip(tmp_path):
    import open_clip

    cfg = {"embed_dim": 32, "quick_gelu": True,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "head_width": 32},
           "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 1, "layers": 1}}
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "TinyTest-quickgelu.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "cfg")
    model = open_clip.create_model("TinyTest-quickgelu")
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    return tmp_path / "tiny.pt"


def _real_format_data(root):
    """Tiny files in the published formats: Karpathy JSON, folder-per-class, AIR-SLT."""
    rng = np.random.default_rng(0)
    (root / "imgs").mkdir(parents=True)
    images = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / "imgs" / f"{i}.jpg")
        images.append({"filename": f"{i}.jpg", "split": "test", "sentences": [{"raw": f"caption {i} a"}, {"raw": f"caption {i} b"}]})
    (root / "karpathy.json").write_text(json.dumps({"images": images}))
    for c in ("Forest", "RiverBank"):
        (root / "cls" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / "cls" / c / f"{i}.png")
    (root / "slt" / "imgs").mkdir(parents=True)
    (root / "slt" / "annotations").mkdir()
    Image.fromarray(rng.integers(0, 255, (300, 260, 3), dtype=np.uint8)).save(root / "slt" / "imgs" / "0.jpg")
    anno = [{"jpg_name": "0.jpg", "caption": "a red roof", "points": [[[20.0, 30], [120, 30], [120, 140], [20, 140]]]},
            {"jpg_name": "0.jpg", "caption": "a pond", "points": [[[150.0, 150], [250, 150], [250, 290], [150, 290]]]}]
    (root / "slt" / "annotations" / "anno.json").write_text(json.dumps(anno))


def test_cli_open_clip_model_on_real_format_data(tmp_outputs, tmp_path, capsys):
    weights = _tiny_open_clip(tmp_path)
    _real_format_data(tmp_path / "data")
    d = tmp_path / "data"
    out = tmp_path / "res.json"
    main(["--model", f"open_clip:TinyTest-quickgelu@{weights}", "--profile", "smoke", "--out", str(out),
          "--tasks", "short_retrieval,classification,selo",
          "--dataset", f"short_retrieval=karpathy:toy:{d / 'karpathy.json'}:{d / 'imgs'}",
          "--dataset", f"classification=folder:toycls:{d / 'cls'}",
          "--dataset", f"selo=airslt:toyslt:{d / 'slt'}"])
    assert "wrote" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["model"]["arch"] == "TinyTest-quickgelu" and doc["model"]["class"] == "CLIP"
    rows = {(r["dataset"], r["metric"]): r for r in doc["results"]}
    assert rows[("toy", "mR")]["n"] == 4
    assert rows[("toycls", "top1")]["n"] == 6 and ("toycls", "top5") not in rows   # 2 classes: no top-5
    assert rows[("toyslt", "Rmi")]["n"] == 2
    assert doc["details"]["semantic_localization"]["toyslt"]["scales"] == [256, 512, 768]
    assert doc["details"]["zero_shot_classification"]["toycls"]["classnames"] == ["forest", "river bank"]


def test_bad_inputs_are_named(tmp_outputs, tmp_path):
    with pytest.raises(EvaluationError, match="tasks"):
        evaluate(model=tiny_random_model(), tasks=["retrieval"], profile="smoke")
    with pytest.raises(EvaluationError, match="dataset spec"):
        parse_dataset_spec("karpathy:only-two")
    with pytest.raises(EvaluationError, match="no model"):
        evaluate(tasks=["selo"], profile="smoke")                  # evaluation never picks or trains a model
    with pytest.raises(CheckpointError, match="unknown architecture"):
        resolve_source("open_clip:NoSuchNet")
    with pytest.raises(CheckpointError, match="offline"):
        resolve_source("remoteclip-vit-b-32")
    assert all(("arch" in b and "quickgelu" in b["arch"]) or "source" in b for b in BASELINES.values())


def test_cli_without_a_model_names_the_way_out(tmp_outputs, capsys):
    """No --model and no pipeline checkpoint: a one-line error, no training run."""
    assert main(["--profile", "smoke", "--tasks", "selo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "no pipeline checkpoint" in err and "dgtrs_lib.experiments.pipeline --profile smoke" in err and "--model" in err
    assert not (tmp_outputs / "artifacts" / "smoke" / "pipeline").exists()
