"""THE feature encoder of every evaluation: images and texts in, ``[N, E]`` float32 CPU features out.

CLIP scores by cosine similarity (Radford et al. 2021, ``radford2021clip``), so the features are
L2-normalised unless ``normalize=False`` (the template ensemble of ``classification`` averages raw
embeddings first). Every encoder runs the same step per batch -- move to the model's device,
``encode_image`` / ``encode_text``, float32, normalise, back to the CPU -- in ``_features``:

* ``encode_images(model, images, preprocess)``: PIL images (a list, or a ``datasets.Dataset`` with
  an ``image`` column), preprocessed per batch;
* ``encode_texts(model, texts)``: strings, tokenised with open_clip's BPE at the model's context
  (``tokenizer_for``; long captions truncated with EOT kept, as open_clip and Long-CLIP do);
* ``encode_pairs(model, pairs)``: image / long / short features of training-style pairs (``PairData``:
  preprocessed image tensors and token ids, each token batch trimmed to its longest row) -- the
  pipeline's held-out check.

The device is the model's own (``model_device``): move the model first.

Taught in: Long-text cross-modal retrieval (notebooks/04-long-text-retrieval.ipynb)
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F


def model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _features(encode: Callable, x: torch.Tensor, device, normalize: bool = True) -> torch.Tensor:
    """One batch through ``encode`` (``model.encode_image`` / ``model.encode_text``) -> CPU float32."""
    f = encode(x.to(device)).float()
    return (F.normalize(f, dim=-1) if normalize else f).cpu()


def tokenizer_for(model) -> Callable[[list[str]], torch.Tensor]:
    """Token ids for ``model``: open_clip's BPE at ``model.context_length`` (long captions are
    truncated with EOT kept). Models with a dynamic-length text tower (``dgtrs_lib.model.longclip``) get
    per-batch padding to the longest text; plain open_clip models get the full context."""
    from dgtrs_lib.model.tokenizer import tokenize

    ctx = int(getattr(model, "context_length", 77))
    dynamic = hasattr(model, "text_positional_embedding")

    def _tok(texts):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # truncation is part of the protocol at this length
            return tokenize(list(texts), ctx, pad_to_longest=dynamic)

    return _tok


@torch.no_grad()
def encode_texts(model, texts: Sequence[str], *, tokenizer=None, batch_size: int = 256, normalize: bool = True,
                 progress: bool = False) -> torch.Tensor:
    """``[N, E]`` float32 CPU text features (L2-normalised unless ``normalize=False``)."""
    from tqdm.auto import tqdm

    tokenizer = tokenizer or tokenizer_for(model)
    device = model_device(model)
    texts = list(texts)
    out = [_features(model.encode_text, tokenizer(texts[s:s + batch_size]), device, normalize)
           for s in tqdm(range(0, len(texts), batch_size), desc="texts", disable=not progress, leave=False)]
    if not out:
        raise ValueError("encode_texts: no texts")
    return torch.cat(out)


def _image_batches(images, batch_size: int):
    if hasattr(images, "column_names") and "image" in getattr(images, "column_names", []):  # datasets.Dataset
        for s in range(0, len(images), batch_size):
            yield images[s:s + batch_size]["image"]
    else:
        images = list(images)
        for s in range(0, len(images), batch_size):
            yield images[s:s + batch_size]


@torch.no_grad()
def encode_images(model, images, preprocess, *, batch_size: int = 64, normalize: bool = True,
                  progress: bool = False) -> torch.Tensor:
    """``[N, E]`` float32 CPU image features of PIL images (a list, or a ``datasets.Dataset``
    with an ``image`` column), preprocessed with ``preprocess``."""
    from tqdm.auto import tqdm

    device = model_device(model)
    total = (len(images) + batch_size - 1) // batch_size if hasattr(images, "__len__") else None
    out = [_features(model.encode_image, torch.stack([preprocess(im.convert("RGB")) for im in batch]), device, normalize)
           for batch in tqdm(_image_batches(images, batch_size), total=total, desc="images", disable=not progress,
                             leave=False)]
    if not out:
        raise ValueError("encode_images: no images")
    return torch.cat(out)


@torch.no_grad()
def encode_pairs(model, pairs, *, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Normalised ``{"image", "long", "short"}`` features of every pair of a ``PairData``
    (``len(pairs)``, ``pairs.batch(idx) -> (images, long_tokens, short_tokens)``)."""
    device = model_device(model)
    feats: dict[str, list] = {"image": [], "long": [], "short": []}
    for start in range(0, len(pairs), batch_size):
        images, long_tok, short_tok = pairs.batch(torch.arange(start, min(start + batch_size, len(pairs))))
        feats["image"].append(_features(model.encode_image, images, device))
        feats["long"].append(_features(model.encode_text, long_tok, device))
        feats["short"].append(_features(model.encode_text, short_tok, device))
    if not feats["image"]:
        raise ValueError("encode_pairs: no pairs")
    return {k: torch.cat(v) for k, v in feats.items()}
