"""Retrieval metrics: image <-> text R@k and mR, with explicit rules for exact ties.

The protocol of RemoteCLIP (Liu et al. 2024, ``liu2024remoteclip``), GeoRSCLIP (Zhang et al. 2024,
``zhang2024rs5m``) and CLIP_benchmark, which DGTRS-CLIP (arXiv:2503.19311, ``chen2025dgtrs``) reports
for long- and short-text retrieval: cosine similarity, several captions per image; an image query is
a hit at k if *any* of its captions is in the top k, a caption query is a hit if its image is in the
top k; R@k in percent, and mR is the mean of the six numbers (image->text and text->image R@1/5/10).

*Ties* (exactly equal similarity: identical duplicate captions, as RSICD and SynDG-RS have, or
degenerate features) are handled explicitly. The reference's ``torch.topk`` orders tied candidates
arbitrarily; our default ``ties="expected"`` is the recall averaged over all orders of each tied
block (deterministic, and equal to the reference's number in expectation); ``"pessimistic"`` (every
tied negative ranks above) and ``"optimistic"`` (every tied negative ranks below) are the two bounds.
Without exact ties the three agree. Constant features give chance-level recall under ``expected``
(e.g. t2i R@k = 100 k / N_images), 0 under ``pessimistic`` and 100 under ``optimistic``. The
similarity matrix is computed in chunks of queries, so 100k images x 500k captions needs only
``chunk_size x gallery`` floats at a time.

``shared_caption_recall`` is the held-out check's protocol for one caption per image when several
images share one caption text (SynDG-RS short captions are class-level): each *distinct* caption is
one candidate. ``retrieval_scores`` is the one scorer both retrieval runners call
(``dgtrs_lib.evaluation.evaluate.run_retrieval`` and ``heldout_retrieval``).

Taught in: Long-text cross-modal retrieval (notebooks/04-long-text-retrieval.ipynb)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

RETRIEVAL_KEYS = ("i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@5", "t2i_R@10", "mR")


def _as_features(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach()
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D array [N, D], got shape {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        t = t.float()
    t = t.float()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return torch.nn.functional.normalize(t, dim=-1)


def _auto_chunk(gallery: int, budget: int = 1 << 24) -> int:
    """Queries per chunk so that one chunk's score matrix holds about ``budget`` floats (64 MiB)."""
    return max(1, min(4096, budget // max(1, gallery)))


TIE_RULES = ("expected", "pessimistic", "optimistic")


def retrieval_rank_stats(image_features, text_features, text_to_image, *, chunk_size: int | None = None,
                         device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Per query, against the score of its best positive: ``greater`` = negatives scoring
    strictly higher, ``tied`` = negatives scoring exactly the same, ``tied_pos`` = positives at
    that score (>= 1). Keys ``i2t_*`` (one row per image) and ``t2i_*`` (one per caption)."""
    img = _as_features(image_features, "image_features").to(device)
    txt = _as_features(text_features, "text_features").to(device)
    if img.shape[1] != txt.shape[1]:
        raise ValueError(f"image_features have dim {img.shape[1]} but text_features have dim {txt.shape[1]}")
    t2i = torch.as_tensor(np.asarray(text_to_image), dtype=torch.long).reshape(-1)
    n_img, n_txt = img.shape[0], txt.shape[0]
    if t2i.numel() != n_txt:
        raise ValueError(f"text_to_image: expected one image index per caption ({n_txt}), got {t2i.numel()}")
    if n_txt and (t2i.min() < 0 or t2i.max() >= n_img):
        raise ValueError(f"text_to_image: indices must lie in [0, {n_img}), got [{int(t2i.min())}, {int(t2i.max())}]")
    counts = torch.bincount(t2i, minlength=n_img)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten()[:5].tolist()
        raise ValueError(f"text_to_image: images {missing} (and maybe more) have no caption; "
                         "every image needs at least one positive caption")
    t2i = t2i.to(device)
    out = {k: torch.empty(n, dtype=torch.long) for n, keys in ((n_txt, ("t2i_greater", "t2i_tied")),
                                                             (n_img, ("i2t_greater", "i2t_tied", "i2t_tied_pos")))
           for k in keys}

    # text -> image: one positive per caption
    cs = chunk_size or _auto_chunk(n_img)
    for s in range(0, n_txt, cs):
        scores = txt[s:s + cs] @ img.T                                   # [c, N_img]
        pos = scores.gather(1, t2i[s:s + cs, None])                      # [c, 1]
        others = torch.ones_like(scores, dtype=torch.bool).scatter_(1, t2i[s:s + cs, None], False)
        out["t2i_greater"][s:s + cs] = ((scores > pos) & others).sum(1).cpu()
        out["t2i_tied"][s:s + cs] = ((scores == pos) & others).sum(1).cpu()

    # image -> text: best of the image's captions, negatives = other images' captions
    cs = chunk_size or _auto_chunk(n_txt)
    for s in range(0, n_img, cs):
        idx = torch.arange(s, min(s + cs, n_img), device=device)
        scores = img[idx] @ txt.T                                        # [c, N_txt]
        is_pos = t2i[None, :] == idx[:, None]
        best = scores.masked_fill(~is_pos, float("-inf")).max(1, keepdim=True).values
        out["i2t_greater"][s:s + cs] = ((scores > best) & ~is_pos).sum(1).cpu()
        out["i2t_tied"][s:s + cs] = ((scores == best) & ~is_pos).sum(1).cpu()
        out["i2t_tied_pos"][s:s + cs] = ((scores == best) & is_pos).sum(1).cpu()
    out["t2i_tied_pos"] = torch.ones(n_txt, dtype=torch.long)
    return {k: v.numpy() for k, v in out.items()}


def retrieval_ranks(image_features, text_features, text_to_image, *, chunk_size: int | None = None,
                    device: str | torch.device = "cpu", ties: str = "pessimistic") -> tuple[np.ndarray, np.ndarray]:
    """Rank of the best positive for every query, 0 = first place: ``(i2t_rank, t2i_rank)``.

    The rank is the number of negatives scoring >= the best positive (``ties="pessimistic"``) or
    > it (``"optimistic"``); for an image query the best of its captions counts.
    """
    if ties not in ("pessimistic", "optimistic"):
        raise ValueError(f"ties must be 'pessimistic' or 'optimistic' for integer ranks, got {ties!r}")
    st = retrieval_rank_stats(image_features, text_features, text_to_image, chunk_size=chunk_size, device=device)
    add = ties == "pessimistic"
    return st["i2t_greater"] + add * st["i2t_tied"], st["t2i_greater"] + add * st["t2i_tied"]


def hit_probability(greater, tied, tied_pos, k: int, ties: str = "expected") -> np.ndarray:
    """Per query, the probability that a positive is in the top k.

    ``expected``: the tied block (``tied`` negatives and ``tied_pos`` positives) in uniformly
    random order, i.e. the reference's ``topk`` with an arbitrary tie order, on average:
    with m = k - greater free places, P = 1 - C(tied, m) / C(tied + tied_pos, m).
    """
    g, t, p = (np.asarray(v, dtype=np.float64) for v in (greater, tied, tied_pos))
    if ties == "pessimistic":
        return (g + t < k).astype(np.float64)
    if ties == "optimistic":
        return (g < k).astype(np.float64)
    if ties != "expected":
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    from scipy.special import gammaln

    m = k - g
    mm = np.clip(m, 0, t)
    miss = np.exp(gammaln(t + 1) - gammaln(t - mm + 1) - gammaln(t + p + 1) + gammaln(t + p - mm + 1))
    return np.where(m <= 0, 0.0, np.where(m > t, 1.0, 1.0 - miss))


def recall_at_k(ranks, k: int) -> float:
    """Percentage of queries whose best positive has rank < k."""
    ranks = np.asarray(ranks)
    return float(100.0 * np.mean(ranks < k)) if ranks.size else float("nan")


def retrieval_metrics(image_features, text_features, text_to_image, ks: Sequence[int] = (1, 5, 10), *,
                      chunk_size: int | None = None, device: str | torch.device = "cpu",
                      ties: str = "expected") -> dict[str, float]:
    """Image<->text R@k (percent) and mR, several captions per image (see the module docstring).

    ``text_to_image[j]`` is the index (row of ``image_features``) of caption j's image.
    Keys: ``i2t_R@k`` and ``t2i_R@k`` for each k, and ``mR`` = their mean. ``ties``: see
    ``TIE_RULES`` and the module docstring.
    """
    st = retrieval_rank_stats(image_features, text_features, text_to_image, chunk_size=chunk_size, device=device)
    out = {}
    for d in ("i2t", "t2i"):
        for k in ks:
            out[f"{d}_R@{k}"] = float(100.0 * np.mean(hit_probability(st[f"{d}_greater"], st[f"{d}_tied"],
                                                                      st[f"{d}_tied_pos"], k, ties)))
    out["mR"] = float(np.mean(list(out.values())))
    return out


def per_image_recall(image_features, text_features, text_to_image, ks: Sequence[int] = (1, 5, 10), *,
                     ties: str = "expected") -> np.ndarray:
    """One score per image (percent) whose mean is mR when every image has the same number of
    captions: the mean over k of the image's i2t hit and its captions' mean t2i hit. The unit a
    per-query bootstrap resamples (an image with its captions)."""
    st = retrieval_rank_stats(image_features, text_features, text_to_image)
    t2i = np.asarray(text_to_image).reshape(-1)
    n_img = len(st["i2t_greater"])
    counts = np.bincount(t2i, minlength=n_img).astype(np.float64)
    total = np.zeros(n_img)
    for k in ks:
        total += hit_probability(st["i2t_greater"], st["i2t_tied"], st["i2t_tied_pos"], k, ties)
        hits = hit_probability(st["t2i_greater"], st["t2i_tied"], st["t2i_tied_pos"], k, ties)
        total += np.bincount(t2i, weights=hits, minlength=n_img) / np.maximum(counts, 1)
    return 100.0 * total / (2 * len(ks))


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


def retrieval_scores(image_features, text_features, text_to_image, ks: Sequence[int] = (1, 5, 10), *,
                     ties: str = "expected", text_keys: torch.Tensor | None = None) -> dict[str, float]:
    """R@k and mR of one encoded test set: the scorer of both retrieval runners.

    Several captions per image (``text_to_image[j]`` = the image of caption j): ``retrieval_metrics``
    with the tie rule ``ties``. With ``text_keys`` (one row per caption, e.g. its token ids; one
    caption per image), identical rows are one caption text shared by several images: if there are
    any, each distinct caption is one candidate (``shared_caption_recall``) and the result also
    holds ``distinct_captions``; if all rows differ it is ``retrieval_metrics`` as above.
    """
    if text_keys is not None:
        uniq, caption_of = torch.unique(text_keys, dim=0, return_inverse=True)
        if len(uniq) != len(text_keys):
            return {"distinct_captions": len(uniq), **shared_caption_recall(image_features, text_features, caption_of, ks)}
    return retrieval_metrics(image_features, text_features, text_to_image, ks, ties=ties)
