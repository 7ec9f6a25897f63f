"""Quality filters of a built caption set; each one's decision is a score on the row and a count in
the report.

The order is the funnel's (:data:`FILTERS`); a row is dropped by the first filter it fails, and the
report also counts every filter's flags on its own (:mod:`dgtrs_lib.data.build.report`):

1. ``eval_leak`` -- the image is a near copy of an evaluation image (:mod:`dgtrs_lib.data.build.leakage`):
   checked first, as it concerns the image whatever its captions say.
2. ``empty_or_refusal`` -- an empty caption, a refusal ("I'm sorry", "I cannot", "as an AI") or
   chat boilerplate ("Sure!", "Here is a description", "Let me know", markdown headings): the
   failure modes of instruction-tuned captioners that ShareGPT4V-style pipelines filter by
   pattern. The phrase list is :data:`REFUSAL_PATTERNS`.
3. ``length`` -- token windows of the CLIP BPE (``dgtrs_lib.tokenize``, SOT/EOT included): the short
   caption within the base context (CLIP's 77) and the long description within the stretched one
   (Long-CLIP's 248; both from ``dgtrs_lib.model.configs``), each above a minimum
   (``min_short_tokens``, ``min_long_tokens``) -- DGTRS-CLIP trains the short caption at 77 and the
   long one at 248 (arXiv:2503.19311, section 3), so longer text would be cut silently.
4. ``fact_check`` -- where the image has metadata, the stated counts, colours, classes and land-cover
   shares (:mod:`dgtrs_lib.data.build.facts`); a row with more than ``max_wrong`` wrong statements
   is dropped.
5. ``clip_agreement`` -- the cosine similarity of the image and each caption under a CLIP model
   (ours or any ``dgtrs_lib.model.sources.load_model`` source): the row's score is the lower of the
   two; below ``clip_threshold`` it is dropped (``None``: recorded, not applied).
6. ``exact_duplicate`` -- the long description, normalised (lower case, punctuation and whitespace
   folded), equals one already kept: identical texts for different images are false negatives
   for a contrastive loss.
7. ``near_duplicate`` -- its word 3-gram set has Jaccard similarity >= ``near_jaccard`` (0.9) with a
   kept one (computed as sparse products of hashed shingle indicators, exact, in blocks).

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

import numpy as np

from dgtrs_lib.errors import UsageError

FILTERS = ("eval_leak", "empty_or_refusal", "length", "fact_check", "clip_agreement", "exact_duplicate",
           "near_duplicate")
REFUSAL_PATTERNS = (
    r"\bi'?m sorry\b", r"\bi am sorry\b", r"\bi can ?not\b", r"\bi can't\b", r"\bi am unable\b", r"\bi'm unable\b",
    r"\bas an ai\b", r"\blanguage model\b", r"\bunable to (?:see|view|determine|identify|analy[sz]e)\b",
    r"\bnot possible to (?:determine|tell|see)\b", r"\bthere is no image\b", r"\bno image (?:was|is) provided\b",
    r"^\s*(?:sure|certainly|of course)\b[!,.]", r"\bhere is (?:a|the) (?:short |long |detailed )?(?:caption|description)\b",
    r"\blet me know\b", r"\bfeel free\b", r"\bi hope this helps\b", r"^\s*#", r"\bin conclusion\b")
_REFUSAL = re.compile("|".join(f"(?:{p})" for p in REFUSAL_PATTERNS), re.I | re.M)
SHINGLE_BITS = 20


@dataclass(frozen=True)
class FilterConfig:
    """The filters' settings; recorded in the build's config and its data card."""

    min_short_tokens: int = 5
    max_short_tokens: int | None = None   # None: the base context of ViT-B-16 (77)
    min_long_tokens: int = 20
    max_long_tokens: int | None = None    # None: its stretched context (248)
    max_wrong: int = 0
    clip_threshold: float | None = None
    near_jaccard: float = 0.9
    leak_max_distance: int = 6
    leak_max_rmse: float = 0.03

    def resolved(self) -> "FilterConfig":
        from dataclasses import replace

        from dgtrs_lib.model.configs import stretch_of

        s = stretch_of("ViT-B-16")
        return replace(self, max_short_tokens=self.max_short_tokens or s["base_context"],
                       max_long_tokens=self.max_long_tokens or s["context"])

    def to_dict(self) -> dict:
        return asdict(self.resolved())

    def check(self) -> "FilterConfig":
        r = self.resolved()
        if not 0 < r.min_short_tokens <= r.max_short_tokens or not 0 < r.min_long_tokens <= r.max_long_tokens:
            raise UsageError(f"token windows short {r.min_short_tokens}-{r.max_short_tokens}, long "
                             f"{r.min_long_tokens}-{r.max_long_tokens}: expected 0 < min <= max")
        if not 0 < r.near_jaccard <= 1:
            raise UsageError(f"near_jaccard {r.near_jaccard}: expected a similarity in (0, 1]")
        if r.max_wrong < 0 or r.leak_max_distance < 0 or r.leak_max_rmse < 0:
            raise UsageError("max_wrong, leak_max_distance and leak_max_rmse: expected values >= 0")
        return r


# ----------------------------------------------------------------------------- per-row filters
def refusal(text: str) -> str | None:
    """The refusal / boilerplate phrase found in ``text`` ("empty" for an empty text), else None."""
    if not str(text).strip():
        return "empty"
    m = _REFUSAL.search(str(text))
    return m.group(0).strip() if m else None


def token_counts(shorts, longs) -> tuple[list[int], list[int]]:
    from dgtrs_lib.model.tokenizer import token_lengths

    return token_lengths(list(shorts)), token_lengths(list(longs))


def length_problem(short_tokens: int, long_tokens: int, cfg: FilterConfig) -> str | None:
    if not cfg.min_short_tokens <= short_tokens <= cfg.max_short_tokens:
        return f"short caption has {short_tokens} tokens; window {cfg.min_short_tokens}-{cfg.max_short_tokens}"
    if not cfg.min_long_tokens <= long_tokens <= cfg.max_long_tokens:
        return f"long description has {long_tokens} tokens; window {cfg.min_long_tokens}-{cfg.max_long_tokens}"
    return None


class ClipAgreement:
    """Image-text cosine similarity under a CLIP model of ``dgtrs_lib.model`` (``encode_image`` /
    ``encode_text`` with the model's own context length)."""

    def __init__(self, model, preprocess, *, device: str = "cpu", batch_size: int = 64, source: str = "(in memory)"):
        self.model, self.preprocess, self.device = model.eval(), preprocess, device
        self.batch_size, self.source = int(batch_size), source

    @classmethod
    def from_source(cls, source: str, device: str = "cpu", **kw) -> "ClipAgreement":
        from dgtrs_lib.model.sources import load_model

        model, preprocess = load_model(source, device)
        return cls(model, preprocess, device=device, source=str(source), **kw)

    def scores(self, images, texts) -> np.ndarray:
        import torch

        from dgtrs_lib.model.tokenizer import tokenize

        ctx = int(getattr(self.model, "context_length", 77))
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                ims = torch.stack([self.preprocess(im) for im in images[s:s + self.batch_size]]).to(self.device)
                toks = tokenize(texts[s:s + self.batch_size], ctx, pad_to_longest=True, warn=False).to(self.device)
                fi = torch.nn.functional.normalize(self.model.encode_image(ims).float(), dim=-1)
                ft = torch.nn.functional.normalize(self.model.encode_text(toks).float(), dim=-1)
                out.append((fi * ft).sum(-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)


# ----------------------------------------------------------------------------- duplicates
def normalise(text: str) -> str:
    """Lower case, punctuation removed, whitespace folded: what 'exact duplicate' compares."""
    return " ".join(re.sub(r"[^\w\s%]", " ", str(text).lower()).split())


def text_key(text: str) -> str:
    return hashlib.sha1(normalise(text).encode("utf-8")).hexdigest()


def shingles(text: str, n: int = 3) -> set[int]:
    """Hashed word ``n``-grams of the normalised text (the whole text when it is shorter)."""
    words = normalise(text).split()
    grams = [" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))] if words else []
    return {int(hashlib.blake2b(g.encode(), digest_size=8).hexdigest(), 16) % (1 << SHINGLE_BITS) for g in grams}


def _matrix(sets: list[set[int]]):
    from scipy import sparse

    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.fromiter((c for s in sets for c in sorted(s)), dtype=np.int64, count=int(sum(len(s) for s in sets)))
    return sparse.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(sets), 1 << SHINGLE_BITS))


class DuplicateIndex:
    """The kept long descriptions: exact keys and shingle sets; ``check`` one batch, then ``add`` the
    kept ones (a batch is checked against itself in order too)."""

    def __init__(self, near_jaccard: float = 0.9, block: int = 4096):
        self.near_jaccard, self.block = float(near_jaccard), int(block)
        self.keys: dict[str, str] = {}
        self._blocks: list = []
        self._sizes: list[np.ndarray] = []
        self._ids: list[str] = []

    def __len__(self) -> int:
        return len(self._ids)

    def _best_near(self, sets: list[set[int]]) -> list[tuple[float, str | None]]:
        best = [(0.0, None)] * len(sets)
        if not self._blocks or not sets:
            return best
        q = _matrix(sets)
        qsize = np.array([len(s) for s in sets], np.float32)
        offset = 0
        for m, size in zip(self._blocks, self._sizes):
            inter = (q @ m.T).toarray()
            jac = inter / np.maximum(qsize[:, None] + size[None, :] - inter, 1)
            j = jac.argmax(1)
            for i in range(len(sets)):
                if jac[i, j[i]] > best[i][0]:
                    best[i] = (float(jac[i, j[i]]), self._ids[offset + int(j[i])])
            offset += m.shape[0]
        return best

    def check(self, texts: list[str], ids: list[str], skip: list[bool] | None = None) -> list[dict]:
        """Per text: ``{"exact": id or None, "near": id or None, "jaccard": float}``; texts marked
        in ``skip`` (already dropped) are not compared and are not kept."""
        skip = skip or [False] * len(texts)
        out = []
        for start in range(0, len(texts), self.block):
            chunk = list(range(start, min(len(texts), start + self.block)))
            sets = [shingles(texts[i]) for i in chunk]
            near = self._best_near(sets)
            kept_here: list[int] = []
            for k, i in enumerate(chunk):
                if skip[i]:
                    out.append({"exact": None, "near": None, "jaccard": None})
                    continue
                key = text_key(texts[i])
                jac, who = near[k]
                for h in kept_here:  # earlier rows of this chunk
                    a, b = sets[k], sets[h - start]
                    jj = len(a & b) / max(1, len(a | b))
                    if jj > jac:
                        jac, who = jj, ids[h]
                exact = self.keys.get(key)
                res = {"exact": exact, "near": who if (exact is None and jac >= self.near_jaccard) else None,
                       "jaccard": round(jac, 4)}
                out.append(res)
                if res["exact"] is None and res["near"] is None:
                    self.keys[key] = ids[i]
                    kept_here.append(i)
            if kept_here:
                self._add([texts[i] for i in kept_here], [ids[i] for i in kept_here], register=False)
        return out

    def _add(self, texts: list[str], ids: list[str], register: bool = True) -> None:
        sets = [shingles(t) for t in texts]
        self._blocks.append(_matrix(sets))
        self._sizes.append(np.array([len(s) for s in sets], np.float32))
        self._ids += list(ids)
        if register:
            for t, i in zip(texts, ids):
                self.keys.setdefault(text_key(t), i)

    def add(self, texts: list[str], ids: list[str]) -> None:
        """Register kept texts without checking them (a resumed build's finished shards)."""
        if texts:
            self._add(list(texts), list(ids))
