"""The book's explanatory figures, drawn for the page's content column (6.7 in, fonts >= 10 pt).

* ``kps_mapping`` -- which row of the stretched positional table each source row lands on
  (chapter 02). The mapping is *measured* from ``dgtrs_lib.model.kps`` itself: stretching a table
  whose row ``p`` holds the number ``p`` gives, on every new row, the (fractional) source position
  it interpolates, so the schematic cannot drift from the code.
* ``training_curves`` -- losses, curriculum weights, logit scale and learning rate of a run's
  ``metrics.jsonl`` (chapter 03); a loss spike is clipped at a robust upper limit and marked,
  so it no longer flattens the rest of the curve.
* ``forest_plot`` -- the paired differences of a study's contrasts (chapter 08): one row per
  contrast and one panel per metric, mean and seed range, coloured by verdict. It reads the
  contrast rows generically (``claim``, ``better``, ``worse``, ``metric``, ``mean_diff``,
  ``min_diff``, ``max_diff``, ``verdict``), so a redesigned study plots without changes.
* ``reference_table`` / ``plot_with_references`` -- a task's numbers beside the reference lines
  the evaluation computed on the same sets (``doc["references"]``: chance, class-only, majority,
  flat map; ``dgtrs_lib.evaluation.references``), as a table and as bars with the references
  drawn across each bar (chapters 04-07).
* ``curve_with_reference`` -- a curve (the prior's plateau, retrieval vs tokens read) with
  horizontal reference lines and vertical markers (chapter 02).
* ``prior_length_figure`` -- the measurements behind the miniature's ``keep`` (chapter 02): the
  prior's plateau curve against the class-only reference, retrieval against tokens read with the
  measured effective length and the configured ``keep`` marked, and how far each positional row
  moved in pre-training (Long-CLIP, Zhang et al. 2024, section 3.1; the measurement is
  ``dgtrs_lib.experiments.instrument.measure_effective_length``).

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import textwrap

import numpy as np

CONTENT_WIDTH_IN = 6.7
REFERENCE_STYLES = {"chance": ("k", ":"), "class_only": ("tab:red", "--"), "majority": ("tab:purple", "--"),
                    "flat": ("tab:gray", "--")}
REFERENCE_LABELS = {"chance": "chance", "class_only": "class-only", "majority": "majority class", "flat": "flat map"}
VERDICT_COLOURS = {"holds": "tab:green", "inconclusive": "0.55", "reversed": "tab:red",
                   "mixed": "tab:orange", "does not hold": "tab:red"}  # the last two: studies before issue #12


# --------------------------------------------------------------------------------------------
# KPS row mapping (chapter 02)
# --------------------------------------------------------------------------------------------

def kps_source_positions(length: int, keep: int, ratio: int):
    """For each row of the KPS-stretched table, the source position it is made of (an integer:
    a copied row; a fraction: interpolated between two rows; beyond ``length - 1``:
    extrapolated), computed by ``dgtrs_lib.model.kps.stretch_positional_embedding``."""
    import torch

    from dgtrs_lib.model.kps import stretch_positional_embedding

    table = torch.arange(length, dtype=torch.float64)[:, None]
    return stretch_positional_embedding(table, keep=keep, ratio=ratio)[:, 0].numpy()


def kps_mapping(length: int = 12, keep: int = 4, ratio: int = 3):
    """Schematic of KPS: source rows (top) and the rows of the stretched table (bottom)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    src = kps_source_positions(length, keep, ratio)
    n = len(src)
    fig, ax = plt.subplots(figsize=(CONTENT_WIDTH_IN, 2.9))
    w = 1.0
    scale = (n - 1) / max(length - 1, 1)  # spread the source row across the target width
    colours = {"kept": "tab:blue", "copied": "tab:green", "interpolated": "0.82",
               "extrapolated": "tab:orange"}
    for p in range(length):
        x = p * scale
        kind = "kept" if p < keep else "copied"
        ax.add_patch(Rectangle((x - w / 2, 1.6), w, 0.5, color=colours[kind], ec="k", lw=0.5))
        if length <= 16:
            ax.text(x, 1.85, str(p), ha="center", va="center", fontsize=10,
                    color="white" if kind != "interpolated" else "k")
    for j, s in enumerate(src):
        whole = abs(s - round(s)) < 1e-9
        if s > length - 1 + 1e-9:
            kind = "extrapolated"
        elif whole and round(s) < keep:
            kind = "kept"
        elif whole:
            kind = "copied"
        else:
            kind = "interpolated"
        ax.add_patch(Rectangle((j - w / 2, 0), w, 0.5, color=colours[kind], ec="k", lw=0.5))
        if kind in ("kept", "copied"):
            ax.plot([round(s) * scale, j], [1.6, 0.5], color=colours[kind], lw=1)
    ax.set_xlim(-1, n)
    ax.set_ylim(-0.5, 2.5)
    ax.axis("off")
    handles = [Rectangle((0, 0), 1, 1, color=c, ec="k", lw=0.5) for c in colours.values()]
    labels = [f"first keep = {keep} rows, copied", "later rows, copied every ratio-th row",
              "interpolated between two copied rows", "extrapolated (last ratio - 1 rows)"]
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
              frameon=False)
    ax.text(-1, 2.3, f"source table: L = {length} rows", fontsize=11, va="bottom")
    ax.text(-1, -0.12, f"stretched table: {n} rows = ratio x L - (ratio - 1) x keep", fontsize=11,
            va="top")
    return fig


