"""One entry point for DGTRS-CLIP's four zero-shot evaluations (arXiv:2503.19311, ``chen2025dgtrs``:
long-text retrieval, short-text retrieval, scene classification, semantic localization), as a
function and a command line::

    python -m dgtrs_lib.evaluation.evaluate --model artifacts/cpu/pipeline/dgcl/final.pt --profile cpu
    dgtrs-evaluate --model open_clip:ViT-B-32-quickgelu@RemoteCLIP-ViT-B-32.pt \\
        --tasks short_retrieval --dataset short_retrieval=karpathy:rsitmd:dataset_rsitmd.json:images/

Tasks (``TASKS``) and the task names written to the results file:

* ``long_retrieval``  -> ``long_text_retrieval``: image <-> long caption R@1/5/10 and mR;
* ``short_retrieval`` -> ``short_text_retrieval``: the same with short captions (RSITMD/RSICD
  protocol: several captions per image, ``dgtrs_lib.evaluation.retrieval``);
* ``classification``  -> ``zero_shot_classification``: template-ensemble zero-shot top-1, top-5
  (only with more than 5 classes; with 5 it is trivially 100) and mean per-class recall per
  dataset, plus the top-1 mean over datasets (the paper's "average accuracy";
  ``dgtrs_lib.evaluation.classification``);
* ``selo``            -> ``semantic_localization``: Rsu / Ras / Rda / Rmi (``dgtrs_lib.evaluation.selo``
  heat maps, ``dgtrs_lib.evaluation.slm`` metrics).

Data: dataset specs per task (``dgtrs_lib.evaluation.datasets``); by default the embedded, offline
SynDG-RS test split (with its shifted and retention classification views and the prior's held-out
alt-text retrieval) and the real Sentinel-2 patches and scene; the classification mean is over
SynDG-RS and Sentinel-2 only (``DERIVED_VIEWS`` are reported beside it, not averaged in).

Models: ``evaluate`` takes an explicit ``model_source`` -- any string of the one registry,
``dgtrs_lib.model.sources`` (checkpoints, hub ids, ``BASELINES``, ``open_clip:ARCH@TAG_OR_FILE``,
``tiny-random``) -- or ``model=(model, preprocess)``. It never trains and never changes the
environment. The command line defaults to our pipeline's checkpoint when it exists and goes offline
unless ``DGTRS_ONLINE=1``.

Besides the four-task entry point, the two retrieval runners: ``run_retrieval`` (a retrieval-schema
test set) and ``heldout_retrieval`` (the training pipeline's held-out check on pairs); both score
with ``dgtrs_lib.evaluation.retrieval.retrieval_scores`` on ``dgtrs_lib.evaluation.encode`` features.

Beside ``results``, the document holds ``references``: the same metrics for trivial models on the
same sets (``dgtrs_lib.evaluation.references``: ``chance`` and ``class_only`` for retrieval,
``chance`` and ``majority`` for classification, ``flat`` for SeLo), rows ``{task, dataset,
reference, metric, value, n}``; every table and plot of the book draws them beside the model. SeLo
on scenes with ``query_type`` adds rows for ``<dataset>/<query type>`` (region, attribute).

The run writes ONE results file ``results/<profile>/<run>.json`` (+ ``.csv`` of the same rows),
atomically, in the project layout (``dgtrs_lib.results.results_doc``) with the extra keys
``identity``, ``data``, ``details`` and ``timings_s``. The default run name is unique per (model
source -- a file by its absolute path --, tasks, datasets, profile): ``evaluate-<slug>-<hash>``.
An existing file is replaced only with ``overwrite=True`` (the command line's ``--overwrite``);
``overwrite=None`` (the function's default) lets a run replace only its own earlier result (same
name given by the caller, or same identity), never another evaluation's.

Everything that can be checked without a model is checked first, so a typo never waits for a
model to load: tasks, options, batch size, device, every dataset spec and the files it names,
and the results file. The command line goes through ``dgtrs_lib.errors.run_cli``: a bad input is
one line ``error: ...`` and a documented exit code (``--debug`` for the traceback).

Taught in: Long-text cross-modal retrieval (notebooks/04-long-text-retrieval.ipynb)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from dgtrs_lib.errors import cli_parser, positive_int, run_cli
from dgtrs_lib.evaluation.classification import evaluate_classifier, get_templates, mean_over_datasets
from dgtrs_lib.evaluation.datasets import (
    SPEC_FORMS,
    VIEWS_VERSION,
    EvaluationError,
    check_dataset_spec,
    classification_data,
    parse_dataset_spec,
    retrieval_data,
    retrieval_labels,
    selo_data,
    slm_protocol,
)
from dgtrs_lib.evaluation.encode import encode_images, encode_pairs, encode_texts
from dgtrs_lib.evaluation.references import (
    chance_retrieval,
    class_only_retrieval,
    classification_references,
    flat_map_selo,
)
from dgtrs_lib.evaluation.retrieval import per_image_recall, retrieval_scores
from dgtrs_lib.evaluation.selo import evaluate_selo, scaled_kernel
from dgtrs_lib.evaluation.slm import REFERENCE, mean_selo_metrics
from dgtrs_lib.model.sources import BASELINES, describe_model, resolve_source
from dgtrs_lib.profiles import check_device, get_profile
from dgtrs_lib.results import check_replace, results_doc, write_results

TASKS = ("long_retrieval", "short_retrieval", "classification", "selo")
RESULT_TASK = {"long_retrieval": "long_text_retrieval", "short_retrieval": "short_text_retrieval",
               "classification": "zero_shot_classification", "selo": "semantic_localization"}
DEFAULT_DATASETS = {"long_retrieval": ["syndg"], "short_retrieval": ["syndg", "syndg-prior"],
                    "classification": ["syndg", "syndg-shift", "syndg-retention", "sentinel"],
                    "selo": ["syndg", "sentinel"]}
DERIVED_VIEWS = ("syndg-shift", "syndg-retention")  # views of SynDG-RS, left out of the classification mean
OPTIONS = {"ensemble": ("normalize_mean", "mean_normalize"), "selo_tile_mode": ("fast", "preprocess"),
           "retrieval_ties": ("expected", "pessimistic", "optimistic")}


# ----------------------------------------------------------------------------------------------
# The two retrieval runners
# ----------------------------------------------------------------------------------------------
def run_retrieval(model, preprocess, ds, *, ks: Sequence[int] = (1, 5, 10), batch_size: int = 64,
                  progress: bool = False, ties: str = "expected", per_query: bool = False) -> dict:
    """Retrieval on a retrieval-schema set (``image, captions``: several captions per image);
    ``per_query``: also the per-image scores of ``per_image_recall`` (key ``per_query``)."""
    from dgtrs_lib.model.tokenizer import token_lengths

    caps = ds["captions"]
    texts = [c for cs in caps for c in cs]
    t2i = np.repeat(np.arange(len(caps)), [len(cs) for cs in caps])
    img = encode_images(model, ds, preprocess, batch_size=batch_size, progress=progress)
    txt = encode_texts(model, texts, progress=progress)
    ctx = getattr(model, "context_length", None)
    truncated = int(sum(n > ctx for n in token_lengths(texts))) if ctx else None
    out = {"metrics": retrieval_scores(img, txt, t2i, ks, ties=ties), "n_images": len(caps), "n_captions": len(texts),
           "n_captions_truncated": truncated, "context_length": ctx}
    if per_query:
        out["per_query"] = per_image_recall(img, txt, t2i, ks, ties=ties).tolist()
    return out


def heldout_retrieval(model, pairs, *, ks: Sequence[int] = (1, 5), batch_size: int = 256) -> dict:
    """The training pipeline's held-out check: R@k (percent) image<->long and image<->short on
    ``PairData`` (one caption per image), keys ``pairs``, ``chance_R@1``, ``long_i2t_R@1``, ...

    The text side is the pairs' tokens, at the model's own context (a 32-token stage-1 model reads
    only the first 32 tokens of a long caption -- which is the point of stretching it). Captions
    shared by several images (SynDG-RS short captions are class-level) are scored as distinct
    candidates, and ``<kind>_distinct_captions`` says how many there are."""
    feats = encode_pairs(model, pairs, batch_size=batch_size)
    n = len(pairs)
    out = {"pairs": n, "chance_R@1": 100.0 / n}
    for kind, tokens in (("long", pairs.long_tokens), ("short", pairs.short_tokens)):
        m = retrieval_scores(feats["image"], feats[kind], torch.arange(n), ks, text_keys=tokens)
        if "distinct_captions" in m:
            out[f"{kind}_distinct_captions"] = m.pop("distinct_captions")
        out.update({f"{kind}_{k}": round(v, 2) for k, v in m.items()})
    return out


# ----------------------------------------------------------------------------------------------
# The four tasks
# ----------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    """``artifacts/cpu/pipeline/dgcl/final.pt`` -> ``pipeline-dgcl-final``; ids and names as they are."""
    if os.sep in text or "/" in text:
        parts = Path(text).with_suffix("").parts
        text = "-".join(parts[-3:]) if Path(text).exists() else text
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60]


def _source_key(source) -> str:
    """A model source as the identity records it: an existing path absolute, anything else as given."""
    path = Path(str(source)).expanduser()
    return str(path.resolve()) if str(source) and path.exists() else str(source)


def _spec_key(spec: dict) -> dict:
    return {k: (_source_key(v) if k in ("json", "images", "root") else str(v)) for k, v in sorted(spec.items())}


def evaluation_identity(model_source, tasks, specs: dict, profile: str) -> dict:
    """What an evaluation's results are the result of: model source, tasks, datasets, profile."""
    return {"model": _source_key(model_source), "tasks": sorted(tasks),
            "datasets": {t: [_spec_key(s) for s in specs[t]] for t in sorted(specs)}, "profile": profile,
            "views": VIEWS_VERSION}


