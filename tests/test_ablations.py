"""Ablation bookkeeping: mean/std over seeds, paired claim verdicts, the display table."""
import pytest

from dgtrs_lib.experiments.ablations import CLAIMS, HEADLINE, VARIANTS, claim_table, format_table, summarize

LONG = ("long_text_retrieval", "SynDG-RS", "mR")


def _rows(values: dict):
    """values: {config: [value per seed]} on the long-text retrieval headline column."""
    return [{"task": LONG[0], "dataset": LONG[1], "metric": LONG[2], "value": v, "config": c, "seed": s}
            for c, vals in values.items() for s, v in enumerate(vals)]


def test_summarize_mean_and_sample_std():
    (row,) = summarize(_rows({"e": [1.0, 2.0, 6.0]}))
    assert row["mean"] == pytest.approx(3.0)
    assert row["std"] == pytest.approx(((4 + 1 + 9) / 2) ** 0.5)      # ddof = 1
    assert row["n_seeds"] == 3 and row["label"].startswith("KPS + DGCL")


def _verdict(table, claim):
    (row,) = [r for r in table if r["claim"] == claim and r["metric"] == HEADLINE[LONG]]
    return row


def test_claim_verdicts_are_paired_by_seed():
    kps_vs_naive = CLAIMS[0][0]
    # e better than f on every seed -> holds, even though the means overlap with the spread
    row = _verdict(claim_table(_rows({"e": [10.0, 20.0, 30.0], "f": [9.0, 19.5, 29.0]})), kps_vs_naive)
    assert row["verdict"] == "holds" and row["mean_diff"] == pytest.approx(0.8333, abs=1e-3)
    # better on average, not on every seed -> mixed
    row = _verdict(claim_table(_rows({"e": [10.0, 20.0, 30.0], "f": [11.0, 15.0, 29.0]})), kps_vs_naive)
    assert row["verdict"] == "mixed" and row["min_diff"] == pytest.approx(-1.0)
    # identical predictions are a tie, never a win
    row = _verdict(claim_table(_rows({"e": [5.0, 5.0], "f": [5.0, 5.0]})), kps_vs_naive)
    assert row["verdict"] == "does not hold"
    row = _verdict(claim_table(_rows({"e": [1.0, 2.0], "f": [3.0, 1.0]})), kps_vs_naive)
    assert row["verdict"] == "does not hold"


def test_claims_skip_missing_configurations():
    assert claim_table(_rows({"e": [1.0]})) == []


def test_format_table_orders_configurations():
    rows = _rows({"f": [1.0, 2.0], "a": [3.0, 3.0], "e": [2.0, 4.0]})
    table = format_table(summarize(rows))
    assert [r["config"] for r in table] == ["a", "e", "f"]
    assert table[1][HEADLINE[LONG]] == "3.00 ± 1.41"


def test_every_claim_names_known_variants():
    keys = {v.key for v in VARIANTS}
    assert all(better in keys and worse in keys for _, better, worse in CLAIMS)
