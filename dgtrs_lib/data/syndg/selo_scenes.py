"""The SynDG-RS SeLo split: large scenes composed of class regions, in the AIR-SLT layout.

:func:`compose_selo_scene` tiles a ``size x size`` scene with 3-4 class regions drawn by the same
renderer at the same pixel scale as the 64 px training images, and adds one or two object groups
per region; its queries are each region's class phrase (polygon: the region) and attribute
phrases such as "three red storage tanks" (polygon: the group's box; colours are unique in the
scene), one of each per region, so region and attribute queries are balanced and each entry says
which it is (``query_type``, an extra field beside AIR-SLT's). :func:`write_syndg_selo` writes the scenes as ``root/imgs/N.jpg`` +
``root/annotations/anno.json``, the layout of AIR-SLT (Yuan et al., 2022), read back by
:func:`dgtrs_lib.data.airslt.load_airslt`. Design: :mod:`dgtrs_lib.data.syndg`.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dgtrs_lib.data.syndg.render import class_layout, draw_objects, place_group, render_background
from dgtrs_lib.data.syndg.vocabulary import (
    CLASS_OBJECTS,
    CLASSES,
    MAX_COUNT,
    NUMBER_WORDS,
    OBJECT_TYPES,
    PALETTE,
    SIZES,
    SPLIT_IDS,
)
from dgtrs_lib.io import atomic_write_text
from dgtrs_lib.profiles import get_profile

SELO_QUERIES = {
    "airport": "an airport with a runway", "harbor": "a harbor with piers in the water",
    "beach": "a sandy beach by the sea", "river": "a winding river", "lake": "a lake surrounded by grass",
    "bridge": "a bridge over a river", "dense residential": "a dense residential area with many roofs",
    "sparse residential": "a sparse residential area with lawns", "industrial area": "an industrial area",
    "commercial area": "a commercial area with small shops", "parking lot": "a parking lot",
    "railway station": "a railway station with many tracks", "highway": "a highway crossing the grass",
    "forest": "a dense green forest", "sparse forest": "a sparse forest with open ground",
    "meadow": "a green meadow", "orchard": "an orchard with rows of trees",
    "farmland": "farmland with strips of fields", "stadium": "a stadium with a running track",
    "playground": "a small playground on the grass", "desert": "a sandy desert with dunes",
    "bare land": "bare brown land",
}
QUERY_TYPES = ("region", "attribute")


@dataclass
class SeloScene:
    image: np.ndarray
    cases: list  # [{"caption": str, "points": [[[x, y], ...], ...]}]
    regions: list  # [{"class": str, "box": [x0, y0, x1, y1]}]


def _rect(x0, y0, x1, y1):
    return [[float(x0), float(y0)], [float(x1), float(y0)], [float(x1), float(y1)], [float(x0), float(y1)]]


def compose_selo_scene(seed: int, index: int, size: int = 320) -> SeloScene:
    """A ``size x size`` scene of 3-4 class regions at the 64 px training images' pixel scale.

    Queries, balanced between the two types (``query_type``): each region's class phrase
    (``region``; polygon = the region) and, for one object group per region, an attribute phrase
    such as "three red storage tanks" (``attribute``; polygon = the group's box). Three-region
    scenes get a second, unqueried group per region as a distractor. Colours are unique in the
    whole scene so attribute queries are unambiguous.
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
        layout = class_layout(cls, rng)
        img[y0:y1, x0:x1] = render_background(cls, y1 - y0, x1 - x0, layout, rng)
        regions.append({"class": cls, "box": [x0, y0, x1, y1], "layout": layout})
        cases.append({"caption": SELO_QUERIES[cls], "points": [_rect(x0, y0, x1 - 1, y1 - 1)],
                      "query_type": "region"})
        queried = False
        for _ in range(2 if len(boxes) == 3 else 1):  # one queried group per region (+ one distractor)
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
            if not queried:
                queried = True
                cases.append({"caption": f"{NUMBER_WORDS[g['count']][0]} {colour} {noun}",
                              "points": [_rect(bx0, by0, bx1, by1)], "query_type": "attribute"})
    img = draw_objects(img, all_groups)
    return SeloScene(image=img, cases=cases, regions=regions)


def write_syndg_selo(root, profile: str | None = None, *, seed: int = 0, scenes: int | None = None,
                     size: int | None = None) -> Path:
    """Write SeLo scenes in the AIR-SLT layout: ``root/annotations/anno.json`` + ``root/imgs/N.jpg``.

    Returns ``root``. Each ``anno.json`` entry is ``{"caption", "jpg_name", "points", "query_type"}`` with
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
        anno += [{"caption": c["caption"], "jpg_name": f"{i}.jpg", "points": c["points"], "query_type": c["query_type"]}
                 for c in scene.cases]
    atomic_write_text(root / "annotations" / "anno.json", json.dumps(anno, indent=1))
    return root
