"""Results files: the one JSON + CSV layout that every evaluation, training run and study writes
and that the book reads (``dgtrs_lib.publishing.results_files``).

``{"run", "model", "profile", "hardware", "date", "versions", "protocol", "results": [{"task",
"dataset", "metric", "value", optional "n", "config", "seed"}], ...extra keys}`` -- one row per
(task, dataset, metric), so tables and plots need no per-writer code. The CSV beside the JSON holds
the same rows. Both are written atomically (``dgtrs_lib.io``) and the JSON is strict (numpy ->
plain types, NaN -> null).

The pair is one unit: ``write_results`` holds the results folder's lock (``dgtrs_lib.io.locked``)
while it writes the CSV and then the JSON (the JSON, written last, is the result), and
``read_results`` returns the JSON with its CSV checked against it -- a CSV that does not hold the
JSON's rows (a writer killed between the two renames, a hand edit) is replaced by the rows derived
from the JSON, never paired with it. An existing result is replaced only when asked
(``overwrite=True``), or, with ``overwrite=None``, by a result of the same ``identity`` (what the
file is the result of: a named run's name, or an evaluation's model, tasks, data and profile);
otherwise ``ResultExistsError``. Importing this module does not import torch.

Taught in: Reproduction report: the paper's public numbers beside ours (notebooks/09-reproduction-report.ipynb)
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from dgtrs_lib.errors import ResultExistsError
from dgtrs_lib.io import atomic_write_json, atomic_write_text, locked, provenance

RESULTS_LOCK = "results"
LOCK_TIMEOUT_S = 120.0  # a results write takes milliseconds; a longer wait means a stuck writer
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


def identity(doc: dict) -> dict:
    """What a results document is the result of: its ``identity`` field, else its run and profile."""
    return doc.get("identity") or {"run": doc.get("run"), "profile": doc.get("profile")}


def _read_json(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def check_replace(out: str | os.PathLike, doc: dict, overwrite: bool | None) -> None:
    """Raise ``ResultExistsError`` when writing ``doc`` to ``out`` would replace a result it may
    not (see the module doc); nothing to check when ``out`` does not exist."""
    out = Path(out)
    if overwrite is True or not out.exists():
        return
    old = _read_json(out) or {}
    if overwrite is None and identity(old) == identity(doc):
        return
    why = ("and --overwrite was not given" if overwrite is False else
           f"and holds another result ({json.dumps(identity(old), sort_keys=True, default=str)[:200]})")
    raise ResultExistsError(f"{out}: a result already exists (run {old.get('run')!r} of {old.get('date')}) {why}; "
                            "expected a new name (--run NAME) or --overwrite to replace it")


def write_results(doc: dict, out: str | os.PathLike, *, overwrite: bool | None = None) -> Path:
    """Write ``doc``'s rows as CSV and ``doc`` as JSON to ``out`` (atomically, one after the other,
    under the results folder's lock); returns ``out``. ``overwrite``: see ``check_replace``."""
    out = Path(out)
    if "results" not in doc:
        raise ValueError(f"{out}: a results document needs a 'results' list of rows")
    with locked(out.parent, RESULTS_LOCK, timeout=LOCK_TIMEOUT_S):
        check_replace(out, doc, overwrite)
        atomic_write_text(out.with_suffix(".csv"), rows_csv(doc["results"]))
        atomic_write_json(out, doc)
    return out


def read_results(path: str | os.PathLike) -> tuple[dict, str]:
    """``(doc, csv_text)`` of a results file: the JSON and the CSV of the same rows.

    The CSV on disk is returned when it holds exactly the JSON's rows; otherwise (missing,
    from another write, edited) the CSV derived from the JSON is."""
    path = Path(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    expected = rows_csv(doc.get("results", []))
    try:
        with open(path.with_suffix(".csv"), encoding="utf-8", newline="") as fh:
            text = fh.read()
    except OSError:
        return doc, expected
    return doc, (text if text == expected else expected)
