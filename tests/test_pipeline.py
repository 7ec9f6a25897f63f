"""The miniature pipeline in the smoke profile: stages, cache reuse, ablation knobs, run records,
results files."""
import json

import pytest
import torch

from dgtrs_lib import load_model
from dgtrs_lib.experiments.pipeline import (
    finetune_variant,
    get_or_train,
    load_stage1,
    pretrain_stage1,
    run_pipeline,
    variant_name,
)
from dgtrs_lib.experiments.records import RunRecord, read_record
from dgtrs_lib.model.tokenizer import tokenize
from dgtrs_lib.profiles import get_profile


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    mp = pytest.MonkeyPatch()
    for var, sub in (("DGTRS_ARTIFACTS", "artifacts"), ("DGTRS_RESULTS", "results"), ("DGTRS_CACHE", "cache")):
        mp.setenv(var, str(root / sub))
    record = run_pipeline("smoke")
    yield root, record
    mp.undo()


@pytest.mark.slow  # generates SynDG-RS smoke + trains two stages: ~15 s quiet, ~80 s under contention
def test_pipeline_runs_all_stages_and_writes_results(smoke_run):
    root, record = smoke_run
    assert set(record.heldout) == {"stage1", "stage1_prior", "stretched", "dgcl"}
    assert {"stage1_s", "stage2_s", "total_s", "stage1_steps_s", "stage2_steps_s"} <= set(record.times)
    assert record.checkpoint == root / "artifacts/smoke/pipeline/dgcl/final.pt" and record.source == str(record.checkpoint)
    saved = read_record(record.eval)                      # one schema, as written
    assert (saved.heldout, saved.times, saved.config) == (record.heldout, record.times, record.config)
    stage1 = load_stage1(root / "artifacts/smoke/pipeline/stage1-s0/final.pt")
    assert stage1.context_length == 32 and not hasattr(stage1, "positional_embedding_res")
    final, _ = load_model(record.checkpoint)
    spec = get_profile("smoke").stretch
    assert final.context_length == spec["context"] and final.keep == spec["keep"]
    # KPS kept the first `keep` rows of stage 1 (frozen), the rest were trained
    k = spec["keep"]
    assert torch.equal(final.positional_embedding[:k], stage1.positional_embedding[:k])
    res = json.loads((root / "results/smoke/pipeline.json").read_text())
    assert {"run", "model", "profile", "hardware", "date", "versions", "protocol", "results"} <= set(res)
    tasks = {(r["task"], r["metric"], r["config"]["stage"]) for r in res["results"] if r["task"].startswith("retrieval")}
    assert ("retrieval-long", "i2t_R@1", "dgcl") in tasks and ("retrieval-short", "t2i_R@5", "stage1") in tasks
    assert all(0.0 <= r["value"] <= 100.0 for r in res["results"] if r["task"].startswith("retrieval"))
    assert (root / "results/smoke/pipeline.csv").read_text().startswith("task,dataset,metric,value")
    metrics = (root / "artifacts/smoke/pipeline/dgcl/metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 6


@pytest.mark.slow  # generates SynDG-RS smoke + trains two stages: ~15 s quiet, ~80 s under contention
def test_get_or_train_loads_existing_checkpoint(smoke_run):
    root, record = smoke_run
    before = (root / "artifacts/smoke/pipeline/dgcl/final.pt").stat().st_mtime_ns
    loaded = get_or_train("smoke")
    assert loaded.checkpoint == record.checkpoint and loaded.model is None      # read back, not retrained
    assert loaded.heldout == record.heldout and loaded.times == record.times
    assert (root / "artifacts/smoke/pipeline/dgcl/final.pt").stat().st_mtime_ns == before
    assert pretrain_stage1("smoke", 0).checkpoint.stat().st_mtime_ns == (root / "artifacts/smoke/pipeline/stage1-s0/final.pt").stat().st_mtime_ns


@pytest.mark.slow  # generates SynDG-RS smoke + trains two stages: ~15 s quiet, ~80 s under contention
def test_finetune_variant_knobs(smoke_run):
    root, _ = smoke_run
    stage1 = pretrain_stage1("smoke", 0)
    record = finetune_variant("smoke", stage1, schedule="two_stage", stretch="linear", pca=True, seed=1, steps=3)
    assert record.name == record.checkpoint.parent.name == variant_name("two_stage", "linear", True, 1, 3)
    meta = json.loads(record.checkpoint.with_suffix(".json").read_text())
    assert meta["stretch"] == "linear" and meta["pca"] is True and meta["schedule"]["name"] == "two_stage"
    assert meta["loss"] == "longclip" and meta["step"] == 3 and meta["stage1"] == stage1.source
    model, _ = load_model(record.checkpoint)
    assert model.keep == 0  # the naive linear stretch freezes nothing
    tokens = tokenize(["a harbor with two piers and many small boats"], model.context_length, pad_to_longest=True)
    with torch.no_grad():   # the model in memory is the one on disk
        assert torch.equal(record.load().encode_text(tokens), model.encode_text(tokens))
    ev = json.loads(record.eval.read_text())
    assert ev["heldout"][record.name]["pairs"] == 64 and "long_i2t_R@1" in ev["heldout"][record.name]


def test_gpu_stage1_is_a_source_not_a_training_run(tmp_outputs):
    from dgtrs_lib.profiles import get_profile

    record = pretrain_stage1("gpu", 0)
    assert isinstance(record, RunRecord) and record.source == get_profile("gpu").stage1_source == "openai:ViT-B-16"
    assert record.checkpoint is None and record.metrics is None and record.eval is None
    assert not (tmp_outputs / "artifacts" / "gpu" / "pipeline").exists()


def test_results_layout(tmp_outputs):
    from dgtrs_lib.results import results_doc, write_results

    rows = [{"task": "retrieval-long", "dataset": "d", "metric": "i2t_R@1", "value": 12.5, "config": {"a": 1}, "seed": 0}]
    path = write_results(results_doc("unit", "smoke", rows, model={"name": "tiny"}, protocol={"k": 1}),
                         tmp_outputs / "results" / "smoke" / "unit.json")
    assert json.loads(path.read_text())["results"] == rows
    assert path.with_suffix(".csv").read_text().splitlines()[1].startswith("retrieval-long,d,i2t_R@1,12.5")


def test_gpu_profile_data_path_reads_a_local_dual_folder(tmp_path, monkeypatch):
    """The gpu profile's loader (Hub id on a GPU machine) on a local folder in the same format."""
    from PIL import Image

    from dgtrs_lib.data.pairs import load_pairs

    rows = []
    for i in range(12):
        Image.new("RGB", (40, 30), (20 * i, 100, 200 - 10 * i)).save(tmp_path / f"{i}.png")
        rows.append({"file_name": f"{i}.png", "short_caption": f"a scene number {i}.",
                     "long_caption": f"a long description of scene {i} with many details " * 3})
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    monkeypatch.setenv("DGTRS_GPU_DATA", json.dumps({"source": str(tmp_path), "long_column": "long_caption",
                                                     "short_column": "short_caption"}))
    train_pairs = load_pairs("gpu", "train", 104, 64)
    val_pairs = load_pairs("gpu", "validation", 104, 64)
    assert len(train_pairs) == 11 and len(val_pairs) == 1
    images, long_tok, short_tok = train_pairs.batch(torch.tensor([0, 3]))
    assert images.shape == (2, 3, 64, 64) and long_tok.shape[1] > short_tok.shape[1]


def test_shared_caption_recall_scores_distinct_captions():
    from dgtrs_lib.evaluation.retrieval import shared_caption_recall

    caption_of = torch.tensor([0, 1, 2, 2])  # images 2 and 3 share one caption
    texts = torch.eye(3)[caption_of]
    perfect = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0.1, 1.0]])
    assert shared_caption_recall(perfect, texts, caption_of, ks=(1,)) == {"i2t_R@1": 100.0, "t2i_R@1": 100.0, "mR": 100.0}
    swapped = perfect[[1, 0, 2, 3]]  # images 0 and 1 match each other's caption
    m = shared_caption_recall(swapped, texts, caption_of, ks=(1, 2))
    assert m["i2t_R@1"] == 50.0 and m["t2i_R@1"] == pytest.approx(100 / 3) and m["i2t_R@2"] == 100.0


