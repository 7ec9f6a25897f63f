"""SynDG-RS: the embedded *synthetic dual-granularity remote-sensing* dataset.

The paper's DGTRSD (arXiv:2503.19311, section 3: about 2 M images, each with a short caption and
a long description) is not released and nothing can be downloaded here, so the book ships a
generator. It is deterministic (every image has its own seeded generator), small enough for a
CPU, and built so that the paper's two claims can be *measured* on it:

* **Short captions carry class-level semantics only.** A short caption (at most ~15 words,
  RSICD-like) is drawn from class templates; it never mentions counts, colours or positions, so it
  cannot tell apart two images of the same class.
* **Long descriptions carry what tells images of one class apart.** Each image holds 2-3 groups
  of objects (count 1-6, one of six saturated colours, size small/medium/large, position on a 3x3
  grid, relations between groups) and a class-specific layout (runway orientation, water side...).
  The long description (about 65-95 words) states all of it, with shuffled sentence order,
  several templates and synonyms, so the distinguishing facts sit at varying token positions and
  mostly *after* the miniature model's 32-token base context (the stand-in for CLIP's 77).

Images are 64x64 RGB, top-down, "aerial style": a textured class background (grass, water,
asphalt, fields...) with objects drawn as filled shapes 3-12 px wide of exact palette colours and
a one-pixel shadow. Backgrounds are kept away from the palette, so a caption's "three red
warehouses" can be checked by counting red connected components (see ``tests/test_data_syndg.py``).

``meta`` holds the ground truth as JSON: class, layout, object groups (type, colour, rgb, count,
size, position, boxes) and pairwise relations. The SeLo split (:func:`write_syndg_selo`) composes
larger scenes from several class regions drawn by the *same* renderer at the *same* pixel scale,
written in the AIR-SLT layout (``annotations/anno.json`` + ``imgs/N.jpg``; Yuan et al. 2022).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dgtrs_lib.data.schema import DUAL_COLUMNS, classification_features, dual_features, retrieval_features
from dgtrs_lib.io import atomic_write_text, png_bytes
from dgtrs_lib.profiles import get_profile

log = logging.getLogger(__name__)

VERSION = "1"  # bump when the generator changes: it is part of the cache key
IMAGE_SIZE = 64
SPLITS = ("train", "validation", "test")
SPLIT_IDS = {"train": 0, "validation": 1, "test": 2, "selo": 3}

# ---------------------------------------------------------------------------------------------
# Vocabulary: classes, object types, colours, sizes, positions
# ---------------------------------------------------------------------------------------------

CLASSES = ["airport", "harbor", "farmland", "forest", "residential area", "industrial area",
           "river", "beach", "parking lot", "stadium"]

# object type -> (shape, plural)
OBJECT_TYPES = {
    "airplane": ("plane", "airplanes"), "hangar": ("rect", "hangars"),
    "fuel tank": ("circle", "fuel tanks"), "boat": ("boat", "boats"),
    "container": ("rect", "containers"), "warehouse": ("rect", "warehouses"),
    "silo": ("circle", "silos"), "barn": ("rect", "barns"), "hay bale": ("circle", "hay bales"),
    "cabin": ("rect", "cabins"), "tent": ("triangle", "tents"), "house": ("rect", "houses"),
    "car": ("car", "cars"), "storage tank": ("circle", "storage tanks"),
    "truck": ("car", "trucks"), "umbrella": ("circle", "umbrellas"), "beach hut": ("rect", "beach huts"),
    "bus": ("bus", "buses"),
}
CLASS_OBJECTS = {
    "airport": ["airplane", "hangar", "fuel tank"],
    "harbor": ["boat", "container", "warehouse"],
    "farmland": ["silo", "barn", "hay bale"],
    "forest": ["cabin", "tent"],
    "residential area": ["house", "car"],
    "industrial area": ["storage tank", "warehouse", "truck"],
    "river": ["boat", "house"],
    "beach": ["umbrella", "boat", "beach hut"],
    "parking lot": ["car", "bus", "truck"],
    "stadium": ["bus", "tent", "car"],
}
PALETTE = {  # strongly distinct, saturated; backgrounds are kept away from these
    "red": (230, 25, 25), "yellow": (250, 230, 30), "white": (250, 250, 250),
    "orange": (255, 140, 0), "magenta": (230, 40, 230), "cyan": (30, 230, 230),
}
COLOUR_WORDS = {"red": ["red"], "yellow": ["yellow"], "white": ["white"], "orange": ["orange"],
                "magenta": ["magenta", "pink"], "cyan": ["cyan", "turquoise"]}
SIZES = {"small": (4, 5), "medium": (6, 8), "large": (9, 11)}  # main dimension in px
SIZE_WORDS = {"small": ["small", "tiny"], "medium": ["medium-sized", "mid-sized"],
              "large": ["large", "big"]}
SIZE_NOUNS = {"small": "small", "medium": "medium", "large": "large"}
MAX_COUNT = {"small": 6, "medium": 4, "large": 2}
NUMBER_WORDS = {1: ["one", "a single"], 2: ["two", "a pair of"], 3: ["three"], 4: ["four"],
                5: ["five"], 6: ["six"]}
POSITIONS = ["upper left", "top", "upper right", "left", "center", "right",
             "lower left", "bottom", "lower right"]  # row-major 3x3 grid
POSITION_WORDS = {
    "upper left": ["in the upper left", "in the top left corner", "at the upper left of the image"],
    "top": ["along the top edge", "in the upper middle", "at the top of the image"],
    "upper right": ["in the upper right", "in the top right corner", "at the upper right of the image"],
    "left": ["on the left side", "along the left edge", "in the middle of the left side"],
    "center": ["in the center", "in the middle of the scene", "at the center of the image"],
    "right": ["on the right side", "along the right edge", "in the middle of the right side"],
    "lower left": ["in the lower left", "in the bottom left corner", "at the lower left of the image"],
    "bottom": ["along the bottom edge", "in the lower middle", "at the bottom of the image"],
    "lower right": ["in the lower right", "in the bottom right corner", "at the lower right of the image"],
}
SHADOW = 0.55  # shadows are the background darkened to 55 %


# ---------------------------------------------------------------------------------------------
# Rendering: backgrounds (any size, same pixel scale) and objects
# ---------------------------------------------------------------------------------------------

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


def _layout(cls: str, rng) -> dict:
    """Class-specific background layout (part of the ground truth and of the long description)."""
    if cls == "airport":
        return {"runway": str(rng.choice(["horizontal", "vertical"])), "runway_at": float(rng.uniform(0.3, 0.7))}
    if cls in ("harbor", "beach"):
        return {"water_side": str(rng.choice(["left", "right", "top", "bottom"])),
                "water_frac": float(rng.uniform(0.3, 0.45))}
    if cls == "river":
        return {"flow": str(rng.choice(["horizontal", "vertical"])), "phase": float(rng.uniform(0, 6.28))}
    if cls == "farmland":
        return {"stripes": str(rng.choice(["horizontal", "vertical"])), "field_px": int(rng.integers(8, 14))}
    if cls == "residential area":
        return {"road_spacing": int(rng.integers(20, 28)), "offset": int(rng.integers(0, 10))}
    if cls == "parking lot":
        return {"rows": str(rng.choice(["horizontal", "vertical"]))}
    if cls == "stadium":
        return {"field": str(rng.choice(["horizontal", "vertical"]))}
    if cls == "industrial area":
        return {"blocks": int(rng.integers(3, 6))}
    return {"density": str(rng.choice(["dense", "patchy"]))}  # forest


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
        horiz = layout["flow"] == "horizontal"
        along, across = (xx, yy) if horiz else (yy, xx)
        centre = (h if horiz else w) / 2 + 9 * np.sin(along / 11.0 + layout["phase"])
        _paint(img, np.abs(across - centre) < 7, (40, 85, 120), rng, amp=6, grain=3)
    elif cls == "farmland":
        img = np.zeros((h, w, 3), np.float32)
        coord = yy if layout["stripes"] == "horizontal" else xx
        shades = [(120, 160, 70), (160, 140, 90), (90, 130, 60), (175, 165, 110), (110, 100, 70)]
        band = coord // layout["field_px"]
        for k in range(int(band.max()) + 1):
            _paint(img, band == k, shades[int(rng.integers(len(shades)))], rng, amp=5, grain=4)
    elif cls == "forest":
        img = _texture(rng, h, w, (40, 85, 40), amp=18, grain=10, cell=4)
        if layout["density"] == "patchy":
            _paint(img, _smooth_noise(rng, h, w, 16) > 0.45, (110, 140, 75), rng)
    elif cls == "residential area":
        img = _texture(rng, h, w, (130, 150, 105), amp=10)
        s, o = layout["road_spacing"], layout["offset"]
        _paint(img, ((yy + o) % s < 3) | ((xx + o) % s < 3), (105, 105, 105), rng, 4, 3)
    elif cls == "industrial area":
        img = _texture(rng, h, w, (140, 138, 132), amp=8)
        for _ in range(layout["blocks"] * max(1, (h * w) // 4096)):
            y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            m = (yy >= y0) & (yy < y0 + int(rng.integers(8, 20))) & (xx >= x0) & (xx < x0 + int(rng.integers(8, 20)))
            _paint(img, m, (100, 100, 98), rng, 4, 3)
    elif cls == "parking lot":
        img = _texture(rng, h, w, (80, 80, 84), amp=6, grain=4)
        coord_a, coord_b = (yy, xx) if layout["rows"] == "horizontal" else (xx, yy)
        _paint(img, (coord_a % 16 == 0) | ((coord_b % 8 == 0) & (coord_a % 16 < 5)), (165, 165, 160), rng, 2, 2)
    elif cls == "stadium":
        img = _texture(rng, h, w, (125, 125, 120), amp=8)
        s = min(h, w, IMAGE_SIZE)  # the stadium keeps its 64 px-image size in larger regions
        ry, rx = (0.30 * s, 0.42 * s) if layout["field"] == "horizontal" else (0.42 * s, 0.30 * s)
        r = ((yy - h / 2) / ry) ** 2 + ((xx - w / 2) / rx) ** 2
        _paint(img, r < 1.0, (150, 80, 60), rng, 4, 3)
        _paint(img, r < 0.62, (60, 140, 60), rng, 6, 4)
    else:
        raise ValueError(f"unknown SynDG-RS class {cls!r}; expected one of {CLASSES}")
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
    return size_px, size_px


def _draw(draw: ImageDraw.ImageDraw, shape: str, box, fill):
    x0, y0, x1, y1 = box  # inclusive corners
    if shape in ("rect", "car", "bus"):
        draw.rectangle(box, fill=fill)
    elif shape in ("circle", "boat"):
        draw.ellipse(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
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


# ---------------------------------------------------------------------------------------------
# One 64x64 sample: ground truth -> pixels -> captions
# ---------------------------------------------------------------------------------------------

def _grid_cell(pos: str, size: int = IMAGE_SIZE, margin: int = 3):
    r, c = divmod(POSITIONS.index(pos), 3)
    edges = [0, size // 3, 2 * size // 3 + 1, size]
    return (max(0, edges[c] - margin), max(0, edges[r] - margin),
            min(size, edges[c + 1] + margin), min(size, edges[r + 1] + margin))


def _relation(a: str, b: str) -> str | None:
    ra, ca = divmod(POSITIONS.index(a), 3)
    rb, cb = divmod(POSITIONS.index(b), 3)
    if ra == rb and ca != cb:
        return "to the left of" if ca < cb else "to the right of"
    if ca == cb and ra != rb:
        return "above" if ra < rb else "below"
    if ra != rb and ca != cb:
        return ("above" if ra < rb else "below") + (" and to the left of" if ca < cb else " and to the right of")
    return None


def sample_ground_truth(cls: str, rng) -> dict:
    """Draw the scene's ground truth: layout and 2-3 object groups with distinct colours/cells."""
    n_groups = int(rng.choice([2, 3], p=[0.45, 0.55]))
    colours = [str(c) for c in rng.choice(list(PALETTE), size=n_groups, replace=False)]
    cells = [str(p) for p in rng.choice(POSITIONS, size=n_groups, replace=False)]
    groups = []
    for colour, pos in zip(colours, cells):
        size = str(rng.choice(list(SIZES)))
        groups.append({"type": str(rng.choice(CLASS_OBJECTS[cls])), "colour": colour,
                       "rgb": list(PALETTE[colour]), "size": size,
                       "size_px": int(rng.integers(SIZES[size][0], SIZES[size][1] + 1)),
                       "count": int(rng.integers(1, MAX_COUNT[size] + 1)), "position": pos})
    return {"class": cls, "layout": _layout(cls, rng), "objects": groups}


