"""DGCL -- dual-granularity curriculum learning: how much the long-text and the short-text
losses count at each training step.

The paper (arXiv:2503.19311, ``book/references.bib`` key ``chen2025dgtrs``: its dual-granularity
curriculum learning, DGCL) says the curriculum "balances long- and short-text supervision during
training" but publishes no schedule, and the released code (github.com/MitsuiChen14/DGTRS) returns
the two losses unweighted. What IS known: the total loss has the form
``L(t) = w_long(t) * L_long + w_short(t) * L_short``. So a schedule here is a small object giving
``(w_long, w_short)`` for ``(step, total_steps)``; the trainer multiplies and sums, and skips the
text encoder of a branch whose weight is 0.

Schedules (progress ``t = step / (total_steps - 1)`` in [0, 1]):

* ``fixed``      (1, 1) always. Long-CLIP's ``loss_long + loss_short`` (its train.py); the
                 "balance without curriculum" baseline. ``w_long``/``w_short`` are settable
                 (Long-CLIP's older code used a 0.1 short weight).
* ``short_only`` (0, 1): plain CLIP fine-tuning on short captions; stage 1 of the miniature
                 pipeline, and the "no long text" ablation.
* ``long_only``  (1, 0): Long-CLIP without its short branch, the "no short text" ablation.
* ``linear``     short -> long: ``w_long = t``, ``w_short = 1 - (1 - floor) * t``. Classic
                 easy-to-hard curriculum (Bengio et al., 2009): short captions are the easy,
                 coarse task that the CLIP prior (first ``keep`` positions) already solves;
                 long captions need the new stretched positions. ``floor=0`` hands over fully.
* ``two_stage``  a hard switch at ``switch`` (default 0.5): ``first`` weights (0, 1) before,
                 ``second`` weights (1, 1) after -- the "train short, then add long" reading of
                 a curriculum with stages.
* ``cosine``     a smooth short -> long hand-over that never drops the short loss:
                 ``w_long = (1 - cos(pi t)) / 2``, ``w_short = floor + (1 - floor)(1 + cos(pi t)) / 2``
                 with ``floor = 0.5``. Our reading of "curriculum" (easy first) AND "balance"
                 (Long-CLIP showed that dropping short-text supervision costs short-text
                 retrieval, so the short loss keeps half its weight at the end).

**Equal total loss weight** (``get_schedule(name, total=1.0)``): the weights rescaled at every
step so that ``w_long + w_short = total`` (keeping their ratio). Unscaled, the schedules train at
different loss scales (``fixed`` sums to 2, ``cosine`` to between 1 and 1.5, the single-granularity
ones to 1), so a comparison of schedules would also compare scales; the claims study compares
them at equal total weight.

DEFAULT: ``cosine``. It is the one schedule consistent with both words of the paper's
description: it is a curriculum (short-text supervision first, long text phased in) and it
balances (neither loss is ever switched off at the end, unlike ``linear``/``long_only``), and
it is smooth (no loss spike as with ``two_stage``). This is an inference, NOT the paper's
formula; the ablation notebook compares it with the others.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from dgtrs_lib.errors import UsageError

DEFAULT_SCHEDULE = "cosine"


def progress(step: int, total_steps: int) -> float:
    """``step / (total_steps - 1)`` clipped to [0, 1] (so the last step has t = 1)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if total_steps == 1:
        return 1.0
    return min(max(step / (total_steps - 1), 0.0), 1.0)


@dataclass
class Schedule(ABC):
    """Base class: ``schedule(step, total_steps) -> (w_long, w_short)``; subclasses define ``weights``."""

    name: str = field(default="", init=False)

    @abstractmethod
    def weights(self, t: float) -> tuple[float, float]:
        """``(w_long, w_short)`` at training progress ``t`` in [0, 1]."""

    def __call__(self, step: int, total_steps: int) -> tuple[float, float]:
        w_long, w_short = self.weights(progress(step, total_steps))
        return float(w_long), float(w_short)

    def config(self) -> dict:
        """Name and parameters, for logs and results files."""
        cfg = {k: v for k, v in self.__dict__.items() if k != "name"}
        return {"name": self.name, **cfg}


