"""The report of a build -- the filter funnel, every filter's count, the fact check -- and its data card.

:func:`summarise` adds up the shard records (:mod:`dgtrs_lib.data.build.writer`) into one report:

* ``funnel``: the input, then for each filter of :data:`dgtrs_lib.data.build.filters.FILTERS` the
  rows it dropped (a row is dropped by the first filter it fails) and the rows left;
* ``flagged``: how many rows each filter flags on its own (the duplicate filters only look at rows
  that passed the others: a dropped row does not occupy a text);
* ``fact_check``: per granularity, the statements checked, the wrong ones and the hallucination
  rate (:func:`dgtrs_lib.data.build.facts.hallucination_rate`);
* ``leaks``: which training image matched which evaluation image; ``tokens``: the kept captions'
  token lengths (CLIP BPE).

:func:`data_card` renders the report and the build's configuration as a Hugging Face-style dataset
card (YAML front matter + sections, the format of ``data_cards/``): source, captioner and its
provenance, filters with their settings, the funnel, known limits.

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from __future__ import annotations

from dgtrs_lib.data.build.filters import FILTERS
from dgtrs_lib.io import now, versions

FILTER_WORDS = {
    "empty_or_refusal": "empty caption, refusal or chat boilerplate",
    "length": "token length outside the windows",
    "fact_check": "a stated count, colour, class or land-cover share contradicts the metadata",
    "clip_agreement": "image-text CLIP similarity below the threshold",
    "eval_leak": "near copy (pHash) of an evaluation image",
    "exact_duplicate": "long description identical to a kept one",
    "near_duplicate": "long description a near duplicate (word 3-gram Jaccard) of a kept one",
}


def summarise(records: list[dict], n_input: int, config: dict | None = None) -> dict:
    """One report from the shard records (module doc)."""
    dropped = {f: 0 for f in FILTERS}
    flagged = {f: 0 for f in FILTERS}
    facts = {g: {"captions": 0, "checked_captions": 0, "statements": 0, "wrong": 0, "captions_with_error": 0}
             for g in ("short", "long")}
    leaks, short_tokens, long_tokens, clip = [], [], [], []
    kept = captioned = 0
    seconds = {"caption": 0.0, "filters": 0.0, "write": 0.0}
    for r in records:
        kept += r["kept"]
        captioned += r["rows"]
        for f in FILTERS:
            dropped[f] += r["dropped"].get(f, 0)
            flagged[f] += r["flagged"].get(f, 0)
        for g in facts:
            for k in facts[g]:
                facts[g][k] += r["fact_check"][g][k]
        leaks += r.get("leaks", [])
        short_tokens += r.get("short_tokens", [])
        long_tokens += r.get("long_tokens", [])
        clip += [c for c in r.get("clip_scores", []) if c is not None]
        for k in seconds:
            seconds[k] += r.get("seconds", {}).get(k, 0.0)
    for g in facts.values():
        g["rate"] = g["wrong"] / g["statements"] if g["statements"] else None
        g["share_with_error"] = g["captions_with_error"] / g["checked_captions"] if g["checked_captions"] else None
    funnel = [{"step": "input", "dropped": 0, "rows": n_input}]
    left = captioned  # the rows of the finished shards
    if captioned != n_input:
        funnel.append({"step": "not yet built (unfinished shards)", "dropped": n_input - captioned, "rows": left})
    for f in FILTERS:
        left -= dropped[f]
        funnel.append({"step": f, "dropped": dropped[f], "rows": left})

    def stats(xs):
        return {"n": len(xs), "mean": (sum(xs) / len(xs)) if xs else None, "max": max(xs) if xs else None,
                "min": min(xs) if xs else None}

    return {"input_rows": n_input, "built_rows": captioned, "kept": kept, "shards": len(records),
            "funnel": funnel, "dropped": dropped, "flagged": flagged, "fact_check": facts, "leaks": leaks,
            "tokens": {"short": stats(short_tokens), "long": stats(long_tokens)},
            "clip": stats(clip), "seconds": seconds, "config": config or {}}


def funnel_rows(report: dict) -> list[dict]:
    """The funnel as table rows (step, what it checks, dropped, rows left)."""
    return [{"step": s["step"], "checks": FILTER_WORDS.get(s["step"], ""), "dropped": s["dropped"],
             "rows left": s["rows"]} for s in report["funnel"]]


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def data_card(report: dict, config: dict, *, name: str | None = None) -> str:
    """A Hugging Face-style data card of a build (module doc)."""
    cap = config.get("captioner", {})
    filters = config.get("filters", {})
    n = report["kept"]
    size = "n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000 else "100K<n<1M" \
        if n < 1_000_000 else "1M<n<10M"
    title = name or f"Dual-granularity captions of {config.get('input', 'an image set')}"
    lines = ["---", f"pretty_name: {title}", "license: other", "task_categories: [image-to-text, text-to-image]",
             f"size_categories: [{size}]", "annotations_creators: [machine-generated]", "---", "",
             f"# {title}", "",
             "Generated by `python -m dgtrs_lib.data.build` (dgtrs_lib.data.build, the DGTRSD recipe of "
             "arXiv:2503.19311, section 3, as a tool); this card is written from the build's report "
             f"({report.get('date') or now()[:10]}, dgtrs-lib {versions(['dgtrs-lib'])['dgtrs-lib']}).", "",
             "## Source", f"- Input: `{config.get('input')}` ({report['input_rows']} images).",
             f"- Licence and attribution: those of the input images{'; ' + config['attribution'] if config.get('attribution') else ''}.",
             "", "## Captioner",
             f"- Kind: `{cap.get('captioner')}`; model: `{cap.get('model_id')}`"
             + (f" at revision `{cap.get('revision')}`" if cap.get("revision") else "") + ".",
             f"- Prompt hash: `{cap.get('prompt_hash') or 'none (no prompts)'}`; settings: `{cap.get('settings')}`.",
             "- Every row's `meta` (JSON) holds this provenance, the input metadata and the filter scores.",
             "", "## Schema",
             "`image_id: string, image: Image, short_caption: string, long_caption: string, scene: string, "
             "meta: string (JSON)` -- the dual schema of `dgtrs_lib.data.schema`, in parquet shards under `data/`.",
             "", "## Filters and the funnel",
             f"Settings: `{filters}`; evaluation sets checked for leaks: "
             f"{', '.join(f'`{e}`' for e in config.get('eval_sets', [])) or 'none'}; CLIP model for the agreement "
             f"score: `{config.get('clip') or 'none'}`.", "",
             "| step | checks | dropped | rows left |", "|---|---|---:|---:|"]
    for r in funnel_rows(report):
        lines.append(f"| {r['step']} | {r['checks']} | {r['dropped']} | {r['rows left']} |")
    fc = report["fact_check"]
    lines += ["", "## Fact check (statements of the captions against the metadata)",
              f"- Short captions: {fc['short']['statements']} statements checked, {fc['short']['wrong']} wrong "
              f"(hallucination rate {_pct(fc['short']['rate'])}).",
              f"- Long descriptions: {fc['long']['statements']} statements checked, {fc['long']['wrong']} wrong "
              f"(hallucination rate {_pct(fc['long']['rate'])}).",
              "", "## Known limits",
              "- Captions are machine-written; the fact check covers only the counts, colours, classes and "
              "land-cover shares its patterns recognise, and only where metadata exists.",
              "- The leakage check finds near copies (pHash + thumbnail RMSE); a crop or a rotation of an "
              "evaluation image is not found.",
              f"- Evaluation sets not present locally were not checked (checked: "
              f"{', '.join(config.get('eval_sets', [])) or 'none'})."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the book's results file
def results_rows(report: dict, dataset: str) -> list[dict]:
    """The report as rows of the book's results layout (task ``dataset_build``)."""
    rows = [{"task": "dataset_build", "dataset": dataset, "metric": "input", "value": report["input_rows"]},
            {"task": "dataset_build", "dataset": dataset, "metric": "kept", "value": report["kept"]}]
    for s in report["funnel"][1:]:
        rows.append({"task": "dataset_build", "dataset": dataset, "metric": f"dropped:{s['step']}",
                     "value": s["dropped"], "n": s["rows"]})
    for f, v in report["flagged"].items():
        rows.append({"task": "dataset_build", "dataset": dataset, "metric": f"flagged:{f}", "value": v})
    for g, fc in report["fact_check"].items():
        rows.append({"task": "dataset_build", "dataset": dataset, "metric": f"hallucination_rate:{g}",
                     "value": fc["rate"], "n": fc["statements"]})
    return rows


