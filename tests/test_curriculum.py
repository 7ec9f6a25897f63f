"""DGCL schedules: endpoints, shapes, registry, errors."""
import math

import pytest

from dgtrs_lib.training.curriculum import DEFAULT_SCHEDULE, SCHEDULES, get_schedule, progress, weight_table


def test_progress_endpoints():
    assert progress(0, 11) == 0.0 and progress(10, 11) == 1.0 and progress(5, 11) == 0.5
    assert progress(0, 1) == 1.0
    with pytest.raises(ValueError):
        progress(0, 0)


def test_fixed_and_single_branch():
    for step in (0, 7, 99):
        assert get_schedule("fixed")(step, 100) == (1.0, 1.0)
        assert get_schedule("short_only")(step, 100) == (0.0, 1.0)
        assert get_schedule("long_only")(step, 100) == (1.0, 0.0)
    assert get_schedule("fixed", w_short=0.1)(3, 10) == (1.0, 0.1)


def test_linear_short_to_long():
    s = get_schedule("linear")
    assert s(0, 11) == (0.0, 1.0)
    assert s(5, 11) == pytest.approx((0.5, 0.5))
    assert s(10, 11) == pytest.approx((1.0, 0.0))
    assert get_schedule("linear", floor=0.25)(10, 11) == pytest.approx((1.0, 0.25))


def test_two_stage_switch():
    s = get_schedule("two_stage", switch=0.3)
    assert s(0, 11) == (0.0, 1.0) and s(2, 11) == (0.0, 1.0)
    assert s(3, 11) == (1.0, 1.0) and s(10, 11) == (1.0, 1.0)


def test_cosine_is_monotone_and_keeps_short():
    s = get_schedule("cosine")
    ws = [s(i, 50) for i in range(50)]
    assert ws[0] == pytest.approx((0.0, 1.0)) and ws[-1] == pytest.approx((1.0, 0.5))
    assert all(a[0] <= b[0] and a[1] >= b[1] for a, b in zip(ws, ws[1:]))
    assert ws[25][0] == pytest.approx(0.5 * (1 - math.cos(math.pi * 25 / 49)))


def test_default_and_registry():
    assert get_schedule("default").name == DEFAULT_SCHEDULE == get_schedule().name
    assert {"fixed", "short_only", "long_only", "linear", "two_stage", "cosine"} <= set(SCHEDULES)
    table = weight_table(total_steps=20)
    assert set(table) == set(SCHEDULES) and all(len(v) == 20 for v in table.values())
    assert get_schedule("two_stage").config() == {"name": "two_stage", "switch": 0.5,
                                                  "first": (0.0, 1.0), "second": (1.0, 1.0)}


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown curriculum schedule 'zigzag'"):
        get_schedule("zigzag")
    with pytest.raises(ValueError, match="floor"):
        get_schedule("cosine", floor=2.0)
    with pytest.raises(ValueError, match="bad parameters"):
        get_schedule("linear", speed=3)