# --------------------------------------------------------------------------------------------
# Training curves (chapter 03)
# --------------------------------------------------------------------------------------------

def _robust_top(values: np.ndarray, q: float = 98.0, margin: float = 1.15) -> float | None:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return None
    return float(np.percentile(finite, q)) * margin


def training_curves(records: list[dict], title: str = "", smooth: int = 5):
    """2 x 2 panels: InfoNCE losses (spikes clipped and marked), curriculum weights, the logit
    scale ``exp(logit_scale)`` and the learning rate, over the steps of one run."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    steps = np.array([r["step"] for r in records])

    def col(name):
        return np.array([np.nan if r.get(name) is None else r[name] for r in records], dtype=float)

    def sm(y):
        if smooth <= 1 or len(y) < smooth:
            return y
        out = np.convolve(np.nan_to_num(y), np.ones(smooth) / smooth, mode="same")
        out[np.isnan(y)] = np.nan
        return out

    fig, axes = plt.subplots(2, 2, figsize=(CONTENT_WIDTH_IN, 5.2), sharex=True)
    ax = axes[0, 0]
    curves = [("loss_long", "$\\mathcal{L}_{long}$", "tab:blue"),
              ("loss_short", "$\\mathcal{L}_{short}$", "tab:orange"),
              ("loss", "weighted total", "k")]
    tops, peaks = [], []
    for key, label, colour in curves:
        y = sm(col(key))
        if np.isfinite(y).any():
            ax.plot(steps, y, label=label, color=colour, lw=1.4 if key != "loss" else 0.9)
            tops.append(_robust_top(y))
            peaks.append((np.nanmax(y), steps[int(np.nanargmax(y))]))
    top = max([t for t in tops if t is not None], default=None)
    if top is not None:
        ax.set_ylim(0, top)
        clipped = [(v, s) for v, s in peaks if v > top]
        if clipped:
            v, s = max(clipped)
            ax.annotate(f"peak {v:.2f} at step {s} (clipped)", xy=(s, top), xytext=(0.45, 0.93),
                        textcoords="axes fraction", fontsize=10, ha="left", va="top",
                        arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.set(ylabel="InfoNCE loss", title="losses")
    ax.legend(loc="best")
    ax = axes[0, 1]
    ax.plot(steps, col("w_long"), label="$w_{long}$", color="tab:blue")
    ax.plot(steps, col("w_short"), label="$w_{short}$", color="tab:orange", ls="--")
    ax.set(ylabel="weight", title="curriculum weights", ylim=(-0.05, 1.1))
    ax.legend(loc="center right")
    ax = axes[1, 0]
    ax.plot(steps, col("logit_scale"), color="tab:purple")
    ax.set(xlabel="step", ylabel="$e^{logit\\_scale}$", title="logit scale (inverse temperature)")
    ax = axes[1, 1]
    ax.plot(steps, col("lr"), color="0.3")
    ax.set(xlabel="step", ylabel="learning rate", title="learning rate")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}" if v else "0"))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Forest plot of a study's contrasts (chapter 08)
# --------------------------------------------------------------------------------------------

def contrast_label(row: dict) -> str:
    """Short y label of a contrast: ``'e - f'`` from its ``better``/``worse`` keys, else the claim."""
    if row.get("better") and row.get("worse"):
        return f"{row['better']} \u2212 {row['worse']}"
    return str(row.get("claim", "?"))[:24]


def forest_plot(contrasts: list[dict], *, columns: int = 2):
    """Paired differences (better - worse) of every contrast, one panel per endpoint: a small dot
    per seed, the big dot at the mean over seeds, the thick bar its (corrected, for primary
    contrasts) t-interval, the thin bar the per-query bootstrap interval when present, and the
    dashed line at zero. Colour: the verdict. Rows without intervals (older studies) show the
    range of the seeds."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if not contrasts:
        raise ValueError("forest_plot: no contrasts (a study needs two seeds per arm for one)")
    metrics = list(dict.fromkeys(r.get("label", r["metric"]) for r in contrasts))
    pairs = list(dict.fromkeys(contrast_label(r) for r in contrasts))
    rows = -(-len(metrics) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(CONTENT_WIDTH_IN, 1.2 + 0.3 * len(pairs) * rows),
                             squeeze=False, sharey=True)
    for ax, metric in zip(axes.ravel(), metrics):
        for y, pair in enumerate(pairs):
            row = next((r for r in contrasts if r.get("label", r["metric"]) == metric and contrast_label(r) == pair), None)
            if row is None:
                continue
            colour = VERDICT_COLOURS.get(row.get("verdict"), "0.4")
            low = row.get("corrected_low", row.get("ci_low", row.get("min_diff")))
            high = row.get("corrected_high", row.get("ci_high", row.get("max_diff")))
            if "boot_low" in row:
                ax.plot([row["boot_low"], row["boot_high"]], [y + 0.22, y + 0.22], color=colour, lw=1.0)
            ax.plot([low, high], [y, y], color=colour, lw=2.6, solid_capstyle="butt")
            for d in row.get("diffs", []):
                ax.plot(d, y - 0.22, ".", color="0.35", ms=3)
            ax.plot(row["mean_diff"], y, "o", color=colour, ms=6, mec="k", mew=0.5)
        ax.axvline(0, color="k", lw=0.8, ls="--")
        ax.set_title(textwrap.shorten(metric, 34, placeholder="..."), fontsize=10)
        ax.set_yticks(range(len(pairs)), pairs)
        ax.set_ylim(len(pairs) - 0.5, -0.5)
        ax.tick_params(axis="both", labelsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    shown = [v for v in VERDICT_COLOURS if any(r.get("verdict") == v for r in contrasts)] or list(VERDICT_COLOURS)
    handles = [Line2D([0], [0], color=VERDICT_COLOURS[v], lw=2.2, marker="o", mec="k", mew=0.5) for v in shown]
    fig.legend(handles, shown, loc="lower center", ncol=len(shown), frameon=False, bbox_to_anchor=(0.5, 0.0),
               fontsize=10)
    fig.supxlabel("better \u2212 worse: mean (big dot), interval (thick), bootstrap (thin), seeds (small dots)",
                  y=0.045, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


# --------------------------------------------------------------------------------------------
# Results beside their reference lines (chapters 04-07)
# --------------------------------------------------------------------------------------------

def reference_table(doc: dict, task: str, metrics) -> list[dict]:
    """Rows ``{dataset, metric, model, <reference>...}`` of ``task`` for ``metrics``: the model's
    value and every reference the results document holds for the same (dataset, metric)."""
    refs: dict[tuple, dict] = {}
    for r in doc.get("references", []):
        if r["task"] == task:
            refs.setdefault((r["dataset"], r["metric"]), {})[REFERENCE_LABELS.get(r["reference"], r["reference"])] = r["value"]
    return [{"dataset": r["dataset"], "metric": r["metric"], "model": r["value"], **refs.get((r["dataset"], r["metric"]), {})}
            for r in doc["results"] if r["task"] == task and r["metric"] in metrics]


def plot_with_references(ax, doc: dict, task: str, metric: str, *, datasets=None, colour: str = "tab:blue"):
    """Bars of ``metric`` per dataset of ``task`` with each reference drawn across its bar."""
    rows = [r for r in doc["results"] if r["task"] == task and r["metric"] == metric
            and (datasets is None or r["dataset"] in datasets)]
    names = [r["dataset"] for r in rows]
    ax.bar(range(len(rows)), [r["value"] for r in rows], color=colour, width=0.6, label="model")
    seen = set()
    for r in doc.get("references", []):
        if r["task"] != task or r["metric"] != metric or r["dataset"] not in names:
            continue
        i = names.index(r["dataset"])
        c, ls = REFERENCE_STYLES.get(r["reference"], ("k", "-."))
        label = REFERENCE_LABELS.get(r["reference"], r["reference"])
        ax.hlines(r["value"], i - 0.4, i + 0.4, colors=c, linestyles=ls, lw=2,
                  label=None if label in seen else label)
        seen.add(label)
    ax.set_xticks(range(len(rows)), names, rotation=20 if len(rows) > 3 else 0, ha="right" if len(rows) > 3 else "center")
    ax.set_ylabel(metric)
    ax.legend(fontsize=10)
    return ax


def curve_with_reference(ax, xs, ys, *, label: str, references: dict | None = None, markers: dict | None = None,
                         xlabel: str = "", ylabel: str = ""):
    """A curve with horizontal ``references`` ``{label: value}`` and vertical ``markers`` ``{label: x}``."""
    ax.plot(xs, ys, "o-", label=label)
    for i, (name, value) in enumerate((references or {}).items()):
        ax.axhline(value, color=("tab:red", "k", "tab:gray")[i % 3], ls="--", lw=1.2, label=name)
    for i, (name, x) in enumerate((markers or {}).items()):
        ax.axvline(x, color=("tab:green", "tab:purple", "tab:orange")[i % 3], ls=":", lw=1.5, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=10)
    return ax


# --------------------------------------------------------------------------------------------
# How long the prior reads (chapter 02)
# --------------------------------------------------------------------------------------------

def prior_length_figure(measured: dict, keep: int, *, curve: list[dict] | None = None,
                        references: dict | None = None):
    """Panels of the effective-length measurement (``measure_effective_length``'s result):

    * with ``curve`` (``pipeline.read_curve`` rows: ``step``, ``i2t_R@1``, ``t2i_R@1``): held-out
      alt-text R@1 against the pre-training step, with horizontal ``references`` ``{label: R@1}``
      (class-only, chance);
    * R@1 both ways and mR against the tokens the prior may read, with vertical lines at the
      measured effective length and at ``keep`` (the configured one);
    * the relative movement of every positional row, with ``keep`` and the last trained row marked.
    """
    import matplotlib.pyplot as plt

    panels = 3 if curve else 2
    fig, axes = plt.subplots(panels, 1, figsize=(CONTENT_WIDTH_IN, 2.9 * panels))
    axes = list(np.atleast_1d(axes))
    if curve:
        ax = axes.pop(0)
        steps = [r["step"] for r in curve]
        for key, colour in (("t2i_R@1", "tab:blue"), ("i2t_R@1", "tab:orange")):
            ax.plot(steps, [r[key] for r in curve], "o-", ms=3, color=colour, label=key)
        for i, (name, value) in enumerate((references or {}).items()):
            ax.axhline(value, color=("tab:red", "k", "tab:gray")[i % 3], ls="--", lw=1.2, label=name)
        ax.set(xlabel="pre-training step", ylabel="held-out R@1 (%)",
               title="the prior on held-out alt-texts (plateau curve)")
        ax.legend(fontsize=10, ncol=2, loc="best", framealpha=0.9)
    ax = axes[0]
    rows = sorted(measured["curve"], key=lambda r: r["tokens_read"])
    ks = [r["tokens_read"] for r in rows]
    for key, style, colour in (("mR", "o-", "k"), ("t2i_R@1", "s--", "tab:blue"), ("i2t_R@1", "^--", "tab:orange")):
        ax.plot(ks, [r[key] for r in rows], style, ms=3, color=colour, label=key)
    eff = measured["effective_length"]
    ax.axvline(eff, color="tab:green", ls=":", lw=1.8, label=f"effective length {eff}")
    ax.axvline(keep, color="tab:purple", ls="-.", lw=1.4, label=f"configured keep {keep}")
    ax.set(xlabel="tokens the prior may read", ylabel="%", title="held-out long descriptions, read in part")
    ax.legend(fontsize=10, ncol=2, loc="best", framealpha=0.9)
    ax = axes[1]
    movement = np.asarray(measured["movement"], dtype=float)
    ax.bar(np.arange(len(movement)), movement, width=0.8, color="tab:blue")
    ax.axvline(keep - 0.5, color="tab:purple", ls="-.", lw=1.4, label=f"configured keep {keep}")
    if "trained_rows" in measured:
        ax.axvline(measured["trained_rows"] - 0.5, color="tab:green", ls=":", lw=1.8,
                   label=f"trained rows {measured['trained_rows']}")
    ax.set(xlabel="positional row", ylabel="relative movement",
           title="how far each positional row moved in pre-training")
    ax.legend(fontsize=10)
    fig.tight_layout()
    return fig
