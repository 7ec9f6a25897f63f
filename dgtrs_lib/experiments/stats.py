"""The statistics of the claims study: paired intervals over seeds and test queries, Holm's
correction, the minimum detectable effect and the three verdicts.

For one contrast (arm X against arm Y on one endpoint), with ``d_s`` the paired difference on
fine-tuning seed ``s`` (same prior, same data order):

* **t-interval over seeds**: ``mean(d) +- t_{1-a/2, n-1} * sd(d) / sqrt(n)`` (Student 1908;
  paired because both arms share each seed's data order), with its two-sided p-value;
* **per-query bootstrap** on the test set: resample the test queries (an image with its captions,
  an image, a SeLo case) with replacement, the same resample for both arms and every seed, and
  take the percentile interval of the seed-averaged difference (Efron & Tibshirani 1993,
  ``efron1993bootstrap``): how much the verdict depends on which test images were drawn;
* **Holm's step-down correction** (Holm 1979, ``holm1979``) of the seed p-values over all the
  primary contrasts, which keeps the family-wise error rate at ``alpha``; the corrected interval
  uses the level ``alpha / (m - rank + 1)`` of each contrast's Holm step, so it excludes 0
  whenever Holm rejects (the verdict itself follows Holm's adjusted p-value);
* **minimum detectable effect** at the seeds used: ``(t_{1-a'/2, n-1} + t_{power, n-1}) * sd(d) /
  sqrt(n)`` at the contrast's corrected level ``a'`` and power 0.8 (the usual normal-approximation
  formula with t quantiles; Cohen 1988).

Verdicts (pre-registered in ``dgtrs_lib.experiments.ablations``): **holds** when Holm rejects
and the mean difference is positive, **reversed** when it rejects and the mean is negative,
**inconclusive** otherwise (``verdict`` applies the same words to an uncorrected interval, for the
secondary contrasts).

Taught in: Ablations: testing the paper's claims in miniature (notebooks/08-ablations.ipynb)
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
POWER = 0.8
BOOTSTRAP = 2000


def t_interval(diffs: Sequence[float], alpha: float = ALPHA) -> dict:
    """Mean paired difference, its ``1 - alpha`` t-interval, sd, n and the two-sided p-value."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n < 2:
        raise ValueError(f"a t-interval needs at least 2 paired differences, got {n}")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = float(sps.t.ppf(1 - alpha / 2, n - 1)) * se
    if se > 0:
        p = float(2 * sps.t.sf(abs(mean) / se, n - 1))
    else:  # every seed gave the same difference
        p = 1.0 if mean == 0 else 0.0
    return {"mean": mean, "low": mean - half, "high": mean + half, "sd": sd, "n": n, "p": p}


def minimum_detectable_effect(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true mean difference a paired t-test at ``alpha`` (two-sided) detects with
    probability ``power`` with ``n`` seeds whose paired differences have standard deviation ``sd``."""
    if n < 2:
        return float("inf")
    return float((sps.t.ppf(1 - alpha / 2, n - 1) + sps.t.ppf(power, n - 1)) * sd / math.sqrt(n))


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> list[dict]:
    """Holm's step-down procedure: per p-value (input order) the adjusted p-value, whether it is
    rejected at family-wise ``alpha``, and the level of its step (``alpha / (m - rank)``)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    level = np.empty(m)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
        level[i] = alpha / (m - rank)
    return [{"p_holm": float(adjusted[i]), "rejected": bool(adjusted[i] <= alpha), "level": float(level[i])}
            for i in range(m)]


def paired_bootstrap(x: np.ndarray, y: np.ndarray, alpha: float = ALPHA, n_boot: int = BOOTSTRAP,
                     seed: int = 0) -> dict:
    """Percentile interval of ``mean over seeds and queries of (x - y)`` under resampling of the
    test queries. ``x``, ``y``: ``[seeds, queries]`` per-query scores of the two arms (the same
    queries, in the same order)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"per-query scores: expected two [seeds, queries] arrays of one shape, got {x.shape}, {y.shape}")
    diff = (x - y).mean(0)  # seed-averaged difference per query
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(n_boot, len(diff)))
    means = diff[idx].mean(1)
    return {"mean": float(diff.mean()), "low": float(np.quantile(means, alpha / 2)),
            "high": float(np.quantile(means, 1 - alpha / 2)), "n_queries": int(len(diff)), "n_boot": n_boot}


def verdict(low: float, high: float) -> str:
    """``holds`` (interval above 0), ``reversed`` (below 0) or ``inconclusive`` (contains 0)."""
    if low > 0:
        return "holds"
    if high < 0:
        return "reversed"
    return "inconclusive"


def corrected_interval(diffs: Sequence[float], level: float) -> tuple[float, float]:
    """The t-interval of ``diffs`` at the (corrected) two-sided level ``level``."""
    t = t_interval(diffs, alpha=level)
    return t["low"], t["high"]
