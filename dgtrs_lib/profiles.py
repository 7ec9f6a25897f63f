"""Run profiles, project paths and the offline switch.

Every notebook, script and test runs under one *profile*:

* ``smoke`` -- seconds per stage; what CI executes. Proves the code path, not the science.
* ``cpu``   -- the default on a laptop or this project's 2-core machines: the miniature
  pipeline (tiny CLIP, embedded dataset) in minutes, with clearly learned alignment.
* ``gpu``   -- Colab or an H100: ViT-B/16 from OpenAI weights + KPS, real data from the Hub.

``auto`` resolves to ``gpu`` when CUDA is available, else ``cpu``. A notebook's ``PROFILE``
parameter wins; otherwise ``DGTRS_PROFILE``; otherwise ``auto``.

Paths (artifacts = checkpoints, results = JSON/CSV, cache = generated datasets) default to
folders in the repository root and can be moved with ``DGTRS_ARTIFACTS``, ``DGTRS_RESULTS`` and
``DGTRS_CACHE``. ``set_offline()`` sets the Hugging Face offline variables (without them a
single hub lookup on a machine with no network waits minutes, see
``shared/reference/environment.md`` section 5) unless ``DGTRS_ONLINE=1``.
"""
from __future__ import annotations

import os
from pathlib import Path

PROFILES = ("smoke", "cpu", "gpu")
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_profile(profile: str | None = None) -> str:
    """Return one of ``PROFILES`` from an explicit value, ``DGTRS_PROFILE`` or ``auto``."""
    value = (profile or os.environ.get("DGTRS_PROFILE") or "auto").strip().lower()
    if value == "auto":
        return "gpu" if cuda_available() else "cpu"
    if value not in PROFILES:
        raise ValueError(
            f"unknown profile {value!r}: expected one of {', '.join(PROFILES)} or 'auto' "
            "(set by the notebook's PROFILE parameter or the DGTRS_PROFILE environment variable)"
        )
    return value


def is_online() -> bool:
    return os.environ.get("DGTRS_ONLINE", "0") == "1"


def set_offline(force: bool = False) -> bool:
    """Set the HF offline variables unless ``DGTRS_ONLINE=1``; return True if offline."""
    if is_online() and not force:
        return False
    for var in OFFLINE_VARS:
        os.environ.setdefault(var, "1")
    return True


def repo_root() -> Path:
    """The checkout this package lives in (the folder holding ``pyproject.toml``), else the cwd."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "dgtrs_lib").is_dir():
        return here
    return Path.cwd()


def _dir(env: str, default: str) -> Path:
    path = Path(os.environ.get(env) or repo_root() / default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifacts_dir(profile: str | None = None) -> Path:
    """Checkpoints and training logs: ``artifacts/<profile>/``."""
    base = _dir("DGTRS_ARTIFACTS", "artifacts")
    return _mk(base / profile) if profile else base


def results_dir(profile: str | None = None) -> Path:
    """Machine-readable results (JSON/CSV): ``results/<profile>/``."""
    base = _dir("DGTRS_RESULTS", "results")
    return _mk(base / profile) if profile else base


def cache_dir(name: str | None = None) -> Path:
    """Generated datasets and other caches: ``.cache/<name>/``."""
    base = _dir("DGTRS_CACHE", ".cache")
    return _mk(base / name) if name else base


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
