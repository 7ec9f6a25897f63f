"""Results files: the one JSON + CSV layout that every evaluation, training run and study writes
and that the book reads (``dgtrs_lib.publishing.results_files``).

``{"run", "model", "profile", "hardware", "date", "versions", "protocol", "results": [{"task",
"dataset", "metric", "value", optional "n", "config", "seed"}], ...extra keys}`` -- one row per
(task, dataset, metric), so tables and plots need no per-writer code. The CSV beside the JSON holds
the same rows. Both are written atomically (``dgtrs_lib.io``) and the JSON is strict (numpy ->
plain types, NaN -> null). Importing this module does not import torch.

Taught in: Reproduction report: the paper's public numbers beside ours (notebooks/09-reproduction-report.ipynb)
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from dgtrs_lib.io import atomic_write_json, atomic_write_text, provenance

CSV_FIELDS = ["task", "dataset", "metric", "value", "n", "config", "seed"]


def results_doc(run: str, profile: str, rows: list[dict], *, model: dict | None = None, protocol: dict | None = None,
                device: str = "cpu", **extra) -> dict:
    """A results document in the book's layout (hardware, date and versions filled in)."""
    prov = provenance(device)
    return {"run": run, "model": model or {}, "profile": profile, "hardware": prov["hardware"], "date": prov["date"],
            "versions": prov["versions"], "protocol": protocol or {}, "results": rows, **extra}


def rows_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    return buf.getvalue()


def write_results(doc: dict, out: str | os.PathLike) -> Path:
    """Atomically write ``doc`` as JSON to ``out`` and its rows as CSV beside it; returns ``out``."""
    out = Path(out)
    if "results" not in doc:
        raise ValueError(f"{out}: a results document needs a 'results' list of rows")
    atomic_write_json(out, doc)
    atomic_write_text(out.with_suffix(".csv"), rows_csv(doc["results"]))
    return out
