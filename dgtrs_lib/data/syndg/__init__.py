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

Modules, in the order a sample is made:

* :mod:`~dgtrs_lib.data.syndg.vocabulary` -- classes, objects, colours, sizes, positions, their words;
* :mod:`~dgtrs_lib.data.syndg.render` -- backgrounds, object placement and drawing;
* :mod:`~dgtrs_lib.data.syndg.captions` -- ground truth -> short caption and long description;
* :mod:`~dgtrs_lib.data.syndg.sample` -- one seeded sample: ground truth -> pixels -> captions;
* :mod:`~dgtrs_lib.data.syndg.dataset` -- splits, the cached profile-sized set, classification and
  retrieval views;
* :mod:`~dgtrs_lib.data.syndg.selo_scenes` -- the SeLo scenes and their AIR-SLT files.

The names below are re-exported, so ``from dgtrs_lib.data import syndg; syndg.load_syndg(...)``
works without knowing the module.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

from dgtrs_lib.data.syndg.captions import CLASS_PHRASES, FILLERS, OPENERS, SHORT_TEMPLATES, write_captions
from dgtrs_lib.data.syndg.dataset import (
                                          cache_key,
                                          generate_split,
                                          generate_syndg,
                                          load_syndg,
                                          syndg_classification,
                                          syndg_retrieval,
)
from dgtrs_lib.data.syndg.render import class_layout, draw_objects, place_group, render_background
from dgtrs_lib.data.syndg.sample import generate_sample, render_sample, sample_ground_truth
from dgtrs_lib.data.syndg.selo_scenes import SELO_QUERIES, SeloScene, compose_selo_scene, write_syndg_selo
from dgtrs_lib.data.syndg.vocabulary import (
                                          CLASS_OBJECTS,
                                          CLASSES,
                                          COLOUR_WORDS,
                                          IMAGE_SIZE,
                                          MAX_COUNT,
                                          NUMBER_WORDS,
                                          OBJECT_TYPES,
                                          PALETTE,
                                          POSITION_WORDS,
                                          POSITIONS,
                                          SHADOW,
                                          SIZE_NOUNS,
                                          SIZE_WORDS,
                                          SIZES,
                                          SPLIT_IDS,
                                          SPLITS,
                                          VERSION,
)

__all__ = ["CLASSES", "CLASS_OBJECTS", "CLASS_PHRASES", "COLOUR_WORDS", "FILLERS", "IMAGE_SIZE", "MAX_COUNT",
           "NUMBER_WORDS", "OBJECT_TYPES", "OPENERS", "PALETTE", "POSITIONS", "POSITION_WORDS", "SELO_QUERIES",
           "SHADOW", "SHORT_TEMPLATES", "SIZES", "SIZE_NOUNS", "SIZE_WORDS", "SPLITS", "SPLIT_IDS", "SeloScene",
           "VERSION", "cache_key", "class_layout", "compose_selo_scene", "draw_objects", "generate_sample",
           "generate_split", "generate_syndg", "load_syndg", "place_group", "render_background", "render_sample",
           "sample_ground_truth", "syndg_classification", "syndg_retrieval", "write_captions", "write_syndg_selo"]
