"""The miniature DGTRS-CLIP pipeline: short-caption pre-training -> KPS -> DGCL fine-tuning.

DGTRS-CLIP (arXiv:2503.19311, ``chen2025dgtrs``) starts from OpenAI CLIP (trained on short alt-texts
with a 77-token context), stretches its text positions with Long-CLIP's KPS to 248, and fine-tunes
it on (image, short caption, long caption) triples with the dual-granularity curriculum (DGCL). On a
CPU we replay the same three stages at miniature scale on the embedded SynDG-RS data
(``dgtrs_lib.data.syndg``):

1. **stage 1** -- a ``tiny`` CLIP (``dgtrs_lib.model.longclip``) trained from scratch on SHORT captions
   only with a 32-token context: the stand-in for OpenAI CLIP. Reusable per seed.
2. **stretch** -- KPS (keep 8, ratio 4: 32 -> 104 tokens) or the naive linear stretch.
3. **stage 2** -- dual-granularity fine-tuning (``dgtrs_lib.training.trainer``) with a DGCL schedule.

Profiles: ``smoke`` (seconds per stage, CI), ``cpu`` (the whole pipeline in minutes on 2 cores),
``gpu`` (ViT-B/16 from OpenAI weights + KPS at 248 tokens, Long-CLIP's recipe, on a real
dual-granularity dataset read by ``dgtrs_lib.data.dual``; set ``DGTRS_GPU_DATA``). Training and
the held-out checks run on ``profile.device()`` unless a ``device`` is given.

This module is the stage orchestration only. Every stage returns a ``RunRecord``
(``dgtrs_lib.experiments.records``: checkpoint or source, the model in memory when just trained,
metrics and record paths, times, held-out scores), written as the run folder's ``eval.json``.
After each stage a held-out check (validation split): retrieval R@1/R@5 image<->long and
image<->short (``dgtrs_lib.evaluation.evaluate.heldout_retrieval``). Results go to
``results/<profile>/pipeline.json`` (+ CSV), checkpoints to ``artifacts/<profile>/pipeline/``.

For ablations (issue #7): :func:`pretrain_stage1` (one per seed, cached) and
:func:`finetune_variant` (schedule, stretch mode, PCA on/off, seed, steps -> its record).
Launch several processes with ``torchrun --nproc_per_node N -m dgtrs_lib.experiments.pipeline --profile gpu``.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file

from dgtrs_lib.data.pairs import load_pairs
from dgtrs_lib.env import pipeline_checkpoint, pipeline_dir, results_dir
from dgtrs_lib.errors import ConflictError, cli_parser, positive_int, run_cli
from dgtrs_lib.evaluation.evaluate import heldout_retrieval
from dgtrs_lib.experiments.records import RECORD_FILE, RunRecord, read_record, record_of, write_record
from dgtrs_lib.model.configs import architecture_of
from dgtrs_lib.model.longclip import create_model, stretch_model
from dgtrs_lib.model.sources import load_model
from dgtrs_lib.model.tokenizer import TruncationWarning
from dgtrs_lib.profiles import get_profile
from dgtrs_lib.results import results_doc, write_results
from dgtrs_lib.training.config import TrainConfig
from dgtrs_lib.training.curriculum import get_schedule
from dgtrs_lib.training.distributed import dist_info
from dgtrs_lib.training.metrics_log import read_metrics
from dgtrs_lib.training.trainer import FINAL_FILE, train


def variant_name(schedule: str = "default", stretch: str = "kps", pca: bool = False, seed: int = 0,
                 steps: int | None = None) -> str:
    name = f"ft-{schedule}-{stretch}-{'pca' if pca else 'nopca'}-s{seed}"
    return name + (f"-{steps}steps" if steps is not None else "")


# ----------------------------------------------------------------------------- evaluation
def retrieval_check(model, profile, split: str = "validation", device: str | None = None, limit: int | None = -1) -> dict:
    """Held-out R@1/R@5 (percent) image<->long and image<->short, one caption per image, on
    ``device`` (default ``profile.device()``): ``heldout_retrieval`` on the split's pairs
    (``limit`` pairs; -1: the profile's ``heldout_limit``), tokenised at the model's own context."""
    prof = get_profile(profile)
    limit = prof.heldout_limit if limit == -1 else limit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        data = load_pairs(prof.name, split, model.context_length, model.image_size, limit=limit)
    return heldout_retrieval(model.to(device or prof.device()).eval(), data)


# ----------------------------------------------------------------------------- stages
def _config(table, **overrides) -> TrainConfig:
    kw = dict(table)
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**kw)


def _is_rank0() -> bool:
    return dist_info()[0] == 0


def _train_device(prof, device: str | None) -> str | None:
    """An explicit device wins; else the profile's rule, with CUDA left to the trainer (which picks
    ``cuda:LOCAL_RANK`` under torchrun)."""
    if device is not None:
        return device
    return None if prof.device() == "cuda" else "cpu"


def pretrain_stage1(profile=None, seed: int = 0, *, steps: int | None = None, device: str | None = None) -> RunRecord:
    """Stage 1: the short-context miniature CLIP trained on short captions (cached per seed).

    A profile without a stage-1 recipe (``gpu``) trains nothing: stage 1 is its ``stage1_source``
    (OpenAI's CLIP, ``openai:ViT-B-16``), a record with a source and no files."""
    prof = get_profile(profile)
    if prof.stage1 is None:
        return RunRecord(stage="stage1", name=prof.stage1_source, profile=prof.name, source=prof.stage1_source,
                         config={"stage": "stage1", "profile": prof.name, "seed": seed})
    out = pipeline_dir(prof.name) / (f"stage1-s{seed}" + ("" if steps is None else f"-{steps}steps"))
    architecture = architecture_of(prof.model)
    if (out / FINAL_FILE).exists():
        return _check_architecture(record_of(out / FINAL_FILE, "stage1", prof.name), prof.model, architecture)
    torch.manual_seed(seed)
    model = create_model(prof.model)
    data = load_pairs(prof.name, "prior", model.context_length, model.image_size, short_only=True)
    cfg = _config(prof.stage1, steps=steps, schedule="short_only", seed=seed, init_logit_scale=math.log(1 / 0.07))
    meta = {"stage": "stage1", "profile": prof.name, "seed": seed, "corpus": "syndg-prior",
            "model": prof.model, "architecture": architecture}
    if _is_rank0():  # the initial positional table: how far each row moves is the effective-length measurement
        out.mkdir(parents=True, exist_ok=True)
        save_file({"positional_embedding": model.positional_embedding.detach().clone()}, str(out / INIT_POS_FILE))
    callback = _curve_callback(model, prof, out, cfg.steps) if prof.curve_every and _is_rank0() else None
    res = train(model, data, cfg, out, device=_train_device(prof, device), save_metadata=meta, callback=callback)
    record = RunRecord.of_checkpoint("stage1", prof.name, res.final, config={**meta, "steps": cfg.steps},
                                     times={"train_wall_s": round(res.wall_s, 1)}, model=model)
    if _is_rank0():
        write_record(record)
    return record


def _check_architecture(record: RunRecord, name: str, architecture: dict) -> RunRecord:
    """A cached run (stage 1 or 2) trained with other shapes than configuration ``name`` now has is
    an error, not a silently different model (records written before the shapes were recorded are
    not checked)."""
    trained = record.config.get("architecture")
    if trained is None or trained == architecture:
        return record
    changed = sorted(f"{part}.{k}: {trained.get(part, {}).get(k)!r} -> {v!r}"
                     for part in ("vision_cfg", "text_cfg") for k, v in architecture[part].items()
                     if trained.get(part, {}).get(k) != v)
    if trained.get("embed_dim") != architecture["embed_dim"]:
        changed.insert(0, f"embed_dim: {trained.get('embed_dim')!r} -> {architecture['embed_dim']!r}")
    what = "stage-1 prior" if record.stage == "stage1" else "stage-2 run"
    raise ConflictError(f"{record.checkpoint.parent}: this cached {what} was trained with other shapes than "
                        f"model {name!r} has now ({'; '.join(changed)}); remove the profile's pipeline folder "
                        f"{record.checkpoint.parent.parent} (or `make clean`) to train it again")


INIT_POS_FILE = "init_positional.safetensors"
CURVE_FILE = "curve.jsonl"


def _curve_callback(model, prof, out, total_steps: int):
    """Every ``prof.curve_every`` steps (and at the last one): held-out alt-text retrieval of the
    prior (``prior_validation``, one caption per image) appended to ``out/curve.jsonl`` -- the
    curve that shows stage 1 has plateaued."""
    from dgtrs_lib.io import append_jsonl

    pairs = load_pairs(prof.name, "prior_validation", model.context_length, model.image_size, short_only=True)

    def callback(step: int, record: dict) -> None:
        done = step + 1
        if done % prof.curve_every and done != total_steps:
            return
        was_training = model.training
        check = heldout_retrieval(model.eval(), pairs)
        model.train(was_training)
        append_jsonl(out / CURVE_FILE, {"step": done, "loss": record.get("loss"), "pairs": check["pairs"],
                                        **{k.replace("short_", ""): v for k, v in check.items() if k.startswith("short_")}})

    return callback


def read_curve(stage1) -> list[dict]:
    """The plateau curve of a stage-1 record or folder (``[]`` when none was written)."""
    from dgtrs_lib.io import read_jsonl

    folder = stage1.checkpoint.parent if isinstance(stage1, RunRecord) else Path(stage1)
    path = folder / CURVE_FILE
    rows = read_jsonl(path) if path.exists() else []
    return list({r["step"]: r for r in rows}.values())  # a resumed run may repeat a step: the last one wins


def load_stage1(stage1):
    """The short-context stage-1 model (not stretched) of a record, a checkpoint path or a source."""
    if isinstance(stage1, RunRecord):
        return stage1.load()
    model, _ = load_model(str(stage1), stretch=False)
    return model


def finetune_variant(profile=None, stage1=None, *, schedule: str = "default", stretch: str = "kps", pca: bool = False,
                     seed: int = 0, steps: int | None = None, schedule_kwargs: dict | None = None,
                     name: str | None = None, device: str | None = None, evaluate: bool = True,
                     frozen: int | None = None, lock_image: bool = False, image_cache=None,
                     heldout_at=None) -> RunRecord:
    """Stage 2 for ONE variant: stretch the stage-1 model and fine-tune it with DGCL.

    Knobs: ``schedule`` (a ``dgtrs_lib.training.curriculum`` name; ``schedule_kwargs`` its
    parameters, e.g. ``{"total": 1.0}`` for equal total loss weight), ``stretch`` ("kps" |
    "linear" | "random": ``dgtrs_lib.model.longclip.stretch_model``; ``frozen`` its frozen rows),
    ``lock_image`` (freeze the image tower, features served from ``image_cache``:
    ``dgtrs_lib.model.frozen``),
    ``pca`` (False: the DGTRS loss as released; True: Long-CLIP's PCA-32 + label smoothing 0.1),
    ``seed`` (data order; stage 1 of the same seed unless ``stage1`` -- a record, a checkpoint or a
    source -- is given), ``steps``, ``heldout_at`` (0-based steps at which the held-out loss of the
    validation pairs is recorded: ``dgtrs_lib.training.heldout``). Returns the run's record (read back when the checkpoint exists;
    with the model in memory when trained now); ``evaluate`` adds the held-out check to it.
    """
    prof = get_profile(profile)
    stage1 = stage1 if stage1 is not None else pretrain_stage1(prof, seed, device=device)
    out = pipeline_dir(prof.name) / (name or variant_name(schedule, stretch, pca, seed, steps))
    final = out / FINAL_FILE
    if final.exists():
        return _check_architecture(record_of(final, "stage2", prof.name), prof.model, architecture_of(prof.model))
    base = load_stage1(stage1)
    spec = prof.stretch
    model = stretch_model(base, keep=spec["keep"], ratio=spec["ratio"], mode=stretch, frozen=frozen, seed=seed)
    if lock_image:
        from dgtrs_lib.model.frozen import lock_image_tower

        lock_image_tower(model, image_cache)
    data = load_pairs(prof.name, "train", model.context_length, model.image_size)
    cfg = _config(prof.stage2, steps=steps, schedule=schedule, seed=seed, loss="longclip" if pca else "dgtrs",
                  schedule_kwargs=schedule_kwargs or {})
    meta = {"stage": "stage2", "profile": prof.name, "stage1": stage1.source if isinstance(stage1, RunRecord) else str(stage1),
            "stretch": stretch, "pca": pca, "seed": seed, "ratio": spec["ratio"], "base_context": base.context_length,
            "frozen_rows": model.stretch_info["frozen"], "lock_image": bool(lock_image),
            "schedule_kwargs": dict(schedule_kwargs or {}), "model": prof.model,
            "architecture": architecture_of(prof.model)}
    callback = None
    if heldout_at:
        from dgtrs_lib.training.heldout import HeldoutLoss

        val = load_pairs(prof.name, "validation", model.context_length, model.image_size)
        callback = HeldoutLoss(model, val, out, heldout_at, batch_size=min(cfg.batch_size, 64)
                               if isinstance(cfg.batch_size, int) else 64)
    res = train(model, data, cfg, out, device=_train_device(prof, device), save_metadata=meta, callback=callback)
    record = RunRecord.of_checkpoint("stage2", prof.name, res.final, config={**meta, "schedule": schedule, "steps": cfg.steps},
                                     times={"train_wall_s": round(res.wall_s, 1)}, model=model)
    if _is_rank0():
        if evaluate:
            record.heldout[record.name] = retrieval_check(model, prof, device=device)
        write_record(record)
    return record


def get_or_train(profile=None) -> RunRecord:
    """The record of the default pipeline run (``dgcl``); trains it (all stages) if missing."""
    prof = get_profile(profile)
    final = pipeline_checkpoint(prof.name)
    if final.exists():
        return _check_architecture(record_of(final, "stage2", prof.name), prof.model, architecture_of(prof.model))
    return run_pipeline(prof)


# ----------------------------------------------------------------------------- the whole run
def _rows(check: dict, stage: str, seed: int) -> list[dict]:
    rows = []
    for key, value in check.items():
        if key.startswith(("long_", "short_")) and not key.endswith("mR"):
            kind, metric = key.split("_", 1)
            dataset = "syndg-prior-validation" if stage.endswith("_prior") else "syndg-validation"
            rows.append({"task": f"retrieval-{kind}", "dataset": dataset, "metric": metric,
                         "value": float(value), "config": {"stage": stage}, "seed": seed})
    return rows


def run_pipeline(profile=None, seed: int = 0, schedule: str = "default", device: str | None = None) -> RunRecord:
    """All stages with wall times and held-out checks: the ``dgcl`` run's record (times and the
    checks of stage 1, the stretched model and the fine-tuned one); writes it, and
    ``results/<profile>/pipeline.json``."""
    prof = get_profile(profile)
    profile = prof.name
    eval_device = device or prof.device()
    times, checks = {}, {}
    previous = pipeline_checkpoint(profile).parent / RECORD_FILE  # keep wall times of stages trained earlier
    previous = read_record(previous, profile=profile).times if previous.exists() else {}
    previous = previous if "stage1_s" in previous else {}          # a pipeline run's, not the bare fine-tuning's
    t0 = time.time()
    stage1 = pretrain_stage1(prof, seed, device=device)
    times["stage1_s"] = round(time.time() - t0, 1)
    if _is_rank0():
        base = load_stage1(stage1)
        checks["stage1"] = retrieval_check(base, prof, device=eval_device)
        if prof.prior_sizes:  # the prior's own held-out corpus exists only where stage 1 is trained here
            checks["stage1_prior"] = retrieval_check(base, prof, split="prior_validation", device=eval_device)
        spec = prof.stretch
        checks["stretched"] = retrieval_check(stretch_model(base, keep=spec["keep"], ratio=spec["ratio"]), prof,
                                              device=eval_device)
    t1 = time.time()
    record = finetune_variant(prof, stage1, schedule=schedule, seed=seed, name="dgcl", device=device, evaluate=False)
    times["stage2_s"] = round(time.time() - t1, 1)
    if not _is_rank0():
        return record
    checks["dgcl"] = retrieval_check(record.load(eval_device), prof, device=eval_device)
    times["total_s"] = round(time.time() - t0, 1)
    if times["stage1_s"] < 1.0 and times["stage2_s"] < 1.0 and previous:  # both loaded from disk
        times = {**previous, "reevaluated_s": times["total_s"]}
    for stage, rec in (("stage1", stage1), ("stage2", record)):
        if rec.metrics is not None and rec.metrics.exists():  # pure optimizer-step time, excluding data preparation and evaluation
            times[f"{stage}_steps_s"] = round(sum(r["time_s"] for r in read_metrics(rec.metrics)), 1)
    record.times, record.heldout = times, checks
    write_record(record)
    sidecar = record.checkpoint.with_suffix(".json") if record.checkpoint else None  # what the trainer picked
    setup = json.loads(sidecar.read_text()).get("train_setup", {}) if sidecar is not None and sidecar.exists() else {}
    rows = [r for stage, c in checks.items() for r in _rows(c, stage, seed)]
    rows += [{"task": "training", "dataset": "syndg-train", "metric": f"wall_{k}", "value": v, "seed": seed}
             for k, v in times.items()]
    doc = results_doc("pipeline", profile, rows, device=eval_device,
                      model={"name": prof.model, "keep": prof.keep, "ratio": prof.ratio, "checkpoint": str(record.checkpoint)},
                      protocol={"stage1": dict(prof.stage1 or {}) or "openai", "stage2": dict(prof.stage2),
                                "schedule": schedule,
                                "stage2_setup": {k: setup.get(k) for k in ("precision", "contrastive_batch", "sub_batch",
                                                                           "grad_cache", "optimizer", "num_workers")},
                                "eval": "validation split, one caption per image, R@1/R@5 in percent"})
    write_results(doc, results_dir(profile) / "pipeline.json")
    return record


def main(argv=None) -> int:
    """The command line; returns the exit code (``dgtrs_lib.errors``: one line per error)."""
    return run_cli(_main, argv)


def _main(argv) -> int:
    parser = cli_parser(prog="python -m dgtrs_lib.experiments.pipeline",
                        description="Run the miniature DGTRS-CLIP pipeline (or one fine-tuning variant).")
    parser.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: DGTRS_PROFILE or auto)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--schedule", default="default")
    parser.add_argument("--variant", action="store_true", help="fine-tune one variant instead of the whole pipeline")
    parser.add_argument("--stretch", default="kps", choices=["kps", "linear"])
    parser.add_argument("--pca", action="store_true")
    parser.add_argument("--steps", type=positive_int, default=None)
    args = parser.parse_args(argv)
    prof = get_profile(args.profile)          # checked before anything is trained
    get_schedule(args.schedule)
    if args.variant:
        record = finetune_variant(prof, schedule=args.schedule, stretch=args.stretch, pca=args.pca,
                                  seed=args.seed, steps=args.steps)
    else:
        record = run_pipeline(prof, seed=args.seed, schedule=args.schedule)
    print(json.dumps(record.to_json(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
