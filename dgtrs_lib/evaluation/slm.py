"""Semantic-localization metrics: the SLM indicators Rsu / Ras / Rda / Rmi, reference-exact.

SemanticLocalizationMetrics (Yuan et al., TGRS 2022, ``yuan2022selo``): the official ``SLM.py``
(copied into GeoRSCLIP's ``inference_tool.py``), re-implemented with numpy + scipy instead of
cv2 / skimage; DGTRS-CLIP (arXiv:2503.19311, ``chen2025dgtrs``) reports these four numbers on AIR-SLT.

- constants: beta_su = 0.707, eps = 1e-7; radius expand factor 1.5, 5 box-filter passes of
  50 x 50, maximum filter of size 1000, peaks kept where P >= 0.5, scale beta_as = 3;
  eta_da = 0.5; Rmi weights (0.4, 0.35, 0.25);
- region centre = int() of the vertex mean, radius = int(1.5 x mean vertex distance);
- the no-peak quirk: with no attention peak at all, the offsets list is the single radius of
  the *first* region, so Ras = 1 whatever the number of regions;
- ``cv2.boxFilter`` (normalised, BORDER_REFLECT_101, anchor at the kernel centre) is an exact
  integer box sum over a reflect-101 padding with the same rounding (``rint(sum * 1/2500)``);
  ``skimage.measure.label(connectivity=2)`` is ``scipy.ndimage.label`` with a 3 x 3 structure;
  centroids are the mean pixel (row, col), truncated with int();
- ``cv2.fillPoly`` (int32 vertices, 8-connected, no shift) is re-implemented with OpenCV's
  own rules -- Bresenham outlines, then an even-odd fixed-point scanline fill over *all*
  polygons at once (overlapping polygons cancel, as in cv2); see ``polygon_mask``;
- the whole chain (mask, peaks, regions, Rsu/Ras/Rda/Rmi) is checked against the original
  cv2 + skimage code on stored cases (``tests/fixtures/slm_reference``, ``tests/test_metrics_slm_reference.py``).

``selo_metrics`` works on the float map directly; ``jpeg_roundtrip=True`` reproduces the
reference, which writes the uint8 probmap as a JPEG (cv2 quality 95) and reads it back as
gray / 255 -- we use Pillow at quality 95, so values may differ from a cv2-written file by
about one gray level where the two libjpeg builds round differently. The heat maps these metrics
read come from ``dgtrs_lib.evaluation.selo``.

Taught in: Semantic localization (SeLo) (notebooks/07-semantic-localization.ipynb)
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

# SLM constants (SLM.py, ``SLM.__init__``)
RSU_BETA = 0.707
RSU_EPS = 1e-7
RAS_EXPAND = 1.5
RAS_FILTER_TIMES = 5
RAS_BOX = 50
RAS_MAX_FILTER = 1000
RAS_SCALE_BETA = 3.0
RAS_MIN_PEAK = 0.5
RDA_ETA = 0.5
RMI_WEIGHTS = (0.4, 0.35, 0.25)


@dataclass(frozen=True)
class SLMProtocol:
    """The pixel-size constants of the attention-peak search, as one named protocol.

    ``REFERENCE`` is SLM.py's (box 50 x 50, maximum filter 1000), reference-exact and the default:
    it was set for AIR-SLT's scenes, which the reference tiles at 256/512/768 px. On scenes drawn at
    another pixel scale the same constants mean something else -- a 1000 px maximum filter on a
    384 px scene leaves exactly one peak, so Rda can only be 0 or 1 -- so :meth:`scaled` multiplies
    both pixel sizes by the scenes' scale relative to AIR-SLT (e.g. 0.25 for the miniature's
    64/128/192 px tiles), under a name that results files record. The dimensionless constants
    (betas, eta, weights, the 0.5 peak threshold, 5 passes) are never changed."""

    name: str = "slm-reference"
    box: int = RAS_BOX
    max_filter: int = RAS_MAX_FILTER

    @classmethod
    def scaled(cls, factor: float) -> "SLMProtocol":
        if not 0 < factor <= 1:
            raise ValueError(f"SLMProtocol.scaled: factor must be in (0, 1], got {factor}")
        if factor == 1:
            return REFERENCE
        return cls(name=f"slm-scaled-{factor:g}", box=max(1, round(RAS_BOX * factor)),
                   max_filter=max(1, round(RAS_MAX_FILTER * factor)))


REFERENCE = SLMProtocol()


def _as_polygons(polygons) -> list[np.ndarray]:
    if isinstance(polygons, np.ndarray) and polygons.ndim == 2:
        polygons = [polygons]
    out = []
    for i, p in enumerate(polygons):
        arr = np.asarray(p, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
            raise ValueError(f"polygons[{i}]: expected an (N, 2) array of (x, y) vertices, got shape {arr.shape}")
        out.append(arr)
    if not out:
        raise ValueError("polygons: expected at least one polygon")
    return out


def _line_pixels(x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of OpenCV's 8-connected line (``cv::LineIterator``, left to right): Bresenham
    with err = a - 2b, a minor step whenever err < 0; closed form k_j = ceil((2 b j - a) / 2a)."""
    if x1 < x0:
        x0, y0, x1, y1 = x1, y1, x0, y0
    dx, dy = x1 - x0, y1 - y0
    sy = -1 if dy < 0 else 1
    dy = abs(dy)
    a, b = max(dx, dy), min(dx, dy)
    j = np.arange(a + 1, dtype=np.int64)
    k = np.zeros_like(j) if a == 0 else -((a - 2 * b * j) // (2 * a))   # ceil((2bj - a) / 2a)
    k[0] = 0
    if dy > dx:                                                         # steep: y is the major axis
        return x0 + k, y0 + sy * j
    return x0 + j, y0 + sy * k


def _clip_line(w: int, h: int, x1: int, y1: int, x2: int, y2: int):
    """OpenCV's ``clipLine`` to the image rectangle (Cohen-Sutherland, truncating divisions)."""
    right, bottom = w - 1, h - 1
    c1 = (x1 < 0) + (x1 > right) * 2 + (y1 < 0) * 4 + (y1 > bottom) * 8
    c2 = (x2 < 0) + (x2 > right) * 2 + (y2 < 0) * 4 + (y2 > bottom) * 8
    if (c1 & c2) == 0 and (c1 | c2) != 0:
        if c1 & 12:
            a = 0 if c1 < 8 else bottom
            x1 += int((a - y1) * (x2 - x1) / (y2 - y1))
            y1, c1 = a, (x1 < 0) + (x1 > right) * 2
        if c2 & 12:
            a = 0 if c2 < 8 else bottom
            x2 += int((a - y2) * (x2 - x1) / (y2 - y1))
            y2, c2 = a, (x2 < 0) + (x2 > right) * 2
        if (c1 & c2) == 0 and (c1 | c2) != 0:
            if c1:
                a = 0 if c1 == 1 else right
                y1 += int((a - x1) * (y2 - y1) / (x2 - x1))
                x1, c1 = a, 0
            if c2:
                a = 0 if c2 == 1 else right
                y2 += int((a - x2) * (y2 - y1) / (x2 - x1))
                x2, c2 = a, 0
    return (c1 | c2) == 0, x1, y1, x2, y2


def polygon_mask(shape: tuple[int, int], polygons) -> np.ndarray:
    """Filled polygons as a float 0/1 mask of ``shape`` (H, W), as ``cv2.fillPoly(mask,
    [int32 polygons], 1)`` (8-connected, no shift): vertices truncated to int32; every polygon's
    outline drawn with OpenCV's clipped Bresenham line; then an even-odd scanline fill of all
    edges together (overlapping polygons cancel, as in cv2): a non-horizontal edge is active on
    rows y0 <= y < y1, and each pair of crossings x_a <= x_b fills columns ceil(x_a - 1/2) ..
    ceil(x_b - 1/2) (exact integer arithmetic).

    Checked pixel for pixel against ``cv2.fillPoly`` (opencv-python-headless, cv2 5.0.0): identical
    on random self-intersecting polygons inside the image; polygons that cross the image border
    can still differ in a few pixels (0.27 % of the filled area over 30 random crossing polygons), which
    AIR-SLT never hits (its polygons lie inside the images)."""
    h, w = shape
    mask = np.zeros((h, w), dtype=np.float64)
    polys = [np.asarray(p, dtype=np.float64).astype(np.int32).astype(np.int64) for p in _as_polygons(polygons)]
    edges = []
    for p in polys:
        edges.extend(np.concatenate([np.roll(p, 1, axis=0), p], axis=1).tolist())   # x0 y0 x1 y1
    e = np.array(edges, dtype=np.int64).reshape(-1, 4)
    e = e[e[:, 1] != e[:, 3]]                                         # horizontal edges are only drawn
    if len(e):
        top_first = e[:, 1] < e[:, 3]
        x0 = np.where(top_first, e[:, 0], e[:, 2])
        y0 = np.where(top_first, e[:, 1], e[:, 3])
        y1 = np.where(top_first, e[:, 3], e[:, 1])
        num = np.where(top_first, e[:, 2], e[:, 0]) - x0
        den = y1 - y0
        lo, hi = int(max(0, y0.min())), int(min(h, y1.max()))
        if lo < hi:
            rows = np.arange(lo, hi, dtype=np.int64)[:, None]
            active = (rows >= y0[None]) & (rows < y1[None])
            # column = ceil(x - 1/2) with x = x0 + (y - y0) * num / den, in integers
            p_ = 2 * x0[None] * den[None] + 2 * (rows - y0[None]) * num[None] - den[None]
            col = -((-p_) // (2 * den[None]))
            key = np.where(active, x0[None] + (rows - y0[None]) * num[None] / den[None], np.inf)
            order = np.argsort(key, axis=1, kind="stable")
            col = np.take_along_axis(col, order, 1)
            n_act = active.sum(1)
            diff = np.zeros((hi - lo, w + 1), dtype=np.int64)
            for j in range(0, col.shape[1] - 1, 2):
                ok = np.nonzero(n_act > j + 1)[0]
                if not len(ok):
                    break
                a, b = col[ok, j], col[ok, j + 1]
                keep = (a < w) & (b >= 0) & (a <= b)
                r, a, b = ok[keep], np.clip(a[keep], 0, w), np.clip(b[keep], -1, w - 1) + 1
                np.add.at(diff, (r, a), 1)
                np.add.at(diff, (r, b), -1)
            mask[lo:hi] = np.cumsum(diff, axis=1)[:, :w] > 0
    for p in polys:                                                   # outlines
        for (xa, ya), (xb, yb) in zip(np.roll(p, 1, axis=0).tolist(), p.tolist()):
            ok, xa, ya, xb, yb = _clip_line(w, h, xa, ya, xb, yb)
            if ok:
                xs_, ys_ = _line_pixels(xa, ya, xb, yb)
                inside = (xs_ >= 0) & (xs_ < w) & (ys_ >= 0) & (ys_ < h)
                mask[ys_[inside], xs_[inside]] = 1.0
    return mask


def region_center_radius(polygon) -> tuple[int, int, int]:
    """(x, y, r) of one GT region: int() of the vertex mean, r = int(1.5 x mean vertex distance)."""
    p = np.asarray(polygon, dtype=np.float64)
    cx = int(sum(p[:, 0].tolist()) / len(p))
    cy = int(sum(p[:, 1].tolist()) / len(p))
    r = int(np.mean(np.linalg.norm(p - np.array([cx, cy], dtype=np.float64), axis=1)) * RAS_EXPAND)
    return cx, cy, r


def box_filter_uint8(img: np.ndarray, size: int = RAS_BOX) -> np.ndarray:
    """``cv2.boxFilter(img, -1, (size, size))`` on uint8: normalised box sum, anchor at the kernel
    centre (rows y - size//2 .. y + (size-1)//2), BORDER_REFLECT_101 (numpy 'reflect' padding)."""
    a = np.asarray(img)
    before, after = size // 2, (size - 1) // 2
    pad = np.pad(a.astype(np.int64), ((before, after), (before, after)), mode="reflect")
    c = np.cumsum(pad, axis=0)
    c = np.concatenate([np.zeros((1, c.shape[1]), np.int64), c], axis=0)
    rows = c[size:] - c[:-size]
    c = np.cumsum(rows, axis=1)
    c = np.concatenate([np.zeros((c.shape[0], 1), np.int64), c], axis=1)
    sums = c[:, size:] - c[:, :-size]
    return np.clip(np.rint(sums * (1.0 / (size * size))), 0, 255).astype(np.uint8)


def attention_peaks(prob: np.ndarray, *, box: int = RAS_BOX, times: int = RAS_FILTER_TIMES,
                    max_size: int = RAS_MAX_FILTER, min_peak: float = RAS_MIN_PEAK) -> list[tuple[int, int]]:
    """Predicted attention centres (x, y), sorted by ``prob`` at the centre (descending, stable),
    keeping those with prob >= ``min_peak`` (SLM ``_get_prob_center_in_gray``)."""
    from scipy import ndimage

    gray = np.asarray(prob * 255.0).astype(np.uint8)
    for _ in range(times):
        gray = box_filter_uint8(gray, box)
    mx = ndimage.maximum_filter(gray, size=max_size)
    binary = (np.where(mx == gray, gray, 0) > 0)
    labels, n = ndimage.label(binary, structure=np.ones((3, 3), dtype=int))
    if n == 0:
        return []
    cents = ndimage.center_of_mass(binary, labels, index=np.arange(1, n + 1))
    centers = [(int(c[1]), int(c[0])) for c in cents]
    centers.sort(key=lambda c: prob[c[1], c[0]], reverse=True)
    return [c for c in centers if prob[c[1], c[0]] >= min_peak]


def rsu(prob: np.ndarray, mask: np.ndarray) -> float:
    """Salient-area usefulness (higher is better)."""
    inside = float(np.sum(prob * mask))
    total = float(np.sum(prob))
    h, w = mask.shape
    area = float(np.sum(mask))
    if area == 0:
        raise ValueError("polygons: the filled ground-truth mask is empty inside the image")
    left = inside / (total - inside + RSU_EPS)
    right = (h * w - area) / area
    return float(1.0 - np.exp(-RSU_BETA * left * right))


def ras(regions: list[tuple[int, int, int]], peaks: list[tuple[int, int]]) -> float:
    """Attention shift (lower is better), with the reference's no-peak quirk."""
    if len(peaks) == 0:
        offsets = [regions[0][2]]                    # SLM: a single offset, the first radius
    else:
        offsets = []
        for x, y, r in regions:
            d = [float(np.linalg.norm(np.array([x, y], dtype=np.float64) - np.array(p))) for p in peaks]
            d = [v for v in d if v <= r]
            offsets.append(np.mean(d) if d else r)
    g = float(np.mean([off / reg[2] for off, reg in zip(offsets, regions)]))
    return float((np.exp(RAS_SCALE_BETA * g) - 1) / (np.exp(RAS_SCALE_BETA) - 1))


def rda(regions: list[tuple[int, int, int]], peaks: list[tuple[int, int]]) -> float:
    """Attention discreteness (higher is better)."""
    vals = []
    for x, y, r in regions:
        pts = [p for p in peaks if np.linalg.norm(np.array([x, y], dtype=np.float64) - np.array(p)) <= r]
        n = len(pts)
        if n <= 1:
            vals.append(float(n))
            continue
        arr = np.asarray(pts, dtype=np.float64)
        c = arr.mean(0)
        m = float(np.mean(np.linalg.norm(arr - c, axis=1))) / r
        vals.append(0.5 * (1 - m) + math.exp(-RDA_ETA * (n + 2)))
    return float(np.mean(vals))


def rmi(rsu_v: float, ras_v: float, rda_v: float) -> float:
    w_su, w_as, w_da = RMI_WEIGHTS
    return float(w_su * rsu_v + w_as * (1 - ras_v) + w_da * rda_v)


def jpeg_roundtrip(prob: np.ndarray, quality: int = 95) -> np.ndarray:
    """uint8(255 * prob) written as a grayscale JPEG (Pillow, ``quality``) and read back / 255."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(prob * 255.0).astype(np.uint8), mode="L").save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"), dtype=np.float64) / 255.0


def selo_metrics(probmap, polygons, *, jpeg_roundtrip: bool = False, return_details: bool = False,
                 protocol: SLMProtocol = REFERENCE) -> dict:
    """Rsu, Ras, Rda and Rmi of one sample (SLM definitions, see the module docstring).

    ``probmap``: (H, W) float array in [0, 1] (a uint8 array is read as gray / 255).
    ``polygons``: list of (N, 2) arrays of (x=column, y=row) vertices in pixels (AIR-SLT anno.json).
    ``jpeg_roundtrip``: pass the map through the reference's JPEG write/read first.
    ``return_details``: also return the mask, the peaks and the regions (for plots).
    ``protocol``: the peak-search pixel sizes (:class:`SLMProtocol`; default the reference's).
    """
    prob = np.asarray(probmap)
    if prob.ndim != 2:
        raise ValueError(f"probmap: expected a 2-D (H, W) array, got shape {prob.shape}")
    prob = prob / 255.0 if prob.dtype == np.uint8 else prob.astype(np.float64)
    if not np.isfinite(prob).all() or prob.min() < 0 or prob.max() > 1:
        raise ValueError("probmap: expected finite values in [0, 1]")
    if jpeg_roundtrip:
        prob = globals()["jpeg_roundtrip"](prob)
    polys = _as_polygons(polygons)
    mask = polygon_mask(prob.shape, polys)
    regions = [region_center_radius(p) for p in polys]
    for i, (_, _, r) in enumerate(regions):
        if r <= 0:
            raise ValueError(f"polygons[{i}]: the region radius int(1.5 x mean vertex distance) is 0; "
                             "the polygon is too small for Ras/Rda")
    peaks = attention_peaks(prob, box=protocol.box, max_size=protocol.max_filter)
    su, as_, da = rsu(prob, mask), ras(regions, peaks), rda(regions, peaks)
    out = {"Rsu": su, "Ras": as_, "Rda": da, "Rmi": rmi(su, as_, da)}
    if return_details:
        out.update(mask=mask, peaks=peaks, regions=regions)
    return out


def mean_selo_metrics(per_sample: Iterable[dict]) -> dict[str, float]:
    """Dataset score: the arithmetic mean of each indicator over samples (Rmi averaged per sample)."""
    rows = list(per_sample)
    return {k: float(np.mean([r[k] for r in rows])) for k in ("Rsu", "Ras", "Rda", "Rmi")}
