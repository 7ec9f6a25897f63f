"""A locked image tower and the cache of its features: encode each distinct image once.

When the image tower is frozen (open_clip's ``lock_image``; LiT, Zhai et al. 2022,
``zhai2022lit``), its output for an image never changes, during training or across models that
share the tower. :func:`lock_image_tower` freezes ``model.visual`` and routes
``model.encode_image`` through an :class:`ImageFeatureCache`: each row of a pre-processed image
batch is keyed by a hash of its bytes and of the tower's weights, and only rows not seen before go
through the tower. The features are the tower's own (bit-identical: the same module on the same
inputs), so training and every evaluation read exactly what an uncached frozen tower would give;
only the time differs. The study of the paper's claims (``dgtrs_lib.experiments.ablations``)
freezes the prior's image tower in every arm and shares one cache over all of them.

Taught in: Ablations: testing the paper's claims in miniature (notebooks/08-ablations.ipynb)
"""
from __future__ import annotations

import hashlib

import torch
from torch import nn


def tower_fingerprint(module: nn.Module) -> str:
    """A hash of a module's parameters and buffers (names, shapes, bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class ImageFeatureCache:
    """``{(tower fingerprint, image bytes hash): feature row}``; ``hits``/``misses`` count rows."""

    def __init__(self):
        self.rows: dict[tuple[str, bytes], torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.rows)

    def encode(self, encode, fingerprint: str, images: torch.Tensor) -> torch.Tensor:
        """``encode(images)`` with every row already seen (same tower, same bytes) read back."""
        flat = images.detach().cpu().contiguous().reshape(len(images), -1).numpy()
        keys = [(fingerprint, hashlib.blake2b(row.tobytes(), digest_size=16).digest()) for row in flat]
        missing = [i for i, k in enumerate(keys) if k not in self.rows]
        if missing:
            with torch.no_grad():
                fresh = encode(images[missing]).detach()
            for j, i in enumerate(missing):
                self.rows[keys[i]] = fresh[j].clone()
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        return torch.stack([self.rows[k] for k in keys]).to(images.device)


def lock_image_tower(model: nn.Module, cache: ImageFeatureCache | None = None) -> ImageFeatureCache:
    """Freeze ``model.visual`` (no gradients, eval mode) and serve ``model.encode_image`` from
    ``cache`` (a new one unless given: pass one cache to models that share the tower). Returns it."""
    cache = cache if cache is not None else ImageFeatureCache()
    visual = model.visual
    visual.requires_grad_(False)
    visual.eval()
    fingerprint = tower_fingerprint(visual)
    plain = type(model).encode_image.__get__(model)

    def encode_image(images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        features = cache.encode(plain, fingerprint, images)
        return nn.functional.normalize(features, dim=-1) if normalize else features

    model.encode_image = encode_image
    model.image_tower_locked = fingerprint
    return cache
