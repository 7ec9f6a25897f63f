"""SLM indicators (Rsu, Ras, Rda, Rmi) against hand-computed cases and known directions."""
import math

import numpy as np
import pytest

from dgtrs_lib.evaluation.slm import (
    attention_peaks,
    box_filter_uint8,
    jpeg_roundtrip,
    polygon_mask,
    ras,
    rda,
    region_center_radius,
    rmi,
    rsu,
    selo_metrics,
)

RECT = np.array([[200.0, 200], [400, 200], [400, 400], [200, 400]])


def _blob(shape, cx, cy, sigma=40.0, peak=1.0):
    y, x = np.mgrid[: shape[0], : shape[1]]
    return peak * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))


def test_polygon_mask_rectangle_is_inclusive_like_fillpoly():
    m = polygon_mask((8, 8), [np.array([[1, 2], [4, 2], [4, 5], [1, 5]])])
    expected = np.zeros((8, 8))
    expected[2:6, 1:5] = 1                                   # rows 2..5, columns 1..4, edges included
    np.testing.assert_array_equal(m, expected)


def test_polygon_mask_touching_and_crossing_the_border():
    m = polygon_mask((10, 10), [np.array([[-5.0, -5], [4.7, -5], [4.7, 3.9], [-5, 3.9]])])  # truncated to int
    expected = np.zeros((10, 10))
    expected[0:4, 0:5] = 1
    np.testing.assert_array_equal(m, expected)
    m2 = polygon_mask((10, 10), [np.array([[0, 0], [9, 0], [9, 9], [0, 9]])])
    assert m2.sum() == 100


def test_polygon_mask_triangle_and_two_polygons():
    tri = polygon_mask((11, 11), [np.array([[0, 0], [10, 0], [0, 10]])])
    yy, xx = np.mgrid[:11, :11]
    np.testing.assert_array_equal(tri, (xx + yy <= 10).astype(float))   # the half-plane, hypotenuse included
    two = polygon_mask((10, 20), [np.array([[0, 0], [3, 0], [3, 3], [0, 3]]), np.array([[10, 5], [12, 5], [12, 7], [10, 7]])])
    assert two.sum() == 16 + 9


def test_region_center_radius_truncates_like_the_reference():
    # mean = (5, 2.5) -> (5, 2); distances sqrt(29), sqrt(29), sqrt(34), sqrt(34); 1.5 * mean = 8.41 -> 8
    assert region_center_radius(np.array([[0, 0], [10, 0], [10, 5], [0, 5]])) == (5, 2, 8)


