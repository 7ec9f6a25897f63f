"""Caption statistics for dataset inspection (notebook 01 and the data cards).

* Token lengths with CLIP's BPE (``dgtrs_lib.model.tokenizer.token_lengths``: SOT/EOT included, no
  truncation) against the context limits that matter here: 77 (CLIP) and 248 (Long-CLIP /
  DGTRS-CLIP, paper section 3.2), and the miniature's 32 (base) and its stretched context (the
  ``keep``/``ratio`` measured on its prior, ``dgtrs_lib.model.configs``).
* Vocabulary sizes and the words that only long descriptions use ("what a short caption leaves
  out").
* SynDG-RS: where in the long description each distinguishing fact (an object group's colour)
  is first named, in tokens.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np

from dgtrs_lib.env import results_dir
from dgtrs_lib.model.configs import stretch_of
from dgtrs_lib.results import results_doc, write_results

LIMITS = (32, 77, stretch_of("tiny")["context"], 248)
WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")


def length_stats(lengths, limits=LIMITS) -> dict:
    """mean / median / p95 / min / max and the fraction longer than each limit."""
    x = np.asarray(lengths, dtype=float)
    if x.size == 0:
        raise ValueError("no lengths given")
    out = {"n": int(x.size), "mean": float(x.mean()), "median": float(np.median(x)),
           "p95": float(np.percentile(x, 95)), "min": int(x.min()), "max": int(x.max())}
    out.update({f"frac_over_{k}": float((x > k).mean()) for k in limits})
    return out


def token_length_table(captions: dict, limits=LIMITS) -> list[dict]:
    """One row per named caption list (e.g. ``{"short": [...], "long": [...]}``) with BPE length stats."""
    from dgtrs_lib.model.tokenizer import token_lengths

    return [{"captions": name, **length_stats(token_lengths(texts), limits)} for name, texts in captions.items()]


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def vocabulary(texts) -> Counter:
    c = Counter()
    for t in texts:
        c.update(words(t))
    return c


STOPWORDS = frozenset("a an the is are and or of in on at to by with from there this that it its they we can "
                      "see be as into one".split())


def only_in_long(short_texts, long_texts, top: int = 25, stopwords=STOPWORDS) -> list[tuple[str, int]]:
    """Most frequent words of the long descriptions that never appear in any short caption
    (function words in ``stopwords`` left out)."""
    vs, vl = vocabulary(short_texts), vocabulary(long_texts)
    return [(w, n) for w, n in vl.most_common() if w not in vs and w not in stopwords][:top]


def fact_token_positions(long_caption: str, meta: str) -> list[int | None]:
    """For each object group of a SynDG-RS sample, the token index (SOT = 0) where its colour is
    first named in the long description (None if never): where the distinguishing facts sit."""
    from dgtrs_lib.data.syndg import COLOUR_WORDS
    from dgtrs_lib.model.tokenizer import encode

    ws = long_caption.split()
    bare = [w.lower().strip(".,;:") for w in ws]
    out = []
    for g in json.loads(meta)["objects"]:
        idx = next((i for i, w in enumerate(bare) if w in COLOUR_WORDS[g["colour"]]), None)
        out.append(None if idx is None else len(encode(" ".join(ws[:idx]))) - 1)
    return out


def distinct_stats(caption_lists) -> dict:
    """For captions grouped per image: ``per_image_distinct`` (fraction of images whose captions
    are all different) and ``shared_with_other_image`` (fraction of captions whose exact text also
    describes another image)."""
    owners: dict[str, set] = {}
    for i, caps in enumerate(caption_lists):
        for c in caps:
            owners.setdefault(c, set()).add(i)
    n_caps = sum(len(c) for c in caption_lists)
    shared = sum(1 for caps in caption_lists for c in caps if len(owners[c]) > 1)
    return {"per_image_distinct": float(np.mean([len(set(c)) == len(c) for c in caption_lists])),
            "shared_with_other_image": shared / max(n_caps, 1)}


def syndg_report(dd, profile: str, generation_s: float | None = None, write: bool = True, prior=None) -> dict:
    """Dataset facts of a SynDG-RS ``DatasetDict`` as a results document (the book's JSON layout).

    Rows: split sizes, generation time, BPE token-length stats of short (all five per image) and
    long captions (test split), how unique the short captions are, and where the distinguishing
    facts sit (median token, fraction beyond the 32-token base context); with ``prior`` (the
    :func:`~dgtrs_lib.data.syndg.load_prior` corpus) also its sizes, alt-text lengths and
    uniqueness. Written to ``results_dir(profile)/data-syndg-rs.json`` + ``.csv`` when ``write``.
    """
    from dgtrs_lib.data.syndg import VERSION, short_captions

    rows = [{"task": "data", "dataset": "syndg-rs", "metric": f"n_{split}", "value": float(len(dd[split]))}
            for split in dd]
    if generation_s is not None:
        rows.append({"task": "data", "dataset": "syndg-rs", "metric": "generation_s", "value": float(generation_s)})
    test = dd["test"]
    shorts = [short_captions(m, s) for m, s in zip(test["meta"], test["short_caption"])]
    lengths = {"short": [c for cs in shorts for c in cs], "long": test["long_caption"]}
    if prior is not None:
        lengths["alt"] = prior["validation"]["short_caption"]
    for r in token_length_table(lengths):
        for k, v in r.items():
            if k not in ("captions", "n"):
                rows.append({"task": "data", "dataset": "syndg-rs" if r["captions"] != "alt" else "syndg-prior",
                             "metric": f"{r['captions']}_tokens_{k}", "value": float(v), "n": r["n"]})
    for k, v in distinct_stats(shorts).items():
        rows.append({"task": "data", "dataset": "syndg-rs", "metric": f"short_{k}", "value": v, "n": len(shorts)})
    rows.append({"task": "data", "dataset": "syndg-rs", "metric": "short_per_image", "value": float(np.mean([len(c) for c in shorts]))})
    rows.append({"task": "data", "dataset": "syndg-rs", "metric": "long_shared_with_other_image",
                 "value": distinct_stats([[c] for c in test["long_caption"]])["shared_with_other_image"]})
    if prior is not None:
        for split in prior:
            rows.append({"task": "data", "dataset": "syndg-prior", "metric": f"n_{split}", "value": float(len(prior[split]))})
        rows.append({"task": "data", "dataset": "syndg-prior", "metric": "alt_shared_with_other_image",
                     "value": distinct_stats([[c] for c in prior["validation"]["short_caption"]])["shared_with_other_image"]})
    pos = [p for lc, m in zip(test["long_caption"], test["meta"]) for p in fact_token_positions(lc, m) if p is not None]
    rows.append({"task": "data", "dataset": "syndg-rs", "metric": "fact_token_median", "value": float(np.median(pos))})
    rows.append({"task": "data", "dataset": "syndg-rs", "metric": "frac_facts_beyond_32",
                 "value": float(np.mean(np.asarray(pos) >= 32)), "n": len(pos)})
    doc = results_doc("data-syndg-rs", profile, rows,
                      protocol={"split": "test", "tokenizer": "open_clip BPE, SOT/EOT included"},
                      generator={"syndg": VERSION})
    if write:
        write_results(doc, results_dir(profile) / "data-syndg-rs.json")
    return doc
