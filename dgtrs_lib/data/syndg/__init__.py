"""SynDG-RS: the embedded *synthetic dual-granularity remote-sensing* dataset.

The paper's DGTRSD (arXiv:2503.19311, section 3: about 2 M images, each with a short caption and
a long description) is not released and nothing can be downloaded here, so the book ships a
generator. It is deterministic (every image has its own seeded generator), small enough for a
CPU, and built so that the paper's two claims can be *measured* on it:

* **A prior that knows things** (version 2, issue #11). A separate *pre-training corpus*
  (:func:`load_prior`) stands in for OpenAI CLIP's web alt-texts: 25 classes (the 22 fine-tuning
  classes and three prior-only ones), some images holding prior-only object types, each with one
  terse, instance-level, order-sensitive alt-text caption ("3 red boats top left of 2 white
  warehouses, harbor"), skewed short. What fine-tuning forgets of the prior-only concepts is the
  knowledge KPS claims to preserve (:func:`syndg_retention`, :func:`prior_retrieval`).
* **The fine-tuning set: short captions coarse, long descriptions complete.** Each image holds
  2-3 groups of objects (count 1-6, one of six saturated colours, size small/medium/large,
  position on a 3x3 grid, relations between groups) and a class-specific layout. Its five short
  captions (RSICD-like) name the class and one or two groups with vague quantities; its long
  description (about 65-95 words) states all of it, with shuffled sentence order, several
  templates and synonyms, so the distinguishing facts are spread over the whole length, much of
  it beyond the miniature's 32-token base context (the stand-in for CLIP's 77). The measured
  fractions are in the data report (``dgtrs_lib.data.stats``), not asserted here.
* **Classes that can be confused**: 22 fine-tuning classes in seven groups sharing backgrounds
  and objects (``CLASS_GROUPS``); half the scenes are *mixed* -- a strip of a confusable class
  along one side, covering less than the labelled class (``MIX_PROB``, ``MIX_FRAC``), as real
  scenes mix land covers -- and a distribution-shifted test view (:func:`shift_image`).

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

from dgtrs_lib.data.syndg.captions import (
                                          CLASS_PHRASES,
                                          FILLERS,
                                          N_SHORT,
                                          OPENERS,
                                          write_alt_text,
                                          write_long,
                                          write_short_captions,
)
from dgtrs_lib.data.syndg.dataset import (
                                          SHIFTS,
                                          cache_key,
                                          generate_split,
                                          generate_syndg,
                                          load_prior,
                                          load_syndg,
                                          prior_retrieval,
                                          shift_image,
                                          short_captions,
                                          syndg_classification,
                                          syndg_retention,
                                          syndg_retrieval,
)
from dgtrs_lib.data.syndg.render import class_layout, draw_objects, place_group, render_background
from dgtrs_lib.data.syndg.sample import PRIOR_SPLITS, generate_sample, render_sample, sample_ground_truth
from dgtrs_lib.data.syndg.selo_scenes import QUERY_TYPES, SELO_QUERIES, SeloScene, compose_selo_scene, write_syndg_selo
from dgtrs_lib.data.syndg.vocabulary import (
                                          ALL_CLASSES,
                                          CLASS_GROUPS,
                                          CLASS_OBJECTS,
                                          CLASSES,
                                          COLOUR_WORDS,
                                          IMAGE_SIZE,
                                          LAND_COVER_WORDS,
                                          MAX_COUNT,
                                          MIX_FRAC,
                                          MIX_PARTNERS,
                                          MIX_PROB,
                                          NUMBER_WORDS,
                                          OBJECT_TYPES,
                                          PALETTE,
                                          POSITION_WORDS,
                                          POSITIONS,
                                          PRIOR_ONLY_CLASSES,
                                          PRIOR_ONLY_OBJECTS,
                                          SHADOW,
                                          SIZE_NOUNS,
                                          SIZE_WORDS,
                                          SIZES,
                                          SPLIT_IDS,
                                          SPLITS,
                                          VERSION,
)

__all__ = ["ALL_CLASSES", "CLASSES", "CLASS_GROUPS", "CLASS_OBJECTS", "CLASS_PHRASES", "COLOUR_WORDS", "FILLERS",
           "IMAGE_SIZE", "LAND_COVER_WORDS", "MAX_COUNT", "MIX_FRAC", "MIX_PARTNERS", "MIX_PROB", "NUMBER_WORDS", "N_SHORT", "OBJECT_TYPES", "OPENERS",
           "PALETTE", "POSITIONS", "POSITION_WORDS", "PRIOR_ONLY_CLASSES", "PRIOR_ONLY_OBJECTS", "PRIOR_SPLITS",
           "QUERY_TYPES", "SELO_QUERIES", "SHADOW", "SHIFTS", "SIZES", "SIZE_NOUNS", "SIZE_WORDS", "SPLITS",
           "SPLIT_IDS", "SeloScene", "VERSION", "cache_key", "class_layout", "compose_selo_scene", "draw_objects",
           "generate_sample", "generate_split", "generate_syndg", "load_prior", "load_syndg", "place_group",
           "prior_retrieval", "render_background", "render_sample", "sample_ground_truth", "shift_image",
           "short_captions", "syndg_classification", "syndg_retention", "syndg_retrieval", "write_alt_text",
           "write_long", "write_short_captions", "write_syndg_selo"]
