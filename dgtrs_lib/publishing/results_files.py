"""What we measured: the results files read back, merged and summarised.

Results files are written by ``dgtrs_lib.evaluation.evaluate``, the pipeline and the ablations in
the one layout of ``dgtrs_lib.results``: ``results/<profile>/*.json`` and the committed
``results/reference/*.json``::

    {"run", "model": {...}, "profile", "hardware", "date", "versions", "protocol",
     "results": [{"task", "dataset", "metric", "value", ...}]}

``load_measured`` flattens them into rows that carry their source file, profile, hardware and
date (task and metric names normalised by ``dgtrs_lib.publishing.paper_numbers``). Missing files
mean "not run yet", never a crash; a file that *claims* the layout (has ``results``) but breaks it
is an error naming the file and field. ``summarize_seeds`` gives mean and sample standard
deviation over seeds, ``pivot`` one row per run with a column per metric, ``provenance`` one row
per results file, and ``read_notebook_times`` the runner's ``notebook_times.csv``: the tables of
the reproduction report (layout after the ML Reproducibility Challenge report template,
``book/references.bib`` key ``pineau2021mlrc``).

Taught in: Reproduction report: the paper's public numbers beside ours (notebooks/09-reproduction-report.ipynb)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from dgtrs_lib.env import repo_root, results_dir
from dgtrs_lib.profiles import PROFILES
from dgtrs_lib.publishing.paper_numbers import ResultsFormatError, normalize_metric, normalize_task

RESULT_KEYS = ("task", "dataset", "metric", "value")


@dataclass
class Measured:
    """Flattened result rows plus the JSON files that were skipped (not results files)."""
    rows: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _model_name(model) -> str:
    """A short label for a results file's ``model`` block: its name, else its class and the last
    parts of its checkpoint path (``LongCLIP (pipeline/dgcl/final.pt)``)."""
    if isinstance(model, dict):
        for key in ("name", "label", "arch"):
            if model.get(key):
                return str(model[key])
        path = model.get("source") or model.get("checkpoint")
        short = "/".join(Path(str(path)).parts[-3:]) if path else ""
        cls = str(model.get("class") or "")
        if cls and short:
            return f"{cls} ({short})"
        if cls or short:
            return cls or short
        return json.dumps(model, sort_keys=True)[:60]
    return str(model or "?")


def read_results_file(path: Path, *, origin: str | None = None) -> list[dict] | None:
    """The rows of one results JSON, each with run/model/profile/hardware/date/source added.

    Returns None when the JSON is not a results file (no ``results`` key: e.g. a training log);
    raises ``ResultsFormatError`` naming the file and field when the layout is broken."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsFormatError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or "results" not in doc:
        return None
    if not isinstance(doc["results"], list):
        raise ResultsFormatError(f"{path}: 'results' must be a list of rows")
    for key in ("run", "profile", "hardware", "date"):
        if key not in doc:
            raise ResultsFormatError(f"{path}: missing top-level '{key}' (see the results layout "
                                     "in dgtrs_lib/results.py)")
    rows = []
    for i, res in enumerate(doc["results"]):
        if not isinstance(res, dict):
            raise ResultsFormatError(f"{path}: results[{i}] must be an object")
        for key in RESULT_KEYS:
            if key not in res:
                raise ResultsFormatError(f"{path}: results[{i}] has no '{key}'")
        value = res["value"]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ResultsFormatError(f"{path}: results[{i}].value must be a number, got {value!r}")
        rows.append({
            **{k: v for k, v in res.items() if k not in ("task", "metric")},
            "task": normalize_task(res["task"]), "metric": normalize_metric(res["metric"]),
            "value": float(value), "run": str(doc["run"]), "model": _model_name(doc.get("model")),
            "profile": str(doc["profile"]), "hardware": str(doc["hardware"]),
            "date": str(doc["date"]), "origin": origin or str(doc["profile"]),
            "source": path.as_posix(),
        })
    return rows