def render_sample(gt: dict, rng) -> np.ndarray:
    """Render a ground truth at 64x64; fills in each group's ``boxes`` and actual ``count``."""
    img = render_background(gt["class"], IMAGE_SIZE, IMAGE_SIZE, gt["layout"], rng)
    occupied = np.zeros((IMAGE_SIZE + 4, IMAGE_SIZE + 4), bool)
    for g in gt["objects"]:
        g["boxes"] = place_group(occupied, _grid_cell(g["position"]), g["count"],
                                 OBJECT_TYPES[g["type"]][0], g["size_px"], rng)
        g["count"] = len(g["boxes"])
    gt["objects"] = [g for g in gt["objects"] if g["count"] > 0]
    gt["relations"] = []
    objs = gt["objects"]
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            rel = _relation(objs[i]["position"], objs[j]["position"])
            if rel:
                gt["relations"].append({"subject": i, "relation": rel, "object": j})
    return draw_objects(img, objs)


SHORT_TEMPLATES = {
    "airport": ["an airport with a runway surrounded by grass.", "this is an airport seen from above.",
                "a runway of an airport crosses the green land.", "an airport area with some facilities near the runway."],
    "harbor": ["a harbor with piers next to the water.", "this is a port beside the sea.",
               "a harbor where several piers reach into the water.", "some facilities stand in a harbor by the water."],
    "farmland": ["farmland divided into many fields.", "many green and brown fields form the farmland.",
                 "this is farmland with strips of crops.", "several rectangular fields of farmland."],
    "forest": ["a dense forest seen from above.", "many green trees form a forest.",
               "this is a forest with dark green trees.", "a piece of forest land."],
    "residential area": ["a residential area with roads between the lots.", "this is a residential area with streets.",
                         "many houses and roads in a residential area.", "a residential neighborhood crossed by roads."],
    "industrial area": ["an industrial area with gray buildings.", "this is an industrial area with large roofs.",
                        "several factories stand in an industrial area.", "a gray industrial zone seen from above."],
    "river": ["a river flows through the green land.", "this is a winding river between fields.",
              "a river crosses the image.", "a curved river with green banks."],
    "beach": ["a beach next to the sea.", "this is a sandy beach by the water.",
              "pale sand of a beach meets the blue sea.", "a stretch of beach along the coast."],
    "parking lot": ["a parking lot with marked spaces.", "this is a parking lot seen from above.",
                    "a large parking lot with painted lines.", "rows of parking spaces in a parking lot."],
    "stadium": ["a stadium with a green field and a track.", "this is a stadium with a running track.",
                "an oval stadium seen from above.", "a sports stadium with a playground inside."],
}
OPENERS = ["This aerial image shows {cls}.", "Seen from above, the scene is {cls}.",
           "A top-down satellite view of {cls}.", "The picture is a remote sensing image of {cls}.",
           "Here we look straight down on {cls}."]
