"""The paper's claims, tested in miniature: KPS vs naive stretching, and the curriculum vs single
granularity and fixed weighting, on all four zero-shot tasks, over several seeds.

DGTRS-CLIP (arXiv:2503.19311, ``chen2025dgtrs``) claims in its method (KPS, DGCL) and experiment
sections (its own ablation tables are not public) that

* **(KPS)** stretching the text positions with KPS lets CLIP use long descriptions without losing
  what it knew -- here: KPS beats naive linear interpolation of all positions, with the same
  curriculum, and keeps short-text ability;
* **(DGCL)** training with both granularities under a curriculum beats training on either alone and
  beats a fixed weighting.

The study (issue #7) runs on the embedded SynDG-RS data with the miniature pipeline
(``dgtrs_lib.experiments.pipeline``): for each seed, one stage-1 model (short-caption pre-training, 32-token
context), then these configurations, each evaluated by ``dgtrs_lib.evaluation.evaluate`` on all four tasks:

====  =====================================================================
a     base: stage 1 only, base context (long descriptions truncated to 32 tokens)
b     KPS + long only
c     KPS + short only
d     KPS + fixed 1:1 (Long-CLIP)
e     KPS + DGCL, the default schedule (cosine), and the other curricula (linear, two_stage)
f     naive linear stretch of all positions (nothing frozen) + the default DGCL
g     KPS + the default DGCL + Long-CLIP's PCA short branch (k = 32, label smoothing 0.1)
====  =====================================================================

Every configuration shares ONE stage-1 model (the prior, seed ``PRIOR_SEED``: like OpenAI CLIP,
it is pre-trained once; on the cpu profile it costs about ten minutes) and the fine-tuning budget
(steps, batch, learning rate of the profile); the seed changes the fine-tuning data order. Results are per seed
in ``results/<profile>/ablations.json`` (+ CSV), with mean and standard deviation over seeds and a
claim table. A claim "holds" for a task when the paired difference (same seed) of the headline
metric is positive for every seed; "mixed" when the mean difference is positive but not every
seed agrees; otherwise "does not hold". Nothing in the evaluation is tuned to any configuration.

Resumable: each (configuration, seed) writes its evaluation file under
``results/<profile>/ablations/``; a re-run skips what exists. ``python -m dgtrs_lib.experiments.ablations``.

Taught in: Ablations: testing the paper's claims in miniature (notebooks/08-ablations.ipynb)
"""
from __future__ import annotations

import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from dgtrs_lib.env import results_dir
from dgtrs_lib.errors import cli_parser, positive_int, run_cli
from dgtrs_lib.io import atomic_write_text
from dgtrs_lib.profiles import get_profile, resolve_profile

# The columns of the study: (task, dataset, metric) -> label. Each task's headline metric on the
# generated data, and on the real Sentinel-2 imagery where the task applies to it.
HEADLINE = {
    ("long_text_retrieval", "SynDG-RS", "mR"): "long-text retrieval mR",
    ("short_text_retrieval", "SynDG-RS", "mR"): "short-text retrieval mR",
    ("zero_shot_classification", "SynDG-RS", "top1"): "classification top-1 (SynDG-RS)",
    ("zero_shot_classification", "Sentinel-2", "top1"): "classification top-1 (Sentinel-2)",
    ("semantic_localization", "SynDG-RS", "Rmi"): "SeLo Rmi (SynDG-RS)",
    ("semantic_localization", "Sentinel-2", "Rmi"): "SeLo Rmi (Sentinel-2)",
}


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    finetune: dict | None = field(default=None)  # finetune_variant keywords; None = the stage-1 base


VARIANTS = (
    Variant("a", "base: short pre-training, 32-token context"),
    Variant("b", "KPS + long only", {"schedule": "long_only"}),
    Variant("c", "KPS + short only", {"schedule": "short_only"}),
    Variant("d", "KPS + fixed 1:1 (Long-CLIP)", {"schedule": "fixed"}),
    Variant("e", "KPS + DGCL cosine (default)", {"schedule": "cosine"}),
    Variant("e-linear", "KPS + DGCL linear short->long", {"schedule": "linear"}),
    Variant("e-two_stage", "KPS + DGCL two-stage switch", {"schedule": "two_stage"}),
    Variant("f", "naive linear stretch + DGCL cosine", {"schedule": "cosine", "stretch": "linear"}),
    Variant("g", "KPS + DGCL cosine + PCA short branch", {"schedule": "cosine", "pca": True}),
)
VARIANT_BY_KEY = {v.key: v for v in VARIANTS}