def load_measured(profiles=PROFILES, *, include_reference: bool = True,
                  base: Path | None = None) -> Measured:
    """Every results row under ``results/<profile>/`` (for each of ``profiles``) and, if asked,
    ``results/reference/``; folders that do not exist yet are simply empty."""
    base = Path(base or results_dir())
    measured = Measured()
    folders = [(p, base / p) for p in profiles]
    if include_reference:
        folders.append(("reference", base / "reference"))
    for origin, folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            rows = read_results_file(path, origin=origin)
            try:
                shown = path.relative_to(repo_root()).as_posix()
            except ValueError:  # a results folder moved by DGTRS_RESULTS: shown as results/<folder>/<file>
                shown = (Path("results") / path.relative_to(base)).as_posix()
            if rows is None:
                measured.skipped.append(shown)
                continue
            for row in rows:
                row["source"] = shown
            measured.files.append(shown)
            measured.rows.extend(rows)
    return measured


def read_notebook_times(profile: str, base: Path | None = None) -> list[dict]:
    """``results/<profile>/notebook_times.csv`` written by the runner (empty list if absent)."""
    import csv

    path = Path(base or results_dir()) / profile / "notebook_times.csv"
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows):
        try:
            row["wall_s"] = float(row["wall_s"])
            row["peak_rss_mb"] = float(row["peak_rss_mb"])
        except (KeyError, ValueError) as exc:
            raise ResultsFormatError(f"{path}: row {i + 1} needs numeric wall_s and "
                                     f"peak_rss_mb ({exc})") from exc
    return rows


def summarize_seeds(rows: list[dict]) -> list[dict]:
    """Mean and sample standard deviation over seeds of rows that share (profile, task, dataset,
    metric, config); rows without a ``seed`` count as one seed. ``config`` may be any JSON value."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        config = row.get("config", "")
        key = (row["profile"], row["task"], row["dataset"], row["metric"],
               config if isinstance(config, str) else json.dumps(config, sort_keys=True))
        groups.setdefault(key, []).append(row)
    out = []
    for (profile, task, dataset, metric, config), members in groups.items():
        values = [m["value"] for m in members]
        n = len(values)
        mean = sum(values) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        out.append({"profile": profile, "task": task, "dataset": dataset, "metric": metric,
                    "config": config, "n_seeds": n, "mean": mean, "std": std,
                    "sources": ", ".join(sorted({m["source"] for m in members}))})
    return out


def config_text(config) -> str:
    """A results row's ``config`` as short text (``stage=dgcl, seed=1``)."""
    if config in (None, ""):
        return ""
    if isinstance(config, dict):
        return ", ".join(f"{k}={v}" for k, v in config.items())
    return config if isinstance(config, str) else json.dumps(config)


def pivot(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """One row per (source file, dataset, config, seed) with one column per metric, in first-seen
    metric order; returns ``(rows, metric_names)``. Each row keeps source and profile."""
    table: dict[tuple, dict] = {}
    metrics: list[str] = []
    for r in rows:
        seed = r.get("seed", "")
        key = (r["source"], r["dataset"], config_text(r.get("config")), seed)
        if key not in table:
            table[key] = {"source": r["source"], "dataset": r["dataset"], "config": key[2],
                          "seed": seed, "profile": r["profile"], "model": r["model"]}
        table[key][r["metric"]] = r["value"]
        if r["metric"] not in metrics:
            metrics.append(r["metric"])
    return list(table.values()), metrics


def provenance(rows: list[dict]) -> list[dict]:
    """One row per results file: run, model, profile, hardware, date, number of results."""
    files: dict[str, dict] = {}
    for r in rows:
        entry = files.setdefault(r["source"], {"source": r["source"], "run": r["run"],
                                               "model": r["model"], "profile": r["profile"],
                                               "hardware": r["hardware"], "date": r["date"],
                                               "n_results": 0})
        entry["n_results"] += 1
    return list(files.values())
