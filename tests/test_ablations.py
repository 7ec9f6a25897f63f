"""The claims study: its statistics, its pre-registered contrasts and verdicts, the display table,
and the pieces it is built from (equal-weight schedules, the locked image tower, random new rows,
per-query scores)."""
import math

import numpy as np
import pytest
import torch

from dgtrs_lib.experiments import stats
from dgtrs_lib.experiments.ablations import (
    CLAIMS,
    ENDPOINTS,
    HEADLINE,
    PRIMARY,
    SECONDARY,
    VARIANTS,
    claim_table,
    claim_verdicts,
    contrast_table,
    converged,
    format_table,
    summarize,
    unconverged_runs,
)

LONG = ENDPOINTS["long"][:3]


def _rows(values: dict, endpoint: str = "long"):
    """values: {config: [value per seed]} on one endpoint."""
    task, dataset, metric, _ = ENDPOINTS[endpoint]
    return [{"task": task, "dataset": dataset, "metric": metric, "value": v, "config": c, "seed": s}
            for c, vals in values.items() for s, v in enumerate(vals)]


# ----------------------------------------------------------------------------- statistics
def test_t_interval_matches_the_textbook_formula():
    d = [1.0, 2.0, 3.0, 4.0]
    t = stats.t_interval(d)
    half = 3.182446305284263 * np.std(d, ddof=1) / 2  # t_{0.975, 3}
    assert t["mean"] == pytest.approx(2.5) and t["high"] - t["mean"] == pytest.approx(half)
    assert 0 < t["p"] < 0.05
    with pytest.raises(ValueError, match="at least 2"):
        stats.t_interval([1.0])


def test_holm_step_down_on_a_known_example():
    # Holm (1979): p sorted 0.01, 0.02, 0.03, 0.04 with m = 4 -> adjusted 0.04, 0.06, 0.06, 0.06
    got = stats.holm([0.03, 0.01, 0.04, 0.02])
    assert [round(g["p_holm"], 6) for g in got] == [0.06, 0.04, 0.06, 0.06]
    assert [g["rejected"] for g in got] == [False, True, False, False]
    assert got[1]["level"] == pytest.approx(0.05 / 4) and got[2]["level"] == pytest.approx(0.05)


def test_minimum_detectable_effect_shrinks_with_seeds_and_grows_with_noise():
    assert stats.minimum_detectable_effect(1.0, 12) < stats.minimum_detectable_effect(1.0, 6)
    assert stats.minimum_detectable_effect(2.0, 6) == pytest.approx(2 * stats.minimum_detectable_effect(1.0, 6))
    assert math.isinf(stats.minimum_detectable_effect(1.0, 1))


def test_paired_bootstrap_interval_covers_the_mean_and_checks_shapes():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(3, 400))
    b = stats.paired_bootstrap(y + 0.5, y)
    assert b["low"] == pytest.approx(0.5) and b["high"] == pytest.approx(0.5)  # the same shift everywhere
    b = stats.paired_bootstrap(y + rng.normal(0.2, 1.0, size=y.shape), y)
    assert b["low"] < b["mean"] < b["high"] and b["n_queries"] == 400
    with pytest.raises(ValueError, match="one shape"):
        stats.paired_bootstrap(y, y[:, :10])


def test_verdict_words():
    assert stats.verdict(0.1, 2.0) == "holds"
    assert stats.verdict(-2.0, -0.1) == "reversed"
    assert stats.verdict(-0.1, 0.1) == "inconclusive"


# ----------------------------------------------------------------------------- the contrasts
def _primary(table, better, worse, endpoint="long"):
    (row,) = [r for r in table if r["family"] == "primary" and (r["better"], r["worse"], r["endpoint"])
              == (better, worse, endpoint)]
    return row


def test_a_large_consistent_difference_holds_and_a_reversed_one_is_reversed():
    seeds = 6
    rng = np.random.default_rng(1)
    base = rng.normal(50, 5, size=seeds)
    rows = _rows({"e": list(base + 5 + rng.normal(0, 0.2, seeds)), "f": list(base),
                  "b": list(base + 8 + rng.normal(0, 0.2, seeds)), "c": list(base + rng.normal(0, 3, seeds)),
                  "d": list(base + 5 + rng.normal(0, 0.2, seeds))})
    table = contrast_table(rows)
    assert _primary(table, "e", "f")["verdict"] == "holds"
    assert _primary(table, "e", "b")["verdict"] == "reversed"
    assert _primary(table, "e", "d")["verdict"] == "inconclusive"
    row = _primary(table, "e", "f")
    assert row["corrected_low"] <= row["ci_low"] and row["corrected_high"] >= row["ci_high"]  # corrected is wider
    assert row["p_holm"] >= row["p"] and row["mde"] > 0


