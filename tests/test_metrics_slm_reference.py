"""Our numpy/scipy SLM port against outputs of the original cv2 + skimage code
(``tests/fixtures/slm_reference``, see its README): masks, peaks, regions and the four indicators
must be identical, and so must the box filter and the median blur."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgtrs_lib.evaluation.selo import median_blur_uint8
from dgtrs_lib.evaluation.slm import box_filter_uint8, selo_metrics

FIX = Path(__file__).parent / "fixtures" / "slm_reference"
CASES = json.loads((FIX / "cases.json").read_text())["cases"]


def _png(name):
    return np.asarray(Image.open(FIX / name))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_selo_metrics_equal_the_reference_code(case):
    prob = _png(f"{case['name']}.png").astype(np.float64) / 255.0
    got = selo_metrics(prob, [np.array(p) for p in case["polygons"]], return_details=True)
    assert got["mask"].sum(1).astype(int).tolist() == case["mask_rows_sums"]
    assert [list(p) for p in got["peaks"]] == case["peaks"]
    assert [list(r) for r in got["regions"]] == case["regions"]
    for k in ("Rsu", "Ras", "Rda", "Rmi"):
        assert got[k] == pytest.approx(case["metrics"][k], abs=1e-12), k


def test_fixture_covers_the_quirks():
    names = {c["name"]: c for c in CASES}
    assert names["faint_no_peak"]["peaks"] == [] and names["faint_no_peak"]["metrics"]["Ras"] == 1.0
    assert len(names["two_peaks_one_region"]["peaks"]) == 2
    assert len(names["large_many_peaks"]["peaks"]) >= 3


def test_box_filter_and_median_equal_cv2():
    img = _png("noise.png")
    assert (box_filter_uint8(img, 50) == _png("noise_box50.png")).all()
    assert (box_filter_uint8(img, 7) == _png("noise_box7.png")).all()
    assert (median_blur_uint8(img, 31) == _png("noise_median31.png")).all()
    # a tile-average heat map (reference tiling of a 1100 x 900 image, random tile scores) blurred
    # with the reference's 251 kernel: the fast band path
    assert (median_blur_uint8(_png("tile_heat.png"), 251) == _png("tile_heat_median251.png")).all()
