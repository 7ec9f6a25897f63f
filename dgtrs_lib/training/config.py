"""The trainer's hyper-parameters: one ``TrainConfig`` and its check.

Defaults are Long-CLIP's fine-tuning recipe at GPU scale (github.com/beichenzbc/Long-CLIP,
``train/train.py`` arguments; ``book/references.bib`` key ``zhang2024longclip``): AdamW lr 1e-6,
weight decay 1e-2, betas (0.9, 0.999), eps 1e-8, 200 warm-up steps, batch 128 per process, logit
scale re-initialised to ln 100 and clamped to [0, ln 100] (CLIP's clip). DGTRS released no
training code (arXiv:2503.19311). The profiles (``dgtrs_lib.profiles``) override fields for the
miniature; the curriculum (``schedule``) and the loss preset name objects of
``dgtrs_lib.training.curriculum`` and ``dgtrs_lib.training.losses``.

Two batch sizes (issue #15): ``contrastive_batch`` is the contrastive problem -- the pairs whose
similarities one loss compares, over all processes (each pair's negatives are the others);
``batch_size`` is what one forward/backward pass of one process holds, i.e. what must fit in
memory. When ``contrastive_batch`` exceeds ``batch_size x processes`` the trainer computes the
loss by gradient caching (Gao et al. 2021, GradCache; ``dgtrs_lib.training.gradcache``): the same
loss and gradients as one pass over the whole batch. ``accum_steps`` is different: each
accumulated micro-step is its own contrastive problem (more pairs per update, not more negatives).
``batch_size="auto"`` lets ``dgtrs_lib.training.plan`` pick the sub-batch from the device memory.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Hyper-parameters. Defaults = the Long-CLIP fine-tuning recipe (GPU scale)."""

    steps: int = 1000
    batch_size: int | str = 128      # pairs per forward/backward pass and process (must fit memory); "auto"
    contrastive_batch: int | None = None  # pairs per contrastive problem, all processes; None: batch_size x world
    accum_steps: int = 1             # contrastive problems (micro-steps) per optimizer step
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
    precision: str = "auto"          # "auto" (bf16 from compute capability 8.0, else fp16 + GradScaler; CPU fp32) | "fp32" | "bf16" | "fp16"
    seed: int = 0
    ckpt_every: int = 0              # 0: only at the end
    save_snapshots: bool = True      # with ckpt_every: also an official step_<N>.pt each time (else train_state.pt only)
    grad_clip: float | None = None
    progress: bool = True            # tqdm bar (rank 0)
    deterministic: bool = False      # torch.use_deterministic_algorithms (exact resume on CUDA)
    compile: bool | str = False      # torch.compile the dual encoder: True (inductor) or a backend name
    num_workers: int | str = "auto"  # DataLoader workers for the non-miniature sources ("auto": CPU cores - 1, <= 8)
    prefetch_factor: int = 4         # chunks each worker keeps in flight

    def check(self) -> None:
        for name in ("steps", "accum_steps", "prefetch_factor"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.batch_size != "auto" and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ValueError(f"TrainConfig.batch_size must be an integer >= 1 or 'auto', got {self.batch_size!r}")
        if self.contrastive_batch is not None and (not isinstance(self.contrastive_batch, int)
                                                   or self.contrastive_batch < 1):
            raise ValueError(f"TrainConfig.contrastive_batch must be None or an integer >= 1, "
                             f"got {self.contrastive_batch!r}")
        if self.batch_size == "auto" and self.contrastive_batch is None:
            raise ValueError("TrainConfig.batch_size='auto' picks the sub-batch of a contrastive batch: "
                             "set contrastive_batch too")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"TrainConfig.precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {self.precision!r}")
        if self.num_workers != "auto" and (not isinstance(self.num_workers, int) or self.num_workers < 0):
            raise ValueError(f"TrainConfig.num_workers must be 'auto' or an integer >= 0, got {self.num_workers!r}")
        if not isinstance(self.compile, (bool, str)):
            raise ValueError(f"TrainConfig.compile must be False, True or a torch.compile backend name, "
                             f"got {self.compile!r}")
        if self.warmup_steps < 0 or self.lr <= 0:
            raise ValueError(f"TrainConfig: need lr > 0 and warmup_steps >= 0, got lr={self.lr}, warmup_steps={self.warmup_steps}")
