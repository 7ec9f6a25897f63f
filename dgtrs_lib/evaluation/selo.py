"""Semantic-localization (SeLo) heat maps from a CLIP model: tiling, batched encoding,
vectorised aggregation, min-max, uint8 and an exact fast median blur.

Protocol: SeLo v1 (SemanticLocalizationMetrics, Yuan et al., 2022, ``yuan2022selo``) as ported to
CLIP by GeoRSCLIP (Zhang et al. 2024, ``zhang2024rs5m``), the semantic-localization task of
DGTRS-CLIP (arXiv:2503.19311, ``chen2025dgtrs``):

1. Tiles at each scale s (reference 256/512/768) in two passes with offsets 0 and s/2; rows
   r0 = o, o+s, ... < H (columns alike), tile [r0, r0+s) x [c0, c0+s), snapped to [H-s, H) when
   r0+s >= H. The reference names each tile file ``r0_r1_c0_c1.jpg``, so a rectangle produced
   twice is encoded and counted **once**; we de-duplicate the same way. (When s > H the reference's
   negative start index wraps around in numpy slicing; we clip it to 0 -- AIR-SLT images are
   3k-10k px, so the reference never hits that case.)
2. Each tile is resized to the model input and encoded; similarity = cosine with the caption.
   The reference resizes to 256 (cv2 bicubic), writes a JPEG, and applies the CLIP preprocess
   (PIL bicubic to 224, centre crop). ``tile_mode="fast"`` (default) crops the image tensor and
   resizes each scale's tiles **in one batched torch bicubic (antialiased) call** straight to the
   model input, then normalises with the preprocess's mean/std; ``tile_mode="preprocess"`` runs
   the model's own PIL preprocess per tile (after a PIL resize to ``resize``) -- closer to the
   reference, slower. Tiles are encoded in batches either way.
3. heat = pixel-wise mean of the cosines of the covering tiles, computed with a 2-D difference
   array (``np.add.at`` on the four tile corners, then two cumulative sums) instead of the
   reference's per-tile slice additions and per-pixel Python division loop.
4. probmap = median_blur(uint8(255 * (heat - min) / (max - min)), k) with k = 251 in the
   reference. ``median_blur_uint8`` is exact (cv2.medianBlur semantics: odd square kernel,
   BORDER_REPLICATE) and fast. A tile-average heat map is constant on a grid of row/column
   bands (tile edges), so each window meets only a few constant cells and its median is their
   weighted median (weights = overlap areas); ``scipy.ndimage.median_filter`` instead selects
   among k^2 = 63001 values per pixel (timings: ``scripts/bench_eval.py``). Other images use the threshold decomposition median = levels[#{v : count(window <= v)
   < (k^2 + 1) / 2}] with one integral image per gray level present.

Scales for the CPU miniature: its encoder sees 64 px and our synthetic scenes are 320-512 px, so
the reference geometry is scaled by 1/4: scales (64, 128, 192) for (256, 512, 768), and the blur
kernel scales with the smallest scale, ``scaled_kernel(scales) = odd(round(251 * s_min / 256))``
(63 for the miniature). The SLM metric's two pixel-size constants (box and maximum filter) are
scaled by the same factor, as a named protocol (``dgtrs_lib.evaluation.slm.SLMProtocol.scaled``,
chosen by ``dgtrs_lib.evaluation.datasets.slm_protocol``); AIR-SLT keeps the reference constants.

Taught in: Semantic localization (SeLo) (notebooks/07-semantic-localization.ipynb)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dgtrs_lib.evaluation.encode import encode_texts
from dgtrs_lib.evaluation.slm import REFERENCE, SLMProtocol, mean_selo_metrics, selo_metrics
from dgtrs_lib.model.transforms import model_image_size

REFERENCE_SCALES = (256, 512, 768)
REFERENCE_KERNEL = 251
REFERENCE_RESIZE = 256
MINIATURE_SCALES = (64, 128, 192)


def scaled_kernel(scales: Sequence[int], reference_kernel: int = REFERENCE_KERNEL) -> int:
    """Median kernel for ``scales``: the reference 251 for a smallest scale of 256, scaled and odd."""
    k = int(round(reference_kernel * min(scales) / REFERENCE_SCALES[0]))
    return max(1, k if k % 2 else k + 1)


def tile_grid(height: int, width: int, scales: Sequence[int] = REFERENCE_SCALES) -> np.ndarray:
    """Unique tile rectangles ``[T, 4]`` = (r0, r1, c0, c1), in the reference's generation order."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    seen, out = set(), []
    for s in scales:
        s = int(s)
        if s <= 0:
            raise ValueError(f"scales must be positive integers, got {s}")
        for gap in (s, int(0.5 * s)):
            start = s - gap

            def spans(n, start=start, s=s):
                res = []
                for a in range(start, n, s):
                    b = a + s
                    if b >= n:
                        a, b = n - s, n
                    res.append((max(a, 0), b))
                return res

            for r0, r1 in spans(height):
                for c0, c1 in spans(width):
                    key = (r0, r1, c0, c1)
                    if key not in seen:
                        seen.add(key)
                        out.append(key)
    return np.asarray(out, dtype=np.int64).reshape(-1, 4)