def test_run_records_read_the_one_schema_and_the_earlier_layouts(tmp_path):
    from dgtrs_lib.experiments.records import record_of, write_record

    check = {"pairs": 4, "chance_R@1": 25.0, "long_i2t_R@1": 50.0}
    run = tmp_path / "artifacts" / "cpu" / "pipeline" / "dgcl"
    record = RunRecord.of_checkpoint("stage2", "cpu", run / "final.pt", config={"seed": 0}, times={"total_s": 1.0},
                                     heldout={"dgcl": check})
    write_record(record)
    assert record_of(run / "final.pt", "stage2", "cpu") == record
    # before the one schema: the pipeline's summary and a variant's held-out check
    (run / "eval.json").write_text(json.dumps({"profile": "cpu", "seed": 0, "schedule": "default",
                                               "final": str(run / "final.pt"), "times": {"total_s": 2.0},
                                               "validation": {"stage1": check, "dgcl": check}}))
    old = record_of(run / "final.pt", "stage2", "cpu")
    assert old.heldout == {"stage1": check, "dgcl": check} and old.times == {"total_s": 2.0}
    assert old.config["schedule"] == "default" and old.metrics == run / "metrics.jsonl"
    variant = tmp_path / "ft-cosine-kps-nopca-s0"
    variant.mkdir()
    (variant / "eval.json").write_text(json.dumps({"variant": variant.name, "stage": "stage2", "seed": 0, "schedule": "cosine",
                                                   "steps": 5, "train_wall_s": 3.0, "validation": check}))
    old = record_of(variant / "final.pt", "stage2", "cpu")
    assert old.heldout == {variant.name: check} and old.times == {"train_wall_s": 3.0} and old.config["steps"] == 5


