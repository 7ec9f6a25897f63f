"""The reproduction report's data: what the paper reports beside what we measured.

Two sources, both files:

* ``book/paper_numbers.json`` -- every number the DGTRS paper (arXiv:2503.19311) and its
  reference baselines (GeoRSCLIP, Long-CLIP, the SeLo metric paper) *publicly* report, one row
  each with its source. Only the v1 abstract's headline numbers are public for DGTRS itself
  (``shared/reference/paper.md`` section 7); ``kind: gain`` rows are differences over a baseline.
* results files written by ``dgtrs_lib.evaluation.evaluate`` and the ablations: ``results/<profile>/*.json``
  and the committed ``results/reference/*.json``, in the project layout::

      {"run", "model": {...}, "profile", "hardware", "date", "versions", "protocol",
       "results": [{"task", "dataset", "metric", "value", ...}]}

``load_measured`` flattens them into rows that carry their source file, profile, hardware and
date; ``compare`` lines paper rows up with ours by (task, metric); ``task_status`` says, per
task of the paper, whether anything was measured yet. Missing files mean "not run yet", never a
crash; a file that *claims* the layout (has ``results``) but breaks it is an error naming the
file and field. Table layout follows the ML Reproducibility Challenge report template.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from dgtrs_lib.env import repo_root, results_dir
from dgtrs_lib.profiles import PROFILES

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
RESULT_KEYS = ("task", "dataset", "metric", "value")


class ResultsFormatError(ValueError):
    """A results or paper-numbers file does not follow the documented layout."""


def normalize_task(name: str) -> str:
    """``"Long-text retrieval"`` -> ``"long_text_retrieval"``; known aliases map to the four
    task names of the paper (``TASKS``); anything else is returned normalised."""
    key = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")
    return _TASK_ALIASES.get(key, key)


def normalize_metric(name: str) -> str:
    """Metric names as ``dgtrs_lib.evaluation.metrics`` writes them (``i2t_R@1``, ``mR``, ``Rmi``); accuracy
    spellings map to ``top1``/``top5``."""
    text = str(name).strip()
    key = re.sub(r"[^a-z0-9@]+", "_", text.lower()).strip("_")
    return _METRIC_ALIASES.get(key, text)


# --------------------------------------------------------------------------------------------
# Paper numbers
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Measured results
# --------------------------------------------------------------------------------------------

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
                                     "in dgtrs_lib/report.py)")
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
            except ValueError:
                shown = path.as_posix()
            if rows is None:
                measured.skipped.append(shown)
                continue
            for row in rows:
                row["source"] = shown
            measured.files.append(shown)
            measured.rows.extend(rows)
    return measured


# --------------------------------------------------------------------------------------------
# Comparison tables
# --------------------------------------------------------------------------------------------

def task_status(measured_rows: list[dict]) -> list[dict]:
    """One row per paper task: how many results we have, from which profiles, or 'not run yet'."""
    out = []
    for task, title in TASKS.items():
        rows = [r for r in measured_rows if r["task"] == task]
        profiles = sorted({r["profile"] for r in rows})
        out.append({"task": task, "title": title, "n_results": len(rows),
                    "profiles": ", ".join(profiles),
                    "datasets": ", ".join(sorted({r["dataset"] for r in rows})),
                    "status": "measured" if rows else "not run yet"})
    return out


def compare(paper_rows: list[dict], measured_rows: list[dict], *,
            models: list[str] | None = None) -> list[dict]:
    """Side by side, one row per (paper row, matching measured row) on (task, metric).

    ``models`` keeps only paper rows of those models (e.g. the DGTRS headline rows). Datasets
    need not match (our miniature data is not the paper's): ``same_dataset`` says whether they
    do, so a reader never mistakes a miniature number for a reproduction of a published one. A
    paper row with no measurement gets one row with ``ours = None`` and status 'not run yet'."""
    out = []
    for p in paper_rows:
        if models and p["model"] not in models:
            continue
        ours = [m for m in measured_rows if m["task"] == p["task"] and m["metric"] == p["metric"]]
        base = {"task": p["task"], "metric": p["metric"], "paper_model": p["model"],
                "paper_dataset": p["dataset"], "paper_value": p["value"],
                "paper_display": p.get("display") or _fmt(p["value"]), "paper_kind": p["kind"],
                "paper_source": p["source"]}
        if not ours:
            out.append({**base, "ours": None, "our_dataset": "", "our_model": "", "profile": "",
                        "hardware": "", "date": "", "our_source": "", "same_dataset": False,
                        "status": "not run yet"})
            continue
        for m in ours:
            out.append({**base, "ours": m["value"], "our_dataset": m["dataset"],
                        "our_model": m["model"], "profile": m["profile"],
                        "hardware": m["hardware"], "date": m["date"], "our_source": m["source"],
                        "same_dataset": _norm(m["dataset"]) == _norm(p["dataset"]),
                        "status": "measured"})
    return out


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if isinstance(value, (int, float)):
        return f"{value:.4f}" if abs(value) < 1.5 else f"{value:.2f}"
    return str(value)


def to_markdown(rows: list[dict], columns: list[tuple[str, str]], *, empty: str = "(none)") -> str:
    """A Markdown table of ``rows`` with ``columns`` = [(key, header)]; numbers formatted."""
    if not rows:
        return empty
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(h for _, h in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key, "")
            cells.append(esc(_fmt(value) if isinstance(value, (int, float)) or value is None
                             else value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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


def write_csv(rows: list[dict], path: Path) -> Path:
    """Write ``rows`` (dicts with the same keys) as CSV, atomically; return the path."""
    import csv
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fields = list(rows[0]) if rows else []
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def plot_published_vs_ours(paper_rows: list[dict], measured_rows: list[dict]):
    """Two bar charts: SeLo Rmi and short-text retrieval mR as published (DGTRS in purple,
    baselines in blue) and as measured here (orange, labelled with dataset and profile)."""
    import matplotlib.pyplot as plt

    panels = [("semantic_localization", "Rmi", "Rmi on AIR-SLT unless labelled (higher is better)",
               "Semantic localization"),
              ("short_text_retrieval", "mR", "mR, mean of six recalls in % (higher is better)",
               "Short-text retrieval")]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    for ax, (task, metric, xlabel, title) in zip(axes, panels):
        pub = [r for r in paper_rows if r["task"] == task and r["metric"] == metric
               and r["kind"] == "absolute" and r["value"] is not None]
        mine = [r for r in measured_rows if r["task"] == task and r["metric"] == metric]
        labels = [f"{r['model']} / {r['dataset']}" for r in pub]
        labels += [f"ours: {r['model']} / {r['dataset']} ({r['profile']})" for r in mine]
        values = [r["value"] for r in pub] + [r["value"] for r in mine]
        colors = ["tab:purple" if r["model"].startswith("LRSCLIP") else "tab:blue" for r in pub]
        colors += ["tab:orange"] * len(mine)
        ax.barh(labels, values, color=colors)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.4g}", va="center", fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_title(f"{title}: paper (purple), baselines (blue), ours (orange)", fontsize=10)
        ax.invert_yaxis()
        ax.margins(x=0.15)
    fig.tight_layout()
    return fig


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
