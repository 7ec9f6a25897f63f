"""How many text positions a short-caption CLIP actually uses, and the stretch chosen from it.

Long-CLIP (Zhang et al. 2024, section 3.1 and Fig. 2; ``zhang2024longclip``) measured OpenAI CLIP's
*effective* text length: text->image retrieval with long captions truncated to ``k`` tokens stops
improving at about ``k = 20`` although the encoder takes 77, because alt-texts are short and the
later positions are rarely trained. KPS keeps the first ``keep`` (= that effective length) rows
exactly and interpolates the rest. The miniature replays both measurements on its own prior:

* :func:`read_length_curve` -- retrieval R@1/R@5 of held-out captions when the model may read
  only the first ``k`` tokens (tokenised at context ``k``: SOT + ``k - 2`` tokens + EOT);
* :func:`positional_movement` -- how far each positional-embedding row moved from its
  initialisation during pre-training (a row that never received gradient stays where it began);
* :func:`effective_length` -- the smallest ``k`` whose score reaches ``frac`` of the best one;
* :func:`choose_stretch` -- ``keep`` = the effective length, and the smallest integer ``ratio``
  whose stretched context ``ratio * (L - keep) + keep`` holds the longest long description.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from dgtrs_lib.evaluation.retrieval import retrieval_metrics
from dgtrs_lib.model.tokenizer import tokenize


@torch.no_grad()
def read_length_curve(model, images: torch.Tensor, texts: Sequence[str], lengths: Sequence[int], *,
                      batch_size: int = 256, device: str = "cpu") -> list[dict]:
    """One row per ``k`` in ``lengths``: ``{"tokens_read": k, "i2t_R@1", "i2t_R@5", "t2i_R@1",
    "t2i_R@5", "mR"}`` (percent) for image ``i`` <-> text ``i`` when only ``k`` tokens are read.

    ``images`` are pre-processed ``[N, 3, H, W]``; ``texts[i]`` describes image ``i``."""
    if len(images) != len(texts):
        raise ValueError(f"read_length_curve: {len(images)} images but {len(texts)} texts")
    model = model.to(device).eval()
    img = torch.cat([model.encode_image(images[i:i + batch_size].to(device)).float().cpu()
                     for i in range(0, len(images), batch_size)])
    rows = []
    for k in lengths:
        if not 2 <= k <= model.context_length:
            raise ValueError(f"read_length_curve: tokens_read {k} outside [2, {model.context_length}]")
        tokens = tokenize(list(texts), k, warn=False)
        txt = torch.cat([model.encode_text(tokens[i:i + batch_size].to(device)).float().cpu()
                         for i in range(0, len(tokens), batch_size)])
        m = retrieval_metrics(img, txt, np.arange(len(texts)), ks=(1, 5))
        rows.append({"tokens_read": int(k), **{key: float(v) for key, v in m.items()}})
    return rows


def positional_movement(trained: torch.Tensor, initial: torch.Tensor) -> np.ndarray:
    """Per-row L2 distance between the trained and the initial positional tables, divided by the
    initial row's norm (0: the row never moved)."""
    if trained.shape != initial.shape:
        raise ValueError(f"positional_movement: shapes differ, {tuple(trained.shape)} vs {tuple(initial.shape)}")
    diff = (trained.float() - initial.float()).norm(dim=-1)
    return (diff / initial.float().norm(dim=-1).clamp_min(1e-12)).numpy()


def effective_length(curve: Sequence[dict], key: str = "mR", frac: float = 0.95) -> int:
    """The smallest ``tokens_read`` whose ``key`` reaches ``frac`` of the curve's best value."""
    if not curve:
        raise ValueError("effective_length: empty curve")
    best = max(r[key] for r in curve)
    for r in sorted(curve, key=lambda r: r["tokens_read"]):
        if r[key] >= frac * best:
            return int(r["tokens_read"])
    return int(max(r["tokens_read"] for r in curve))


def choose_stretch(effective: int, base_context: int, longest: int) -> dict:
    """``{"keep", "ratio", "context"}``: keep the effective length (at most ``base_context - 2``, so
    at least two rows are stretched) and the smallest integer ratio >= 2 whose context
    ``ratio * (base_context - keep) + keep`` holds ``longest`` tokens."""
    keep = int(min(max(effective, 1), base_context - 2))
    ratio = max(2, math.ceil((longest - keep) / (base_context - keep)))
    return {"keep": keep, "ratio": int(ratio), "context": int(ratio * (base_context - keep) + keep)}