def aggregate_tiles(tiles: np.ndarray, values, height: int, width: int) -> np.ndarray:
    """Pixel-wise mean of ``values[t]`` over the tiles covering each pixel (float64 [H, W])."""
    tiles = np.asarray(tiles, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(tiles) != len(values):
        raise ValueError(f"{len(tiles)} tiles but {len(values)} values")
    acc = np.zeros((2, height + 1, width + 1))
    r0, r1, c0, c1 = tiles.T
    for layer, v in ((0, values), (1, np.ones_like(values))):
        np.add.at(acc[layer], (r0, c0), v)
        np.add.at(acc[layer], (r0, c1), -v)
        np.add.at(acc[layer], (r1, c0), -v)
        np.add.at(acc[layer], (r1, c1), v)
    acc = acc.cumsum(1).cumsum(2)[:, :height, :width]
    if (acc[1] < 0.5).any():
        raise ValueError("some pixels are covered by no tile")
    return acc[0] / np.rint(acc[1])


# ----------------------------------------------------------------------------------------------
# Exact median blur on uint8
# ----------------------------------------------------------------------------------------------
def _bands(change: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.nonzero(change)[0] + 1])


def median_blur_uint8(img: np.ndarray, ksize: int) -> np.ndarray:
    """``cv2.medianBlur(img, ksize)`` for a 2-D uint8 image: exact, BORDER_REPLICATE.

    A map that is constant on a grid of row/column bands (a SeLo tile-average heat map) is
    compressed to its cells, and each window's median is the weighted median of the few cells it
    meets (weights = overlap areas). Any other image goes through the threshold decomposition
    median = levels[#{levels v : count(window <= v) < half}] with integral-image counts: exact
    but one pass per gray level (about 35 s for a 1300 x 1100 smooth map with k = 251 on 2 busy
    cores), so it is meant for small images; heat maps always take the band path.
    Checked against ``cv2.medianBlur`` (``tests/fixtures/slm_reference``).
    """
    a = np.asarray(img)
    if a.ndim != 2 or a.dtype != np.uint8:
        raise ValueError(f"median_blur_uint8: expected a 2-D uint8 image, got {a.dtype} {a.shape}")
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"median_blur_uint8: ksize must be odd and positive, got {ksize}")
    if ksize == 1:
        return a.copy()
    h, w = a.shape
    r = ksize // 2
    half = (ksize * ksize) // 2 + 1          # the median is the half-th smallest of k*k values
    if (a == a.flat[0]).all():
        return a.copy()
    rs = _bands(np.any(a[1:] != a[:-1], axis=1))
    cs = _bands(np.any(a[:, 1:] != a[:, :-1], axis=0))
    grid = _band_windows(rs, h, r), _band_windows(cs, w, r)
    if grid[0][0].shape[1] * grid[1][0].shape[1] <= 64:
        return _median_on_bands(a[np.ix_(rs, cs)], grid, half)
    return _median_by_levels(a, ksize, half)


