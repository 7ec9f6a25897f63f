"""The training log: ``metrics.jsonl`` in a run's ``out_dir``, its reader and its figure.

The trainer (``dgtrs_lib.training.trainer``) appends one JSON line per optimizer step: ``step``,
``epoch``, ``lr``, ``loss``/``loss_long``/``loss_short`` (null for a branch the curriculum switched
off), the curriculum weights ``w_long``/``w_short``, ``logit_scale`` (exponentiated), ``pairs_per_s``,
``time_s``, the ``precision`` the run uses, the fp16 ``loss_scale`` (null otherwise) and the number of
``bad_samples`` the input pipeline has skipped so far. ``read_metrics`` reads it back (``dgtrs_lib.io.read_jsonl``: a torn last line from a
crash is skipped); ``plot_metrics`` draws the three panels the book's training chapter shows
(notebook 03): the two InfoNCE losses of the dual-granularity objective, the DGCL weights
(arXiv:2503.19311, ``book/references.bib`` key ``chen2025dgtrs``) and Long-CLIP's temperature and
warm-up/cosine learning rate (``zhang2024longclip``).

The figure lives here, beside the reader, because it knows the record's fields and nothing about
the book: a change of the log's fields is one module, and the training layer stays usable without
the publishing layer.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import os

import numpy as np

from dgtrs_lib.io import read_jsonl

METRICS_FILE = "metrics.jsonl"


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The records of a ``metrics.jsonl`` (a torn last line from a crash is skipped)."""
    return read_jsonl(path)


def plot_metrics(metrics, title: str = "", smooth: int = 1):
    """Figure with three panels: losses, curriculum weights, logit scale and learning rate.

    ``metrics`` is a ``metrics.jsonl`` path or a list of records; ``smooth`` is a moving-average
    window for the losses.
    """
    import matplotlib.pyplot as plt

    recs = read_metrics(metrics) if isinstance(metrics, (str, os.PathLike)) else list(metrics)
    steps = np.array([r["step"] for r in recs])

    def col(name):
        return np.array([np.nan if r.get(name) is None else r[name] for r in recs], dtype=float)

    def sm(y):
        if smooth <= 1 or len(y) < smooth:
            return y
        kernel = np.ones(smooth) / smooth
        out = np.convolve(np.nan_to_num(y), kernel, mode="same")
        out[np.isnan(y)] = np.nan
        return out

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    ax = axes[0]
    ax.plot(steps, sm(col("loss_long")), label="L_long (image-long text)")
    ax.plot(steps, sm(col("loss_short")), label="L_short (image-short text)")
    ax.plot(steps, sm(col("loss")), label="weighted total", color="k", lw=0.8, alpha=0.6)
    ax.set(xlabel="step", ylabel="InfoNCE loss", title="losses")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(steps, col("w_long"), label="w_long")
    ax.plot(steps, col("w_short"), label="w_short")
    ax.set(xlabel="step", ylabel="weight", title="curriculum weights", ylim=(-0.05, 1.1))
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.plot(steps, col("logit_scale"), color="tab:purple", label="exp(logit_scale)")
    ax.set(xlabel="step", ylabel="logit scale", title="temperature and learning rate")
    ax2 = ax.twinx()
    ax2.plot(steps, col("lr"), color="tab:gray", ls="--", label="lr")
    ax2.set_ylabel("learning rate")
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