def write_build_results(report: dict, profile, run: str, dataset: str, **extra) -> dict:
    """``results/<profile>/<run>.json`` (+ csv) of a build: the rows above, the funnel, the config."""
    from dgtrs_lib.env import results_dir
    from dgtrs_lib.results import results_doc, write_results

    doc = results_doc(run, str(profile), results_rows(report, dataset), protocol=report.get("config", {}),
                      funnel=report["funnel"], flagged=report["flagged"], fact_check=report["fact_check"],
                      leaks=report["leaks"], tokens=report["tokens"], clip=report["clip"], **extra)
    path = write_results(doc, results_dir(profile) / f"{run}.json")
    return {**doc, "path": str(path)}


def funnel_sentence(doc: dict) -> str:
    """One sentence of a build's funnel, every number read from the results document."""
    funnel = doc["funnel"]
    n, kept = funnel[0]["rows"], funnel[-1]["rows"]
    steps = [s for s in funnel[1:] if s["dropped"]]
    parts = [f"{s['dropped']} by `{s['step']}`" for s in steps]
    dropped = ("; the filters dropped " + ", ".join(parts)) if parts else "; no filter dropped any"
    return (f"Of {n} input images, {kept} ({100 * kept / max(n, 1):.1f} %) were kept{dropped}. "
            f"{len(doc['leaks'])} image(s) were near copies of an evaluation image.")