def test_a_cached_prior_of_other_shapes_is_an_error_not_reused(tmp_outputs, monkeypatch):
    """A stage-1 (or stage-2) folder whose record says it was trained with another patch size is refused with
    one line naming the folder and the changed shape; a record of the current shapes is reused."""
    from dgtrs_lib.env import pipeline_checkpoint, pipeline_dir
    from dgtrs_lib.errors import ConflictError
    from dgtrs_lib.experiments.pipeline import pretrain_stage1
    from dgtrs_lib.experiments.records import write_record
    from dgtrs_lib.model.configs import architecture_of

    folder = pipeline_dir("smoke") / "stage1-s0"
    folder.mkdir(parents=True)
    (folder / "final.pt").write_bytes(b"")             # never read: the record decides
    old = architecture_of("tiny")
    old["vision_cfg"] = {**old["vision_cfg"], "patch_size": 4}
    write_record(RunRecord.of_checkpoint("stage1", "smoke", folder / "final.pt",
                                         config={"seed": 0, "architecture": old}))
    now = architecture_of("tiny")["vision_cfg"]["patch_size"]
    with pytest.raises(ConflictError, match=rf"stage1-s0: this cached stage-1 prior was trained with other "
                                            rf"shapes .*\(vision_cfg.patch_size: 4 -> {now}\); remove the profile's pipeline folder"):
        pretrain_stage1("smoke", 0)
    write_record(RunRecord.of_checkpoint("stage1", "smoke", folder / "final.pt",
                                         config={"seed": 0, "architecture": architecture_of("tiny")}))
    assert pretrain_stage1("smoke", 0).checkpoint == folder / "final.pt"
    dgcl = pipeline_checkpoint("smoke")                  # the same for a cached stage-2 run
    dgcl.parent.mkdir(parents=True)
    dgcl.write_bytes(b"")
    write_record(RunRecord.of_checkpoint("stage2", "smoke", dgcl, config={"seed": 0, "architecture": old}))
    with pytest.raises(ConflictError, match=r"dgcl: this cached stage-2 run was trained with other shapes"):
        get_or_train("smoke")