CLASS_PHRASES = {c: ("an " if c[0] in "aeiou" else "a ") + c for c in CLASSES}
CLASS_PHRASES["farmland"] = "farmland"
FILLERS = {
    "airport": ["The surrounding ground is covered with short green grass.",
                "The runway surface is dark gray asphalt with a lighter taxiway beside it.",
                "There are no roads or houses around the airfield."],
    "harbor": ["The quay is paved with gray concrete.", "The water in the harbor is calm and dark blue.",
               "Long concrete piers reach out into the water."],
    "farmland": ["The fields alternate between green crops and brown soil.",
                 "The parcels are long straight strips of similar width.", "No roads cross the fields."],
    "forest": ["The trees form an irregular dark green canopy.", "Individual tree crowns cast small shadows.",
               "There are no roads through the woods."],
    "residential area": ["Narrow gray roads form a regular grid.", "Green lawns fill the space between the roads.",
                         "The blocks between the streets have similar sizes."],
    "industrial area": ["The ground is paved with gray concrete.", "Darker gray roofs of large buildings appear here and there.",
                        "There is almost no vegetation in the area."],
    "river": ["The banks of the river are green meadows.", "The water is dark blue and winds gently.",
              "There are no bridges over the river."],
    "beach": ["The sand is pale and smooth.", "Low dune vegetation lines the far edge of the sand.",
              "Small waves mark the border between sand and sea."],
    "parking lot": ["The asphalt is dark gray with light painted lines.", "The parking spaces are arranged in neat rows.",
                    "There are no trees in the parking lot."],
    "stadium": ["A reddish running track surrounds the green field.", "Gray paved ground surrounds the stadium.",
                "The field in the middle is bright green grass."],
}


