"""Build your own dual-granularity dataset: the DGTRSD recipe (arXiv:2503.19311, section 3) as a tool.

The paper's training set pairs about 2 M remote-sensing images with a short caption and a long
description written by multimodal LLMs; neither the set nor the code that built it is released
(``data_cards/dgtrsd.md``). This sub-package is that recipe for a researcher's own imagery:

* :mod:`~dgtrs_lib.data.build.inputs` -- what is captioned: Sentinel-2 tiles, SynDG-RS, a folder of
  images (with optional metadata), any ``datasets`` set;
* :mod:`~dgtrs_lib.data.build.captioners` -- one interface: the metadata-to-text captioner (offline,
  true by construction), a transformers vision-language model, the condensers;
* :mod:`~dgtrs_lib.data.build.prompts` -- the documented prompts and their hash;
* :mod:`~dgtrs_lib.data.build.facts` -- the fact check of counts, colours, classes, land cover;
* :mod:`~dgtrs_lib.data.build.filters` -- refusals, token windows, CLIP agreement, duplicates;
* :mod:`~dgtrs_lib.data.build.leakage` -- pHash near copies of evaluation images;
* :mod:`~dgtrs_lib.data.build.builder`, :mod:`~dgtrs_lib.data.build.writer`,
  :mod:`~dgtrs_lib.data.build.report` -- the resumable sharded build, its report and data card;
* ``python -m dgtrs_lib.data.build`` -- the command line (:mod:`~dgtrs_lib.data.build.__main__`).

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from dgtrs_lib.data.build.builder import build_dataset
from dgtrs_lib.data.build.captioners import (
    Caption,
    Captioner,
    FirstSentenceCondenser,
    LLMCondenser,
    MetadataCaptioner,
    VLMCaptioner,
)
from dgtrs_lib.data.build.facts import check_caption, hallucination_rate
from dgtrs_lib.data.build.filters import FilterConfig
from dgtrs_lib.data.build.inputs import InputSet, Item, load_inputs
from dgtrs_lib.data.build.writer import load_built

__all__ = ["Caption", "Captioner", "FilterConfig", "FirstSentenceCondenser", "InputSet", "Item", "LLMCondenser",
           "MetadataCaptioner", "VLMCaptioner", "build_dataset", "check_caption", "hallucination_rate", "load_built",
           "load_inputs"]
