"""The paper's public numbers and its vocabulary of tasks and metrics.

``book/paper_numbers.json`` holds every number the DGTRS paper (arXiv:2503.19311,
``book/references.bib`` key ``chen2025dgtrs``) and its reference baselines (GeoRSCLIP
``zhang2024rs5m``, Long-CLIP ``zhang2024longclip``, the SeLo metric paper ``yuan2022selo``)
*publicly* report, one row each with its source. Only the v1 abstract's headline numbers
(arXiv:2503.19311v1, titled LRSCLIP) are public for DGTRS itself; ``kind: gain`` rows are
differences over a baseline. ``load_paper_numbers`` checks each row and names the file and field
of a broken one.

``TASKS`` are the paper's four zero-shot tasks; ``normalize_task`` and ``normalize_metric`` map
the spellings used by results files and the paper onto those names (and the metric names of
``dgtrs_lib.evaluation`` (retrieval, classification, slm)), so paper rows and measured rows line up
(``dgtrs_lib.publishing.report.compare``). ``ResultsFormatError`` is the error of both files this
layer reads: the paper numbers here and the results files (``dgtrs_lib.publishing.results_files``).

Taught in: Reproduction report: the paper's public numbers beside ours (notebooks/09-reproduction-report.ipynb)
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from dgtrs_lib.env import repo_root
from dgtrs_lib.errors import DataError

TASKS = {
    "long_text_retrieval": "Long-text cross-modal retrieval",
    "short_text_retrieval": "Short-text cross-modal retrieval",
    "zero_shot_classification": "Zero-shot scene classification",
    "semantic_localization": "Semantic localization (SeLo)",
}
_TASK_ALIASES = {
    "long_retrieval": "long_text_retrieval", "retrieval_long": "long_text_retrieval",
    "longtext_retrieval": "long_text_retrieval",
    "short_retrieval": "short_text_retrieval", "retrieval_short": "short_text_retrieval",
    "shorttext_retrieval": "short_text_retrieval", "retrieval": "short_text_retrieval",
    "classification": "zero_shot_classification", "zeroshot_classification": "zero_shot_classification",
    "zeroshot": "zero_shot_classification", "zero_shot": "zero_shot_classification",
    "selo": "semantic_localization", "localization": "semantic_localization",
}
_METRIC_ALIASES = {
    "acc": "top1", "accuracy": "top1", "top_1": "top1", "top1_acc": "top1", "acc1": "top1",
    "top1_accuracy": "top1", "top_5": "top5", "acc5": "top5", "top5_acc": "top5",
}


class ResultsFormatError(DataError):
    """A results or paper-numbers file does not follow the documented layout."""


def normalize_task(name: str) -> str:
    """``"Long-text retrieval"`` -> ``"long_text_retrieval"``; known aliases map to the four
    task names of the paper (``TASKS``); anything else is returned normalised."""
    key = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")
    return _TASK_ALIASES.get(key, key)


def normalize_metric(name: str) -> str:
    """Metric names as ``dgtrs_lib.evaluation`` (retrieval, classification, slm) writes them (``i2t_R@1``, ``mR``, ``Rmi``); accuracy
    spellings map to ``top1``/``top5``."""
    text = str(name).strip()
    key = re.sub(r"[^a-z0-9@]+", "_", text.lower()).strip("_")
    return _METRIC_ALIASES.get(key, text)


def paper_numbers_path(root: Path | None = None) -> Path:
    return Path(root or repo_root()) / "book" / "paper_numbers.json"


def load_paper_numbers(path: Path | None = None) -> list[dict]:
    """Rows of ``book/paper_numbers.json``; each must have task, dataset, metric, value (number
    or null with a ``display`` text), model, kind and source."""
    path = Path(path or paper_numbers_path())
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ResultsFormatError(f"{path}: not found (the paper's public numbers)") from exc
    except json.JSONDecodeError as exc:
        raise ResultsFormatError(f"{path}: not valid JSON: {exc}") from exc
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise ResultsFormatError(f"{path}: expected an object with a 'rows' list")
    out = []
    for i, row in enumerate(rows):
        for key in ("task", "dataset", "metric", "value", "model", "kind", "source"):
            if key not in row:
                raise ResultsFormatError(f"{path}: rows[{i}] has no '{key}'")
        if row["value"] is None and not row.get("display"):
            raise ResultsFormatError(f"{path}: rows[{i}] has value null and no 'display' text")
        if row["value"] is not None and not isinstance(row["value"], (int, float)):
            raise ResultsFormatError(f"{path}: rows[{i}].value must be a number or null")
        if row["kind"] not in ("absolute", "gain"):
            raise ResultsFormatError(f"{path}: rows[{i}].kind must be 'absolute' or 'gain'")
        if not str(row["source"]).strip():
            raise ResultsFormatError(f"{path}: rows[{i}].source is empty (every row needs one)")
        out.append({**row, "task": normalize_task(row["task"]),
                    "metric": normalize_metric(row["metric"])})
    return out