@dataclass
class Fixed(Schedule):
    w_long: float = 1.0
    w_short: float = 1.0

    def __post_init__(self):
        self.name = "fixed"

    def weights(self, t):
        return self.w_long, self.w_short


@dataclass
class ShortOnly(Schedule):
    def __post_init__(self):
        self.name = "short_only"

    def weights(self, t):
        return 0.0, 1.0


@dataclass
class LongOnly(Schedule):
    def __post_init__(self):
        self.name = "long_only"

    def weights(self, t):
        return 1.0, 0.0


@dataclass
class Linear(Schedule):
    floor: float = 0.0

    def __post_init__(self):
        self.name = "linear"
        _check_unit("floor", self.floor)

    def weights(self, t):
        return t, 1.0 - (1.0 - self.floor) * t


@dataclass
class TwoStage(Schedule):
    switch: float = 0.5
    first: tuple = (0.0, 1.0)
    second: tuple = (1.0, 1.0)

    def __post_init__(self):
        self.name = "two_stage"
        _check_unit("switch", self.switch)
        self.first, self.second = tuple(self.first), tuple(self.second)

    def weights(self, t):
        return self.first if t < self.switch else self.second


@dataclass
class Cosine(Schedule):
    floor: float = 0.5

    def __post_init__(self):
        self.name = "cosine"
        _check_unit("floor", self.floor)

    def weights(self, t):
        w_long = 0.5 * (1.0 - math.cos(math.pi * t))
        return w_long, self.floor + (1.0 - self.floor) * (1.0 - w_long)


@dataclass
class Normalized(Schedule):
    """Another schedule's weights rescaled to ``w_long + w_short = total`` at every step."""

    inner: Schedule = field(default_factory=lambda: Fixed())
    total: float = 1.0

    def __post_init__(self):
        self.name = self.inner.name
        if not self.total > 0:
            raise ValueError(f"schedule parameter total must be > 0, got {self.total}")

    def weights(self, t):
        w_long, w_short = self.inner.weights(t)
        s = w_long + w_short
        if s <= 0:
            raise ValueError(f"schedule {self.inner.name!r} has zero total weight at t={t}")
        return self.total * w_long / s, self.total * w_short / s

    def config(self) -> dict:
        return {**self.inner.config(), "total": self.total}


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"schedule parameter {name} must be in [0, 1], got {value}")


SCHEDULES = {
    "fixed": Fixed,
    "short_only": ShortOnly,
    "long_only": LongOnly,
    "linear": Linear,
    "two_stage": TwoStage,
    "cosine": Cosine,
}


def get_schedule(name: str = DEFAULT_SCHEDULE, *, total: float | None = None, **kwargs) -> Schedule:
    """A schedule by name (``"default"`` = ``DEFAULT_SCHEDULE``), parameters as keywords;
    ``total``: rescale its weights to that sum at every step (equal total loss weight)."""
    name = DEFAULT_SCHEDULE if name == "default" else name
    if name not in SCHEDULES:
        raise UsageError(f"unknown curriculum schedule {name!r}: expected one of {sorted(SCHEDULES)} or 'default'")
    try:
        schedule = SCHEDULES[name](**kwargs)
    except TypeError as err:
        raise UsageError(f"schedule {name!r}: bad parameters {kwargs}: {err}") from None
    if total is None:
        return schedule
    try:
        return Normalized(schedule, float(total))
    except (TypeError, ValueError) as err:
        raise UsageError(f"schedule {name!r}: bad total {total!r}: {err}") from None


def weight_table(names=None, total_steps: int = 100):
    """``{name: [(w_long, w_short) per step]}`` for plotting every schedule on one figure."""
    names = list(SCHEDULES) if names is None else list(names)
    return {n: [get_schedule(n)(s, total_steps) for s in range(total_steps)] for n in names}
