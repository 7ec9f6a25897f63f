"""The trainer's hyper-parameters: one ``TrainConfig`` and its check.

Defaults are Long-CLIP's fine-tuning recipe at GPU scale (github.com/beichenzbc/Long-CLIP,
``train/train.py`` arguments; ``book/references.bib`` key ``zhang2024longclip``): AdamW lr 1e-6,
weight decay 1e-2, betas (0.9, 0.999), eps 1e-8, 200 warm-up steps, batch 128 per process, logit
scale re-initialised to ln 100 and clamped to [0, ln 100] (CLIP's clip). DGTRS released no
training code (arXiv:2503.19311). The profiles (``dgtrs_lib.profiles``) override fields for the
miniature; the curriculum (``schedule``) and the loss preset name objects of
``dgtrs_lib.training.curriculum`` and ``dgtrs_lib.training.losses``.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Hyper-parameters. Defaults = the Long-CLIP fine-tuning recipe (GPU scale)."""

    steps: int = 1000
    batch_size: int = 128            # per process and per micro-batch
    accum_steps: int = 1             # micro-batches per optimizer step
    lr: float = 1e-6
    weight_decay: float = 1e-2
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 200
    init_logit_scale: float | None = math.log(100.0)   # None keeps the model's value
    max_logit_scale: float = math.log(100.0)
    schedule: str = "default"
    schedule_kwargs: dict = field(default_factory=dict)
    loss: str = "dgtrs"              # a DualGranularityLoss preset: "dgtrs" | "longclip"
    loss_kwargs: dict = field(default_factory=dict)
    precision: str = "auto"          # "auto" | "fp32" | "bf16"
    seed: int = 0
    ckpt_every: int = 0              # 0: only at the end
    grad_clip: float | None = None
    progress: bool = True            # tqdm bar (rank 0)
    deterministic: bool = False      # torch.use_deterministic_algorithms (exact resume on CUDA)

    def check(self) -> None:
        for name in ("steps", "batch_size", "accum_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"TrainConfig.precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.warmup_steps < 0 or self.lr <= 0:
            raise ValueError(f"TrainConfig: need lr > 0 and warmup_steps >= 0, got lr={self.lr}, warmup_steps={self.warmup_steps}")