def _layout_sentence(cls: str, layout: dict, rng) -> str:
    if cls == "airport":
        half = "upper" if layout["runway"] == "horizontal" and layout["runway_at"] < 0.5 else (
            "lower" if layout["runway"] == "horizontal" else ("left" if layout["runway_at"] < 0.5 else "right"))
        d = "from left to right" if layout["runway"] == "horizontal" else "from top to bottom"
        return str(rng.choice([f"The runway runs {d} through the {half} half.",
                               f"A long runway crosses the image {d}, in its {half} half."]))
    if cls in ("harbor", "beach"):
        return str(rng.choice([f"The water lies on the {layout['water_side']} side of the image.",
                               f"Open water fills the {layout['water_side']} part of the scene."]))
    if cls == "river":
        d = "from left to right" if layout["flow"] == "horizontal" else "from top to bottom"
        return str(rng.choice([f"The river winds {d} across the image.", f"A river meanders {d}."]))
    if cls == "farmland":
        return f"The fields are arranged in {layout['stripes']} strips."
    if cls == "residential area":
        return "Straight roads cross the area in both directions."
    if cls == "parking lot":
        return f"The rows of parking spaces run {layout['rows']}ly."
    if cls == "stadium":
        return f"The oval field is oriented {layout['field']}ly."
    if cls == "industrial area":
        return "Several dark gray building blocks stand on the concrete."
    return "The forest is dense." if layout["density"] == "dense" else "The forest has a few open patches."