# (claim, better configuration, worse configuration)
CLAIMS = (
    ("KPS beats naive stretching (same curriculum)", "e", "f"),
    ("curriculum beats long-only", "e", "b"),
    ("curriculum beats short-only", "e", "c"),
    ("curriculum beats fixed 1:1 weighting", "e", "d"),
    ("fine-tuned KPS model beats the base model", "e", "a"),
    ("PCA short branch helps (Long-CLIP) vs not (DGTRS)", "g", "e"),
)

PRIOR_SEED = 0  # every configuration and seed fine-tunes the same prior (issue #11)
TIE = 1e-6  # differences smaller than this are ties (identical predictions), never a win

# Fine-tuning steps per configuration in the study: the profile's ``ablation_steps`` (None: its
# pipeline setting). The cpu study trains 8 fine-tuned configurations x 3 seeds within an hour on
# 2 cores, so each gets 150 steps (the main pipeline: 400); every configuration gets the same budget.
def _model_for(variant: Variant, profile: str, seed: int, steps: int | None):
    """(model, preprocess, description) of one configuration, training what is missing; the
    model is the one just trained (in memory) or read from its checkpoint."""
    from dgtrs_lib.experiments.pipeline import finetune_variant, pretrain_stage1
    from dgtrs_lib.model.transforms import make_preprocess

    stage1 = pretrain_stage1(profile, PRIOR_SEED)
    record = stage1 if variant.finetune is None else finetune_variant(profile, stage1, seed=seed, steps=steps,
                                                                     evaluate=False, **variant.finetune)
    model = record.load(get_profile(profile).device())
    return model, make_preprocess(model.image_size), {"checkpoint": record.source, **(variant.finetune or {})}


