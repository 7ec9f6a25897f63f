"""Training and evaluation pairs: pre-processed images with tokenised long and short captions.

:class:`PairData` holds (image, long caption, short caption) triples ready to batch; each batch is
trimmed to its longest caption (:func:`trim_padding`, dynamic padding: a short caption does not
pay for 248 positions). :func:`load_pairs` builds the pairs of a profile's split:

* every other profile (``smoke``, ``cpu``) -- the embedded SynDG-RS split (:func:`dgtrs_lib.data.syndg.load_syndg`;
  ``prior`` / ``prior_validation``: the prior's alt-text corpus, :func:`dgtrs_lib.data.syndg.load_prior`),
  every image pre-processed once and held in memory (cached per profile, split and image size);
* ``gpu`` -- the real dual-granularity set of ``get_profile("gpu").gpu_data`` (overridden by
  ``DGTRS_GPU_DATA``: a source, or a JSON object with ``source`` and optionally ``long_column``,
  ``short_column``, ``image_column``, ``revision``, ``data_files``, ``streaming``,
  ``shuffle_buffer``), read by the input pipeline of :mod:`dgtrs_lib.data.loader`: images stay
  encoded and DataLoader workers decode, transform and tokenise them per batch
  (:class:`~dgtrs_lib.data.loader.HubPairs`), or, with ``streaming: true``, the set is streamed
  and never materialised (:class:`~dgtrs_lib.data.loader.StreamPairs`). Its first
  ``min(1000, n // 10)`` pairs (a stream: the first 1000) are the validation split, the rest the
  training split, as Long-CLIP (Zhang et al., 2024) holds out the first 1000 ShareGPT4V pairs
  (``train/sharegpt4v.py``).

Captions are tokenised with the open_clip BPE (:func:`dgtrs_lib.model.tokenizer.tokenize`;
truncation is reported by a ``TruncationWarning`` for the in-memory sets, counted by the loader
for the others); images go through the model's CLIP transform
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

from dgtrs_lib.data.loader import BatchOrder, HubPairs, PairDecoder, StreamPairs, trim_padding
from dgtrs_lib.data.syndg import load_prior, load_syndg
from dgtrs_lib.env import usable_cpus
from dgtrs_lib.model.tokenizer import tokenize
from dgtrs_lib.model.transforms import make_preprocess
from dgtrs_lib.profiles import get_profile

log = logging.getLogger(__name__)
PRIOR_PAIR_SPLITS = {"prior": "train", "prior_validation": "validation"}  # load_pairs split -> load_prior split


__all__ = ["BatchOrder", "PairData", "load_pairs", "trim_padding"]


@dataclass
class PairData:
    """Image/long/short triples held in memory, ready to batch.

    ``images`` is a float tensor ``[N, 3, H, W]`` (already preprocessed) or a callable mapping an
    index tensor to such a batch. (The gpu profile's sets, too large to hold, are
    :class:`~dgtrs_lib.data.loader.HubPairs` / :class:`~dgtrs_lib.data.loader.StreamPairs`.)
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


class _Preprocessed(torch.utils.data.Dataset):
    """The images of a ``datasets`` split, each decoded and put through ``preprocess``."""

    def __init__(self, ds, preprocess):
        self.ds, self.preprocess = ds, preprocess

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(self.ds[i]["image"].convert("RGB"))


def _images_tensor(ds, preprocess, workers: int | None = None) -> torch.Tensor:
    """Pre-compute every image once (the miniature's whole split fits in memory); a large split is
    decoded by DataLoader workers (default: one per usable core, at most 8, from 2000 images; the
    same tensors, in order)."""
    from tqdm.auto import tqdm

    ds = ds.select_columns(["image"])
    if workers is None:
        workers = min(8, usable_cpus()) if len(ds) >= 2000 else 0
    workers = workers if workers > 1 else 0
    loader = torch.utils.data.DataLoader(_Preprocessed(ds, preprocess), batch_size=256, num_workers=workers,
                                         collate_fn=torch.stack)
    with tqdm(total=len(ds), desc="images", leave=False) as bar:
        chunks = []
        for chunk in loader:
            chunks.append(chunk)
            bar.update(len(chunk))
    return torch.cat(chunks)


