"""Dual-granularity contrastive loss: one symmetric InfoNCE for (image, long text) and one for
(image, short text), returned separately so a curriculum can weight them.

Follows the released DGTRS-CLIP ``CLIP.forward`` (github.com/MitsuiChen14/DGTRS) and Long-CLIP's
``model/model_longclip.py`` (github.com/beichenzbc/Long-CLIP, ``book/references.bib`` key
``zhang2024longclip``), and the paper's dual-granularity curriculum learning (DGCL, arXiv:2503.19311,
key ``chen2025dgtrs``):

* features are L2-normalised, logits are ``exp(logit_scale) * a @ b.T``;
* each process scores its LOCAL rows against the GLOBAL columns (features of every process,
  gathered with gradient through ``torch.distributed.nn.all_gather``), targets
  ``rank * B + arange(B)`` -- open_clip's ``gather_features(..., local_loss=True)``, which
  ``dgtrs_lib.training.distributed.gather`` reuses. With DDP's gradient averaging this is exactly
  the loss and gradient of one process holding the whole global batch (tested in
  ``tests/test_train_ddp.py``). Without an initialised process group the same code runs in one
  process.
* ``pca_dim=k`` replaces the image features of the SHORT branch by their reconstruction from the
  batch's top-k principal components (Long-CLIP's "primary component matching", k = 32); it is
  computed per process on the local batch, exactly as Long-CLIP does.
* ``label_smoothing`` is passed to cross-entropy (Long-CLIP: 0.1; DGTRS as released: 0).

DGTRS as released deviates in one more point: its gather carries NO gradient at all (not even
the local slot). We keep the gradient gather (Long-CLIP's DDP fix) by default; with
``gather_with_grad=False`` the gradient-free gather re-inserts the local tensor (open_clip
behaviour), which gives the same loss value and a close gradient.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dgtrs_lib.training.distributed import dist_info, gather

# Named presets reproducing the two reference losses.
PRESETS = {
    # MitsuiChen14/DGTRS model_longclip.py: image features used as-is for the short branch,
    # plain cross-entropy.
    "dgtrs": dict(pca_dim=None, label_smoothing=0.0),
    # beichenzbc/Long-CLIP model_longclip.py: PCA(x, 32) for the short branch, smoothing 0.1.
    "longclip": dict(pca_dim=32, label_smoothing=0.1),
}


def pca_reconstruct(x: torch.Tensor, k: int) -> torch.Tensor:
    """Project a batch of features onto its top-``k`` principal components and map back.

    ``mu = mean(x)``; thin SVD ``x - mu = U S V^T``; return ``(x - mu) V_k V_k^T + mu`` (not
    re-normalised, as in Long-CLIP). Computed in float32; the result has ``x``'s dtype.
    The centred batch has rank <= B - 1, so for ``B <= k + 1`` this is the identity (up to
    rounding) and is skipped.
    """
    if x.ndim != 2:
        raise ValueError(f"pca_reconstruct: expected features of shape [batch, dim], got {tuple(x.shape)}")
    if k < 1:
        raise ValueError(f"pca_reconstruct: k must be >= 1, got {k}")
    if x.shape[0] <= k + 1:
        return x
    mean = x.float().mean(dim=0, keepdim=True)
    centred = x.float() - mean
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    vk = vh[:k].T  # [dim, k], top-k right singular vectors
    return ((centred @ vk) @ vk.T + mean).to(x.dtype)


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
                     label_smoothing: float = 0.0, gather_with_grad: bool = True) -> torch.Tensor:
    """Symmetric InfoNCE ``(CE(image->text) + CE(text->image)) / 2`` of one process's rows
    against every process's columns. Features must already be L2-normalised;
    ``logit_scale`` is the LOG temperature (the model parameter), exponentiated here."""
    if image.shape != text.shape:
        raise ValueError(f"contrastive_loss: image features {tuple(image.shape)} and text features "
                         f"{tuple(text.shape)} must have the same [batch, dim] shape")
    rank, _ = dist_info()
    scale = logit_scale.exp()
    all_image, all_text = gather(image, text, gather_with_grad)
    logits_i2t = scale * image @ all_text.T
    logits_t2i = scale * text @ all_image.T
    labels = torch.arange(image.shape[0], device=image.device) + rank * image.shape[0]
    return 0.5 * (F.cross_entropy(logits_i2t.float(), labels, label_smoothing=label_smoothing)
                  + F.cross_entropy(logits_t2i.float(), labels, label_smoothing=label_smoothing))


class DualGranularityLoss(nn.Module):
    """``(image, long, short, logit_scale) -> (loss_long, loss_short)``.

    Either text may be ``None`` (a branch the curriculum switched off); its loss is then
    ``None``. Use ``DualGranularityLoss.preset("dgtrs" | "longclip")`` for the references.
    """

    def __init__(self, pca_dim: int | None = None, label_smoothing: float = 0.0, gather_with_grad: bool = True):
        super().__init__()
        if pca_dim is not None and pca_dim < 1:
            raise ValueError(f"DualGranularityLoss: pca_dim must be None or >= 1, got {pca_dim}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"DualGranularityLoss: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.pca_dim = pca_dim
        self.label_smoothing = label_smoothing
        self.gather_with_grad = gather_with_grad

    @classmethod
    def preset(cls, name: str, **overrides) -> "DualGranularityLoss":
        if name not in PRESETS:
            raise ValueError(f"unknown loss preset {name!r}: expected one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def forward(self, image_features, long_features, short_features, logit_scale):
        kw = dict(label_smoothing=self.label_smoothing, gather_with_grad=self.gather_with_grad)
        loss_long = loss_short = None
        if long_features is not None:
            loss_long = contrastive_loss(image_features, long_features, logit_scale, **kw)
        if short_features is not None:
            coarse = image_features if self.pca_dim is None else pca_reconstruct(image_features, self.pca_dim)
            loss_short = contrastive_loss(coarse, short_features, logit_scale, **kw)
        return loss_long, loss_short

    def extra_repr(self) -> str:
        return f"pca_dim={self.pca_dim}, label_smoothing={self.label_smoothing}, gather_with_grad={self.gather_with_grad}"