def test_box_filter_matches_a_direct_reflect101_definition():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (23, 31)).astype(np.uint8)
    k = 6
    idx_r = np.abs(np.arange(-k // 2, 23 + k))
    idx_r = np.where(idx_r > 22, 44 - idx_r, idx_r)
    idx_c = np.abs(np.arange(-k // 2, 31 + k))
    idx_c = np.where(idx_c > 30, 60 - idx_c, idx_c)
    pad = a[np.ix_(idx_r, idx_c)].astype(np.int64)           # reflect-101, offset k//2 before
    ref = np.array([[np.rint(pad[y:y + k, x:x + k].sum() / (k * k)) for x in range(31)] for y in range(23)])
    np.testing.assert_array_equal(box_filter_uint8(a, k), ref.astype(np.uint8))


def test_rsu_of_a_uniform_map_is_one_minus_exp_beta():
    prob = np.full((50, 60), 0.3)
    mask = polygon_mask(prob.shape, [np.array([[10, 10], [19, 10], [19, 19], [10, 19]])])
    assert rsu(prob, mask) == pytest.approx(1 - math.exp(-0.707), rel=1e-6)


def test_ras_and_rda_hand_computed():
    # one region centred at (0, 0), radius 10; one peak at distance 5 -> g = 0.5
    assert ras([(0, 0, 10)], [(3, 4)]) == pytest.approx((math.exp(1.5) - 1) / (math.exp(3) - 1))
    # a peak outside the radius counts as offset r -> g = 1 -> Ras = 1; Rda counts peaks inside only
    assert ras([(0, 0, 10)], [(30, 40)]) == pytest.approx(1.0)
    assert rda([(0, 0, 10)], [(30, 40)]) == 0.0
    assert rda([(0, 0, 10)], [(3, 4)]) == 1.0
    # two peaks inside: centre (0, 3), mean distance 3 -> m = 0.3
    assert rda([(0, 0, 10)], [(0, 0), (0, 6)]) == pytest.approx(0.5 * 0.7 + math.exp(-2.0))
    assert rmi(0.5, 0.2, 1.0) == pytest.approx(0.4 * 0.5 + 0.35 * 0.8 + 0.25)


def test_no_peak_quirk_ras_is_one_via_the_first_radius_only():
    regions = [(0, 0, 10), (50, 50, 3)]
    assert ras(regions, []) == 1.0                           # offsets = [r_1] only
    faint = np.full((300, 300), 0.2) + 0.2 * _blob((300, 300), 150, 150)   # max 0.4 < 0.5: no peak kept
    assert attention_peaks(faint) == []
    m = selo_metrics(faint, [RECT * 0.5, RECT * 0.5 + 100])
    assert m["Ras"] == 1.0 and m["Rda"] == 0.0
    zero = selo_metrics(np.zeros((300, 300)), [RECT * 0.5])
    assert zero["Rsu"] == 0.0 and zero["Rmi"] == 0.0


def test_blob_inside_vs_outside_moves_the_metrics_the_known_way():
    shape = (600, 600)
    inside = selo_metrics(_blob(shape, 300, 300), [RECT], return_details=True)
    outside = selo_metrics(_blob(shape, 500, 80), [RECT])
    # cv2.boxFilter's even 50 x 50 kernel spans x-25..x+24, so each of the 5 passes moves the
    # peak by +0.5 px: the detected centre is (302, 302), as with the reference
    assert inside["peaks"] == [(302, 302)] and inside["regions"] == [(300, 300, 212)]
    g = math.dist((300, 300), (302, 302)) / 212
    assert inside["Ras"] == pytest.approx((math.exp(3 * g) - 1) / (math.exp(3) - 1)) and inside["Ras"] < 0.01
    assert inside["Rda"] == 1.0
    assert outside["Ras"] == 1.0 and outside["Rda"] == 0.0
    assert inside["Rsu"] > 0.9 > 0.2 > outside["Rsu"]
    assert inside["Rmi"] > outside["Rmi"]
    assert inside["Rmi"] == pytest.approx(0.4 * inside["Rsu"] + 0.35 * (1 - inside["Ras"]) + 0.25)


def test_two_equal_blobs_in_one_region_give_discrete_attention():
    prob = _blob((600, 600), 220, 300, sigma=20) + _blob((600, 600), 380, 300, sigma=20)
    prob /= prob.max()
    m = selo_metrics(prob, [RECT], return_details=True)
    (x1, y1), (x2, y2) = sorted(m["peaks"])
    assert x1 < 260 and x2 > 340 and y1 == y2 and abs(y1 - 300) <= 3   # two separate peaks (smoothed inwards)
    half = math.dist((x1, y1), (x2, y2)) / 2
    assert m["Rda"] == pytest.approx(0.5 * (1 - half / 212) + math.exp(-2.0))


def test_jpeg_roundtrip_is_close_and_optional():
    prob = _blob((256, 256), 128, 128)
    back = jpeg_roundtrip(prob)
    assert np.abs(back - np.asarray(prob * 255).astype(np.uint8) / 255).max() <= 3 / 255
    a = selo_metrics(prob, [RECT * 0.5])
    b = selo_metrics(prob, [RECT * 0.5], jpeg_roundtrip=True)
    assert a["Rsu"] == pytest.approx(b["Rsu"], abs=0.02) and a["Ras"] == b["Ras"]


def test_selo_bad_input_is_named():
    with pytest.raises(ValueError, match="probmap"):
        selo_metrics(np.ones((3, 3, 3)), [RECT])
    with pytest.raises(ValueError, match=r"polygons\[0\]"):
        selo_metrics(np.ones((30, 30)), [np.array([1, 2, 3])])
    with pytest.raises(ValueError, match="probmap"):
        selo_metrics(np.full((30, 30), 2.0), [RECT])