def _group_phrase(g: dict, rng, with_position: bool = True) -> str:
    n = g["count"]
    noun = g["type"] if n == 1 else OBJECT_TYPES[g["type"]][1]
    num = str(rng.choice(NUMBER_WORDS[n]))
    size = str(rng.choice(SIZE_WORDS[g["size"]]))
    colour = str(rng.choice(COLOUR_WORDS[g["colour"]]))
    pos = str(rng.choice(POSITION_WORDS[g["position"]]))
    be = "is" if n == 1 else "are"
    forms = [f"There {be} {num} {size} {colour} {noun} {pos}.",
             f"{pos[0].upper() + pos[1:]} {be} {num} {size} {colour} {noun}.",
             f"{num[0].upper() + num[1:]} {colour} {noun}, {SIZE_NOUNS[g['size']]} in size, {'sits' if n == 1 else 'sit'} {pos}.",
             f"We can see {num} {colour} {noun} {pos}; {'it is' if n == 1 else 'they are'} {size}."]
    return str(rng.choice(forms))


def _short_ref(g: dict, rng) -> str:
    noun = g["type"] if g["count"] == 1 else OBJECT_TYPES[g["type"]][1]
    return f"the {rng.choice(COLOUR_WORDS[g['colour']])} {noun}"


def write_captions(gt: dict, rng) -> tuple[str, str]:
    """(short caption, long description) for a ground truth; see the module docstring."""
    cls = gt["class"]
    short = str(rng.choice(SHORT_TEMPLATES[cls]))
    short = short[0].upper() + short[1:]
    opener = str(rng.choice(OPENERS)).format(cls=CLASS_PHRASES[cls])
    body = [_layout_sentence(cls, gt["layout"], rng)]
    body += [_group_phrase(g, rng) for g in gt["objects"]]
    for rel in gt["relations"][: (2 if len(gt["objects"]) < 3 else 1)]:
        a, b = gt["objects"][rel["subject"]], gt["objects"][rel["object"]]
        s = f"{_short_ref(a, rng)} {'is' if a['count'] == 1 else 'are'} {rel['relation']} {_short_ref(b, rng)}."
        body.append(s[0].upper() + s[1:])
    total = sum(g["count"] for g in gt["objects"])
    body.append(str(rng.choice([f"Altogether there are {total} objects in {len(gt['objects'])} colours.",
                                f"In total the image contains {total} objects of {len(gt['objects'])} different colours."])))
    order = rng.permutation(len(body))
    body = [body[i] for i in order]
    fillers = list(rng.permutation(FILLERS[cls]))
    target = int(rng.integers(60, 70))
    text = " ".join([opener] + body)
    while len(text.split()) < target and fillers:
        pos = int(rng.integers(1, len(body) + 1))
        body.insert(pos, str(fillers.pop()))
        text = " ".join([opener] + body)
    return short, text


