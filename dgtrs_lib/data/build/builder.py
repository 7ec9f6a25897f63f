"""Build a dual-granularity dataset: caption, filter, check for leaks, write shards -- resumably.

:func:`build_dataset` is the recipe of DGTRSD (arXiv:2503.19311, section 3: images captioned twice,
a short caption and a long description) as one function. For each shard of ``shard_size`` images
of an :class:`~dgtrs_lib.data.build.inputs.InputSet`, in order:

1. the captioner writes both granularities (:mod:`dgtrs_lib.data.build.captioners`);
2. every row is scored by the filters (:mod:`dgtrs_lib.data.build.filters`), in the funnel's
   order: the pHash leakage check against the evaluation sets (:mod:`dgtrs_lib.data.build.leakage`),
   refusals, token windows, the fact check against the image's metadata, the CLIP image-text
   agreement (when a CLIP model is given), then exact and near-duplicate long descriptions among the
   rows kept so far (this shard and all earlier ones);
3. the kept rows are written as one parquet shard, then the shard's record (counts, the dropped
   rows and why, fact-check totals, timings) -- atomically (:mod:`dgtrs_lib.data.build.writer`).

A rerun into the same folder with the same configuration skips the finished shards (the index of
kept texts is restored from them), so an interrupted build resumes where it stopped; a different
configuration is a ``ConflictError`` naming what changed (``overwrite=True`` starts again). The
folder is held with ``io.locked(out, "build")`` while a build runs. At the end the report
(``report.json``) and the data card (``README.md``) are written from the records
(:mod:`dgtrs_lib.data.build.report`).

Each kept row's ``meta`` is JSON with ``input`` (the image's metadata), ``provenance`` (captioner,
model id, revision, prompt hash, generation settings) and ``scores`` (token counts, fact checks,
CLIP similarities, the nearest duplicate's Jaccard, the leak test).

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from dgtrs_lib.data.build.facts import check_caption
from dgtrs_lib.data.build.filters import FILTERS, DuplicateIndex, FilterConfig, length_problem, refusal, token_counts
from dgtrs_lib.data.build.leakage import HashIndex, find_matches
from dgtrs_lib.data.build.report import data_card, summarise
from dgtrs_lib.data.build.writer import CARD_FILE, CONFIG_FILE, REPORT_FILE, ShardStore
from dgtrs_lib.errors import ConflictError, UsageError
from dgtrs_lib.io import atomic_write_json, atomic_write_text, locked, png_bytes

BUILD_VERSION = "1"
# what must match for a rerun to resume (anything else -- progress flags, timings -- may differ)
RESUME_KEYS = ("version", "input", "n_input", "ids_sha1", "captioner", "filters", "shard_size", "eval_sets",
               "clip")


def _ids_sha1(ids) -> str:
    return hashlib.sha1("\n".join(ids).encode("utf-8")).hexdigest()


def _empty_fact_totals() -> dict:
    return {"captions": 0, "checked_captions": 0, "statements": 0, "wrong": 0, "captions_with_error": 0}


def _add_fact(total: dict, check) -> None:
    total["captions"] += 1
    if check.checked:
        total["checked_captions"] += 1
        total["captions_with_error"] += bool(check.wrong)
    total["statements"] += check.checked
    total["wrong"] += len(check.wrong)


def _check_config(out: Path, config: dict, overwrite: bool) -> str:
    """``"new"``, ``"resume"`` or ``"overwrite"``; a ConflictError when the folder holds another build."""
    path = out / CONFIG_FILE
    if not path.exists():
        return "new"
    if overwrite:
        return "overwrite"
    old = json.loads(path.read_text(encoding="utf-8"))
    changed = [k for k in RESUME_KEYS if old.get(k) != config.get(k)]
    if changed:
        raise ConflictError(f"{out}: holds a build with another {', '.join(changed)}; expected the same "
                            "configuration to resume it, or --overwrite (overwrite=True) to start again")
    return "resume"


def shard_rows(items, captions, images, cfg: FilterConfig, dedup: DuplicateIndex, leak_index: HashIndex | None,
               clip=None, classes=None, provenance: dict | None = None) -> tuple[dict, dict]:
    """Score one shard's captions with every filter; returns (kept rows in the dual columns, record)."""
    n = len(items)
    shorts, longs = [c.short for c in captions], [c.long for c in captions]
    t0 = time.perf_counter()
    s_tok, l_tok = token_counts(shorts, longs)
    flags: list[dict] = [{} for _ in range(n)]
    scores: list[dict] = [{"short_tokens": s_tok[i], "long_tokens": l_tok[i]} for i in range(n)]
    facts = {"short": _empty_fact_totals(), "long": _empty_fact_totals()}
    for i in range(n):
        bad = refusal(shorts[i]) or refusal(longs[i])
        if bad:
            flags[i]["empty_or_refusal"] = f"'{bad}'"
        problem = length_problem(s_tok[i], l_tok[i], cfg)
        if problem:
            flags[i]["length"] = problem
        fs, fl = check_caption(shorts[i], items[i].meta, classes), check_caption(longs[i], items[i].meta, classes)
        _add_fact(facts["short"], fs)
        _add_fact(facts["long"], fl)
        scores[i]["fact_short"], scores[i]["fact_long"] = fs.to_dict(), fl.to_dict()
        if len(fs.wrong) + len(fl.wrong) > cfg.max_wrong:
            flags[i]["fact_check"] = "; ".join(fs.wrong + fl.wrong)
    clip_scores = [None] * n
    if clip is not None and n:
        cs, cl = clip.scores(images, shorts), clip.scores(images, longs)
        for i in range(n):
            scores[i]["clip_short"], scores[i]["clip_long"] = round(float(cs[i]), 5), round(float(cl[i]), 5)
            clip_scores[i] = min(scores[i]["clip_short"], scores[i]["clip_long"])
            if cfg.clip_threshold is not None and clip_scores[i] < cfg.clip_threshold:
                flags[i]["clip_agreement"] = f"similarity {clip_scores[i]:.3f} < {cfg.clip_threshold}"
    leaks = []
    if leak_index is not None and len(leak_index) and n:
        query = HashIndex().add(images, [it.image_id for it in items])
        matches = find_matches(query, leak_index, max_distance=cfg.leak_max_distance, max_rmse=cfg.leak_max_rmse)
        for i, m in enumerate(matches):
            scores[i]["leak"] = m
            if m:
                flags[i]["eval_leak"] = f"near copy of {m['match']} (pHash distance {m['distance']}, RMSE {m['rmse']})"
                leaks.append({"image_id": items[i].image_id, **m})
    dup = dedup.check(longs, [it.image_id for it in items], skip=[bool(f) for f in flags])
    for i, d in enumerate(dup):
        scores[i]["jaccard"] = d["jaccard"]
        if d["exact"]:
            flags[i]["exact_duplicate"] = f"same long description as {d['exact']}"
        elif d["near"]:
            flags[i]["near_duplicate"] = f"Jaccard {d['jaccard']} with {d['near']}"
    filter_s = time.perf_counter() - t0
    rows = {k: [] for k in ("image_id", "image", "short_caption", "long_caption", "scene", "meta")}
    dropped_rows, dropped = [], {f: 0 for f in FILTERS}
    flagged = {f: sum(1 for fl in flags if f in fl) for f in FILTERS}
    for i in range(n):
        if flags[i]:
            first = next(f for f in FILTERS if f in flags[i])
            dropped[first] += 1
            dropped_rows.append({"image_id": items[i].image_id, "filter": first, "reasons": flags[i],
                                 "short_caption": shorts[i], "long_caption": longs[i]})
            continue
        rows["image_id"].append(items[i].image_id)
        rows["image"].append({"bytes": png_bytes(images[i]), "path": None})
        rows["short_caption"].append(shorts[i])
        rows["long_caption"].append(longs[i])
        rows["scene"].append(items[i].scene or "")
        rows["meta"].append(json.dumps({"input": items[i].meta, "provenance": provenance or {},
                                        "notes": captions[i].notes, "scores": scores[i]}, default=str))
    record = {"rows": n, "kept": len(rows["image_id"]), "dropped": dropped, "flagged": flagged,
              "fact_check": facts, "leaks": leaks, "dropped_rows": dropped_rows,
              "short_tokens": [s_tok[i] for i in range(n) if not flags[i]],
              "long_tokens": [l_tok[i] for i in range(n) if not flags[i]],
              "clip_scores": clip_scores, "seconds": {"filters": round(filter_s, 4)}}
    return rows, record


