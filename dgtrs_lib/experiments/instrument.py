"""The instrument check: before any configuration is compared, show that every task can measure.

An experiment is an instrument first (issue #11). This module measures, on the miniature, the
facts a reviewer needs before reading the study of the paper's claims (DGTRS-CLIP,
arXiv:2503.19311; the KPS claim follows Long-CLIP, Zhang et al. 2024, section 3.1):

* **the prior** -- held-out alt-text retrieval of the stage-1 model (``prior_validation``) against
  the *class-only* reference on the same gallery (a model that knows only the scene class): a
  prior that only knew classes could not lose instance knowledge to fine-tuning;
* **its effective length** -- :func:`measure_effective_length`: retrieval of held-out long
  descriptions read through the first ``k`` tokens, for ``k`` up to the base context, and how far
  each positional row moved from its initialisation (``dgtrs_lib.experiments.effective_length``);
  ``keep`` is the smaller of the effective length and the number of trained rows (KPS keeps the
  rows that carry knowledge and interpolates the rest), and the stretch ratio follows from it (:func:`~dgtrs_lib.experiments.effective_length.choose_stretch`),
  and the gate checks that the model configuration uses them (:func:`measure_stage1_length`: the
  measurement of a stage-1 record on the profile's data, as the gate and chapter 02 take it);
* **the fine-tuned model** -- the DGCL model's long-text mR against the class-only mR;
* **every task** -- for configurations a (base), b (long only) and e (DGCL) of the study, one
  seed: the best is below the ceiling (95 %: not saturated; SeLo Rmi below 0.95) and above the
  task's trivial reference (``GATED``: class-only for retrieval, chance for classification --
  the majority class for the retention view --, the flat map for SeLo), i.e. not all at chance;
  the other references of the column are recorded beside it (Sentinel-2: the majority class).

:func:`run_instrument` writes ``results/<profile>/instrument.json`` (+ CSV): one row per gate with
the measured value, the reference it is compared with, and ``passed``; the maintainers' cpu run is
committed as ``results/reference/instrument-cpu.json``. ``python -m dgtrs_lib.experiments.instrument``.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import sys
import warnings

import numpy as np

from dgtrs_lib.env import results_dir
from dgtrs_lib.errors import cli_parser, run_cli
from dgtrs_lib.profiles import get_profile

CEILING = 95.0           # a task whose best configuration scores above this (percent) is saturated
CEILING_FRACTION = 0.95  # the same for indicators in [0, 1] (SeLo Rmi)
GATE_CONFIGS = ("a", "b", "e")
EFFECTIVE_FRACTION = 0.95  # the effective length: the first k within 95 % of the best score
# a positional row counts as trained when it moved at least a tenth of the most-moved row (rows no
# pre-training caption reaches move only by weight decay: Adam moves every row it updates by about
# the learning rate, so movement says WHETHER a row was trained, not how well)
TRAINED_MOVEMENT = 0.1
# the task columns gated: (task, dataset, metric, trivial reference)
GATED = (
    ("long_text_retrieval", "SynDG-RS", "mR", "class_only"),
    ("short_text_retrieval", "SynDG-RS", "mR", "class_only"),
    ("zero_shot_classification", "SynDG-RS", "top1", "chance"),
    ("zero_shot_classification", "SynDG-RS-shift", "top1", "chance"),
    ("zero_shot_classification", "SynDG-RS-retention", "top1", "majority"),
    ("zero_shot_classification", "Sentinel-2", "top1", "chance"),  # the majority class is reported beside it
    ("semantic_localization", "SynDG-RS/region", "Rmi", "flat"),
    ("semantic_localization", "SynDG-RS/attribute", "Rmi", "flat"),
    ("semantic_localization", "Sentinel-2", "Rmi", "flat"),
)


# Redesigns a failed gate called for (issue #11), the latest last:
# * SynDG-RS v3: mixed scenes -- the prior's top-1 on pure scenes was above the ceiling;
# * SynDG-RS v4: two prior-only classes redrawn as look-alikes of fine-tuning classes -- the
#   retention view was above the ceiling; it stayed there;
# * views version 2 (``dgtrs_lib.evaluation.datasets.VIEWS_VERSION``): the retention view takes its
#   images under the shifted view's scale / blur / colour shift -- on clean images the prior
#   recognised the prior-only classes almost perfectly (by colour: the colour-shifted third is where
#   it errs), so forgetting could not show; the data and the prior are unchanged.
# Gates the maintainers' cpu run fails, each with what was measured and the redesign it calls for
# (issue #11 stays open until they pass); tests/test_instrument.py checks that the committed gates
# file fails exactly these, so a gate that starts failing -- or passing -- is noticed.
OPEN_GATES: dict[str, str] = {}


def measure_effective_length(model, initial_positional, images, texts, longest: int, *,
                             lengths=None, device: str = "cpu") -> dict:
    """The stage-1 model's effective text length and the stretch chosen from it.

    ``images``/``texts``: held-out pre-processed images and their long descriptions;
    ``initial_positional``: the positional table before pre-training; ``longest``: the longest
    long description in tokens (the stretched context must hold it). Returns ``{"curve",
    "movement", "effective_length", "trained_rows", "choice"}``."""
    from dgtrs_lib.experiments.effective_length import (
        choose_stretch,
        effective_length,
        positional_movement,
        read_length_curve,
    )

    base = model.context_length
    lengths = list(lengths or range(4, base + 1, 2))
    curve = read_length_curve(model, images, texts, lengths, device=device)
    movement = positional_movement(model.positional_embedding.detach().cpu(), initial_positional)
    eff = effective_length(curve, key="mR", frac=EFFECTIVE_FRACTION)
    moved = np.nonzero(movement >= TRAINED_MOVEMENT * movement.max())[0]
    trained = int(moved.max()) + 1 if len(moved) else 0
    return {"curve": curve, "movement": [float(v) for v in movement], "effective_length": eff,
            "trained_rows": trained, "choice": choose_stretch(min(eff, trained) or eff, base, longest)}


def measure_stage1_length(stage1, profile=None, *, model=None, device: str = "cpu") -> dict:
    """:func:`measure_effective_length` of a stage-1 record (``pipeline.pretrain_stage1``) as the
    instrument gate takes it: the SynDG-RS validation images and long descriptions of ``profile``,
    the initial positional table saved beside the checkpoint (``INIT_POS_FILE``), and ``longest``
    over the train, validation and test long descriptions. ``model``: the stage-1 model when it is
    already loaded. Returns the measurement plus ``"longest"``."""
    import torch
    from safetensors.torch import load_file

    from dgtrs_lib.data.syndg import load_syndg
    from dgtrs_lib.experiments.pipeline import INIT_POS_FILE, load_stage1
    from dgtrs_lib.model.tokenizer import token_lengths
    from dgtrs_lib.model.transforms import make_preprocess

    prof = get_profile(profile)
    model = model if model is not None else load_stage1(stage1)
    dd = load_syndg(prof.name)
    val = dd["validation"]
    pre = make_preprocess(model.image_size)
    images = torch.stack([pre(im.convert("RGB")) for im in val["image"]])
    longest = max(max(token_lengths(dd[s]["long_caption"])) for s in ("train", "validation", "test"))
    init = load_file(str(stage1.checkpoint.parent / INIT_POS_FILE))["positional_embedding"]
    measured = measure_effective_length(model, init, images, list(val["long_caption"]), longest, device=device)
    return {**measured, "longest": int(longest)}


def _gate(name: str, value, reference, passed: bool, **extra) -> dict:
    return {"gate": name, "value": value, "reference": reference, "passed": bool(passed), **extra}


def _reference(doc: dict, task: str, dataset: str, metric: str, kind: str):
    for r in doc.get("references", []):
        if (r["task"], r["dataset"], r["metric"], r["reference"]) == (task, dataset, metric, kind):
            return float(r["value"])
    return None


def _value(doc: dict, task: str, dataset: str, metric: str):
    for r in doc["results"]:
        if (r["task"], r["dataset"], r["metric"]) == (task, dataset, metric):
            return float(r["value"])
    return None


def task_gates(docs: dict[str, dict]) -> list[dict]:
    """One gate per gated column: the best and worst of the configurations' evaluation
    documents (``{config: doc}``) against the ceiling and the trivial reference."""
    gates = []
    for task, dataset, metric, kind in GATED:
        vals = {c: _value(d, task, dataset, metric) for c, d in docs.items()}
        vals = {c: v for c, v in vals.items() if v is not None}
        if not vals:
            continue
        ref = next((x for d in docs.values() if (x := _reference(d, task, dataset, metric, kind)) is not None), None)
        others = {k: x for k in ("chance", "class_only", "majority", "flat") if k != kind
                  and (x := next((y for d in docs.values() if (y := _reference(d, task, dataset, metric, k)) is not None),
                                 None)) is not None}
        best, worst = max(vals, key=vals.get), min(vals, key=vals.get)
        ceiling = CEILING_FRACTION if metric == "Rmi" else CEILING
        above = ref is None or vals[best] > ref
        gates.append(_gate(f"{task}:{dataset}:{metric}", {"best": vals[best], "best_config": best,
                                                          "worst": vals[worst], "worst_config": worst},
                           {kind: ref, "ceiling": ceiling, **others}, vals[best] <= ceiling and above,
                           rule=f"best <= {ceiling} (not saturated) and best > {kind} (not all at the trivial reference)"))
    return gates


def run_instrument(profile=None, *, seed: int = 0, write: bool = True) -> dict:
    """Measure every gate (training what is missing) and write the gates file; returns its document."""
    from dgtrs_lib.evaluation.references import class_only_retrieval
    from dgtrs_lib.experiments.ablations import PRIOR_SEED, VARIANT_BY_KEY, arm_doc, run_one
    from dgtrs_lib.experiments.pipeline import (
        get_or_train,
        load_stage1,
        pretrain_stage1,
        read_curve,
        retrieval_check,
    )
    from dgtrs_lib.model.tokenizer import TruncationWarning
    from dgtrs_lib.results import results_doc, write_results

    prof = get_profile(profile)
    if prof.stage1 is None:
        raise ValueError(f"profile {prof.name!r}: stage 1 is {prof.stage1_source}, not trained here; "
                         "the instrument check is for the miniature (smoke, cpu)")
    gates, details = [], {}
    # -- the prior
    stage1 = pretrain_stage1(prof, PRIOR_SEED)
    base = load_stage1(stage1)
    check = retrieval_check(base, prof, split="prior_validation")
    from dgtrs_lib.data.syndg import load_prior

    labels = load_prior(prof.name)["validation"]["scene"][: check["pairs"]]
    cls_only = class_only_retrieval(labels, np.arange(len(labels)), ks=(1, 5))
    gates.append(_gate("prior_heldout_t2i_R@1", check["long_t2i_R@1"], {"class_only": cls_only["t2i_R@1"]},
                       check["long_t2i_R@1"] > cls_only["t2i_R@1"], n=check["pairs"],
                       rule="prior's held-out alt-text t2i R@1 > class-only t2i R@1 on the same gallery"))
    details["prior_curve"] = read_curve(stage1)
    # -- its effective length and the stretch
    measured = measure_stage1_length(stage1, prof, model=base, device=prof.device())
    longest = measured["longest"]
    details["effective_length"] = measured
    choice = measured["choice"]
    gates.append(_gate("effective_length_and_keep", {"effective_length": measured["effective_length"],
                                                     "trained_rows": measured["trained_rows"],
                                                     "keep_configured": prof.keep, "ratio_configured": prof.ratio},
                       {"keep_chosen": choice["keep"], "ratio_chosen": choice["ratio"],
                        "context_chosen": choice["context"], "longest_long_tokens": longest},
                       prof.keep == choice["keep"] and prof.ratio == choice["ratio"],
                       rule="the model configuration's keep/ratio equal the ones chosen from the measurement"))
    # -- the fine-tuned DGCL model: long-text mR vs class-only (validation split of the pipeline run)
    record = get_or_train(prof)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        docs = {}
        for key in GATE_CONFIGS:
            run_one(VARIANT_BY_KEY[key], prof.name, seed, steps=prof.ablation_steps)
            docs[key] = arm_doc(prof.name, key, seed, prof.ablation_steps)
    from dgtrs_lib.evaluation.evaluate import evaluate

    final = evaluate(str(record.checkpoint), ["long_retrieval"], prof, run="instrument-dgcl-long", overwrite=True,
                     progress=False)
    mr, ref = _value(final, "long_text_retrieval", "SynDG-RS", "mR"), _reference(final, "long_text_retrieval",
                                                                                 "SynDG-RS", "mR", "class_only")
    gates.append(_gate("dgcl_long_mR", mr, {"class_only": ref}, ref is not None and mr > ref,
                       rule="the pipeline's DGCL model: long-text mR (SynDG-RS test) > class-only mR"))
    gates += task_gates(docs)
    rows = [{"task": "instrument", "dataset": g["gate"], "metric": "passed", "value": float(g["passed"])} for g in gates]
    doc = results_doc("instrument", prof.name, rows, gates=gates, details=details,
                      protocol={"configs": list(GATE_CONFIGS), "seed": seed, "prior_seed": PRIOR_SEED,
                                "ceiling": CEILING, "ceiling_fraction": CEILING_FRACTION,
                                "effective_fraction": EFFECTIVE_FRACTION, "ablation_steps": prof.ablation_steps})
    if write:
        doc["path"] = str(write_results(doc, results_dir(prof.name) / "instrument.json", overwrite=True))
    return doc


def format_gates(doc: dict) -> list[dict]:
    """The gates as flat table rows (gate, value, reference, passed) for display."""
    def fmt(x):
        if isinstance(x, dict):
            return ", ".join(f"{k} {fmt(v)}" for k, v in x.items())
        return f"{x:.4g}" if isinstance(x, float) else str(x)

    return [{"gate": g["gate"], "value": fmt(g["value"]), "reference": fmt(g["reference"]),
             "passed": "pass" if g["passed"] else "FAIL", "note": "" if g["passed"] else OPEN_GATES.get(g["gate"], "")}
            for g in doc["gates"]]


def main(argv=None) -> int:
    """The command line; returns the exit code (``dgtrs_lib.errors``)."""
    return run_cli(_main, argv)


def _main(argv) -> int:
    p = cli_parser(prog="python -m dgtrs_lib.experiments.instrument",
                   description="Measure the instrument gates of the miniature (issue #11) and write instrument.json.")
    p.add_argument("--profile", default=None, help="smoke | cpu (default: DGTRS_PROFILE or auto)")
    args = p.parse_args(argv)
    from dgtrs_lib.env import set_offline

    prof = get_profile(args.profile)
    set_offline()
    doc = run_instrument(prof)
    for row in format_gates(doc):
        print(f"{row['passed']:>4s}  {row['gate']:52s} {row['value']}  |  {row['reference']}")
    print(f"wrote {doc['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
