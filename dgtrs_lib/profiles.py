"""Run profiles: every setting that depends on ``smoke`` / ``cpu`` / ``gpu``, in one frozen object.

* ``smoke`` -- seconds per stage; what CI executes. Proves the code path, not the science.
* ``cpu``   -- the miniature pipeline (tiny CLIP, embedded SynDG-RS) in minutes on 2 cores.
* ``gpu``   -- Colab or one rented GPU: ViT-B/16 from OpenAI weights + KPS, real data from the Hub.

``get_profile(name)`` resolves the name once -- an explicit value (a notebook's ``PROFILE``
parameter, a ``--profile`` flag), else ``DGTRS_PROFILE``, else ``auto`` (``gpu`` when CUDA is
available, else ``cpu``) -- and returns the :class:`Profile`; entry points pass that object down.
Functions that take a profile accept a ``Profile`` or its name.

The stretch (``keep``, ``ratio``, contexts) is not set here: it is read from the model's
configuration (``dgtrs_lib.model.configs``). Importing this module does not import torch.

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from dgtrs_lib.errors import UsageError
from dgtrs_lib.model.configs import stretch_of

PROFILES = ("smoke", "cpu", "gpu")


def _frozen(d: Mapping | None) -> Mapping | None:
    return None if d is None else MappingProxyType(dict(d))


@dataclass(frozen=True)
class Profile:
    """Everything a profile decides. Read-only: derive a variant with ``dataclasses.replace``."""

    name: str
    model: str                                  # a dgtrs_lib.model.configs name
    syndg_sizes: Mapping[str, int]              # SynDG-RS split sizes (train / validation / test)
    selo_scenes: int                            # SynDG-RS SeLo scenes ...
    selo_size: int                              # ... and their side in px
    stage1: Mapping | None                      # TrainConfig fields of short-caption pre-training; None: OpenAI weights
    stage2: Mapping                             # TrainConfig fields of DGCL fine-tuning
    stage1_source: str | None = None            # where stage 1 comes from when it is not trained here
    heldout_limit: int | None = None            # pairs in the held-out check after each stage (None: all)
    eval_limit: int | None = None               # images per retrieval/classification set in `evaluate` (None: all)
    ablation_steps: int | None = None           # fine-tuning steps per ablation configuration (None: stage2's)
    ablation_seeds: tuple = (0,)
    ablation_secondary_seeds: tuple | None = None  # seeds of the secondary arms (None: ablation_seeds)
    notebook_timeout_s: int | None = None       # per-cell limit when the runner executes a notebook
    gpu_data: Mapping | None = None             # the gpu profile's training set (DGTRS_GPU_DATA overrides)
    prior_sizes: Mapping[str, int] | None = None  # the prior's pre-training corpus (train / validation); None: not trained here
    curve_every: int | None = None              # stage 1: held-out alt-text retrieval every N steps (the plateau curve)
    build_tiles: int | None = None              # notebook 10: Sentinel-2 tiles the dataset builder captions (None: all)
    build_shard_size: int = 64                  # ... and the images per shard of its build

    def __post_init__(self):
        for name in ("syndg_sizes", "stage1", "stage2", "gpu_data", "prior_sizes"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    # -- derived from the model configuration (one place: dgtrs_lib.model.configs)
    @property
    def stretch(self) -> dict:
        """``{"keep", "ratio", "base_context", "context"}`` of this profile's model."""
        return stretch_of(self.model)

    @property
    def keep(self) -> int:
        return self.stretch["keep"]

    @property
    def ratio(self) -> int:
        return self.stretch["ratio"]

    # -- the one device rule
    def device(self) -> str:
        """``cuda`` for the gpu profile when CUDA is available, else ``cpu`` -- for training AND
        evaluation, so a cpu-profile run reproduces the CPU reference numbers on any machine."""
        if self.name != "gpu":
            return "cpu"
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def __str__(self) -> str:  # paths and file names use the name: artifacts/<profile>/
        return self.name