def test_positive_on_every_seed_is_not_enough_to_hold():
    # the old rule ("positive on every seed") called this a win; a corrected interval does not
    rows = _rows({"e": [10.0, 20.0, 30.0], "f": [9.0, 19.5, 29.9]})
    assert _primary(contrast_table(rows), "e", "f")["verdict"] == "inconclusive"


def test_identical_predictions_are_a_tie():
    rows = _rows({"e": [5.0, 5.0, 5.0], "f": [5.0, 5.0, 5.0]})
    row = _primary(contrast_table(rows), "e", "f")
    assert row["verdict"] == "inconclusive" and row["mean_diff"] == 0.0


def test_contrasts_skip_missing_arms_and_single_seeds():
    assert contrast_table(_rows({"e": [1.0, 2.0]})) == []
    assert contrast_table(_rows({"e": [1.0], "f": [0.0]})) == []


def test_claim_verdicts_combine_endpoints():
    contrasts = [{"family": "primary", "claim": PRIMARY[0][0], "endpoint": e, "verdict": v}
                 for e, v in zip(PRIMARY[0][3], ("holds", "inconclusive", "holds"))]
    (c,) = claim_verdicts(contrasts)
    assert c["verdict"] == "partly holds" and c["endpoints"]["retention"] == "inconclusive"


def test_per_query_bootstrap_enters_the_table():
    rows = _rows({"e": [2.0, 3.0, 4.0], "f": [1.0, 1.0, 1.0]})
    q = {"e": np.full((3, 50), 3.0), "f": np.full((3, 50), 1.0)}
    table = contrast_table(rows, lambda arm, endpoint, seeds: q.get(arm) if endpoint == "long" else None)
    row = _primary(table, "e", "f")
    assert row["boot_low"] == pytest.approx(2.0) and row["n_queries"] == 50


def test_convergence_check():
    flat = {"step": list(range(100)), "loss_long": [1.0] * 100, "loss_short": [None] * 100}
    assert converged(flat)["passed"]
    falling = {"step": list(range(100)), "loss_long": list(np.linspace(3, 1, 100)), "loss_short": [None] * 100}
    assert not converged(falling)["passed"] and converged(falling)["change"]["loss_long"] > 0.05


def test_unconverged_runs_name_the_failing_runs_of_both_arms():
    ok, bad = {"converged": {"passed": True}}, {"converged": {"passed": False}}
    doc = {"training": {"e-s0": ok, "e-s1": bad, "f-s0": ok, "f-s1": ok, "b-s0": bad},
           "protocol": {"arms": {"e": {"seeds": [0, 1]}, "f": {"seeds": [0, 1]}, "b": {"seeds": [0]},
                                 "a": {"seeds": [0, 1]}}}}
    assert unconverged_runs(doc, {"better": "e", "worse": "f"}) == (["e-s1"], 4)
    assert unconverged_runs(doc, {"better": "e", "worse": "b"}) == (["e-s1", "b-s0"], 3)
    # the untrained prior has no training record: it counts as no run, not as a failure
    assert unconverged_runs(doc, {"better": "f", "worse": "a"}) == ([], 2)


def test_every_contrast_names_known_arms_and_endpoints():
    keys = {v.key for v in VARIANTS}
    for _, better, worse, endpoints in PRIMARY + SECONDARY:
        assert better in keys and worse in keys and set(endpoints) <= set(ENDPOINTS)
    assert [c[:3] for c in PRIMARY] == list(CLAIMS)
    assert {"f1", "f2"} <= keys


def test_claim_table_is_the_primary_family():
    rows = _rows({"e": [2.0, 3.0, 4.0], "f": [1.0, 1.5, 1.0]})
    assert {r["family"] for r in claim_table(rows)} == {"primary"}


# ----------------------------------------------------------------------------- display
def test_summarize_mean_and_sample_std():
    (row,) = summarize(_rows({"e": [1.0, 2.0, 6.0]}))
    assert row["mean"] == pytest.approx(3.0)
    assert row["std"] == pytest.approx(((4 + 1 + 9) / 2) ** 0.5)      # ddof = 1
    assert row["n_seeds"] == 3 and row["label"].startswith("KPS + DGCL")


def test_format_table_orders_configurations():
    rows = _rows({"f": [1.0, 2.0], "a": [3.0, 3.0], "e": [2.0, 4.0]})
    table = format_table(summarize(rows))
    assert [r["config"] for r in table] == ["a", "e", "f"]
    assert table[1][HEADLINE[LONG]] == "3.00 ± 1.41"