def generate_sample(seed: int, split: str, index: int, cls: str | None = None) -> dict:
    """One sample as a plain dict (``image`` is a uint8 array); fully determined by the arguments."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    cls = cls or CLASSES[index % len(CLASSES)]
    gt = sample_ground_truth(cls, rng)
    img = render_sample(gt, rng)
    short, long = write_captions(gt, rng)
    image_id = f"syndg-{split}-{index:06d}"
    meta = {"source": "syndg-rs", "version": VERSION, "seed": seed, "split": split, "index": index, **gt}
    return {"image_id": image_id, "image": img, "short_caption": short, "long_caption": long,
            "scene": cls, "meta": json.dumps(meta, sort_keys=True)}


# ---------------------------------------------------------------------------------------------
# Datasets: generation, caching, views
# ---------------------------------------------------------------------------------------------

def generate_split(n: int, split: str, seed: int = 0, progress: bool = False):
    """A ``datasets.Dataset`` with ``n`` SynDG-RS samples of ``split``."""
    import datasets

    it = range(n)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"SynDG-RS {split}", leave=False)
    cols = {k: [] for k in DUAL_COLUMNS}
    for i in it:
        s = generate_sample(seed, split, i)
        s["image"] = {"bytes": png_bytes(s["image"]), "path": None}
        for k in cols:
            cols[k].append(s[k])
    return datasets.Dataset.from_dict(cols, features=dual_features(), split=datasets.NamedSplit(split))


def generate_syndg(n_train: int, n_val: int, n_test: int, seed: int = 0, progress: bool = False):
    """Generate the three splits as a ``datasets.DatasetDict`` (no caching)."""
    import datasets

    return datasets.DatasetDict({
        "train": generate_split(n_train, "train", seed, progress),
        "validation": generate_split(n_val, "validation", seed, progress),
        "test": generate_split(n_test, "test", seed, progress)})


def cache_key(sizes: dict, seed: int) -> str:
    return f"v{VERSION}-s{seed}-{sizes['train']}-{sizes['validation']}-{sizes['test']}"


def load_syndg(profile: str | None = None, *, seed: int = 0, sizes: dict | None = None,
               refresh: bool = False, progress: bool = True):
    """SynDG-RS for a profile, generated once and cached with ``save_to_disk``.

    The cache lives in ``cache_dir("syndg")/<key>`` where the key holds the generator version, seed
    and split sizes; it is written to a temporary folder and renamed, so an interrupted run never
    leaves a half-written dataset behind.
    """
    import datasets

    from dgtrs_lib.env import cache_dir

    sizes = sizes or dict(get_profile(profile).syndg_sizes)
    target = cache_dir("syndg") / cache_key(sizes, seed)
    if target.exists() and not refresh:
        try:
            return datasets.load_from_disk(str(target))
        except Exception as err:  # a damaged cache is regenerated, loudly
            log.warning("SynDG-RS cache %s unreadable (%s); regenerating", target, err)
    t0 = time.perf_counter()
    dd = generate_syndg(sizes["train"], sizes["validation"], sizes["test"], seed, progress)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    dd.save_to_disk(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    log.info("SynDG-RS %s generated in %.1f s -> %s", cache_key(sizes, seed), time.perf_counter() - t0, target)
    return datasets.load_from_disk(str(target))


def syndg_classification(split: str = "test", profile: str | None = None, *, dataset=None, seed: int = 0):
    """Zero-shot classification view: ``image_id, image, label: ClassLabel(names=CLASSES)``."""
    ds = dataset if dataset is not None else load_syndg(profile, seed=seed)[split]
    features = classification_features(CLASSES)
    return ds.map(lambda b: {"label": [CLASSES.index(s) for s in b["scene"]]}, batched=True,
                  remove_columns=["short_caption", "long_caption", "scene", "meta"], features=features)


def syndg_retrieval(split: str = "test", profile: str | None = None, *, caption: str = "long",
                    dataset=None, seed: int = 0):
    """Retrieval view (Karpathy schema ``image_id, image, captions``), one caption per image.

    ``caption``: ``"long"``, ``"short"`` or ``"both"`` (short then long)."""
    if caption not in ("long", "short", "both"):
        raise ValueError(f"caption must be 'long', 'short' or 'both', got {caption!r}")
    ds = dataset if dataset is not None else load_syndg(profile, seed=seed)[split]
    features = retrieval_features()

    def fn(b):
        if caption == "both":
            return {"captions": [[s, l] for s, l in zip(b["short_caption"], b["long_caption"])]}
        return {"captions": [[c] for c in b[f"{caption}_caption"]]}

    return ds.map(fn, batched=True, remove_columns=["short_caption", "long_caption", "scene", "meta"],
                  features=features)


# ---------------------------------------------------------------------------------------------
# SeLo split in the AIR-SLT layout
# ---------------------------------------------------------------------------------------------

SELO_QUERIES = {
    "airport": "an airport with a runway", "harbor": "a harbor with piers in the water",
    "farmland": "farmland with strips of fields", "forest": "a dense green forest",
    "residential area": "a residential area with roads", "industrial area": "an industrial area",
    "river": "a winding river", "beach": "a sandy beach by the sea", "parking lot": "a parking lot",
    "stadium": "a stadium with a running track",
}


@dataclass
class SeloScene:
    image: np.ndarray
    cases: list  # [{"caption": str, "points": [[[x, y], ...], ...]}]
    regions: list  # [{"class": str, "box": [x0, y0, x1, y1]}]


def _rect(x0, y0, x1, y1):
    return [[float(x0), float(y0)], [float(x1), float(y0)], [float(x1), float(y1)], [float(x0), float(y1)]]


def compose_selo_scene(seed: int, index: int, size: int = 320) -> SeloScene:
    """A ``size x size`` scene of 3-4 class regions at the 64 px training images' pixel scale.

    Queries: each region's class phrase (polygon = the region) and, for one object group per
    region, an attribute phrase such as "three red storage tanks" (polygon = the group's box).
    Colours are unique in the whole scene so attribute queries are unambiguous.
    """
    rng = np.random.default_rng([seed, SPLIT_IDS["selo"], index])
    half = (size // 2) // 32 * 32
    if rng.random() < 0.5:  # 2x2
        boxes = [(0, 0, half, half), (half, 0, size, half), (0, half, half, size), (half, half, size, size)]
    else:  # one tall column + two stacked regions
        boxes = [(0, 0, half, size), (half, 0, size, half), (half, half, size, size)]
        if rng.random() < 0.5:
            boxes = [(size - x1, y0, size - x0, y1) for x0, y0, x1, y1 in boxes]
    classes = [str(c) for c in rng.choice(CLASSES, size=len(boxes), replace=False)]
    colours = [str(c) for c in rng.permutation(list(PALETTE))]
    img = np.zeros((size, size, 3), np.uint8)
    occupied = np.zeros((size + 4, size + 4), bool)
    cases, regions, all_groups = [], [], []
    for (x0, y0, x1, y1), cls in zip(boxes, classes):
        layout = _layout(cls, rng)
        img[y0:y1, x0:x1] = render_background(cls, y1 - y0, x1 - x0, layout, rng)
        regions.append({"class": cls, "box": [x0, y0, x1, y1], "layout": layout})
        cases.append({"caption": SELO_QUERIES[cls], "points": [_rect(x0, y0, x1 - 1, y1 - 1)]})
        for k in range(2 if len(boxes) == 3 else 1):
            if not colours:
                break
            colour = colours.pop()
            size_name = str(rng.choice(["medium", "large"]))
            g = {"type": str(rng.choice(CLASS_OBJECTS[cls])), "colour": colour, "rgb": list(PALETTE[colour]),
                 "size": size_name, "size_px": int(rng.integers(*SIZES[size_name]) + 0),
                 "count": int(rng.integers(2, MAX_COUNT[size_name] + 1))}
            gw = 34
            gx = int(rng.integers(x0 + 8, x1 - gw - 8))
            gy = int(rng.integers(y0 + 8, y1 - gw - 8))
            g["boxes"] = place_group(occupied, (gx, gy, gx + gw, gy + gw), g["count"],
                                     OBJECT_TYPES[g["type"]][0], g["size_px"], rng)
            g["count"] = len(g["boxes"])
            if not g["boxes"]:
                continue
            all_groups.append(g)
            bx0 = min(b[0] for b in g["boxes"]) - 2
            by0 = min(b[1] for b in g["boxes"]) - 2
            bx1 = max(b[2] for b in g["boxes"]) + 3
            by1 = max(b[3] for b in g["boxes"]) + 3
            noun = g["type"] if g["count"] == 1 else OBJECT_TYPES[g["type"]][1]
            cases.append({"caption": f"{NUMBER_WORDS[g['count']][0]} {colour} {noun}",
                          "points": [_rect(bx0, by0, bx1, by1)]})
    img = draw_objects(img, all_groups)
    return SeloScene(image=img, cases=cases, regions=regions)


def write_syndg_selo(root, profile: str | None = None, *, seed: int = 0, scenes: int | None = None,
                     size: int | None = None) -> Path:
    """Write SeLo scenes in the AIR-SLT layout: ``root/annotations/anno.json`` + ``root/imgs/N.jpg``.

    Returns ``root``. Each ``anno.json`` entry is ``{"caption", "jpg_name", "points"}`` with
    ``points`` a list of polygons of ``[x, y]`` pixels (x = column, y = row), as in AIR-SLT.
    """
    prof = get_profile(profile)
    scenes = prof.selo_scenes if scenes is None else scenes
    size = prof.selo_size if size is None else size
    root = Path(root)
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    anno = []
    for i in range(scenes):
        scene = compose_selo_scene(seed, i, size)
        tmp = root / "imgs" / f".{i}.jpg.tmp"
        Image.fromarray(scene.image).save(tmp, format="JPEG", quality=95)
        os.replace(tmp, root / "imgs" / f"{i}.jpg")
        anno += [{"caption": c["caption"], "jpg_name": f"{i}.jpg", "points": c["points"]} for c in scene.cases]
    atomic_write_text(root / "annotations" / "anno.json", json.dumps(anno, indent=1))
    return root
