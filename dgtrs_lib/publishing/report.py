"""The reproduction report: what the paper reports beside what we measured.

Two sources meet here: the paper's public numbers (``dgtrs_lib.publishing.paper_numbers``,
``book/paper_numbers.json``) and our results files (``dgtrs_lib.publishing.results_files``).
``task_status`` says, per task of the paper, whether anything was measured yet; ``compare`` lines
paper rows up with ours by (task, metric) and says whether the datasets are the same, so a
miniature number is never mistaken for a reproduction of a published one; ``to_markdown`` and
``write_csv`` render the tables, ``plot_published_vs_ours`` the figure of notebook 09. Table
layout follows the ML Reproducibility Challenge report template (``book/references.bib`` key
``pineau2021mlrc``).

Taught in: Reproduction report: the paper's public numbers beside ours (notebooks/09-reproduction-report.ipynb)
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from dgtrs_lib.io import atomic_write_text
from dgtrs_lib.publishing.paper_numbers import TASKS


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


def write_csv(rows: list[dict], path: Path) -> Path:
    """Write ``rows`` (dicts with the same keys) as CSV, atomically; return the path."""
    buf = io.StringIO()
    fields = list(rows[0]) if rows else []
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(Path(path), buf.getvalue())


def _wrap(label: str, width: int = 30) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(label, width)) or label


def plot_published_vs_ours(paper_rows: list[dict], measured_rows: list[dict]):
    """Two bar charts, one above the other at the content column's width: SeLo Rmi and
    short-text retrieval mR as published (the paper's model, LRSCLIP v1, in purple; baselines in
    blue) and as measured here (orange: final evaluations, one per dataset and profile, labelled
    with both). Labels are wrapped to fit; value labels sit inside the axes."""
    import matplotlib.pyplot as plt

    panels = [("semantic_localization", "Rmi", "Rmi (higher is better)", "Semantic localization"),
              ("short_text_retrieval", "mR", "mR, mean of six recalls in % (higher is better)",
               "Short-text retrieval")]
    data = []
    for task, metric, xlabel, title in panels:
        pub = [r for r in paper_rows if r["task"] == task and r["metric"] == metric
               and r["kind"] == "absolute" and r["value"] is not None]
        mine, seen = [], set()
        for r in measured_rows:  # final evaluations only (no ablation arm), one per dataset+profile
            key = (r["dataset"], r["profile"])
            if (r["task"], r["metric"]) == (task, metric) and not r.get("config") and key not in seen:
                seen.add(key)
                mine.append(r)
        labels = [_wrap(f"{r['model']} / {r['dataset']}") for r in pub]
        labels += [_wrap(f"ours: {r['dataset']} ({r['profile']})") for r in mine]
        values = [r["value"] for r in pub] + [r["value"] for r in mine]
        colours = ["tab:purple" if r["model"].startswith("LRSCLIP") else "tab:blue" for r in pub]
        colours += ["tab:orange"] * len(mine)
        data.append((labels, values, colours, xlabel, title))
    heights = [max(1.6, 0.42 * max(len(d[0]), 1) + 0.9) for d in data]
    fig, axes = plt.subplots(2, 1, figsize=(6.7, sum(heights)), layout="constrained",
                             gridspec_kw={"height_ratios": heights})
    for ax, (labels, values, colours, xlabel, title) in zip(axes, data):
        if not values:
            ax.text(0.5, 0.5, "no published or measured values", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
            continue
        y = list(range(len(values)))
        ax.barh(y, values, color=colours)
        ax.set_yticks(y, labels, fontsize=10)
        top = max(values) * 1.18 if max(values) > 0 else 1
        ax.set_xlim(0, top)
        for yi, v in zip(y, values):
            ax.text(v + top * 0.01, yi, f"{v:.4g}", va="center", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.invert_yaxis()
    return fig
