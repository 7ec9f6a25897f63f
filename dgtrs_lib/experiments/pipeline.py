"""The miniature DGTRS-CLIP pipeline: short-caption pre-training -> KPS -> DGCL fine-tuning.

DGTRS-CLIP (arXiv:2503.19311) starts from OpenAI CLIP (trained on short alt-texts with a 77-token
context), stretches its text positions with Long-CLIP's KPS to 248, and fine-tunes it on
(image, short caption, long caption) triples with the dual-granularity curriculum (DGCL). On a CPU
we replay the same three stages at miniature scale on the embedded SynDG-RS data
(``dgtrs_lib.data.syndg``):

1. **stage 1** -- a ``tiny`` CLIP (``dgtrs_lib.model.longclip``) trained from scratch on SHORT captions
   only with a 32-token context: the stand-in for OpenAI CLIP. Reusable per seed.
2. **stretch** -- KPS (keep 8, ratio 4: 32 -> 104 tokens) or the naive linear stretch.
3. **stage 2** -- dual-granularity fine-tuning (``dgtrs_lib.training.trainer``) with a DGCL schedule.

Profiles: ``smoke`` (seconds per stage, CI), ``cpu`` (the whole pipeline in minutes on 2 cores),
``gpu`` (ViT-B/16 from OpenAI weights + KPS at 248 tokens, Long-CLIP's recipe, on a real
dual-granularity dataset read by ``dgtrs_lib.data.dual``; set ``DGTRS_GPU_DATA``).

After each stage a quick held-out check (validation split): retrieval R@1/R@5 image<->long and
image<->short with ``dgtrs_lib.evaluation.metrics.retrieval_metrics``. Results go to
``results/<profile>/pipeline.json`` (+ CSV), checkpoints to ``artifacts/<profile>/pipeline/``.

For ablations (issue #7): :func:`pretrain_stage1` (one per seed, cached) and
:func:`finetune_variant` (schedule, stretch mode, PCA on/off, seed, steps -> checkpoint path).
Launch several processes with ``torchrun --nproc_per_node N -m dgtrs_lib.experiments.pipeline --profile gpu``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

from dgtrs_lib.data.pairs import PairData, load_pairs
from dgtrs_lib.io import atomic_write_text
from dgtrs_lib.model.sources import load_model
from dgtrs_lib.training.distributed import dist_info
from dgtrs_lib.model.longclip import create_model, stretch_model
from dgtrs_lib.env import artifacts_dir, results_dir
from dgtrs_lib.profiles import get_profile, resolve_profile
from dgtrs_lib.results import results_doc
from dgtrs_lib.results import write_results as _write
from dgtrs_lib.training.trainer import FINAL_FILE, TrainConfig, read_metrics, train

def pipeline_dir(profile: str) -> Path:
    return artifacts_dir(profile) / "pipeline"


def variant_name(schedule: str = "default", stretch: str = "kps", pca: bool = False, seed: int = 0,
                 steps: int | None = None) -> str:
    name = f"ft-{schedule}-{stretch}-{'pca' if pca else 'nopca'}-s{seed}"
    return name + (f"-{steps}steps" if steps is not None else "")


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def encode_pairs(model, data: PairData, batch_size: int = 256, device="cpu"):
    """Normalised image, long-text and short-text features of every pair."""
    model.eval().to(device)
    feats = {"image": [], "long": [], "short": []}
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        images, long_tok, short_tok = data.batch(idx)
        feats["image"].append(torch.nn.functional.normalize(model.encode_image(images.to(device)).float(), dim=-1).cpu())
        feats["long"].append(torch.nn.functional.normalize(model.encode_text(long_tok.to(device)).float(), dim=-1).cpu())
        feats["short"].append(torch.nn.functional.normalize(model.encode_text(short_tok.to(device)).float(), dim=-1).cpu())
    return {k: torch.cat(v) for k, v in feats.items()}


def retrieval_check(model, profile: str, split: str = "validation", device="cpu", limit: int | None = -1) -> dict:
    """Held-out R@1/R@5 (percent) image<->long and image<->short, one caption per image.

    The text side is tokenised at the model's own context (a 32-token stage-1 model reads only
    the first 32 tokens of a long caption -- which is the point of stretching it)."""
    from dgtrs_lib.evaluation.metrics import retrieval_metrics

    limit = get_profile(profile).heldout_limit if limit == -1 else limit
    import warnings

    from dgtrs_lib.model.tokenizer import TruncationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        data = load_pairs(profile, split, model.context_length, model.image_size, limit=limit)
    feats = encode_pairs(model, data, device=device)
    n = len(data)
    out = {"pairs": n, "chance_R@1": 100.0 / n}
    for kind in ("long", "short"):
        texts = data.long_tokens if kind == "long" else data.short_tokens
        uniq, caption_of = torch.unique(texts, dim=0, return_inverse=True)
        if len(uniq) == n:  # one distinct caption per image: the standard protocol
            m = retrieval_metrics(feats["image"], feats[kind], torch.arange(n), ks=(1, 5))
        else:  # duplicated captions (SynDG short captions are class-level): score distinct captions
            m = shared_caption_recall(feats["image"], feats[kind], caption_of, ks=(1, 5))
            out[f"{kind}_distinct_captions"] = len(uniq)
        out.update({f"{kind}_{k}": round(v, 2) for k, v in m.items()})
    return out


def shared_caption_recall(image_features, text_features, caption_of, ks=(1, 5)) -> dict:
    """R@k (percent) when several images share one caption text.

    With identical captions, a one-caption-per-image protocol has exact ties that no model can
    break (pessimistic tie-breaking gives 0). Here each DISTINCT caption is one candidate:
    image -> text is a hit when the image's caption is among the top k distinct captions; text ->
    image (one query per distinct caption) is a hit when any of the top k images carries it.
    ``caption_of[i]`` is the distinct-caption index of image i (its features are those of one of
    its identical copies).
    """
    n_caps = int(caption_of.max()) + 1
    first = torch.full((n_caps,), -1, dtype=torch.long)
    for i in range(len(caption_of) - 1, -1, -1):
        first[caption_of[i]] = i
    caps = torch.nn.functional.normalize(text_features[first].float(), dim=-1)
    sims = torch.nn.functional.normalize(image_features.float(), dim=-1) @ caps.T  # [images, captions]
    own = sims.gather(1, caption_of[:, None])
    i2t_rank = (sims > own).sum(1)  # distinct captions strictly better than the image's own
    out = {f"i2t_R@{k}": float((i2t_rank < k).float().mean() * 100) for k in ks}
    order = sims.T.argsort(dim=1, descending=True)  # [captions, images]
    hits = caption_of[order] == torch.arange(n_caps)[:, None]
    out.update({f"t2i_R@{k}": float(hits[:, :k].any(1).float().mean() * 100) for k in ks})
    out["mR"] = sum(out.values()) / len(out)
    return out


# ----------------------------------------------------------------------------- stages
def _config(table, **overrides) -> TrainConfig:
    kw = dict(table)
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**kw)


def _eval_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _is_rank0() -> bool:
    return dist_info()[0] == 0


def pretrain_stage1(profile: str | None = None, seed: int = 0, *, steps: int | None = None,
                    device: str | None = None) -> Path:
    """Stage 1: the short-context miniature CLIP trained on short captions (cached per seed).

    ``gpu``: no training -- stage 1 is OpenAI's CLIP; returns the string ``openai:ViT-B-16``
    (as a ``Path``-like name understood by :func:`load_stage1`)."""
    profile = resolve_profile(profile)
    if profile == "gpu":
        return Path("openai:ViT-B-16")
    out = Path(str(pipeline_dir(profile) / f"stage1-s{seed}") + ("" if steps is None else f"-{steps}steps"))
    if (out / FINAL_FILE).exists():
        return out / FINAL_FILE
    torch.manual_seed(seed)
    model = create_model(get_profile(profile).model)
    data = load_pairs(profile, "train", model.context_length, model.image_size, short_only=True)
    cfg = _config(get_profile(profile).stage1, steps=steps, schedule="short_only", seed=seed, init_logit_scale=math.log(1 / 0.07))
    res = train(model, data, cfg, out, device=device, save_metadata={"stage": "stage1", "profile": profile, "seed": seed})
    return res.final


def load_stage1(path: str | os.PathLike):
    """The short-context stage-1 model (not stretched)."""
    model, _ = load_model(str(path), stretch=False)
    return model


def finetune_variant(profile: str | None = None, stage1: str | os.PathLike | None = None, *,
                     schedule: str = "default", stretch: str = "kps", pca: bool = False, seed: int = 0,
                     steps: int | None = None, schedule_kwargs: dict | None = None, name: str | None = None,
                     device: str | None = None, evaluate: bool = True) -> Path:
    """Stage 2 for ONE variant: stretch the stage-1 model and fine-tune it with DGCL.

    Knobs: ``schedule`` (a ``dgtrs_lib.training.curriculum`` name), ``stretch`` ("kps" | "linear"),
    ``pca`` (False: the DGTRS loss as released; True: Long-CLIP's PCA-32 + label smoothing 0.1),
    ``seed`` (data order; stage 1 of the same seed unless ``stage1`` is given), ``steps``.
    Returns the fine-tuned checkpoint (loaded from disk when it already exists); the held-out
    check is written beside it as ``eval.json``.
    """
    profile = resolve_profile(profile)
    stage1 = stage1 if stage1 is not None else pretrain_stage1(profile, seed, device=device)
    out = pipeline_dir(profile) / (name or variant_name(schedule, stretch, pca, seed, steps))
    final = out / FINAL_FILE
    if final.exists():
        return final
    base = load_stage1(stage1)
    spec = get_profile(profile).stretch
    model = stretch_model(base, keep=spec["keep"], ratio=spec["ratio"], mode=stretch)
    data = load_pairs(profile, "train", model.context_length, model.image_size)
    cfg = _config(get_profile(profile).stage2, steps=steps, schedule=schedule, seed=seed, loss="longclip" if pca else "dgtrs",
                  schedule_kwargs=schedule_kwargs or {})
    meta = {"stage": "stage2", "profile": profile, "stage1": str(stage1), "stretch": stretch, "pca": pca, "seed": seed,
            "ratio": spec["ratio"], "base_context": base.context_length}
    res = train(model, data, cfg, out, device=device, save_metadata=meta)
    if evaluate and _is_rank0():
        metrics = retrieval_check(model, profile, device=device or _eval_device())
        atomic_write_text(out / "eval.json",
                          json.dumps({"variant": out.name, **meta, "schedule": schedule, "steps": cfg.steps,
                                      "train_wall_s": round(res.wall_s, 1), "validation": metrics}, indent=2))
    return res.final


def get_or_train(profile: str | None = None) -> Path:
    """The fine-tuned checkpoint of the default pipeline run; trains it (all stages) if missing."""
    profile = resolve_profile(profile)
    final = pipeline_dir(profile) / "dgcl" / FINAL_FILE
    if final.exists():
        return final
    run_pipeline(profile)
    return final


# ----------------------------------------------------------------------------- the whole run
def write_results(profile: str, run: str, rows: list[dict], model: dict, protocol: dict) -> Path:
    """``results/<profile>/<run>.json`` (+ CSV) in the book's layout (``dgtrs_lib.results``)."""
    return _write(results_doc(run, profile, rows, model=model, protocol=protocol, device=_eval_device()),
                  results_dir(profile) / f"{run}.json")


def _rows(check: dict, stage: str, seed: int) -> list[dict]:
    rows = []
    for key, value in check.items():
        if key.startswith(("long_", "short_")) and not key.endswith("mR"):
            kind, metric = key.split("_", 1)
            rows.append({"task": f"retrieval-{kind}", "dataset": "syndg-validation", "metric": metric,
                         "value": float(value), "config": {"stage": stage}, "seed": seed})
    return rows


def run_pipeline(profile: str | None = None, seed: int = 0, schedule: str = "default", device: str | None = None) -> dict:
    """All stages with wall times and held-out checks; writes ``results/<profile>/pipeline.json``."""
    profile = resolve_profile(profile)
    times, checks = {}, {}
    previous = pipeline_dir(profile) / "dgcl" / "eval.json"  # keep wall times of stages trained earlier
    previous = json.loads(previous.read_text()).get("times", {}) if previous.exists() else {}
    t0 = time.time()
    stage1 = pretrain_stage1(profile, seed, device=device)
    times["stage1_s"] = round(time.time() - t0, 1)
    if _is_rank0():
        base = load_stage1(stage1)
        checks["stage1"] = retrieval_check(base, profile, device=device or _eval_device())
        spec = get_profile(profile).stretch
        checks["stretched"] = retrieval_check(stretch_model(base, keep=spec["keep"], ratio=spec["ratio"]), profile,
                                              device=device or _eval_device())
    t1 = time.time()
    final = finetune_variant(profile, stage1, schedule=schedule, seed=seed, name="dgcl", device=device, evaluate=False)
    times["stage2_s"] = round(time.time() - t1, 1)
    if not _is_rank0():
        return {}
    model, _ = load_model(final)
    checks["dgcl"] = retrieval_check(model, profile, device=device or _eval_device())
    times["total_s"] = round(time.time() - t0, 1)
    if times["stage1_s"] < 1.0 and times["stage2_s"] < 1.0 and previous:  # both loaded from disk
        times = {**previous, "reevaluated_s": times["total_s"]}
    for stage, path in (("stage1", Path(str(stage1))), ("stage2", final)):
        metrics = path.parent / "metrics.jsonl"
        if metrics.exists():  # pure optimizer-step time, excluding data preparation and evaluation
            times[f"{stage}_steps_s"] = round(sum(r["time_s"] for r in read_metrics(metrics)), 1)
    summary = {"profile": profile, "seed": seed, "schedule": schedule, "final": str(final), "times": times,
               "validation": checks}
    atomic_write_text(final.parent / "eval.json", json.dumps(summary, indent=2))
    sidecar = final.with_suffix(".json")  # what the trainer picked (precision, batches) for this device
    setup = json.loads(sidecar.read_text()).get("train_setup", {}) if sidecar.exists() else {}
    rows = [r for stage, c in checks.items() for r in _rows(c, stage, seed)]
    rows += [{"task": "training", "dataset": "syndg-train", "metric": f"wall_{k}", "value": v, "seed": seed}
             for k, v in times.items()]
    write_results(profile, "pipeline", rows,
                  model={"name": get_profile(profile).model, "keep": get_profile(profile).keep,
                         "ratio": get_profile(profile).ratio, "checkpoint": str(final)},
                  protocol={"stage1": dict(get_profile(profile).stage1 or {}) or "openai",
                            "stage2": dict(get_profile(profile).stage2), "schedule": schedule,
                            "stage2_setup": {k: setup.get(k) for k in ("precision", "contrastive_batch", "sub_batch",
                                                                       "grad_cache", "optimizer", "num_workers")},
                            "eval": "validation split, one caption per image, R@1/R@5 in percent"})
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Run the miniature DGTRS-CLIP pipeline (or one fine-tuning variant).")
    parser.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: DGTRS_PROFILE or auto)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--schedule", default="default")
    parser.add_argument("--variant", action="store_true", help="fine-tune one variant instead of the whole pipeline")
    parser.add_argument("--stretch", default="kps", choices=["kps", "linear"])
    parser.add_argument("--pca", action="store_true")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    if args.variant:
        print(finetune_variant(args.profile, schedule=args.schedule, stretch=args.stretch, pca=args.pca,
                               seed=args.seed, steps=args.steps))
    else:
        print(json.dumps(run_pipeline(args.profile, seed=args.seed, schedule=args.schedule), indent=2))


if __name__ == "__main__":
    main()