@lru_cache(maxsize=8)
def _syndg_split(profile: str, split: str, image_size: int):
    """A fine-tuning split of SynDG-RS, or the prior's corpus (``prior`` / ``prior_validation``)."""
    if split in PRIOR_PAIR_SPLITS:
        ds = load_prior(profile)[PRIOR_PAIR_SPLITS[split]]
    else:
        ds = load_syndg(profile)[split]
    return _images_tensor(ds, make_preprocess(image_size)), list(ds["long_caption"]), list(ds["short_caption"])


def gpu_data_spec() -> dict:
    """The gpu profile's training set: ``get_profile("gpu").gpu_data`` updated by ``DGTRS_GPU_DATA``."""
    spec = dict(get_profile("gpu").gpu_data)
    env = os.environ.get("DGTRS_GPU_DATA")
    if env:
        try:
            spec.update(json.loads(env) if env.lstrip().startswith("{") else {"source": env})
        except json.JSONDecodeError as err:
            raise ValueError(f"DGTRS_GPU_DATA: not valid JSON ({err}); expected a source or a JSON object") from None
    return spec


def _gpu_pairs(split: str, context_length: int, image_size: int, short_only: bool, limit: int | None):
    import datasets

    spec = gpu_data_spec()
    if "source" not in spec:
        raise ValueError("gpu data: the spec needs a 'source' (a Hub id or a local dataset folder)")
    source = spec.pop("source")
    streaming = bool(spec.pop("streaming", False))
    shuffle_buffer = int(spec.pop("shuffle_buffer", 0))
    load_kw = {k: spec.pop(k) for k in ("revision", "data_files") if k in spec}
    columns = {k: spec.pop(k) for k in ("long_column", "short_column", "image_column") if k in spec}
    if spec:
        raise ValueError(f"gpu data: unknown field(s) {sorted(spec)}; expected source, long_column, short_column, "
                         "image_column, revision, data_files, streaming, shuffle_buffer")
    ds = datasets.load_dataset(source, split="train", streaming=streaming, **load_kw)
    long_col, image_col = columns.get("long_column", "long_caption"), columns.get("image_column", "image")
    short_col = columns.get("short_column", "short_caption")
    names = ds.column_names or []
    if image_col in names:
        ds = ds.cast_column(image_col, datasets.Image(decode=False))
    decoder = PairDecoder(image_size=image_size, context_length=context_length, long_column=long_col,
                          short_column=short_col, image_column=image_col,
                          derive_short=short_col is None or (bool(names) and short_col not in names),
                          short_only=short_only)
    name = f"{source}[{split}]"
    if streaming:
        if split == "validation":  # the first 1000 pairs, held in a map-style set for the held-out checks
            rows = list(ds.take(min(limit or 1000, 1000)))
            return HubPairs(datasets.Dataset.from_list(rows, features=ds.features), decoder, name)
        ds = ds.skip(1000)
        return StreamPairs(ds.take(limit) if limit else ds, decoder, name, shuffle_buffer=shuffle_buffer)
    held = min(1000, len(ds) // 10)  # Long-CLIP holds out the first 1000 pairs for validation
    ds = ds.select(range(held)) if split == "validation" else ds.select(range(held, len(ds)))
    if limit:
        ds = ds.select(range(min(limit, len(ds))))
    return HubPairs(ds, decoder, name)


def load_pairs(profile: str, split: str, context_length: int, image_size: int, *, short_only: bool = False,
               limit: int | None = None):
    """The pairs of a split for a profile: :class:`PairData` (in memory), or for ``gpu`` a
    :class:`~dgtrs_lib.data.loader.HubPairs` / :class:`~dgtrs_lib.data.loader.StreamPairs` read by the
    input pipeline. ``short_only`` (stage 1) puts the short captions in the long slot too (a
    short-only schedule never reads it)."""
    if profile == "gpu":
        return _gpu_pairs(split, context_length, image_size, short_only, limit)
    images, longs, shorts = _syndg_split(profile, split, image_size)
    if limit:
        images, longs, shorts = images[:limit], longs[:limit], shorts[:limit]
    return PairData.from_texts(images, shorts if short_only else longs, shorts, context_length)