def _band_windows(starts: np.ndarray, n: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """For every position y: the indices of the bands its window [y-r, y+r] meets ([n, K], padded
    with band 0) and the overlap lengths ([n, K], 0 for padding); outer bands extend to
    +-infinity (BORDER_REPLICATE)."""
    ends = np.append(starts[1:], n).astype(np.int64)
    lo = starts.astype(np.int64).copy()
    lo[0], ends[-1] = -(r + 1), n + r + 1
    y = np.arange(n)
    first = np.searchsorted(lo, y - r, side="right") - 1
    last = np.searchsorted(lo, y + r, side="right") - 1
    k = int((last - first).max()) + 1
    idx = first[:, None] + np.arange(k)[None]
    valid = idx <= last[:, None]
    idx = np.where(valid, idx, 0)
    ov = np.minimum(ends[idx], y[:, None] + r + 1) - np.maximum(lo[idx], y[:, None] - r)
    return idx, np.where(valid, np.clip(ov, 0, None), 0)


def _median_on_bands(cells: np.ndarray, grid, half: int, rows_per_chunk: int = 128) -> np.ndarray:
    """Weighted median over the (at most Ky x Kx) constant cells each window meets."""
    (iy, wy), (ix, wx) = grid
    h, w = len(iy), len(ix)
    out = np.empty((h, w), dtype=np.uint8)
    for s in range(0, h, rows_per_chunk):
        yi, yw = iy[s:s + rows_per_chunk], wy[s:s + rows_per_chunk]
        vals = cells[yi[:, None, :, None], ix[None, :, None, :]]                   # [R, W, Ky, Kx]
        wts = yw[:, None, :, None] * wx[None, :, None, :]
        vals = vals.reshape(len(yi), w, -1)
        wts = wts.reshape(len(yi), w, -1)
        order = np.argsort(vals, axis=-1, kind="stable")
        cum = np.cumsum(np.take_along_axis(wts, order, -1), axis=-1)
        pos = (cum < half).sum(-1, keepdims=True)
        out[s:s + rows_per_chunk] = np.take_along_axis(np.take_along_axis(vals, order, -1), pos, -1)[..., 0]
    return out


def _median_by_levels(a: np.ndarray, ksize: int, half: int) -> np.ndarray:
    """Threshold decomposition with integral images: one windowed count per gray level present."""
    r = ksize // 2
    levels = np.unique(a)
    t = torch.from_numpy(a.astype(np.int16))
    pad = F.pad(t[None, None].float(), (r, r, r, r), mode="replicate")[0, 0].to(torch.int16)
    rank = torch.zeros(a.shape, dtype=torch.int64)
    for v in levels[:-1]:
        c = torch.cumsum(torch.cumsum((pad <= int(v)).to(torch.int32), 0), 1)
        c = F.pad(c, (1, 0, 1, 0))
        count = c[ksize:, ksize:] - c[:-ksize, ksize:] - c[ksize:, :-ksize] + c[:-ksize, :-ksize]
        rank += count < half
    return levels[rank.numpy()]


def probmap_from_heat(heat: np.ndarray, ksize: int = REFERENCE_KERNEL) -> np.ndarray:
    """Reference post-processing: min-max, ``uint8(255 * p)`` (truncating) and median blur."""
    heat = np.asarray(heat, dtype=np.float64)
    span = heat.max() - heat.min()
    p = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    gray = np.uint8(255 * p)
    return median_blur_uint8(gray, ksize)


# ----------------------------------------------------------------------------------------------
# Heat maps from a model
# ----------------------------------------------------------------------------------------------
def _norm_stats(preprocess, model):
    for t in getattr(preprocess, "transforms", []):
        if type(t).__name__ == "Normalize":
            return tuple(t.mean), tuple(t.std)
    visual = getattr(model, "visual", None)
    mean = getattr(visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
    std = getattr(visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711)
    return tuple(mean), tuple(std)


def _to_array(image) -> np.ndarray:
    from PIL import Image

    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"image: expected a PIL image or an (H, W, 3) uint8 array, got {arr.dtype} {arr.shape}")
    return arr


@torch.no_grad()
def tile_features(model, image, tiles: np.ndarray, *, preprocess=None, tile_mode: str = "fast",
                  resize: int = REFERENCE_RESIZE, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """L2-normalised image features of every tile ``[T, E]`` (CPU float32), encoded in batches.
    They do not depend on the query, so all captions of one image share them."""
    from tqdm.auto import tqdm

    arr = _to_array(image)
    device = next(model.parameters()).device
    n_px = model_image_size(model)
    mean, std = _norm_stats(preprocess, model)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)
    img_t = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).contiguous()   # uint8 [3, H, W]
    out = None
    order = np.argsort((tiles[:, 1] - tiles[:, 0]) * 100000 + (tiles[:, 3] - tiles[:, 2]), kind="stable")
    bar = tqdm(total=len(tiles), desc="SeLo tiles", disable=not progress, leave=False)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        if tile_mode == "fast":
            groups = {}
            for i in idx:
                r0, r1, c0, c1 = tiles[i]
                groups.setdefault((r1 - r0, c1 - c0), []).append(i)
            batch, ids = [], []
            for members in groups.values():
                crops = torch.stack([img_t[:, tiles[i][0]:tiles[i][1], tiles[i][2]:tiles[i][3]] for i in members])
                x = F.interpolate(crops.to(device).float() / 255.0, size=(n_px, n_px), mode="bicubic",
                                  antialias=True, align_corners=False).clamp_(0, 1)
                batch.append(x)
                ids.extend(members)
            x = (torch.cat(batch) - mean_t) / std_t
        elif tile_mode == "preprocess":
            from PIL import Image

            if preprocess is None:
                raise ValueError("tile_mode='preprocess' needs the model's preprocess")
            ids = list(idx)
            x = torch.stack([preprocess(Image.fromarray(arr[r0:r1, c0:c1]).resize((resize, resize), Image.BICUBIC))
                             for r0, r1, c0, c1 in tiles[idx]]).to(device)
        else:
            raise ValueError(f"tile_mode must be 'fast' or 'preprocess', got {tile_mode!r}")
        feats = F.normalize(model.encode_image(x).float(), dim=-1).cpu()
        if out is None:
            out = torch.empty(len(tiles), feats.shape[1])
        out[torch.as_tensor(np.asarray(ids, dtype=np.int64))] = feats
        bar.update(len(idx))
    bar.close()
    return out


