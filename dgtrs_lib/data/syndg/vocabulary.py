"""SynDG-RS's vocabulary: what a scene can hold and the words the captions use for it.

Ten scene classes (RSICD / AID-like: airport, harbor, farmland...), the object types each class
holds and their drawn shape, six saturated palette colours (backgrounds are kept away from them,
so objects can be counted by colour), three sizes in pixels with the largest count each allows,
a 3x3 grid of positions, and the synonyms the long descriptions draw from. Also the generator's
``VERSION`` (part of the cache key and of every sample's ``meta``), the 64 px image size and the
per-split seed ids. See :mod:`dgtrs_lib.data.syndg` for the design (a stand-in for DGTRSD,
arXiv:2503.19311, section 3).

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

VERSION = "1"  # bump when the generator changes: it is part of the cache key
IMAGE_SIZE = 64
SPLITS = ("train", "validation", "test")
SPLIT_IDS = {"train": 0, "validation": 1, "test": 2, "selo": 3}

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
