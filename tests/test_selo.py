"""SeLo heat maps: reference tiling, vectorised aggregation, exact median blur, batched encoding."""
import numpy as np
import pytest
import torch
from scipy import ndimage

from dgtrs_lib.evaluation.selo import (
    MINIATURE_SCALES,
    aggregate_tiles,
    heatmap,
    median_blur_uint8,
    overlay,
    probmap_from_heat,
    scaled_kernel,
    selo_probmap,
    tile_features,
    tile_grid,
)
from dgtrs_lib.evaluation.slm import selo_metrics


def _reference_tiles(h, w, scales):
    """The reference's loops, keyed by file name (duplicates collapse)."""
    names = {}
    for step in scales:
        for gap in (step, int(0.5 * step)):
            for r in range(step - gap, h, step):
                r0, r1 = (r, r + step) if r + step < h else (h - step, h)
                for c in range(step - gap, w, step):
                    c0, c1 = (c, c + step) if c + step < w else (w - step, w)
                    names[f"{r0}_{r1}_{c0}_{c1}"] = (r0, r1, c0, c1)
    return set(names.values())


@pytest.mark.parametrize("h,w", [(600, 600), (2000, 3000), (384, 320)])
def test_tile_grid_matches_the_reference_loops(h, w):
    scales = (256, 512, 768) if h >= 768 else MINIATURE_SCALES
    tiles = tile_grid(h, w, scales)
    assert set(map(tuple, tiles.tolist())) == _reference_tiles(h, w, scales)
    assert len(tiles) == len(set(map(tuple, tiles.tolist())))


def test_tile_grid_600_by_hand():
    t = set(map(tuple, tile_grid(600, 600, (256,)).tolist()))
    # pass 1 (offset 0): 0, 256, 512 -> 344 (snapped to 600 - 256); pass 2 (offset 128): 128, 384 -> 344;
    # rows and columns share the pass's offset, and (344, 344) appears in both passes but counts once
    p1, p2 = (0, 256, 344), (128, 344)
    expected = {(a, a + 256, b, b + 256) for starts in (p1, p2) for a in starts for b in starts}
    assert t == expected and len(t) == 9 + 4 - 1


def test_aggregate_equals_the_reference_slice_loop():
    rng = np.random.default_rng(0)
    tiles = tile_grid(200, 150, (64, 128))
    vals = rng.normal(size=len(tiles))
    heat, num = np.zeros((200, 150)), np.zeros((200, 150))
    for (r0, r1, c0, c1), v in zip(tiles, vals):
        heat[r0:r1, c0:c1] += v
        num[r0:r1, c0:c1] += 1
    np.testing.assert_allclose(aggregate_tiles(tiles, vals, 200, 150), heat / num, atol=1e-12)


@pytest.mark.parametrize("shape,k", [((40, 37), 7), ((23, 50), 9), ((61, 45), 31), ((5, 5), 11)])
def test_median_blur_is_exact_on_arbitrary_images(shape, k):
    a = np.random.default_rng(k).integers(0, 256, shape).astype(np.uint8)
    np.testing.assert_array_equal(median_blur_uint8(a, k), ndimage.median_filter(a, size=k, mode="nearest"))


def test_median_blur_is_exact_on_tile_heat_maps():
    rng = np.random.default_rng(1)
    tiles = tile_grid(300, 220, MINIATURE_SCALES)
    heat = aggregate_tiles(tiles, rng.random(len(tiles)), 300, 220)
    gray = np.uint8(255 * (heat - heat.min()) / (heat.max() - heat.min()))
    for k in (31, 63):
        np.testing.assert_array_equal(median_blur_uint8(gray, k), ndimage.median_filter(gray, size=k, mode="nearest"))
    with pytest.raises(ValueError, match="odd"):
        median_blur_uint8(gray, 4)


def test_scaled_kernel():
    assert scaled_kernel((256, 512, 768)) == 251
    assert scaled_kernel(MINIATURE_SCALES) == 63


class ColourModel(torch.nn.Module):
    """A transparent 'image encoder': the mean normalised colour of the input (3-D features)."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.visual = type("V", (), {"image_size": 32})()

    def encode_image(self, x):
        return x.mean(dim=(2, 3)) + self.dummy


def _scene():
    rng = np.random.default_rng(0)
    img = rng.integers(90, 160, size=(320, 384, 3)).astype(np.uint8)
    img[200:290, 40:130] = (230, 20, 20)                    # a red field, lower left
    return img, [np.array([[40.0, 200], [129, 200], [129, 289], [40, 289]])]


def test_heatmap_localises_a_query_end_to_end():
    img, polys = _scene()
    model = ColourModel()
    red = torch.tensor([[[230, 20, 20]]], dtype=torch.uint8).expand(64, 64, 3).numpy()
    text = tile_features(model, red, np.array([[0, 64, 0, 64]]))[0]          # "the red thing"
    heat = heatmap(model, img, text_feature=text, scales=MINIATURE_SCALES, batch_size=7)
    assert heat.shape == img.shape[:2]
    assert heat[245, 85] > heat[60, 300]
    probmap = selo_probmap(model, img, text_feature=text, scales=MINIATURE_SCALES)
    assert probmap.dtype == np.uint8 and probmap.max() > 200   # the blur may shave the top level
    good = selo_metrics(probmap / 255.0, polys)
    wrong = selo_metrics(probmap / 255.0, [np.array([[250.0, 20], [360, 20], [360, 120], [250, 120]])])
    assert good["Rsu"] > wrong["Rsu"] and good["Ras"] < wrong["Ras"] and good["Rmi"] > wrong["Rmi"]
    assert overlay(img, probmap).shape == img.shape


def test_batched_fast_tiles_agree_with_per_tile_preprocess():
    from dgtrs_lib.model.transforms import make_preprocess

    img, _ = _scene()
    model = ColourModel()
    tiles = tile_grid(*img.shape[:2], MINIATURE_SCALES)
    fast = tile_features(model, img, tiles, batch_size=5)
    slow = tile_features(model, img, tiles, preprocess=make_preprocess(32), tile_mode="preprocess", resize=64)
    cos = (fast * slow).sum(1)
    assert cos.min() > 0.99                                   # same tiles, resampling differs slightly


def test_probmap_from_constant_heat_is_zero():
    assert probmap_from_heat(np.ones((50, 40)), 7).max() == 0
