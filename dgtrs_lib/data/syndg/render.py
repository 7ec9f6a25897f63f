"""SynDG-RS rendering: textured class backgrounds at any size, and objects placed without overlap.

* :func:`class_layout` draws a class's background layout (runway orientation, water side, river
  direction, field strips...), which is part of the ground truth;
* :func:`render_background` paints a ``h x w`` background of a class at a fixed pixel scale (so a
  64 px training image and a region of a large SeLo scene look alike), kept away from the palette;
* :func:`place_group` finds non-overlapping boxes for a group of objects, and
  :func:`draw_objects` draws them as filled shapes in exact palette colours with a one-pixel
  shadow, so each object is one connected component of its colour.

Every random draw comes from the generator passed in, in a fixed order: the output is a pure
function of the caller's seed. Design: :mod:`dgtrs_lib.data.syndg`.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from dgtrs_lib.data.syndg.vocabulary import ALL_CLASSES, IMAGE_SIZE, OBJECT_TYPES, PALETTE, SHADOW


def _smooth_noise(rng, h, w, cell=8):
    """Low-frequency noise in [-1, 1]: a coarse grid upsampled bilinearly."""
    gh, gw = h // cell + 2, w // cell + 2
    coarse = rng.uniform(-1, 1, size=(gh, gw))
    ys = np.linspace(0, gh - 1.001, h)
    xs = np.linspace(0, gw - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = coarse[y0][:, x0]
    b = coarse[y0][:, x0 + 1]
    c = coarse[y0 + 1][:, x0]
    d = coarse[y0 + 1][:, x0 + 1]
    return a * (1 - fy) * (1 - fx) + b * (1 - fy) * fx + c * fy * (1 - fx) + d * fy * fx


def _texture(rng, h, w, rgb, amp=14.0, grain=6.0, cell=8):
    base = np.asarray(rgb, dtype=np.float32)[None, None, :]
    low = _smooth_noise(rng, h, w, cell)[..., None] * amp
    fine = rng.normal(0, grain, size=(h, w, 1))
    return base + low + fine


def _paint(img, mask, rgb, rng, amp=10.0, grain=5.0):
    tex = _texture(rng, img.shape[0], img.shape[1], rgb, amp, grain)
    img[mask] = tex[mask]


def _keep_off_palette(img: np.ndarray, margin: int = 60) -> np.ndarray:
    """Darken any background pixel within ``margin`` (max abs diff) of a palette colour."""
    for rgb in PALETTE.values():
        close = np.abs(img.astype(np.int16) - np.asarray(rgb, np.int16)).max(axis=-1) < margin
        if close.any():
            img[close] = (img[close] * 0.6).astype(np.uint8)
    return img


def class_layout(cls: str, rng) -> dict:
    """Class-specific background layout (part of the ground truth and of the long description)."""
    if cls == "airport":
        return {"runway": str(rng.choice(["horizontal", "vertical"])), "runway_at": float(rng.uniform(0.3, 0.7))}
    if cls in ("harbor", "beach"):
        return {"water_side": str(rng.choice(["left", "right", "top", "bottom"])),
                "water_frac": float(rng.uniform(0.3, 0.45))}
    if cls in ("river", "bridge"):
        return {"flow": str(rng.choice(["horizontal", "vertical"])), "phase": float(rng.uniform(0, 6.28)),
                "crossing_at": float(rng.uniform(0.3, 0.7))}
    if cls == "lake":
        return {"centre": [float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.35, 0.65))],
                "radius": float(rng.uniform(0.22, 0.34))}
    if cls in ("farmland", "orchard"):
        return {"stripes": str(rng.choice(["horizontal", "vertical"])), "field_px": int(rng.integers(8, 14))}
    if cls == "dense residential":
        return {"road_spacing": int(rng.integers(13, 17)), "offset": int(rng.integers(0, 10))}
    if cls == "sparse residential":
        return {"road_spacing": int(rng.integers(28, 36)), "offset": int(rng.integers(0, 10))}
    if cls in ("parking lot", "railway station", "highway"):
        return {"rows": str(rng.choice(["horizontal", "vertical"]))}
    if cls in ("stadium", "playground"):
        return {"field": str(rng.choice(["horizontal", "vertical"]))}
    if cls in ("industrial area", "commercial area"):
        return {"blocks": int(rng.integers(3, 6))}
    if cls in ("desert", "golf course", "solar farm", "snowfield"):
        return {"orientation": str(rng.choice(["horizontal", "vertical"]))}
    if cls == "bare land":
        return {"patches": int(rng.integers(2, 5))}
    if cls in ("forest", "sparse forest", "meadow"):
        return {"density": "dense" if cls == "forest" else "patchy"}
    raise ValueError(f"unknown SynDG-RS class {cls!r}; expected one of {ALL_CLASSES}")


def _water_band(img, rng, h, w, yy, xx, layout, half_width=7.0):
    """A meandering river band (used by river and bridge); returns the band mask."""
    horiz = layout["flow"] == "horizontal"
    along, across = (xx, yy) if horiz else (yy, xx)
    centre = (h if horiz else w) / 2 + 9 * np.sin(along / 11.0 + layout["phase"])
    band = np.abs(across - centre) < half_width
    _paint(img, band, (40, 85, 120), rng, amp=6, grain=3)
    return band


def render_background(cls: str, h: int, w: int, layout: dict, rng) -> np.ndarray:
    """A ``h x w`` uint8 RGB background of class ``cls`` (fixed pixel scale, any size)."""
    yy, xx = np.mgrid[0:h, 0:w]
    grass = (95, 135, 70)
    if cls == "airport":
        img = _texture(rng, h, w, grass, amp=10)
        horiz = layout["runway"] == "horizontal"
        c = layout["runway_at"] * (h if horiz else w)
        coord = yy if horiz else xx
        _paint(img, np.abs(coord - c) < 6, (70, 70, 75), rng, amp=4, grain=3)
        _paint(img, np.abs(coord - c - (12 if c < (h if horiz else w) / 2 else -12)) < 2, (120, 120, 118), rng, 3, 2)
    elif cls in ("harbor", "beach"):
        land = (150, 148, 140) if cls == "harbor" else (205, 185, 140)
        img = _texture(rng, h, w, land, amp=8)
        side, frac = layout["water_side"], layout["water_frac"]
        wave = 2.0 * np.sin((xx if side in ("top", "bottom") else yy) / 5.0)
        d = {"left": xx, "right": w - 1 - xx, "top": yy, "bottom": h - 1 - yy}[side]
        extent = frac * (w if side in ("left", "right") else h)
        if cls == "beach":
            extent = extent + wave
        _paint(img, d < extent, (35, 75, 125), rng, amp=10, grain=4)
        if cls == "harbor":  # piers reaching into the water every 20 px
            along = yy if side in ("left", "right") else xx
            pier = (along % 20 < 3) & (d < extent) & (d > extent * 0.35)
            _paint(img, pier, (150, 148, 140), rng, 3, 2)
        else:  # a strip of dune vegetation on the far side
            _paint(img, d > (w if side in ("left", "right") else h) - 8, (105, 130, 80), rng)
    elif cls == "river":
        img = _texture(rng, h, w, (100, 140, 72), amp=12)
        _water_band(img, rng, h, w, yy, xx, layout)
    elif cls == "bridge":  # a narrower river crossed by a road
        img = _texture(rng, h, w, (100, 140, 72), amp=12)
        _water_band(img, rng, h, w, yy, xx, layout, half_width=6.0)
        horiz = layout["flow"] == "horizontal"
        c = layout["crossing_at"] * (w if horiz else h)
        _paint(img, np.abs((xx if horiz else yy) - c) < 4, (110, 108, 104), rng, 3, 2)
    elif cls == "lake":
        img = _texture(rng, h, w, (100, 140, 72), amp=12)
        cy, cx = layout["centre"][0] * h, layout["centre"][1] * w
        r = layout["radius"] * min(h, w, IMAGE_SIZE * 2)
        wobble = 0.18 * _smooth_noise(rng, h, w, 16)
        _paint(img, np.hypot(yy - cy, xx - cx) / r + wobble < 1.0, (38, 80, 122), rng, amp=6, grain=3)
    elif cls == "farmland":
        img = np.zeros((h, w, 3), np.float32)
        coord = yy if layout["stripes"] == "horizontal" else xx
        shades = [(120, 160, 70), (160, 140, 90), (90, 130, 60), (175, 165, 110), (110, 100, 70)]
        band = coord // layout["field_px"]
        for k in range(int(band.max()) + 1):
            _paint(img, band == k, shades[int(rng.integers(len(shades)))], rng, amp=5, grain=4)
    elif cls == "orchard":  # rows of round tree crowns on light soil
        img = _texture(rng, h, w, (150, 140, 100), amp=6)
        along, across = (xx, yy) if layout["stripes"] == "horizontal" else (yy, xx)
        sp = layout["field_px"] // 2 + 4
        crowns = ((along % sp) - sp / 2) ** 2 + ((across % sp) - sp / 2) ** 2 < (sp / 3) ** 2
        _paint(img, crowns, (50, 100, 45), rng, amp=6, grain=4)
    elif cls in ("forest", "sparse forest"):
        if cls == "forest":
            img = _texture(rng, h, w, (40, 85, 40), amp=18, grain=10, cell=4)
        else:  # light ground with tree clumps
            img = _texture(rng, h, w, (120, 140, 85), amp=10)
            _paint(img, _smooth_noise(rng, h, w, 6) > 0.15, (45, 90, 42), rng, amp=14, grain=8)
    elif cls == "meadow":
        img = _texture(rng, h, w, (125, 160, 80), amp=9, grain=4, cell=16)
    elif cls in ("dense residential", "sparse residential"):
        img = _texture(rng, h, w, (130, 150, 105), amp=10)
        s, o = layout["road_spacing"], layout["offset"]
        _paint(img, ((yy + o) % s < 3) | ((xx + o) % s < 3), (105, 105, 105), rng, 4, 3)
        if cls == "dense residential":  # roofs fill the blocks
            _paint(img, ((yy + o) % s > 5) & ((xx + o) % s > 5) & ((yy + o) % s < s - 2) & ((xx + o) % s < s - 2),
                   (150, 110, 95), rng, 5, 4)
    elif cls in ("industrial area", "commercial area"):
        base, roof = ((140, 138, 132), (100, 100, 98)) if cls == "industrial area" else ((120, 118, 125), (165, 150, 130))
        img = _texture(rng, h, w, base, amp=8)
        for _ in range(layout["blocks"] * max(1, (h * w) // 4096)):
            y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            lo, hi = (8, 20) if cls == "industrial area" else (5, 11)
            m = (yy >= y0) & (yy < y0 + int(rng.integers(lo, hi))) & (xx >= x0) & (xx < x0 + int(rng.integers(lo, hi)))
            _paint(img, m, roof, rng, 4, 3)
    elif cls == "parking lot":
        img = _texture(rng, h, w, (80, 80, 84), amp=6, grain=4)
        coord_a, coord_b = (yy, xx) if layout["rows"] == "horizontal" else (xx, yy)
        _paint(img, (coord_a % 16 == 0) | ((coord_b % 8 == 0) & (coord_a % 16 < 5)), (165, 165, 160), rng, 2, 2)
    elif cls == "railway station":  # gravel with many parallel tracks and a platform
        img = _texture(rng, h, w, (125, 115, 105), amp=6, grain=5)
        coord = yy if layout["rows"] == "horizontal" else xx
        _paint(img, (coord % 7 == 0) | (coord % 7 == 3), (70, 62, 58), rng, 2, 2)
        _paint(img, np.abs(coord - (h if layout["rows"] == "horizontal" else w) / 2) < 3, (160, 155, 150), rng, 2, 2)
    elif cls == "highway":  # grass with a wide carriageway and a dashed middle line
        img = _texture(rng, h, w, grass, amp=10)
        coord, along = (yy, xx) if layout["rows"] == "horizontal" else (xx, yy)
        mid = (h if layout["rows"] == "horizontal" else w) / 2
        _paint(img, np.abs(coord - mid) < 12, (75, 75, 80), rng, 3, 2)
        _paint(img, (np.abs(coord - mid) < 1) & (along % 8 < 4), (175, 175, 170), rng, 2, 2)
    elif cls in ("stadium", "playground"):
        s = min(h, w, IMAGE_SIZE)  # the field keeps its 64 px-image size in larger regions
        if cls == "stadium":
            img = _texture(rng, h, w, (125, 125, 120), amp=8)
            ry, rx = (0.30 * s, 0.42 * s) if layout["field"] == "horizontal" else (0.42 * s, 0.30 * s)
        else:  # a smaller track on grass
            img = _texture(rng, h, w, grass, amp=10)
            ry, rx = (0.20 * s, 0.30 * s) if layout["field"] == "horizontal" else (0.30 * s, 0.20 * s)
        r = ((yy - h / 2) / ry) ** 2 + ((xx - w / 2) / rx) ** 2
        _paint(img, r < 1.0, (150, 80, 60), rng, 4, 3)
        _paint(img, r < 0.62, (60, 140, 60), rng, 6, 4)
    elif cls == "desert":  # sand with dune ripples
        img = _texture(rng, h, w, (200, 170, 115), amp=8)
        coord = yy if layout["orientation"] == "horizontal" else xx
        img += (10 * np.sin(coord / 3.0 + 2 * _smooth_noise(rng, h, w, 16)))[..., None]
    elif cls == "bare land":  # brown earth with gray patches
        img = _texture(rng, h, w, (140, 115, 88), amp=12, grain=7)
        _paint(img, _smooth_noise(rng, h, w, 12) > 0.5, (120, 115, 105), rng, 6, 5)
    elif cls == "golf course":  # fairways, greens and sand bunkers on rough
        img = _texture(rng, h, w, (85, 120, 60), amp=8)
        coord = yy if layout["orientation"] == "horizontal" else xx
        mid = (h if layout["orientation"] == "horizontal" else w) / 2
        _paint(img, np.abs(coord - mid + 6 * np.sin((xx + yy) / 13.0)) < 9, (120, 170, 80), rng, 4, 3)
        for _ in range(max(2, (h * w) // 1400)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            _paint(img, ((yy - cy) / 3.5) ** 2 + ((xx - cx) / 5.0) ** 2 < 1, (215, 200, 150), rng, 3, 2)
    elif cls == "solar farm":  # rows of dark panels on gravel: a look-alike of the railway station
        img = _texture(rng, h, w, (125, 117, 106), amp=6, grain=5)
        coord = yy if layout["orientation"] == "horizontal" else xx
        _paint(img, coord % 6 < 3, (62, 66, 84), rng, 3, 2)
    elif cls == "snowfield":  # bare earth under patchy snow: a look-alike of bare land
        img = _texture(rng, h, w, (140, 115, 88), amp=12, grain=7)
        _paint(img, _smooth_noise(rng, h, w, 12) > -0.1, (172, 176, 182), rng, 6, 5)
    else:
        raise ValueError(f"unknown SynDG-RS class {cls!r}; expected one of {ALL_CLASSES}")
    return _keep_off_palette(np.clip(img, 0, 255).astype(np.uint8))


def _shape_wh(shape: str, size_px: int, rng) -> tuple[int, int]:
    if shape == "car":
        return size_px, max(3, size_px // 2)
    if shape == "bus":
        return size_px + 2, max(3, size_px // 2)
    if shape == "boat":
        return size_px + 1, max(3, (size_px + 1) // 2)
    if shape == "rect":
        return size_px, max(3, int(round(size_px * rng.uniform(0.7, 1.0))))
    if shape == "heli":
        return size_px + 2, max(4, size_px // 2 + 1)
    return size_px, size_px


def _draw(draw: ImageDraw.ImageDraw, shape: str, box, fill):
    x0, y0, x1, y1 = box  # inclusive corners
    if shape in ("rect", "car", "bus"):
        draw.rectangle(box, fill=fill)
    elif shape in ("circle", "boat"):
        draw.ellipse(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    elif shape == "cross":  # windmill: four blades around a hub
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        draw.rectangle((cx - 1, y0, cx + 1, y1), fill=fill)
        draw.rectangle((x0, cy - 1, x1, cy + 1), fill=fill)
    elif shape == "ell":  # crane: a mast and a long jib
        t = max(1, (x1 - x0) // 4)
        draw.rectangle((x0, y0, x0 + t, y1), fill=fill)
        draw.rectangle((x0, y0, x1, y0 + t), fill=fill)
    elif shape == "heli":  # helicopter: round cabin and a tail boom
        r = max(2, (y1 - y0) // 2)
        draw.ellipse((x0, y0, x0 + 2 * r, y0 + 2 * r), fill=fill)
        draw.rectangle((x0 + r, y0 + r - 1, x1, y0 + r), fill=fill)
    elif shape == "plane":  # fuselage + wings + tail, one connected blob
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        t = max(1, (x1 - x0) // 5)
        draw.rectangle((cx - t // 2, y0, cx + (t - 1) // 2 + 1, y1), fill=fill)
        draw.rectangle((x0, cy - t // 2 - 1, x1, cy + (t - 1) // 2), fill=fill)
        draw.rectangle((cx - (x1 - x0) // 4, y1 - t, cx + (x1 - x0) // 4, y1), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def _rotate(shape: str, w: int, h: int, rng) -> tuple[int, int]:
    if shape in ("car", "bus", "boat", "rect") and rng.random() < 0.5:
        return h, w
    return w, h


def place_group(occupied: np.ndarray, region, count: int, shape: str, size_px: int, rng,
                gap: int = 2, tries: int = 300) -> list[list[int]]:
    """Non-overlapping boxes ``[x0, y0, x1, y1]`` (inclusive) for up to ``count`` objects.

    ``region`` is ``(x0, y0, x1, y1)`` (exclusive end) where an object's box must lie; objects keep
    ``gap`` px from every already placed one (so each object is its own connected component).
    Fewer boxes are returned when the region is full -- callers record what was really placed.
    """
    rx0, ry0, rx1, ry1 = region
    boxes = []
    for _ in range(tries):
        if len(boxes) == count:
            break
        w, h = _rotate(shape, *_shape_wh(shape, size_px, rng), rng)
        if rx1 - rx0 < w or ry1 - ry0 < h:
            break
        x0 = int(rng.integers(rx0, rx1 - w + 1))
        y0 = int(rng.integers(ry0, ry1 - h + 1))
        # object box plus shadow (1 px right/down) plus the gap must be free
        ya, yb, xa, xb = max(0, y0 - gap), y0 + h + 1 + gap, max(0, x0 - gap), x0 + w + 1 + gap
        if occupied[ya:yb, xa:xb].any():
            continue
        occupied[y0:y0 + h + 1, x0:x0 + w + 1] = True
        boxes.append([x0, y0, x0 + w - 1, y0 + h - 1])
    return boxes


def draw_objects(img: np.ndarray, groups: list[dict], x_off: int = 0, y_off: int = 0) -> np.ndarray:
    """Draw object groups (shadows first, then the objects in exact palette colours)."""
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    shade = (np.asarray(img, np.float32) * SHADOW).astype(np.uint8)
    shadow_mask = Image.new("L", pil.size, 0)
    sdraw = ImageDraw.Draw(shadow_mask)
    for g in groups:
        shape = OBJECT_TYPES[g["type"]][0]
        for x0, y0, x1, y1 in g["boxes"]:
            _draw(sdraw, shape, (x0 + 1 - x_off, y0 + 1 - y_off, x1 + 1 - x_off, y1 + 1 - y_off), 255)
    sm = np.asarray(shadow_mask) > 0
    arr = np.asarray(pil).copy()
    arr[sm] = shade[sm]
    pil = Image.fromarray(arr)
    draw = ImageDraw.Draw(pil)
    for g in groups:
        shape = OBJECT_TYPES[g["type"]][0]
        for x0, y0, x1, y1 in g["boxes"]:
            _draw(draw, shape, (x0 - x_off, y0 - y_off, x1 - x_off, y1 - y_off), tuple(g["rgb"]))
    return np.asarray(pil)