def tile_similarities(tile_feats: torch.Tensor, text_feature: torch.Tensor) -> np.ndarray:
    """Cosine of each tile with the (any-norm) text feature."""
    t = F.normalize(text_feature.reshape(-1).float().cpu(), dim=0)
    return (tile_feats.float() @ t).numpy().astype(np.float64)


def heatmap(model, image, caption: str | None = None, *, text_feature: torch.Tensor | None = None,
            tokenizer=None, preprocess=None, scales: Sequence[int] = REFERENCE_SCALES,
            tile_mode: str = "fast", batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """The raw SeLo heat map (pixel-wise mean tile cosine, float64 [H, W]) of ``caption``."""
    arr = _to_array(image)
    if text_feature is None:
        if caption is None:
            raise ValueError("heatmap: give a caption or a text_feature")
        text_feature = encode_texts(model, [caption], tokenizer=tokenizer)[0]
    tiles = tile_grid(arr.shape[0], arr.shape[1], scales)
    feats = tile_features(model, arr, tiles, preprocess=preprocess, tile_mode=tile_mode, batch_size=batch_size,
                          progress=progress)
    return aggregate_tiles(tiles, tile_similarities(feats, text_feature), arr.shape[0], arr.shape[1])


def selo_probmap(model, image, caption: str | None = None, *, scales: Sequence[int] = REFERENCE_SCALES,
                 ksize: int | None = None, **kwargs) -> np.ndarray:
    """uint8 probmap (min-max + median blur) of ``caption`` over ``image``; ``ksize`` defaults to
    ``scaled_kernel(scales)`` (251 for the reference scales)."""
    heat = heatmap(model, image, caption, scales=scales, **kwargs)
    return probmap_from_heat(heat, ksize or scaled_kernel(scales))


def overlay(image, probmap: np.ndarray, alpha: float = 0.3, cmap: str = "jet") -> np.ndarray:
    """The reference's addmap: (1 - alpha) * image + alpha * colormap(probmap), uint8 RGB."""
    import matplotlib

    arr = _to_array(image).astype(np.float64)
    colors = matplotlib.colormaps[cmap](np.asarray(probmap, dtype=np.float64) / 255.0)[..., :3] * 255.0
    return np.clip((1 - alpha) * arr + alpha * colors, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# A whole SeLo test set
# ----------------------------------------------------------------------------------------------
def load_image_array(path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (FileNotFoundError, OSError) as err:
        raise ValueError(f"{path}: SeLo image unreadable ({err})") from None


def evaluate_selo(model, samples, *, preprocess=None, tokenizer=None, scales: Sequence[int] = REFERENCE_SCALES,
                  ksize: int | None = None, tile_mode: str = "fast", batch_size: int = 64,
                  jpeg_roundtrip: bool = False, progress: bool = False,
                  protocol: SLMProtocol = REFERENCE) -> tuple[dict, list[dict]]:
    """SeLo over ``samples`` (``dgtrs_lib.data.common.SeloSample`` list): per case the probmap and
    Rsu/Ras/Rda/Rmi; tiles are encoded once per image and shared by its captions.

    Returns ``(mean metrics, per-case rows)``; the dataset score is the mean over cases (Rmi
    averaged per case, as the reference).
    """
    from tqdm.auto import tqdm

    samples = list(samples)
    if not samples:
        raise ValueError("evaluate_selo: no samples")
    ksize = ksize or scaled_kernel(scales)
    by_image: dict[str, list] = {}
    for s in samples:
        by_image.setdefault(str(s.image_path), []).append(s)
    text_feats = encode_texts(model, [s.caption for s in samples], tokenizer=tokenizer)
    text_of = {id(s): text_feats[i] for i, s in enumerate(samples)}
    rows = []
    for path, group in tqdm(by_image.items(), desc="SeLo images", disable=not progress):
        arr = load_image_array(path)
        tiles = tile_grid(arr.shape[0], arr.shape[1], scales)
        feats = tile_features(model, arr, tiles, preprocess=preprocess, tile_mode=tile_mode, batch_size=batch_size)
        for s in group:
            heat = aggregate_tiles(tiles, tile_similarities(feats, text_of[id(s)]), arr.shape[0], arr.shape[1])
            prob = probmap_from_heat(heat, ksize)
            m = selo_metrics(prob / 255.0, s.polygons, jpeg_roundtrip=jpeg_roundtrip, protocol=protocol)
            rows.append({"sample_id": s.sample_id, "image": path, "caption": s.caption,
                         "query_type": getattr(s, "query_type", None), **m})
    return mean_selo_metrics(rows), rows
