"""Knowledge-Preserved Stretching (KPS) of CLIP's text positional embedding.

Long-CLIP (Zhang et al., arXiv:2403.15378) and DGTRS-CLIP (arXiv:2503.19311, which reuses the
Long-CLIP loader verbatim) lengthen CLIP's 77-token text encoder to 248 tokens without retraining it
from scratch. The first ``keep`` positions, which CLIP trained well, are copied unchanged; the rest
are stretched by ``ratio`` with linear interpolation, and the last ``ratio`` rows extrapolate the
final difference. With ``L = 77, keep = 20, ratio = 4`` the result has ``4*77 - 3*20 = 248`` rows.

Exactly, for an input ``P`` with ``L`` rows (Long-CLIP, Zhang et al. 2024, section 3.1 and
``model/model_longclip.py``):

* ``P'[i] = P[i]`` for ``i < keep``;
* ``P'[keep + ratio*j + t] = (1 - t/ratio) * P[keep + j] + (t/ratio) * P[keep + j + 1]``
  for ``j = 0 .. L-keep-2`` and ``t = 0 .. ratio-1`` (source row ``p >= keep`` lands on row
  ``keep + ratio*(p - keep)``);
* ``P'[keep + ratio*(L-keep-1) + t] = P[L-1] + (t/ratio) * (P[L-1] - P[L-2])`` for the last
  ``ratio`` rows.

``linear_stretch_positional_embedding`` is the naive alternative that interpolates *all* positions
(what ``open_clip``'s ``resize_text_pos_embed`` does: ``F.interpolate(mode="linear",
align_corners=False)``); it moves the well-trained early positions, which is what KPS avoids.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def kps_length(length: int, keep: int = 20, ratio: int = 4) -> int:
    """Number of rows KPS produces from ``length`` rows: ``ratio*length - (ratio-1)*keep``."""
    return ratio * length - (ratio - 1) * keep


def stretch_positional_embedding(pe: torch.Tensor, keep: int = 20, ratio: int = 4) -> torch.Tensor:
    """Stretch a ``[L, D]`` positional embedding with KPS; returns ``[ratio*L - (ratio-1)*keep, D]``.

    Computed in at least float32, returned in ``pe``'s dtype; the input is not modified.
    """
    if pe.ndim != 2:
        raise ValueError(f"positional embedding must be 2-D [L, D], got shape {tuple(pe.shape)}")
    length = pe.shape[0]
    if not isinstance(ratio, int) or ratio < 1:
        raise ValueError(f"ratio must be a positive integer, got {ratio!r}")
    if not 0 <= keep <= length - 2:
        raise ValueError(f"keep must be in [0, L-2] = [0, {length - 2}] for L={length}, got {keep}")
    work = torch.promote_types(pe.dtype, torch.float32)   # fp16/bf16 inputs are computed in fp32
    src = pe.detach().to(work)
    tail = src[keep:]                                   # the M = L - keep rows that get stretched
    t = torch.arange(ratio, dtype=work, device=pe.device) / ratio  # 0, 1/r, ..., (r-1)/r
    # Interior: every consecutive pair (a, b) of tail rows gives `ratio` rows a + t*(b - a).
    a, b = tail[:-1], tail[1:]
    interior = (a[:, None, :] * (1 - t)[None, :, None] + b[:, None, :] * t[None, :, None]).reshape(-1, pe.shape[1])
    # End: the last `ratio` rows continue the final difference past the last source row.
    end = tail[-1][None, :] + t[:, None] * (tail[-1] - tail[-2])[None, :]
    out = torch.cat([interior, end], dim=0).to(pe.dtype)
    out = torch.cat([pe.detach()[:keep], out], dim=0)     # preserved rows: bit-exact copies
    assert out.shape[0] == kps_length(length, keep, ratio)
    return out


def linear_stretch_positional_embedding(pe: torch.Tensor, new_length: int) -> torch.Tensor:
    """Naive stretching: linearly interpolate all ``L`` rows to ``new_length`` rows
    (``align_corners=False``, as ``open_clip.model.resize_text_pos_embed``)."""
    if pe.ndim != 2:
        raise ValueError(f"positional embedding must be 2-D [L, D], got shape {tuple(pe.shape)}")
    x = pe.detach().float().t()[None]                   # [1, D, L]
    out = F.interpolate(x, size=new_length, mode="linear", align_corners=False)
    return out[0].t().contiguous().to(pe.dtype)
