"""Helpers every notebook uses: its start (profile, device, seed), the model it studies
(``resolve_model``) and its closing run manifest.

The manifest records what a reader needs to trust a number: profile, device, wall time, and the
provenance record that results files carry too (``dgtrs_lib.io.provenance``: hardware, date,
library versions, Python), so a manifest and a results file of the same run describe the machine
in the same words. Notebooks print it as their last cell. The practice follows the ML
Reproducibility Checklist (``book/references.bib`` key ``pineau2021mlrc``): report the computing
infrastructure and the software versions beside the numbers.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from dgtrs_lib.env import set_offline
from dgtrs_lib.io import provenance
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


def run_manifest(profile: str, device: str, started: float, **extra) -> dict:
    """``{profile, device, hardware, date, versions, python, wall_time_s}`` plus ``extra``;
    ``hardware`` names the GPU on a CUDA device, else the CPU with its cores and torch threads,
    and ``date`` is when the manifest was made (the notebook's end, UTC)."""
    wall = round(time.time() - started, 2)
    manifest = {"profile": profile, "device": device, **provenance(device), "wall_time_s": wall}
    manifest.update(extra)
    return manifest


def print_manifest(manifest: dict) -> None:
    print(json.dumps(manifest, indent=2))
