"""Mixed precision that fits the device, and the optimizer that goes with it.

``select_precision`` turns ``TrainConfig.precision`` into the mode a run actually uses:

* ``bf16`` autocast where the GPU computes bf16 natively: NVIDIA compute capability >= 8.0 (A100,
  A10, L4, H100, ...). ``torch.cuda.is_bf16_supported()`` is not the test: its default
  (``including_emulation=True``) also answers True on a T4 or V100 (capability 7.x), which have no
  bf16 tensor cores, so a run would silently train in emulated bf16.
* ``fp16`` autocast with dynamic loss scaling (``torch.amp.GradScaler``) below capability 8.0 --
  the AMP recipe of Micikevicius et al. 2018 ("Mixed Precision Training"), which Long-CLIP's
  ``train/train.py`` uses (``torch.cuda.amp.autocast`` + ``GradScaler``).
* ``fp32`` on the CPU (``auto``); an explicit ``bf16``/``fp16`` is honoured there too (CPU autocast;
  slow, used by the tests to run the loss-scaling path without a GPU).

:class:`Amp` is the chosen mode as one object: the autocast context, the scaler (a no-op unless
fp16), the optimizer step (unscale before clipping, skip on inf/nan, update the scale) and the
scaler's state for the resume file. ``adamw`` builds AdamW with ``fused=True`` on CUDA (one kernel
for the whole update; PyTorch ``torch.optim.AdamW`` documentation) and ``foreach=True`` on the CPU
(one multi-tensor op per update step instead of a Python loop over parameters, which PyTorch turns on
by default for CUDA only): the same arithmetic element by element, so the same weights to the bit
(``tests/test_precision.py``), about 5 % less wall time per step of the cpu miniature. ``describe()`` is what the trainer prints and writes into the metrics log, the
checkpoint sidecar and the results file.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import contextlib
import warnings

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
NATIVE_BF16 = (8, 0)   # first compute capability with bf16 tensor cores (Ampere)
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionWarning(UserWarning):
    """A precision was requested that the device only emulates."""


def device_capability(device: torch.device | str) -> tuple[int, int] | None:
    """``(major, minor)`` of a CUDA device, else None."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return tuple(torch.cuda.get_device_capability(device))


def select_precision(requested: str = "auto", device: torch.device | str = "cpu",
                     capability: tuple[int, int] | None = None) -> str:
    """The precision a run uses: ``"bf16"``, ``"fp16"`` or ``"fp32"`` (rules in the module doc).

    ``capability`` overrides the device's compute capability (tests, planning for another GPU).
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    device = torch.device(device)
    if device.type != "cuda":
        return "fp32" if requested == "auto" else requested
    cap = tuple(capability) if capability is not None else device_capability(device)
    native = cap >= NATIVE_BF16
    if requested == "auto":
        return "bf16" if native else "fp16"
    if requested == "bf16" and not native:
        warnings.warn(f"precision='bf16' on a GPU of compute capability {cap[0]}.{cap[1]}: bf16 is emulated below "
                      f"{NATIVE_BF16[0]}.{NATIVE_BF16[1]} and slower than fp16; use precision='auto' (fp16 + loss "
                      "scaling there)", PrecisionWarning, stacklevel=2)
    return requested


def adamw_kwargs(device: torch.device | str) -> dict:
    """Implementation switches for AdamW: ``{"fused": True}`` on CUDA, ``{"foreach": True}`` elsewhere."""
    return {"fused": True} if torch.device(device).type == "cuda" else {"foreach": True}


def adamw(params, device: torch.device | str, *, lr: float, betas, eps: float, weight_decay: float):
    """AdamW (no no-decay groups, as Long-CLIP), fused on CUDA, multi-tensor on the CPU."""
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                             **adamw_kwargs(device))


class Amp:
    """Autocast + loss scaling for one precision on one device."""

    def __init__(self, precision: str, device: torch.device | str, *, capability: tuple[int, int] | None = None):
        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"Amp: precision must be fp32, bf16 or fp16 (resolve 'auto' with select_precision), "
                             f"got {precision!r}")
        self.precision = precision
        self.device = torch.device(device)
        self.capability = capability if capability is not None else device_capability(self.device)
        self.dtype = _DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=precision == "fp16")

    @property
    def loss_scaling(self) -> bool:
        return self.scaler.is_enabled()

    def autocast(self):
        """The forward-pass context (a no-op in fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to call ``backward`` on (multiplied by the loss scale in fp16)."""
        return self.scaler.scale(loss) if self.loss_scaling else loss

    def step(self, optimizer, params=None, grad_clip: float | None = None) -> None:
        """Unscale (fp16), clip, step (skipped by the scaler on inf/nan gradients), update the scale."""
        if grad_clip:
            if self.loss_scaling:
                self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        if self.loss_scaling:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def loss_scale(self) -> float | None:
        return float(self.scaler.get_scale()) if self.loss_scaling else None

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.loss_scaling else {}

    def load_state_dict(self, state: dict) -> None:
        if self.loss_scaling and state:
            self.scaler.load_state_dict(state)

    def describe(self) -> dict:
        """What the logs and results files record about the mode and why it was chosen."""
        if self.device.type == "cuda":
            cap = self.capability
            why = (f"compute capability {cap[0]}.{cap[1]}: "
                   + ("native bf16" if tuple(cap) >= NATIVE_BF16 else "no native bf16, fp16 with loss scaling"))
            name = torch.cuda.get_device_name(self.device)
        else:
            why, name = "CPU", "cpu"
        return {"precision": self.precision, "autocast": str(self.dtype).replace("torch.", "") if self.dtype else None,
                "loss_scaling": self.loss_scaling, "device": name,
                "capability": list(self.capability) if self.capability else None, "reason": why}