def build_dataset(inputs, captioner, out, *, filters: FilterConfig | None = None, shard_size: int = 64,
                  eval_sets=(), leak_index: HashIndex | None = None, clip=None, classes=None, overwrite: bool = False,
                  progress: bool = True, name: str | None = None, profile=None) -> dict:
    """Build (or resume) a dual-granularity dataset in ``out`` (module doc); returns the report."""
    from tqdm.auto import tqdm

    from dgtrs_lib.data.build.leakage import eval_index

    if int(shard_size) < 1:
        raise UsageError(f"shard_size {shard_size}: expected a whole number >= 1")
    cfg = (filters or FilterConfig()).check()
    out = Path(out)
    eval_sets = list(eval_sets)
    config = {"version": BUILD_VERSION, "input": inputs.source, "n_input": len(inputs),
              "ids_sha1": _ids_sha1(inputs.ids), "captioner": captioner.provenance(), "filters": cfg.to_dict(),
              "shard_size": int(shard_size), "eval_sets": eval_sets,
              "clip": getattr(clip, "source", None) if clip is not None else None}
    attribution = next((it.meta.get("attribution") for it in inputs if it.meta.get("attribution")), None)
    with locked(out, "build"):
        mode = _check_config(out, config, overwrite)
        store = ShardStore(out)
        if mode == "overwrite":
            for p in (store.data, store.records_dir):
                shutil.rmtree(p, ignore_errors=True)
        atomic_write_json(out / CONFIG_FILE, {**config, "attribution": attribution})
        store.clean_stale()
        n_shards = (len(inputs) + shard_size - 1) // shard_size
        dedup = DuplicateIndex(cfg.near_jaccard)
        dedup.add(*store.kept_texts())
        if leak_index is None and eval_sets:
            leak_index = eval_index(eval_sets, profile, progress=progress)
        skipped = 0
        bar = tqdm(range(n_shards), desc=f"building {out.name}", unit="shard", disable=not progress)
        for i in bar:
            if store.done(i):
                skipped += 1
                continue
            items = [inputs[j] for j in range(i * shard_size, min(len(inputs), (i + 1) * shard_size))]
            t0 = time.perf_counter()
            captions = captioner.caption(items)
            t_cap = time.perf_counter() - t0
            images = [it.image.convert("RGB") for it in items]
            rows, record = shard_rows(items, captions, images, cfg, dedup, leak_index, clip, classes,
                                      captioner.provenance())
            t1 = time.perf_counter()
            record["shard"] = i
            record["seconds"].update(caption=round(t_cap, 4))
            store.write(i, rows, record)
            record["seconds"]["write"] = round(time.perf_counter() - t1, 4)
            bar.set_postfix(kept=record["kept"], dropped=record["rows"] - record["kept"])
        report = summarise(store.records(), len(inputs), {**config, "attribution": attribution})
        report["skipped_shards"] = skipped
        report["out"] = str(out)
        atomic_write_json(out / REPORT_FILE, report)
        atomic_write_text(out / CARD_FILE, data_card(report, {**config, "attribution": attribution}, name=name))
    return report