_TABLE = {
    "smoke": Profile(
        name="smoke", model="tiny",
        syndg_sizes={"train": 256, "validation": 64, "test": 128}, selo_scenes=2, selo_size=320,
        prior_sizes={"train": 512, "validation": 128}, curve_every=3,
        stage1=dict(steps=6, batch_size=32, lr=5e-4, warmup_steps=2, weight_decay=0.1),
        stage2=dict(steps=6, batch_size=32, lr=1e-4, warmup_steps=2),
        heldout_limit=64, eval_limit=256,
        # two seeds of the primary arms keep CI short and still give paired intervals; one of the
        # secondary arms (their contrasts need two, so smoke shows none: it proves the study runs)
        ablation_steps=None, ablation_seeds=(0, 1), ablation_secondary_seeds=(0,),
        notebook_timeout_s=900, build_tiles=48, build_shard_size=16,
    ),
    "cpu": Profile(
        name="cpu", model="tiny",
        syndg_sizes={"train": 6000, "validation": 500, "test": 1000}, selo_scenes=20, selo_size=384,
        # stage 1 = the miniature "OpenAI CLIP": trained on its own alt-text corpus (SynDG-RS v2
        # load_prior) until held-out alt-text retrieval plateaus; the curve is written every
        # curve_every steps (artifacts/cpu/pipeline/stage1-s0/curve.json, shown in notebook 02).
        prior_sizes={"train": 24000, "validation": 2000}, curve_every=100,
        stage1=dict(steps=1500, batch_size=128, lr=5e-4, warmup_steps=100, weight_decay=0.1),
        # 400 steps x 64 pairs = about 4 epochs of SynDG-RS train: the fine image detail that long
        # descriptions name is learned here, not in stage 1 (160 steps gave long R@1 3.2 %).
        stage2=dict(steps=400, batch_size=64, lr=1e-4, warmup_steps=40),
        heldout_limit=None, eval_limit=None,
        # the claims study (dgtrs_lib.experiments.ablations): six seeds of the primary arms, three of
        # the secondary ones, 100 steps each, within the hour on 2 cores (issue #12: a locked-image
        # text step is 0.6 s at batch 64 here; 45 runs x 100 steps + 46 evaluations)
        ablation_steps=100, ablation_seeds=(0, 1, 2, 3, 4, 5), ablation_secondary_seeds=(0, 1, 2),
        notebook_timeout_s=7200, build_tiles=400, build_shard_size=64,
    ),
    "gpu": Profile(
        name="gpu", model="ViT-B-16",
        syndg_sizes={"train": 6000, "validation": 500, "test": 1000}, selo_scenes=4, selo_size=384,
        stage1=None, stage1_source="openai:ViT-B-16",
        # Long-CLIP's recipe (train/train.py): lr 1e-6, wd 1e-2, 200 warm-up steps, logit scale
        # ln 100, and its contrastive batch of 2048 pairs (128 per GPU x 16) on however many GPUs
        # there are: on one GPU by gradient caching, the sub-batch that fits picked from the GPU's
        # memory (batch_size="auto": dgtrs_lib.training.plan), precision from its compute capability.
        # 600 steps x 2048 = 1.2 M pairs, about 6 epochs of a 200k-pair set (the pairs that
        # 1200 steps x 128 x 8 GPUs saw before issue #15).
        # ckpt_every=25: a resumable state (train_state.pt, 2.4 GB) every ~10 min on a T4, so a Colab
        # disconnect costs minutes; no 600 MB step_<N>.pt snapshot each time (save_snapshots=False).
        stage2=dict(steps=600, batch_size="auto", contrastive_batch=2048, lr=1e-6, warmup_steps=200,
                    weight_decay=1e-2, precision="auto", num_workers="auto", ckpt_every=25, save_snapshots=False),
        heldout_limit=1000, eval_limit=None,
        ablation_steps=None, ablation_seeds=(0,),
        notebook_timeout_s=None, build_tiles=None, build_shard_size=128,
        # the input pipeline (dgtrs_lib.data.loader): map-style, decoded by DataLoader workers; a
        # Hub-scale set (DGTRSD, 2 M images) streams instead: DGTRS_GPU_DATA='{"source": ...,
        # "streaming": true, "shuffle_buffer": 10000}'
        gpu_data=dict(source="ZhenShiL/MGRS-200k", long_column="detailed_caption", short_column="brief_caption",
                      image_column="image", streaming=False, shuffle_buffer=10_000),
    ),
}


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def resolve_profile(profile: "Profile | str | None" = None) -> str:
    """The profile's name, from an explicit value, ``DGTRS_PROFILE`` or ``auto``."""
    if isinstance(profile, Profile):
        return profile.name
    value = (profile or os.environ.get("DGTRS_PROFILE") or "auto").strip().lower()
    if value == "auto":
        return "gpu" if cuda_available() else "cpu"
    if value not in PROFILES:
        raise UsageError(
            f"unknown profile {value!r}: expected one of {', '.join(PROFILES)} or 'auto' "
            "(set by the notebook's PROFILE parameter, --profile, or the DGTRS_PROFILE environment variable)"
        )
    return value


def get_profile(profile: "Profile | str | None" = None) -> Profile:
    """The :class:`Profile` for a name (see :func:`resolve_profile`); a ``Profile`` is returned as is."""
    if isinstance(profile, Profile):
        return profile
    return _TABLE[resolve_profile(profile)]


def check_device(device: str | None) -> str | None:
    """``device`` if this machine has it (``None`` passes: the profile decides); else a
    ``UsageError`` naming the devices there are. Checked before any model is loaded."""
    if device is None:
        return None
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"device {device!r}: not a device name; expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise UsageError(f"device {device!r}: CUDA is not available on this machine; expected cpu")
        if dev.index is not None and dev.index >= n:
            raise UsageError(f"device {device!r}: this machine has {n} CUDA device(s); expected cpu or one of "
                             + ", ".join(f"cuda:{i}" for i in range(n)))
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {device!r}: Apple MPS is not available on this machine; expected cpu")
    elif dev.type not in ("cpu", "mps"):
        raise UsageError(f"device {device!r}: not supported; expected cpu, cuda or cuda:N")
    return device
