"""The image preprocessing every model source shares: OpenAI CLIP's evaluation transform, through
open_clip (``open_clip.transform.image_transform``; CLIP's mean and std, bicubic resize of the
shortest side, centre crop), at the model's own resolution (``model_image_size``).

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transform import image_transform


def make_preprocess(image_size: int):
    """OpenAI CLIP's eval transform: resize (bicubic, shortest side), centre crop, RGB, normalise."""
    return image_transform(image_size, is_train=False, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD,
                           resize_mode="shortest", interpolation="bicubic")


def model_image_size(model) -> int:
    """Input resolution of any CLIP-like model (ours or open_clip's): ``model.visual.image_size``
    (an int or an (H, W) pair), else CLIP's 224."""
    size = getattr(getattr(model, "visual", None), "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)
