"""Where files go and whether the Hub may be reached: project paths and the offline switch.

Paths (artifacts = checkpoints, results = JSON/CSV, cache = generated datasets) default to folders
in the repository root and can be moved with ``DGTRS_ARTIFACTS``, ``DGTRS_RESULTS`` and
``DGTRS_CACHE``. Everything runs offline unless ``DGTRS_ONLINE=1``: ``set_offline()`` sets the
Hugging Face offline variables (without them, one Hub lookup on a machine with no network waits
minutes before failing; see the ``HF_HUB_OFFLINE`` entry of huggingface_hub's environment-variable
reference), and ``require_online(what)`` is the one guard every download passes.
Importing this module does not import torch.

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import os
from pathlib import Path

from dgtrs_lib.errors import OfflineError  # noqa: F401  (re-exported: the error require_online raises)

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def is_online() -> bool:
    return os.environ.get("DGTRS_ONLINE", "0") == "1" and os.environ.get("HF_HUB_OFFLINE", "0") != "1"


def set_offline(force: bool = False) -> bool:
    """Set the HF offline variables unless ``DGTRS_ONLINE=1``; return True if offline."""
    if os.environ.get("DGTRS_ONLINE", "0") == "1" and not force:
        return False
    for var in OFFLINE_VARS:
        os.environ.setdefault(var, "1")
    return True


def require_online(what: str, alternative: str = "pass a local file instead") -> None:
    """Raise ``OfflineError`` naming ``what`` unless downloads are allowed."""
    if not is_online():
        raise OfflineError(f"{what}: downloading needs network access and this run is offline; set DGTRS_ONLINE=1 "
                           f"(and unset HF_HUB_OFFLINE) on a machine with internet, or {alternative}")


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one): the one count
    that sizes loader workers and generator processes."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def repo_root() -> Path:
    """The checkout this package lives in (the folder holding ``pyproject.toml``), else the cwd."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "dgtrs_lib").is_dir():
        return here
    return Path.cwd()


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _dir(env: str, default: str) -> Path:
    return _mk(Path(os.environ.get(env) or repo_root() / default))


def artifacts_dir(profile=None) -> Path:
    """Checkpoints and training logs: ``artifacts/<profile>/``."""
    base = _dir("DGTRS_ARTIFACTS", "artifacts")
    return _mk(base / str(profile)) if profile else base


def pipeline_dir(profile) -> Path:
    """The miniature pipeline's runs, one folder per stage or variant: ``artifacts/<profile>/pipeline/``."""
    return artifacts_dir(profile) / "pipeline"


def pipeline_checkpoint(profile, run: str = "dgcl") -> Path:
    """The fine-tuned checkpoint of a pipeline run (default: the main run, ``dgcl``):
    ``artifacts/<profile>/pipeline/<run>/final.pt`` (``dgtrs_lib.training.trainer.FINAL_FILE``).
    The evaluation CLI's default model; ``dgtrs_lib.experiments.pipeline`` trains it."""
    return pipeline_dir(profile) / run / "final.pt"


def results_dir(profile=None) -> Path:
    """Machine-readable results (JSON/CSV): ``results/<profile>/``."""
    base = _dir("DGTRS_RESULTS", "results")
    return _mk(base / str(profile)) if profile else base


def cache_dir(name: str | None = None) -> Path:
    """Generated datasets and other caches: ``.cache/<name>/``."""
    base = _dir("DGTRS_CACHE", ".cache")
    return _mk(base / name) if name else base
