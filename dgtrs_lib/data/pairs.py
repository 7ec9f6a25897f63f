"""Training and evaluation pairs: pre-processed images with tokenised long and short captions.

:class:`PairData` holds (image, long caption, short caption) triples ready to batch; each batch is
trimmed to its longest caption (:func:`trim_padding`, dynamic padding: a short caption does not
pay for 248 positions). :func:`load_pairs` builds the pairs of a profile's split:

* every other profile (``smoke``, ``cpu``) -- the embedded SynDG-RS split (:func:`dgtrs_lib.data.syndg.load_syndg`),
  every image pre-processed once and held in memory (cached per profile, split and image size);
* ``gpu`` -- the real dual-granularity set of ``get_profile("gpu").gpu_data`` (overridden by
  ``DGTRS_GPU_DATA``: a source, or a JSON object of :func:`dgtrs_lib.data.dual.load_dual_hf`
  arguments), images decoded per batch. Its first ``min(1000, n // 10)`` pairs are the
  validation split, the rest the training split, as Long-CLIP (Zhang et al., 2024) holds out the
  first 1000 ShareGPT4V pairs (``train/sharegpt4v.py``).

Captions are tokenised once with the open_clip BPE (:func:`dgtrs_lib.model.tokenizer.tokenize`;
truncation is reported by a ``TruncationWarning``); images go through the model's CLIP transform
(:func:`dgtrs_lib.model.transforms.make_preprocess`).

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import torch

from dgtrs_lib.data.dual import load_dual_hf
from dgtrs_lib.data.syndg import load_syndg
from dgtrs_lib.model.tokenizer import tokenize
from dgtrs_lib.model.transforms import make_preprocess
from dgtrs_lib.profiles import get_profile

log = logging.getLogger(__name__)


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """Drop the trailing all-padding columns (padding id 0 only ever follows EOT)."""
    width = int((tokens != 0).sum(dim=1).max()) if tokens.numel() else 0
    return tokens[:, : max(width, 2)]


@dataclass
class PairData:
    """Image/long/short triples held in memory, ready to batch.

    ``images`` is a float tensor ``[N, 3, H, W]`` (already preprocessed) or a callable mapping an
    index tensor to such a batch (for datasets too large to hold, e.g. the gpu profile).
    ``long_tokens``/``short_tokens`` are ``[N, L]`` token ids (zero padded).
    """

    images: torch.Tensor | Callable[[torch.Tensor], torch.Tensor]
    long_tokens: torch.Tensor
    short_tokens: torch.Tensor
    n: int | None = None

    def __post_init__(self):
        n = len(self.long_tokens)
        if len(self.short_tokens) != n or (isinstance(self.images, torch.Tensor) and len(self.images) != n):
            sizes = (len(self.images) if isinstance(self.images, torch.Tensor) else "callable", n, len(self.short_tokens))
            raise ValueError(f"PairData: images, long_tokens and short_tokens must have one row per pair, got sizes {sizes}")
        self.n = n

    truncated: dict = field(default_factory=dict)

    @classmethod
    def from_texts(cls, images, long_texts, short_texts, context_length: int) -> "PairData":
        """Tokenise every caption once. Captions longer than the context are truncated (EOT kept),
        as training at a fixed context must; how many is logged and kept in ``truncated``
        (``{"long": n, "short": n, "context": L}``) rather than warned about on every run."""
        long_tok, long_info = tokenize(list(long_texts), context_length, pad_to_longest=True, return_info=True,
                                       warn=False)
        short_tok, short_info = tokenize(list(short_texts), context_length, pad_to_longest=True, return_info=True,
                                         warn=False)
        truncated = {"long": long_info.n_truncated, "short": short_info.n_truncated, "context": context_length}
        if long_info.n_truncated or short_info.n_truncated:
            log.info("tokenised %d pairs at context %d: %d long and %d short captions truncated", len(long_tok),
                     context_length, long_info.n_truncated, short_info.n_truncated)
        return cls(images, long_tok, short_tok, truncated=truncated)

    def __len__(self) -> int:
        return self.n

    def batch(self, idx: torch.Tensor):
        images = self.images[idx] if isinstance(self.images, torch.Tensor) else self.images(idx)
        return images, trim_padding(self.long_tokens[idx]), trim_padding(self.short_tokens[idx])


def _images_tensor(ds, preprocess) -> torch.Tensor:
    """Pre-compute every image once (the miniature's whole split fits in memory)."""
    from tqdm.auto import tqdm

    return torch.stack([preprocess(im.convert("RGB")) for im in tqdm(ds["image"], desc="images", leave=False)])


@lru_cache(maxsize=8)
def _syndg_split(profile: str, split: str, image_size: int):
    ds = load_syndg(profile)[split]
    return _images_tensor(ds, make_preprocess(image_size)), list(ds["long_caption"]), list(ds["short_caption"])


def _gpu_dataset(split: str):
    spec = dict(get_profile("gpu").gpu_data)
    if os.environ.get("DGTRS_GPU_DATA"):
        spec.update(json.loads(os.environ["DGTRS_GPU_DATA"]) if os.environ["DGTRS_GPU_DATA"].startswith("{")
                    else {"source": os.environ["DGTRS_GPU_DATA"]})
    source = spec.pop("source")
    ds = load_dual_hf(source, split="train", **spec)
    held = min(1000, len(ds) // 10)  # Long-CLIP holds out the first 1000 pairs for validation
    return ds.select(range(held)) if split == "validation" else ds.select(range(held, len(ds)))


def load_pairs(profile: str, split: str, context_length: int, image_size: int, *, short_only: bool = False,
               limit: int | None = None) -> PairData:
    """``PairData`` of a split for a profile. ``short_only`` (stage 1) tokenises only the short
    captions (the long slot repeats them; a short-only schedule never reads it)."""
    if profile == "gpu":
        ds = _gpu_dataset(split)
        if limit:
            ds = ds.select(range(min(limit, len(ds))))
        preprocess = make_preprocess(image_size)

        def images(idx):  # decode and transform per batch: the real set does not fit in memory
            return torch.stack([preprocess(ds[int(i)]["image"].convert("RGB")) for i in idx])

        longs, shorts = list(ds["long_caption"]), list(ds["short_caption"])
    else:
        images, longs, shorts = _syndg_split(profile, split, image_size)
        if limit:
            images, longs, shorts = images[:limit], longs[:limit], shorts[:limit]
    return PairData.from_texts(images, shorts if short_only else longs, shorts, context_length)
