"""Results files: the one JSON + CSV layout that every evaluation, training run and study writes
and that the book reads (``dgtrs_lib.report``).

``{"run", "model", "profile", "hardware", "date", "versions", "protocol", "results": [{"task",
"dataset", "metric", "value", optional "n", "config", "seed"}], ...extra keys}`` -- one row per
(task, dataset, metric), so tables and plots need no per-writer code. The CSV beside the JSON holds
the same rows. Both are written atomically (``dgtrs_lib.checkpoint.atomic_write_text``), and the
JSON is made strict (numpy -> plain types, NaN -> null).
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import platform
from pathlib import Path

import numpy as np

from .checkpoint import atomic_write_text

CSV_FIELDS = ["task", "dataset", "metric", "value", "n", "config", "seed"]
VERSION_PACKAGES = ("dgtrs-lib", "torch", "torchvision", "open_clip_torch", "datasets", "numpy", "scipy", "pillow")


def versions() -> dict:
    from importlib import metadata

    out = {}
    for pkg in VERSION_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def hardware(device: str = "cpu") -> str:
    """One wording for the machine, used by every results file."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def clean(obj):
    """JSON-safe: numpy -> lists/floats/ints, NaN/inf -> None, keys -> str."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def results_doc(run: str, profile: str, rows: list[dict], *, model: dict | None = None, protocol: dict | None = None,
                device: str = "cpu", **extra) -> dict:
    """A results document in the book's layout (hardware, date and versions filled in)."""
    return {"run": run, "model": model or {}, "profile": profile, "hardware": hardware(device), "date": now(),
            "versions": versions(), "protocol": protocol or {}, "results": rows, **extra}


def write_results(doc: dict, out: str | os.PathLike) -> Path:
    """Atomically write ``doc`` as JSON to ``out`` and its rows as CSV beside it; returns ``out``."""
    out = Path(out)
    if "results" not in doc:
        raise ValueError(f"{out}: a results document needs a 'results' list of rows")
    atomic_write_text(json.dumps(clean(doc), indent=1, allow_nan=False), out)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in doc["results"]:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    atomic_write_text(buf.getvalue(), out.with_suffix(".csv"))
    return out
