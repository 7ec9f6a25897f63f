"""The learning-rate schedule: Long-CLIP's ``cosine_lr`` (github.com/beichenzbc/Long-CLIP,
``train/scheduler.py``; ``book/references.bib`` key ``zhang2024longclip``).

Linear warm-up ``base * (step + 1) / warmup`` for the first ``warmup`` steps, then a half cosine
from ``base`` down to 0 at ``total``. The trainer sets it on every parameter group before each
optimizer step.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import math


def cosine_lr(step: int, base_lr: float, warmup: int, total: int) -> float:
    """Long-CLIP's ``cosine_lr``: linear warm-up then a half cosine down to 0 at ``total``."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    decay = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / decay)) * base_lr