# ----------------------------------------------------------------------------- the building blocks
def test_equal_weight_schedules_sum_to_the_total():
    from dgtrs_lib.training.curriculum import SCHEDULES, get_schedule

    for name in SCHEDULES:
        s = get_schedule(name, total=1.0)
        for step in range(10):
            assert sum(s(step, 10)) == pytest.approx(1.0)
    assert get_schedule("fixed", total=1.0)(0, 10) == (0.5, 0.5)
    assert get_schedule("cosine", total=1.0).config()["total"] == 1.0


def test_locked_image_tower_serves_identical_features_from_the_cache():
    from dgtrs_lib.model.frozen import lock_image_tower
    from dgtrs_lib.model.longclip import create_model

    torch.manual_seed(0)
    model = create_model("tiny").eval()
    x = torch.randn(5, 3, 64, 64)
    with torch.no_grad():
        plain = model.encode_image(x)
    cache = lock_image_tower(model)
    assert not any(p.requires_grad for p in model.visual.parameters())
    first = model.encode_image(x)
    again = model.encode_image(torch.cat([x[3:], x[:3]]))
    assert torch.equal(first, plain) and torch.equal(again, torch.cat([plain[3:], plain[:3]]))
    assert cache.misses == 5 and cache.hits == 5 and len(cache) == 5
    # another tower never reads these rows
    other = create_model("tiny").eval()
    lock_image_tower(other, cache)
    other.encode_image(x[:1])
    assert cache.misses == 6


def test_random_new_rows_keep_and_freeze_the_first_rows():
    from dgtrs_lib.model.longclip import create_model, stretch_model

    torch.manual_seed(0)
    base = create_model("tiny")
    m = stretch_model(base, keep=20, ratio=4, mode="random", seed=3)
    pe = m.text_positional_embedding().detach()
    assert torch.equal(pe[:20], base.positional_embedding.detach()[:20]) and m.keep == 20
    assert pe[20:].std().item() == pytest.approx(0.01, rel=0.2)
    again = stretch_model(base, keep=20, ratio=4, mode="random", seed=3).text_positional_embedding().detach()
    assert torch.equal(pe, again)  # seeded
    unfrozen = stretch_model(base, keep=20, ratio=4, mode="kps", frozen=0)
    assert unfrozen.keep == 0
    with pytest.raises(ValueError, match="mode"):
        stretch_model(base, mode="cubic")


def test_per_image_scores_average_to_mR():
    from dgtrs_lib.evaluation.retrieval import per_image_recall, retrieval_metrics

    rng = np.random.default_rng(0)
    img = torch.tensor(rng.normal(size=(30, 8)), dtype=torch.float32)
    txt = torch.tensor(rng.normal(size=(90, 8)), dtype=torch.float32)
    t2i = np.repeat(np.arange(30), 3)
    per = per_image_recall(img, txt, t2i)
    assert per.shape == (30,) and per.mean() == pytest.approx(retrieval_metrics(img, txt, t2i)["mR"])


def test_an_evaluation_change_renames_the_results_file_but_not_the_checkpoint(monkeypatch):
    from dgtrs_lib.evaluation import datasets as eval_datasets
    from dgtrs_lib.experiments import ablations

    arm = ablations.VARIANT_BY_KEY["e"]
    train, result = ablations.protocol_digest(arm, "smoke", None), ablations.results_digest(arm, "smoke", None)
    assert ablations.results_path("smoke", "e", 1, None).name == f"e-s1-{result}.json"
    monkeypatch.setattr(eval_datasets, "VIEWS_VERSION", eval_datasets.VIEWS_VERSION + "-changed")
    assert ablations.protocol_digest(arm, "smoke", None) == train      # the checkpoint is reused
    assert ablations.results_digest(arm, "smoke", None) != result      # its evaluation is redone


def test_a_model_shape_change_renames_the_checkpoint(monkeypatch):
    """Another patch size (or any shape of the model) is another protocol: no arm trained with the
    old shapes is reused."""
    import copy

    from dgtrs_lib.experiments import ablations
    from dgtrs_lib.model import configs

    arm = ablations.VARIANT_BY_KEY["e"]
    before = ablations.protocol_digest(arm, "smoke", None)
    changed = copy.deepcopy(configs.MODEL_CONFIGS)
    changed["tiny"]["vision_cfg"]["patch_size"] = 32
    monkeypatch.setattr(configs, "MODEL_CONFIGS", changed)
    assert ablations.protocol_digest(arm, "smoke", None) != before
