"""SynDG-RS as ``datasets``: generated splits, the cached profile-sized set, and its task views.

* :func:`generate_split` / :func:`generate_syndg` -- ``n`` samples per split in the dual schema
  (:mod:`dgtrs_lib.data.schema`), images stored as PNG bytes;
* :func:`load_syndg` -- the set sized by a profile (``get_profile(name).syndg_sizes``), generated
  once and cached with ``save_to_disk`` under a key of generator version, seed and sizes;
* :func:`syndg_classification` / :func:`syndg_retrieval` -- the zero-shot classification and the
  retrieval (Karpathy) views of a split.

Design: :mod:`dgtrs_lib.data.syndg`.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

import logging
import os
import shutil
import time

from dgtrs_lib.data.schema import DUAL_COLUMNS, classification_features, dual_features, retrieval_features
from dgtrs_lib.data.syndg.sample import generate_sample
from dgtrs_lib.data.syndg.vocabulary import CLASSES, VERSION
from dgtrs_lib.io import png_bytes
from dgtrs_lib.profiles import get_profile

log = logging.getLogger(__name__)


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
    """The cache folder name: generator version, seed and split sizes."""
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
            return {"captions": [[short, long] for short, long in zip(b["short_caption"], b["long_caption"])]}
        return {"captions": [[c] for c in b[f"{caption}_caption"]]}

    return ds.map(fn, batched=True, remove_columns=["short_caption", "long_caption", "scene", "meta"],
                  features=features)