def run_one(variant: Variant, profile: str, seed: int, *, steps: int | None = None, tasks=None) -> list[dict]:
    """Evaluate one (configuration, seed), cached in ``results/<profile>/ablations/``."""
    from dgtrs_lib.evaluation.evaluate import TASKS, evaluate
    from dgtrs_lib.model.tokenizer import TruncationWarning

    out = results_dir(profile) / "ablations" / f"{variant.key}-s{seed}.json"
    if out.exists():
        doc = json.loads(out.read_text())
    else:
        model, preprocess, info = _model_for(variant, profile, seed, steps)
        with warnings.catch_warnings():  # the base model truncates long text by design (row a)
            warnings.simplefilter("ignore", TruncationWarning)
            evaluate(model=(model, preprocess), model_source=f"ablation:{variant.key}:s{seed}",
                     tasks=tasks or TASKS, profile=profile, out=out, run=f"ablation-{variant.key}-s{seed}", progress=False)
        doc = json.loads(out.read_text())  # as written (JSON-clean), plus what trained the model
        doc["model"].update(info)
        atomic_write_text(out, json.dumps(doc, indent=2))
    return [{**r, "config": variant.key, "seed": seed} for r in doc["results"]]


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and (sample) standard deviation over seeds per (config, task, dataset, metric)."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["config"], r["task"], r["dataset"], r["metric"]), []).append(float(r["value"]))
    out = []
    for (config, task, dataset, metric), vals in sorted(groups.items()):
        arr = np.asarray(vals, dtype=float)
        out.append({"config": config, "label": VARIANT_BY_KEY[config].label if config in VARIANT_BY_KEY else config,
                    "task": task, "dataset": dataset, "metric": metric, "mean": float(arr.mean()),
                    "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "n_seeds": len(arr)})
    return out


def _headline(rows: list[dict], config: str, column: tuple) -> dict[int, float]:
    return {r["seed"]: float(r["value"]) for r in rows if r["config"] == config and (r["task"], r["dataset"], r["metric"]) == column}


def claim_table(rows: list[dict]) -> list[dict]:
    """Paired (same seed) differences of every headline column for every claim."""
    table = []
    for claim, better, worse in CLAIMS:
        for column, label in HEADLINE.items():
            a, b = _headline(rows, better, column), _headline(rows, worse, column)
            seeds = sorted(set(a) & set(b))
            if not seeds:
                continue
            diffs = np.array([a[s] - b[s] for s in seeds])
            if np.all(diffs > TIE):
                verdict = "holds"
            elif diffs.mean() > TIE:
                verdict = "mixed"
            else:
                verdict = "does not hold"
            table.append({"claim": claim, "better": better, "worse": worse, "task": column[0], "metric": label,
                          "mean_diff": float(diffs.mean()), "min_diff": float(diffs.min()), "max_diff": float(diffs.max()),
                          "n_seeds": len(seeds), "verdict": verdict})
    return table


def run_ablations(profile: str | None = None, seeds=None, variants=None, *, steps: int | None = None,
                  tasks=None, progress: bool = True) -> dict:
    """Run (or resume) the study; write ``results/<profile>/ablations.json`` (+ CSV); return it."""
    from dgtrs_lib.results import results_doc, write_results

    prof = get_profile(profile)
    profile = prof.name
    seeds = tuple(seeds) if seeds is not None else prof.ablation_seeds
    steps = steps if steps is not None else prof.ablation_steps
    chosen = [VARIANT_BY_KEY[k] for k in variants] if variants else list(VARIANTS)
    rows, timings = [], {}
    from tqdm.auto import tqdm

    jobs = [(s, v) for s in seeds for v in chosen]
    t_all = time.time()
    for seed, variant in tqdm(jobs, desc=f"ablations ({profile})", disable=not progress):
        t0 = time.time()
        rows += run_one(variant, profile, seed, steps=steps, tasks=tasks)
        timings[f"{variant.key}-s{seed}"] = round(time.time() - t0, 1)
    summary, claims = summarize(rows), claim_table(rows)
    protocol = {"variants": {v.key: {"label": v.label, "finetune": v.finetune} for v in chosen}, "seeds": list(seeds),
                "stage1": dict(prof.stage1) if prof.stage1 else None, "stage2": dict(prof.stage2),
                "steps_override": steps, "model": prof.model, "stretch": {"keep": prof.keep, "ratio": prof.ratio}, "headline": [list(k) + [v] for k, v in HEADLINE.items()],
                "claim_rule": f"holds: paired difference > {TIE} for every seed; mixed: mean difference > {TIE} only; else does not hold",
                "evaluation": "dgtrs_lib.evaluation.evaluate defaults (SynDG-RS test, Sentinel-2 patches, SynDG + Sentinel SeLo)",
                "generator": _generator_version(), "prior_seed": PRIOR_SEED}
    doc = results_doc("ablations", profile, rows, model={"name": prof.model, "study": "ablations"},
                      protocol=protocol, summary=summary, claims=claims, timings_s=timings,
                      wall_s=round(time.time() - t_all, 1))
    doc["path"] = str(write_results(doc, results_dir(profile) / "ablations.json"))
    return doc


def _generator_version() -> str:
    from dgtrs_lib.data.syndg import VERSION

    return VERSION


def load_ablations(profile: str) -> dict | None:
    """The latest study of ``profile``, else the maintainers' committed reference run, else None.

    ``doc["stale"]`` is True when the study was run on another SynDG-RS generator version than
    the current one (older studies did not record it): its numbers describe other data."""
    from dgtrs_lib.env import repo_root

    for path in (results_dir(profile) / "ablations.json", repo_root() / "results" / "reference" / f"ablations-{profile}.json"):
        if path.exists():
            doc = json.loads(path.read_text())
            doc["path"] = str(path)
            doc["stale"] = doc.get("protocol", {}).get("generator") != _generator_version()
            return doc
    return None


def format_table(summary: list[dict]) -> list[dict]:
    """One row per configuration: headline metrics as 'mean ± std' strings (for display)."""
    by_config: dict[str, dict] = {}
    for s in summary:
        label = HEADLINE.get((s["task"], s["dataset"], s["metric"]))
        if label:
            row = by_config.setdefault(s["config"], {"config": s["config"], "label": s["label"], "seeds": s["n_seeds"]})
            row[label] = f"{s['mean']:.2f} ± {s['std']:.2f}" if s["metric"] != "Rmi" else f"{s['mean']:.4f} ± {s['std']:.4f}"
    order = {v.key: i for i, v in enumerate(VARIANTS)}
    return sorted(by_config.values(), key=lambda r: order.get(r["config"], math.inf))


def main(argv=None) -> int:
    """The command line; returns the exit code (``dgtrs_lib.errors``: one line per error)."""
    return run_cli(_main, argv)


def _main(argv) -> int:
    p = cli_parser(prog="python -m dgtrs_lib.experiments.ablations",
                   description="The miniature ablation study of DGTRS-CLIP's claims (issue #7).")
    p.add_argument("--profile", default=None, help="smoke | cpu (default: DGTRS_PROFILE or auto)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: 0 1 2)")
    p.add_argument("--variants", nargs="+", default=None, choices=list(VARIANT_BY_KEY), help="subset of configurations")
    p.add_argument("--steps", type=positive_int, default=None, help="fine-tuning steps per configuration (default: the profile's ablation_steps)")
    args = p.parse_args(argv)
    from dgtrs_lib.env import set_offline

    get_profile(args.profile)                 # checked before anything is trained
    set_offline()
    doc = run_ablations(args.profile, args.seeds, args.variants, steps=args.steps)
    for row in format_table(doc["summary"]):
        print(json.dumps(row))
    for c in doc["claims"]:
        print(f"{c['verdict']:>14s}  {c['claim']:52s} {c['metric']:32s} diff {c['mean_diff']:+.3f} [{c['min_diff']:+.3f}, {c['max_diff']:+.3f}]")
    print(f"wrote {doc.get('path', results_dir(resolve_profile(args.profile)) / 'ablations.json')} in {doc['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
