"""Helpers every notebook uses: its start (profile, device, seed), the model it studies
(``resolve_model``) and its closing run manifest.

The manifest records what a reader needs to trust a number: profile, device, library versions,
wall time, and when it ran. Notebooks print it as their last cell; the runner also collects it.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from dataclasses import dataclass, field

from dgtrs_lib.env import set_offline
from dgtrs_lib.profiles import resolve_profile


@dataclass
class NotebookRun:
    profile: str
    device: str
    started: float = field(default_factory=time.time)

    def manifest(self, **extra) -> dict:
        return run_manifest(self.profile, self.device, self.started, **extra)


def start(profile: str | None = None, seed: int = 0) -> NotebookRun:
    """Resolve the profile (parameter, then ``DGTRS_PROFILE``, then auto), go offline unless
    ``DGTRS_ONLINE=1``, seed everything and pick the device."""
    import torch

    set_offline()
    prof = resolve_profile(profile)
    torch.manual_seed(seed)
    device = "cuda" if (prof == "gpu" and torch.cuda.is_available()) else "cpu"
    return NotebookRun(profile=prof, device=device)


def resolve_model(profile, source: str | None = None):
    """``(model, preprocess, info)`` for a notebook, on ``profile.device()``: ``source``, else the
    ``DGTRS_MODEL`` environment variable (any source of ``dgtrs_lib.model.sources``), else our
    pipeline's checkpoint -- ``dgtrs_lib.experiments.pipeline.get_or_train``, which trains every
    missing stage first. (The evaluation layer itself never trains: this choice is the notebooks'.)"""
    from dgtrs_lib.model.sources import resolve_source
    from dgtrs_lib.profiles import get_profile

    prof = get_profile(profile)
    source = source or os.environ.get("DGTRS_MODEL")
    if not source:
        from dgtrs_lib.experiments.pipeline import get_or_train

        source = get_or_train(prof).source
    return resolve_source(source, prof.device())


def _version(pkg: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def run_manifest(profile: str, device: str, started: float, **extra) -> dict:
    import torch

    dev_name = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or platform.machine()
    manifest = {
        "profile": profile,
        "device": device,
        "device_name": dev_name,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("dgtrs-lib", "torch", "torchvision", "open_clip_torch", "datasets", "numpy")},
        "wall_time_s": round(time.time() - started, 2),
        "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest.update(extra)
    return manifest


def print_manifest(manifest: dict) -> None:
    print(json.dumps(manifest, indent=2))
