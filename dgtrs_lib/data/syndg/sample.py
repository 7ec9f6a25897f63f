"""One SynDG-RS sample: ground truth -> 64x64 pixels -> captions, from one seeded generator.

Fine-tuning samples get five short captions and a long description; pre-training (prior) samples
get one alt-text caption (:mod:`dgtrs_lib.data.syndg.captions`).

:func:`generate_sample` seeds ``numpy.random.default_rng([seed, split id, index])`` and draws, in
this order, the ground truth (:func:`sample_ground_truth`: 2-3 object groups with distinct
colours and grid cells, and the class layout), the image (:func:`render_sample`: background,
placement, drawing; it records what was really placed and the pairwise relations), then the
captions. ``meta`` holds the ground truth as
JSON. Design: :mod:`dgtrs_lib.data.syndg`.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

import json

import numpy as np

from dgtrs_lib.data.syndg.captions import write_alt_text, write_long, write_short_captions
from dgtrs_lib.data.syndg.render import class_layout, draw_objects, place_group, render_background
from dgtrs_lib.data.syndg.vocabulary import (
    ALL_CLASSES,
    CLASS_OBJECTS,
    CLASSES,
    IMAGE_SIZE,
    MAX_COUNT,
    MIX_FRAC,
    MIX_PARTNERS,
    MIX_PROB,
    OBJECT_TYPES,
    PALETTE,
    POSITIONS,
    PRIOR_OBJECT_CLASSES,
    PRIOR_ONLY_OBJECTS,
    SIZES,
    SPLIT_IDS,
    VERSION,
)


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


def sample_ground_truth(cls: str, rng, prior: bool = False) -> dict:
    """Draw the scene's ground truth: layout and 2-3 object groups with distinct colours/cells,
    and, with probability ``MIX_PROB``, a strip of a confusable class (``mix``: class, side,
    fraction of the side in ``MIX_FRAC``; the label stays the main class, which covers more).

    ``prior``: a pre-training image, where one group is a prior-only object type (windmill, crane,
    helicopter) with probability 0.35 when the class admits one."""
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
    if prior:
        allowed = [o for o in PRIOR_ONLY_OBJECTS if cls in PRIOR_OBJECT_CLASSES[o]]
        if allowed and rng.random() < 0.35:
            groups[int(rng.integers(len(groups)))]["type"] = str(rng.choice(allowed))
    gt = {"class": cls, "layout": class_layout(cls, rng), "objects": groups, "mix": None}
    if rng.random() < MIX_PROB:  # a mixed scene: a strip of a confusable class along one side
        other = str(rng.choice(MIX_PARTNERS[cls]))
        gt["mix"] = {"class": other, "side": str(rng.choice(["left", "right", "top", "bottom"])),
                     "frac": float(rng.uniform(*MIX_FRAC)), "layout": class_layout(other, rng)}
    return gt


def _mix_mask(side: str, frac: float, size: int = IMAGE_SIZE) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    d = {"left": xx, "right": size - 1 - xx, "top": yy, "bottom": size - 1 - yy}[side]
    return d < frac * size


def render_sample(gt: dict, rng) -> np.ndarray:
    """Render a ground truth at 64x64; fills in each group's ``boxes`` and actual ``count``."""
    img = render_background(gt["class"], IMAGE_SIZE, IMAGE_SIZE, gt["layout"], rng)
    if gt.get("mix"):
        m = gt["mix"]
        strip = render_background(m["class"], IMAGE_SIZE, IMAGE_SIZE, m["layout"], rng)
        mask = _mix_mask(m["side"], m["frac"])
        img[mask] = strip[mask]
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


PRIOR_SPLITS = ("prior", "prior_validation")


def generate_sample(seed: int, split: str, index: int, cls: str | None = None) -> dict:
    """One sample as a plain dict (``image`` is a uint8 array); fully determined by the arguments.

    Fine-tuning splits (``train``, ``validation``, ``test``) cycle over the 22 fine-tuning classes
    and carry five short captions (``meta["short_captions"]``; ``short_caption`` is the first) and
    a long description. The pre-training splits (``prior``, ``prior_validation``) cycle over all
    25 classes (prior-only ones included), may hold prior-only objects, and carry one alt-text
    caption, stored as both ``short_caption`` and ``long_caption`` (the prior never reads long text)."""
    if split not in SPLIT_IDS:
        raise ValueError(f"unknown SynDG-RS split {split!r}; expected one of {sorted(SPLIT_IDS)}")
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    prior = split in PRIOR_SPLITS
    pool = ALL_CLASSES if prior else CLASSES
    cls = cls or pool[index % len(pool)]
    gt = sample_ground_truth(cls, rng, prior=prior)
    img = render_sample(gt, rng)
    extra = {}
    if prior:
        short = long = write_alt_text(gt, rng)
    else:
        shorts = write_short_captions(gt, rng)
        short, long = shorts[0], write_long(gt, rng)
        extra = {"short_captions": shorts}
    image_id = f"syndg-{split}-{index:06d}"
    meta = {"source": "syndg-rs", "version": VERSION, "seed": seed, "split": split, "index": index, **gt, **extra}
    return {"image_id": image_id, "image": img, "short_caption": short, "long_caption": long,
            "scene": cls, "meta": json.dumps(meta, sort_keys=True)}
