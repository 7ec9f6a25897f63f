"""Sentences that say what a result shows, written from the results themselves.

A chapter never types a measured number into its prose: after each result, a cell renders one
of these sentences from the results file (or the rows) just read, so the text and the table can
not disagree. Each function takes the rows of a results file (``{task, dataset, metric, value,
n}``, ``dgtrs_lib.results``) or the contrasts of a study and returns Markdown;
``tests/test_book_pages.py`` checks every number in the sentences against the committed
reference results.

Taught in: Long-text cross-modal retrieval (notebooks/04-long-text-retrieval.ipynb)
"""
from __future__ import annotations

from collections import Counter

TASK_WORDS = {"long_text_retrieval": "long descriptions", "short_text_retrieval": "short captions"}


def _value(rows: list[dict], task: str, dataset: str, metric: str):
    return next((r for r in rows if r["task"] == task and r["dataset"] == dataset
                 and r["metric"] == metric), None)


def _datasets(rows: list[dict], task: str) -> list[str]:
    return list(dict.fromkeys(r["dataset"] for r in rows if r["task"] == task and r["dataset"] != "mean"))


def retrieval_sentence(rows: list[dict], task: str = "long_text_retrieval") -> str:
    """R@1 both ways against chance (100 / number of candidates), and mR, per dataset."""
    out = []
    for ds in _datasets(rows, task):
        i2t, t2i = _value(rows, task, ds, "i2t_R@1"), _value(rows, task, ds, "t2i_R@1")
        mr = _value(rows, task, ds, "mR")
        if not (i2t and t2i and mr):
            continue
        n = i2t.get("n") or mr.get("n")
        chance = (f" (chance: {100 / n:.2f} % with {n} candidates)"
                  if n and task == "long_text_retrieval" else "")
        out.append(f"On {ds}, the model puts the right {TASK_WORDS.get(task, 'text')[:-1]} first for "
                   f"{i2t['value']:.2f} % of the images and the right image first for "
                   f"{t2i['value']:.2f} % of the texts{chance}; mR, the mean of the six recalls, is "
                   f"{mr['value']:.2f}.")
    return " ".join(out) or "No retrieval results in this file."


def change_sentence(what: str, before_label: str, before: float, after_label: str, after: float,
                    unit: str = "") -> str:
    """``what`` goes from ``before`` to ``after``, said with its direction."""
    if abs(after - before) < 1e-9:
        verb = "stays at"
        return f"{what} {verb} {before:.2f}{unit} with {before_label} and with {after_label}."
    verb = "rises" if after > before else "falls"
    return (f"{what} {verb} from {before:.2f}{unit} ({before_label}) to {after:.2f}{unit} "
            f"({after_label}), a change of {after - before:+.2f}{unit}.")


def classification_sentence(rows: list[dict], classes: dict[str, int] | None = None) -> str:
    """Top-1 per dataset against chance (100 / number of classes)."""
    out = []
    for ds in _datasets(rows, "zero_shot_classification"):
        top1 = _value(rows, "zero_shot_classification", ds, "top1")
        if not top1:
            continue
        k = (classes or {}).get(ds)
        chance = f" against {100 / k:.1f} % by chance ({k} classes)" if k else ""
        out.append(f"{ds}: top-1 {top1['value']:.2f} %{chance}")
    mean = _value(rows, "zero_shot_classification", "mean", "top1")
    text = "; ".join(out)
    if mean:
        text += f". The mean top-1 over the datasets, the paper's \"average accuracy\", is {mean['value']:.2f} %"
    return (text + ".") if text else "No classification results in this file."


def selo_sentence(rows: list[dict]) -> str:
    """Rmi and its parts per dataset, with which way each is better."""
    out = []
    for ds in _datasets(rows, "semantic_localization"):
        vals = {m: _value(rows, "semantic_localization", ds, m) for m in ("Rsu", "Ras", "Rda", "Rmi")}
        if not all(vals.values()):
            continue
        v = {m: r["value"] for m, r in vals.items()}
        out.append(f"On {ds}, Rmi is {v['Rmi']:.4f} (Rsu {v['Rsu']:.4f}, higher is better; Ras "
                   f"{v['Ras']:.4f}, lower is better; Rda {v['Rda']:.4f}).")
    return " ".join(out) or "No semantic localization results in this file."


def _fmt(value: float, metric: str) -> str:
    return f"{value:+.4f}" if metric == "Rmi" else f"{value:+.2f}"


def verdict_counts(contrasts: list[dict]) -> dict[str, Counter]:
    """Per claim, how many endpoints it holds / is reversed / is inconclusive on (primary
    contrasts only when the rows say which family they belong to)."""
    out: dict[str, Counter] = {}
    for c in contrasts:
        if c.get("family", "primary") == "primary":
            out.setdefault(c["claim"], Counter())[c["verdict"]] += 1
    return out


def contrast_sentence(c: dict) -> str:
    """One endpoint of a contrast in words: difference, corrected interval, bootstrap, MDE, verdict."""
    m = c["metric"]
    low, high = c.get("corrected_low", c.get("ci_low")), c.get("corrected_high", c.get("ci_high"))
    which = "Holm-corrected" if c.get("family") == "primary" else "uncorrected"
    boot = (f"; per-query bootstrap [{_fmt(c['boot_low'], m)}, {_fmt(c['boot_high'], m)}]"
            if "boot_low" in c else "")
    return (f"{c['label']}: {_fmt(c['mean_diff'], m)} ({which} 95 % interval [{_fmt(low, m)}, {_fmt(high, m)}]"
            f"{boot}; detectable effect {abs(c['mde']):.2g}) -- **{c['verdict']}**")


def study_sentences(doc: dict) -> str:
    """The primary claims of a claims study (``dgtrs_lib.experiments.ablations``) in words, every
    number and verdict read from the results document: one bullet per claim with its overall
    verdict, and one sub-bullet per endpoint."""
    from dgtrs_lib.experiments.ablations import unconverged_runs

    n_seeds = len(doc["protocol"]["seeds"])
    lines = [f"With {n_seeds} fine-tuning seeds per arm on one prior:", ""]
    for claim in doc["claims"]:
        bad, runs = unconverged_runs(doc, claim)
        note = "" if not runs else (
            f" All {runs} runs of the two arms passed the convergence check." if not bad else
            f" {len(bad)} of the {runs} runs of the two arms had not converged "
            f"({', '.join(bad)}): the verdict compares arms mid-descent.")
        lines.append(f"- **{claim['claim']}** (`{claim['better']}` vs `{claim['worse']}`): "
                     f"**{claim['verdict']}**.{note}")
        for c in doc["contrasts"]:
            if c["family"] == "primary" and c["claim"] == claim["claim"]:
                lines.append(f"  - {contrast_sentence(c)}")
    return "\n".join(lines)


def claim_summary(doc: dict) -> str:
    """One sentence: which primary claims held, which reversed, which stayed inconclusive."""
    groups: dict[str, list[str]] = {}
    for c in doc["claims"]:
        groups.setdefault(c["verdict"], []).append(f"*{c['claim']}*")
    parts = [f"{verdict}: {', '.join(names)}" for verdict, names in groups.items()]
    return "In miniature -- " + "; ".join(parts) + "." if parts else "No claims study results."
