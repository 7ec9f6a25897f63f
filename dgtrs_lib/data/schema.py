"""The three dataset schemas every data source in ``dgtrs_lib.data`` returns (CONTRIBUTING.md, "Data").

* **dual** -- ``image_id, image, short_caption, long_caption, scene, meta`` (``meta``: a JSON
  string): one image with a short caption and a long description, the (image, short, long)
  triples of the paper's DGTRSD (arXiv:2503.19311, section 3). SynDG-RS and every dual loader
  (:mod:`dgtrs_lib.data.dual`) return it.
* **retrieval** -- ``image_id, image, captions: list[str]``: the Karpathy layout of RSICD /
  RSITMD / UCM-Captions (several captions per image; RemoteCLIP ``retrieval.py``).
* **classification** -- ``image_id, image, label: ClassLabel(names)``: scene classification
  (AID, RESISC45, EuroSAT...); class names live in ``features["label"].names``.

SynDG-RS (:mod:`dgtrs_lib.data.syndg`) and the loaders both build their datasets from these
definitions, so neither imports the other. ``datasets`` is imported only when a schema is built.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

DUAL_COLUMNS = ("image_id", "image", "short_caption", "long_caption", "scene", "meta")


def dual_features():
    """``datasets.Features`` of the dual-granularity schema."""
    import datasets

    return datasets.Features({
        "image_id": datasets.Value("string"), "image": datasets.Image(),
        "short_caption": datasets.Value("string"), "long_caption": datasets.Value("string"),
        "scene": datasets.Value("string"), "meta": datasets.Value("string")})


def retrieval_features():
    """``datasets.Features`` of the retrieval (Karpathy) schema."""
    import datasets

    return datasets.Features({"image_id": datasets.Value("string"), "image": datasets.Image(),
                              "captions": datasets.Sequence(datasets.Value("string"))})


def classification_features(names):
    """``datasets.Features`` of the classification schema with class ``names`` (label = index)."""
    import datasets

    return datasets.Features({"image_id": datasets.Value("string"), "image": datasets.Image(),
                              "label": datasets.ClassLabel(names=list(names))})


def dual_dataset(rows: dict):
    """A dual-schema ``datasets.Dataset`` from column lists (keys: :data:`DUAL_COLUMNS`)."""
    import datasets

    return datasets.Dataset.from_dict(rows, features=dual_features())
