"""Training settings picked from the GPU a run finds: precision, sub-batch, contrastive batch.

``plan_training(profile, device)`` returns a :class:`TrainPlan` for the device in hand (or a
:class:`DeviceInfo` describing another one: the tests and the README use T4, L4, A100 and H100):

* **precision** -- :func:`dgtrs_lib.training.precision.select_precision` (bf16 from compute
  capability 8.0, fp16 + loss scaling below, fp32 on the CPU);
* **contrastive batch** -- the profile's ``stage2["contrastive_batch"]`` (the ``gpu`` profile:
  2048 pairs, Long-CLIP's global batch), the same on one GPU or many;
* **sub-batch** -- the largest multiple of 8 pairs whose training step fits in ``SAFETY`` (85 %)
  of the device memory (on a CPU: of the RAM) by the memory model below, capped at the
  per-process contrastive batch;
  when it is smaller, the trainer computes the loss by gradient caching
  (``dgtrs_lib.training.gradcache``), so the choice changes memory and speed, not the result.

Memory model, per process: ``fixed + sub_batch * per_pair`` with

* ``fixed`` = fp32 weights (4 bytes per parameter) + gradients and AdamW's two moments (12 per
  trainable parameter) + the autocast weight copies (2 per parameter in 16-bit) + ``OVERHEAD_GIB``
  (CUDA context, cuBLAS workspace, allocator fragmentation);
* ``per_pair`` = ``BYTES_PER_UNIT[precision] * (L_v T_v W_v + L_t W_t (long + short tokens))``:
  activations saved for the backward pass are proportional to layers x tokens x width (Korthikanti
  et al. 2022, "Reducing Activation Recomputation in Large Transformer Models", section 4.1: 34
  bytes per unit in 16-bit for a GELU transformer with fused attention). The constants here are
  measured for THIS model code: the bytes of every tensor autograd saves during one training
  forward (``torch.autograd.graph.saved_tensors_hooks``, slope between batch 2 and 4) of ViT-B/16
  at 248 + 77 tokens and of ``tiny``, on the CPU under autocast (torch 2.14): 42.7 and 44.8 bytes
  per unit in bf16/fp16, 80.9 and 83.1 in fp32 (QuickGELU and the fp32 layer norms of autocast save
  more than Korthikanti's 34). ViT-B/16 at 248 + 77 tokens: about 155 MiB per pair in 16-bit.
  ``scripts/gpu_check.sh`` measures the largest sub-batch that really fits on a lent GPU and prints
  it beside this prediction.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch
from torch import nn

from dgtrs_lib.profiles import get_profile
from dgtrs_lib.training.precision import select_precision

SAFETY = 0.85                 # fraction of the device memory the plan may use
OVERHEAD_GIB = 1.5            # CUDA context + workspaces + fragmentation
BYTES_PER_UNIT = {"bf16": 45.0, "fp16": 45.0, "fp32": 84.0}   # measured, see the module doc
SHORT_TOKENS = 77             # the short branch is budgeted at CLIP's context (real captions are shorter)
GIB = 2 ** 30

# Colab's GPUs (and the H100 of the prepared check), for the README table and the tests: name ->
# (compute capability, memory as torch.cuda.get_device_properties reports it, GiB).
KNOWN_GPUS = {
    "Tesla T4": ((7, 5), 14.7),
    "NVIDIA L4": ((8, 9), 22.0),
    "NVIDIA A100-SXM4-40GB": ((8, 0), 39.4),
    "NVIDIA A100-SXM4-80GB": ((8, 0), 79.1),
    "NVIDIA H100 80GB HBM3": ((9, 0), 79.1),
}


@dataclass(frozen=True)
class DeviceInfo:
    """What the plan needs to know about a device."""

    type: str                                  # "cuda" | "cpu"
    name: str = "cpu"
    capability: tuple[int, int] | None = None
    memory_gib: float | None = None

    @classmethod
    def current(cls, device: torch.device | str | None = None) -> "DeviceInfo":
        """The device a run would use (``cuda`` when available, else the CPU)."""
        device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        if device.type != "cuda":
            try:
                ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
            except (AttributeError, ValueError, OSError):  # not POSIX: no memory limit modelled
                ram = None
            return cls(type="cpu", memory_gib=ram)
        props = torch.cuda.get_device_properties(device)
        return cls(type="cuda", name=props.name, capability=(props.major, props.minor),
                   memory_gib=props.total_memory / GIB)

    @classmethod
    def known(cls, name: str) -> "DeviceInfo":
        """A GPU of :data:`KNOWN_GPUS` by (part of) its name, e.g. ``"T4"`` or ``"A100-SXM4-80GB"``."""
        hits = [k for k in KNOWN_GPUS if name.lower() in k.lower()]
        if len(hits) != 1:
            raise ValueError(f"unknown or ambiguous GPU {name!r}: expected part of one of {sorted(KNOWN_GPUS)}")
        cap, mem = KNOWN_GPUS[hits[0]]
        return cls(type="cuda", name=hits[0], capability=cap, memory_gib=mem)


@dataclass(frozen=True)
class ModelShape:
    """The sizes the memory model reads from a model."""

    params: int
    trainable: int
    vision_layers: int
    vision_tokens: int
    vision_width: int
    text_layers: int
    text_width: int
    context: int

    @classmethod
    def of(cls, model: "nn.Module | str") -> "ModelShape":
        """From a model, or a ``dgtrs_lib.model.configs`` name (built on the meta device: no memory)."""
        if isinstance(model, str):
            from dgtrs_lib.model.longclip import create_long_model

            with torch.device("meta"):
                model = create_long_model(model)
        visual = model.visual
        grid = [s // p for s, p in zip(_pair(visual.image_size), _pair(visual.patch_size))]
        return cls(params=sum(p.numel() for p in model.parameters()),
                   trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
                   vision_layers=len(visual.transformer.resblocks), vision_tokens=grid[0] * grid[1] + 1,
                   vision_width=visual.conv1.weight.shape[0], text_layers=len(model.transformer.resblocks),
                   text_width=model.ln_final.weight.shape[0], context=model.context_length)


def _pair(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


def fixed_bytes(shape: ModelShape, precision: str) -> float:
    """Weights, gradients, AdamW state, autocast weight copies and the overhead."""
    casts = 2 * shape.params if precision in ("bf16", "fp16") else 0
    return 4 * shape.params + 12 * shape.trainable + casts + OVERHEAD_GIB * GIB


def bytes_per_pair(shape: ModelShape, precision: str, long_tokens: int | None = None,
                   short_tokens: int = SHORT_TOKENS) -> float:
    """Activation memory of one (image, long text, short text) triple in a training step."""
    long_tokens = shape.context if long_tokens is None else long_tokens
    units = (shape.vision_layers * shape.vision_tokens * shape.vision_width
             + shape.text_layers * shape.text_width * (long_tokens + min(short_tokens, shape.context)))
    return BYTES_PER_UNIT[precision] * units


def step_memory_gib(shape: ModelShape, precision: str, sub_batch: int, **tokens) -> float:
    """Predicted peak memory of a training step with ``sub_batch`` pairs per forward."""
    return (fixed_bytes(shape, precision) + sub_batch * bytes_per_pair(shape, precision, **tokens)) / GIB


def largest_sub_batch(shape: ModelShape, precision: str, memory_gib: float, *, multiple: int = 8, **tokens) -> int:
    """The largest multiple of ``multiple`` pairs that fits ``SAFETY * memory_gib`` (0 if none)."""
    free = SAFETY * memory_gib * GIB - fixed_bytes(shape, precision)
    fit = int(free // bytes_per_pair(shape, precision, **tokens)) if free > 0 else 0
    return (fit // multiple) * multiple


@dataclass(frozen=True)
class TrainPlan:
    """The picked settings, the device they were picked for, and why."""

    device: DeviceInfo
    precision: str
    contrastive_batch: int          # pairs in one contrastive problem, all processes together
    sub_batch: int                  # pairs per forward/backward (per process)
    world: int
    predicted_gib: float | None
    reason: str

    @property
    def per_process_batch(self) -> int:
        return self.contrastive_batch // self.world

    @property
    def grad_cache(self) -> bool:
        return self.sub_batch < self.per_process_batch

    def overrides(self) -> dict:
        """``TrainConfig`` fields: ``precision``, ``batch_size`` (the sub-batch), ``contrastive_batch``."""
        return {"precision": self.precision, "batch_size": self.sub_batch, "contrastive_batch": self.contrastive_batch}

    def as_dict(self) -> dict:
        d = asdict(self)
        d["device"] = asdict(self.device)
        d.update(per_process_batch=self.per_process_batch, grad_cache=self.grad_cache)
        return d

    def summary(self) -> str:
        if self.device.type == "cuda":
            dev = (f"{self.device.name} (compute capability {self.device.capability[0]}.{self.device.capability[1]}, "
                   f"{self.device.memory_gib:.0f} GiB)")
        else:
            dev = "CPU" + (f" ({self.device.memory_gib:.0f} GiB RAM)" if self.device.memory_gib else "")
        how = (f"gradient caching: {-(-self.per_process_batch // self.sub_batch)} sub-batches of {self.sub_batch}"
               if self.grad_cache else "one forward per step (no gradient caching)")
        mem = f", predicted peak {self.predicted_gib:.1f} GiB" if self.predicted_gib is not None else ""
        return (f"{dev}: precision {self.precision}; contrastive batch {self.contrastive_batch} "
                f"({self.world} process{'es' if self.world > 1 else ''} x {self.per_process_batch}); "
                f"sub-batch {self.sub_batch} -> {how}{mem}. {self.reason}")


def plan_training(profile="gpu", device: "DeviceInfo | torch.device | str | None" = None, *, world: int = 1,
                  model: "nn.Module | str | None" = None, precision: str | None = None,
                  contrastive_batch: int | None = None, long_tokens: int | None = None) -> TrainPlan:
    """Pick precision, sub-batch and contrastive batch for ``profile``'s fine-tuning on ``device``.

    ``model`` defaults to the profile's model configuration; ``precision`` and ``contrastive_batch``
    to the profile's ``stage2`` values (``contrastive_batch`` None there: ``batch_size x world``).
    ``profile=None`` (the trainer resolving ``batch_size="auto"``): no profile defaults; pass
    ``model`` and ``contrastive_batch``.
    """
    prof = get_profile(profile) if profile is not None else None
    stage2 = dict(prof.stage2) if prof is not None else {}
    if prof is None and (model is None or contrastive_batch is None):
        raise ValueError("plan_training without a profile needs model= and contrastive_batch=")
    info = device if isinstance(device, DeviceInfo) else DeviceInfo.current(device)
    requested = precision or stage2.get("precision", "auto")
    chosen = select_precision(requested, "cuda" if info.type == "cuda" else "cpu", capability=info.capability)
    contrastive = contrastive_batch or stage2.get("contrastive_batch")
    if contrastive is None:
        per = stage2.get("batch_size", 128)
        if not isinstance(per, int):
            raise ValueError(f"profile {prof.name if prof else None}: stage2 batch_size={per!r} needs a contrastive_batch")
        contrastive = per * world
    if contrastive % world:
        raise ValueError(f"contrastive_batch={contrastive} must be a multiple of the number of processes ({world})")
    per_process = contrastive // world
    shape = ModelShape.of(model if model is not None else prof.model)
    if info.memory_gib is None:  # a CPU whose memory is unknown: nothing to fit
        return TrainPlan(info, chosen, contrastive, per_process, world, None,
                         "CPU: no memory limit is modelled; the whole batch goes through at once.")
    fit = largest_sub_batch(shape, chosen, info.memory_gib, long_tokens=long_tokens)
    if fit < 8:
        raise ValueError(f"{info.name} ({info.memory_gib:.1f} GiB): not even 8 pairs of this model fit by the memory "
                         f"model (fixed part {fixed_bytes(shape, chosen) / GIB:.1f} GiB); use a larger "
                         f"{'GPU' if info.type == 'cuda' else 'machine'}")
    sub = min(fit, per_process)
    if info.type != "cuda":
        why = f"CPU: {chosen}; the sub-batch fits {SAFETY:.0%} of the RAM by the same memory model."
    else:
        why = (f"{chosen}: " + ("native bf16 (compute capability >= 8.0)." if chosen == "bf16" else
                                "no native bf16 below compute capability 8.0, so fp16 autocast with loss scaling."
                                if chosen == "fp16" else "requested."))
    why += f" Up to {fit} pairs per forward fit {SAFETY:.0%} of the memory at {long_tokens or shape.context} tokens."
    return TrainPlan(info, chosen, contrastive, sub, world,
                     round(step_memory_gib(shape, chosen, sub, long_tokens=long_tokens), 2), why)