def default_run_name(identity: dict) -> str:
    """``evaluate-<model slug>-<8 hex of the identity>``: two different evaluations never share it."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return f"evaluate-{_slug(identity['model'])[:48]}-{digest}"


def check_tasks(tasks) -> list[str]:
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise EvaluationError(f"tasks {bad or tasks}: expected a non-empty subset of {', '.join(TASKS)}")
    return tasks


def plan_datasets(tasks, datasets: dict | None) -> dict:
    """``{task: [checked spec, ...]}``: every spec parsed and its files checked (no model needed)."""
    datasets = datasets or {}
    unknown = [t for t in datasets if t not in TASKS]
    if unknown:
        raise EvaluationError(f"datasets for {unknown}: expected tasks among {', '.join(TASKS)}")
    extra = [t for t in datasets if t not in tasks]
    if extra:
        raise EvaluationError(f"datasets given for {extra}, which are not among the tasks {list(tasks)}; "
                              "expected --tasks to include them")
    return {t: [check_dataset_spec(parse_dataset_spec(s), t) for s in datasets.get(t, DEFAULT_DATASETS[t])]
            for t in tasks}


def _check_options(templates, batch_size, **options) -> None:
    try:
        get_templates(templates)
    except ValueError as err:
        raise EvaluationError(f"templates: {err}") from None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise EvaluationError(f"batch_size {batch_size!r}: expected a whole number >= 1")
    for name, value in options.items():
        if value not in OPTIONS[name]:
            raise EvaluationError(f"{name} {value!r}: expected one of {', '.join(OPTIONS[name])}")


def _protocol(templates, ensemble: str, selo_tile_mode: str, selo_jpeg_roundtrip: bool, retrieval_ties: str,
              eval_limit) -> dict:
    return {
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
                 "jpeg_roundtrip": selo_jpeg_roundtrip,
                 "metrics": "SLM (Yuan et al. 2022): reference constants for AIR-SLT-sized scenes; pixel sizes scaled "
                            "to the tiling scales otherwise (the protocol name per dataset is in details)"},
        "references": "computed on the same sets with the same metric code (dgtrs_lib.evaluation.references): "
                      "chance, class_only (retrieval with scene labels), majority (classification), flat map (SeLo)",
        "eval_limit": eval_limit,
    }


def evaluate(model_source: str | None = None, tasks: Sequence[str] = TASKS, profile=None,
             datasets: dict | None = None, out: str | os.PathLike | None = None, *, model=None, run: str | None = None,
             templates: str | Sequence[str] = "clip", ensemble: str = "normalize_mean", selo_tile_mode: str = "fast",
             selo_jpeg_roundtrip: bool = False, retrieval_ties: str = "expected", batch_size: int = 64,
             device: str | None = None, progress: bool = True, overwrite: bool | None = None,
             per_query: bool = False) -> dict:
    """Run ``tasks`` on a model and write one results file; returns the results document.

    The model: ``model_source`` (any source of ``dgtrs_lib.model.sources``), or ``model=(model,
    preprocess)`` already in memory (``model_source`` then only names it). ``datasets``:
    ``{task: [spec, ...]}`` overriding ``DEFAULT_DATASETS`` per task. ``out``: the JSON path
    (default ``results/<profile>/<run>.json``; ``run`` default: ``default_run_name``).
    ``device``: default ``profile.device()``. ``overwrite``: see the module doc. Every input is
    checked before the model is loaded. ``per_query``: the document also holds ``per_query``,
    ``{"task|dataset|metric": [one score per test query]}`` whose mean is the reported number
    (retrieval mR per image with its captions, top-1 per image, SeLo Rmi per case): what a paired
    per-query bootstrap resamples (``dgtrs_lib.experiments.stats``).
    """
    from dgtrs_lib.env import results_dir

    prof = get_profile(profile)
    profile = prof.name
    tasks = check_tasks(tasks)
    _check_options(templates, batch_size, ensemble=ensemble, selo_tile_mode=selo_tile_mode,
                   retrieval_ties=retrieval_ties)
    device = check_device(device) or prof.device()
    specs = plan_datasets(tasks, datasets)
    if model is None and not model_source:
        raise EvaluationError("evaluate: no model; pass model_source (a checkpoint, hub id, baseline name, "
                              "open_clip:ARCH@WEIGHTS or tiny-random) or model=(model, preprocess)")
    identity = (evaluation_identity(model_source or "in-memory", tasks, specs, profile) if run is None and out is None
                else {"run": run or Path(out).stem, "profile": profile})
    run = run or (Path(out).stem if out else default_run_name(identity))
    out = Path(out) if out else results_dir(profile) / f"{run}.json"
    check_replace(out, {"run": run, "profile": profile, "identity": identity}, overwrite)
    if model is not None:
        mdl, preprocess = model
        info = {"source": model_source or "in-memory", **describe_model(mdl)}
    else:
        mdl, preprocess, info = resolve_source(model_source, device)
    mdl = mdl.to(device).eval()
    rows, details, timings, data_info = [], {}, {}, {}
    protocol = _protocol(templates, ensemble, selo_tile_mode, selo_jpeg_roundtrip, retrieval_ties, prof.eval_limit)

    references: list[dict] = []
    queries: dict[str, list[float]] = {}

    def add(task, dataset, metric, value, n):
        rows.append({"task": RESULT_TASK[task], "dataset": dataset, "metric": metric, "value": float(value), "n": int(n)})

    def add_ref(task, dataset, kind, values: dict, n):
        references.extend({"task": RESULT_TASK[task], "dataset": dataset, "reference": kind, "metric": k,
                           "value": float(v), "n": int(n)} for k, v in values.items())

    for task in tasks:
        t0 = time.perf_counter()
        details[RESULT_TASK[task]] = {}
        per_dataset = []
        for spec in specs[task]:
            name = spec["name"]
            if task in ("long_retrieval", "short_retrieval"):
                ds = retrieval_data(spec, "long" if task == "long_retrieval" else "short", profile)
                res = run_retrieval(mdl, preprocess, ds, batch_size=batch_size, progress=progress, ties=retrieval_ties,
                                    per_query=per_query)
                for k, v in res["metrics"].items():
                    add(task, name, k, v, res["n_images"])
                if per_query:
                    queries[f"{RESULT_TASK[task]}|{name}|mR"] = res.pop("per_query")
                details[RESULT_TASK[task]][name] = {k: v for k, v in res.items() if k != "metrics"}
                t2i = np.repeat(np.arange(len(ds)), [len(c) for c in ds["captions"]])
                add_ref(task, name, "chance", chance_retrieval(t2i, len(ds)), len(ds))
                labels = retrieval_labels(spec, profile, len(ds), ds)
                if labels is not None:
                    add_ref(task, name, "class_only", class_only_retrieval(labels, t2i), len(ds))
            elif task == "classification":
                ds = classification_data(spec, profile)
                res = evaluate_classifier(mdl, ds, preprocess, templates=templates, ensemble=ensemble,
                                          batch_size=batch_size, progress=progress)
                n_cls = len(res["classnames"])
                add(task, name, "top1", res["acc1"], len(ds))
                if n_cls > 5:
                    add(task, name, "top5", res["acc5"], len(ds))
                add(task, name, "mean_per_class_recall", res["mean_per_class_recall"], len(ds))
                if per_query:
                    queries[f"{RESULT_TASK[task]}|{name}|top1"] = (
                        100.0 * (np.asarray(res["predictions"]) == np.asarray(ds["label"]))).tolist()
                if spec["kind"] not in DERIVED_VIEWS:  # the mean is over benchmarks, not views of one
                    per_dataset.append(res)
                details[RESULT_TASK[task]][name] = {"classnames": res["classnames"], "confusion_matrix": res["confusion_matrix"],
                                                   "per_class_recall": res["per_class_recall"], "n_images": len(ds)}
                refs = classification_references(ds["label"], n_cls)
                add_ref(task, name, "chance", {"top1": refs["chance_top1"]}, len(ds))
                add_ref(task, name, "majority", {"top1": refs["majority_top1"],
                                                 "mean_per_class_recall": refs["majority_mean_per_class_recall"]}, len(ds))
            else:
                samples, scales = selo_data(spec, profile)
                slm = slm_protocol(scales) if spec["kind"] != "airslt" else REFERENCE  # AIR-SLT: reference-exact
                mean, per_case = evaluate_selo(mdl, samples, preprocess=preprocess, scales=scales, tile_mode=selo_tile_mode,
                                               jpeg_roundtrip=selo_jpeg_roundtrip, batch_size=batch_size, progress=progress,
                                               protocol=slm)
                for k, v in mean.items():
                    add(task, name, k, v, len(per_case))
                add_ref(task, name, "flat", flat_map_selo(samples, slm), len(samples))
                qtype = {s.sample_id: s.query_type for s in samples}
                for r in per_case:
                    r["query_type"] = qtype.get(r["sample_id"])
                if per_query:
                    queries[f"{RESULT_TASK[task]}|{name}|Rmi"] = [float(r["Rmi"]) for r in per_case]
                    for kind in sorted({t for t in qtype.values() if t}):
                        queries[f"{RESULT_TASK[task]}|{name}/{kind}|Rmi"] = [float(r["Rmi"]) for r in per_case
                                                                             if r["query_type"] == kind]
                for kind in sorted({t for t in qtype.values() if t}):  # region / attribute queries apart
                    sel = [r for r in per_case if r["query_type"] == kind]
                    for k, v in mean_selo_metrics(sel).items():
                        add(task, f"{name}/{kind}", k, v, len(sel))
                    add_ref(task, f"{name}/{kind}", "flat",
                            flat_map_selo([s for s in samples if s.query_type == kind], slm), len(sel))
                details[RESULT_TASK[task]][name] = {"scales": list(scales), "median_kernel": scaled_kernel(scales),
                                                   "slm_protocol": {"name": slm.name, "box": slm.box,
                                                                    "max_filter": slm.max_filter},
                                                   "per_case": [{k: r[k] for k in ("sample_id", "caption", "query_type", "Rsu",
                                                                                   "Ras", "Rda", "Rmi")}
                                                                for r in per_case]}
            data_info[name] = {k: str(v) for k, v in spec.items()}
        if task == "classification" and len(per_dataset) > 1:
            add(task, "mean", "top1", mean_over_datasets(per_dataset, "acc1"), len(per_dataset))
        timings[RESULT_TASK[task]] = round(time.perf_counter() - t0, 2)

    doc = results_doc(run, profile, rows, model=info, protocol=protocol, device=device, identity=identity,
                      data=data_info, details=details, timings_s=timings, references=references)
    if per_query:
        doc["per_query"] = queries
    path = write_results(doc, out, overwrite=overwrite)
    doc["path"] = str(path)
    return doc


# ----------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------
def default_model_source(profile) -> str:
    """The command line's default model: our pipeline's checkpoint, if it has been trained.
    Never trains: without it, an ``EvaluationError`` says how to train it or what to pass."""
    from dgtrs_lib.env import pipeline_checkpoint

    prof = get_profile(profile)
    path = pipeline_checkpoint(prof.name)
    if not path.exists():
        raise EvaluationError(f"no model given and no pipeline checkpoint at {path}; train it with "
                              f"`python -m dgtrs_lib.experiments.pipeline --profile {prof.name}` or pass "
                              "--model (a checkpoint, hub id, baseline name, open_clip:ARCH@WEIGHTS or tiny-random)")
    return str(path)


def main(argv=None) -> int:
    """The command line (``dgtrs-evaluate``); returns the exit code (``dgtrs_lib.errors``)."""
    return run_cli(_main, argv)


def _main(argv) -> int:
    p = cli_parser(
        prog="dgtrs-evaluate", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the paper's zero-shot evaluations (long- and short-text retrieval, scene "
                    "classification, semantic localization) on one model and write one results JSON + CSV.",
        epilog="examples:\n  python -m dgtrs_lib.evaluation.evaluate --profile cpu\n"
               "  python -m dgtrs_lib.evaluation.evaluate --model open_clip:ViT-B-32-quickgelu@RemoteCLIP-ViT-B-32.pt \\\n"
               "      --tasks short_retrieval --dataset short_retrieval=karpathy:rsitmd:dataset_RSITMD.json:images\n"
               "exit codes: 0 ok, 2 bad argument or spec, 3 data, 4 model, 5 offline, 6 result exists, 8 system")
    p.add_argument("--model", default=None, help="checkpoint path, hf:OWNER/NAME, open_clip:ARCH@WEIGHTS, a baseline name "
                   f"({', '.join(BASELINES)}) or tiny-random; default: our pipeline checkpoint (if trained)")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    p.add_argument("--profile", default=None, help="smoke, cpu, gpu or auto (default: DGTRS_PROFILE, else auto)")
    p.add_argument("--dataset", action="append", default=[], metavar="TASK=SPEC",
                   help="replace the default data of TASK (repeatable): " + ", ".join(SPEC_FORMS))
    p.add_argument("--templates", default="clip", help="clip, remoteclip or georsclip")
    p.add_argument("--ensemble", default="normalize_mean", choices=list(OPTIONS["ensemble"]))
    p.add_argument("--selo-tile-mode", default="fast", choices=list(OPTIONS["selo_tile_mode"]))
    p.add_argument("--selo-jpeg-roundtrip", action="store_true")
    p.add_argument("--retrieval-ties", default="expected", choices=list(OPTIONS["retrieval_ties"]))
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--run", default=None, help="run name (file stem); default: unique per model, tasks, data, profile")
    p.add_argument("--out", default=None, help="results JSON path")
    p.add_argument("--overwrite", action="store_true", help="replace an existing results file of the same name")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: the profile's)")
    a = p.parse_args(argv)
    from dgtrs_lib.env import set_offline

    set_offline()
    datasets: dict = {}
    for item in a.dataset:
        task, sep, spec = item.partition("=")
        if not sep or task not in TASKS:
            raise EvaluationError(f"--dataset {item!r}: expected TASK=SPEC with TASK one of {', '.join(TASKS)}")
        datasets.setdefault(task, []).append(spec)
    profile = get_profile(a.profile)
    tasks = check_tasks([t for t in a.tasks.split(",") if t])
    plan_datasets(tasks, datasets)                       # every spec checked before any model is resolved
    check_device(a.device)
    doc = evaluate(a.model or default_model_source(profile), tasks, profile, datasets or None, a.out, run=a.run,
                   templates=a.templates, ensemble=a.ensemble, selo_tile_mode=a.selo_tile_mode,
                   selo_jpeg_roundtrip=a.selo_jpeg_roundtrip, retrieval_ties=a.retrieval_ties,
                   batch_size=a.batch_size, device=a.device, overwrite=a.overwrite)
    for r in doc["results"]:
        print(f"{r['task']:26s} {r['dataset']:14s} {r['metric']:22s} {r['value']:8.3f}")
    print(f"wrote {doc['path']} (+ .csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
