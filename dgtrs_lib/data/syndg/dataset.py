"""SynDG-RS as ``datasets``: generated splits, the cached profile-sized set, and its task views.

* :func:`generate_split` / :func:`generate_syndg` -- ``n`` samples per split in the dual schema
  (:mod:`dgtrs_lib.data.schema`), images stored as PNG bytes, large splits rendered by one process
  per core (each sample depends only on its seed, split and index);
* :func:`load_syndg` -- the fine-tuning set sized by a profile (``get_profile(name).syndg_sizes``),
  generated once and cached with ``save_to_disk`` under a key of generator version, seed and sizes;
* :func:`load_prior` -- the pre-training corpus of the miniature prior (``prior_sizes``), cached alike;
* task views: :func:`syndg_classification` (clean, or distribution-shifted by :func:`shift_image`),
  :func:`syndg_retention` (the prior-only classes), :func:`syndg_retrieval` (long; or five short
  captions per image) and :func:`prior_retrieval` (held-out alt-text).

Design: :mod:`dgtrs_lib.data.syndg`.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time

from dgtrs_lib.data.schema import DUAL_COLUMNS, classification_features, dual_features, retrieval_features
from dgtrs_lib.data.syndg.sample import generate_sample
from dgtrs_lib.data.syndg.vocabulary import ALL_CLASSES, CLASSES, PRIOR_ONLY_CLASSES, VERSION
from dgtrs_lib.env import usable_cpus
from dgtrs_lib.io import png_bytes
from dgtrs_lib.profiles import get_profile

log = logging.getLogger(__name__)


PARALLEL_FROM = 1000  # a split at least this long is rendered by one process per usable core


def _rows(seed: int, split: str, start: int, stop: int) -> list[dict]:
    """Samples ``start``..``stop - 1`` of ``split`` in the dual schema (PNG bytes): the unit of work
    a generator process renders."""
    rows = []
    for i in range(start, stop):
        s = generate_sample(seed, split, i)
        s["image"] = {"bytes": png_bytes(s["image"]), "path": None}
        rows.append({k: s[k] for k in DUAL_COLUMNS})
    return rows


def generate_split(n: int, split: str, seed: int = 0, progress: bool = False, *, workers: int | None = None):
    """A ``datasets.Dataset`` with ``n`` SynDG-RS samples of ``split``.

    Every sample is fully determined by ``(seed, split, index)``, so chunks of indices are rendered
    by separate processes (``workers``; default one per usable core, at most 8, when
    ``n >= PARALLEL_FROM``) and
    joined in index order: the same bytes as one process, in about 1/workers of the time."""
    import datasets

    if workers is None:
        workers = min(8, usable_cpus()) if n >= PARALLEL_FROM else 1  # each process is its own interpreter
    size = max(16, min(256, n // (4 * workers) or 1))  # a few chunks per process keep them all busy
    chunks = [(start, min(start + size, n)) for start in range(0, n, size)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"SynDG-RS {split}", leave=False)
    cols = {k: [] for k in DUAL_COLUMNS}

    def collect(rows):
        for row in rows:
            for k in cols:
                cols[k].append(row[k])
        if bar is not None:
            bar.update(len(rows))

    if workers > 1 and len(chunks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the caller may be a notebook kernel whose torch/OpenMP threads a fork would copy
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for rows in pool.map(_rows, *zip(*[(seed, split, a, b) for a, b in chunks])):
                collect(rows)
    else:
        for a, b in chunks:
            collect(_rows(seed, split, a, b))
    if bar is not None:
        bar.close()
    return datasets.Dataset.from_dict(cols, features=dual_features(), split=datasets.NamedSplit(split))


def generate_syndg(n_train: int, n_val: int, n_test: int, seed: int = 0, progress: bool = False):
    """Generate the three splits as a ``datasets.DatasetDict`` (no caching)."""
    import datasets

    return datasets.DatasetDict({
        "train": generate_split(n_train, "train", seed, progress),
        "validation": generate_split(n_val, "validation", seed, progress),
        "test": generate_split(n_test, "test", seed, progress)})


def cache_key(sizes: dict, seed: int, kind: str = "syndg") -> str:
    """The cache folder name: set kind (``syndg`` keeps the bare form), generator version, seed and
    split sizes."""
    prefix = "" if kind == "syndg" else f"{kind}-"
    return f"{prefix}v{VERSION}-s{seed}-" + "-".join(str(sizes[k]) for k in sizes)


def _cached(kind: str, sizes: dict, seed: int, refresh: bool, build):
    """``build()`` saved once under ``cache_dir("syndg")/<cache_key>`` (temporary folder, renamed),
    read back with ``load_from_disk``; a damaged cache is regenerated, loudly."""
    import datasets

    from dgtrs_lib.env import cache_dir

    target = cache_dir("syndg") / cache_key(sizes, seed, kind)
    if target.exists() and not refresh:
        try:
            return datasets.load_from_disk(str(target))
        except Exception as err:
            log.warning("SynDG-RS cache %s unreadable (%s); regenerating", target, err)
    t0 = time.perf_counter()
    dd = build()
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    dd.save_to_disk(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    log.info("SynDG-RS %s generated in %.1f s -> %s", target.name, time.perf_counter() - t0, target)
    return datasets.load_from_disk(str(target))


def load_syndg(profile: str | None = None, *, seed: int = 0, sizes: dict | None = None,
               refresh: bool = False, progress: bool = True):
    """SynDG-RS (the fine-tuning set) for a profile, generated once and cached with ``save_to_disk``.

    The cache lives in ``cache_dir("syndg")/<key>`` where the key holds the generator version, seed
    and split sizes; it is written to a temporary folder and renamed, so an interrupted run never
    leaves a half-written dataset behind.
    """
    sizes = sizes or dict(get_profile(profile).syndg_sizes)
    return _cached("syndg", sizes, seed, refresh,
                   lambda: generate_syndg(sizes["train"], sizes["validation"], sizes["test"], seed, progress))


def load_prior(profile: str | None = None, *, seed: int = 0, sizes: dict | None = None,
               refresh: bool = False, progress: bool = True):
    """The pre-training corpus of the miniature prior (``train`` and ``validation``: the ``prior``
    and ``prior_validation`` splits, alt-text captions, all 25 classes), sized by
    ``get_profile(profile).prior_sizes`` and cached like :func:`load_syndg`."""
    import datasets

    sizes = sizes or get_profile(profile).prior_sizes
    if not sizes:
        raise ValueError(f"profile {get_profile(profile).name!r} has no prior corpus (its stage 1 is not trained here)")
    sizes = dict(sizes)
    return _cached("prior", sizes, seed, refresh, lambda: datasets.DatasetDict({
        "train": generate_split(sizes["train"], "prior", seed, progress),
        "validation": generate_split(sizes["validation"], "prior_validation", seed, progress)}))


# ----------------------------------------------------------------------------- task views
_DROP = ["short_caption", "long_caption", "scene", "meta"]
SHIFTS = ("scale", "blur", "colour", "mixed")


def shift_image(image, kind: str):
    """A distribution-shifted copy of a PIL image: ``scale`` (resolution halved: down- then
    up-sampled), ``blur`` (Gaussian, radius 1 px) or ``colour`` (saturation x0.6, brightness
    x1.15, a warm cast), the three shifts a remote-sensing classifier meets across sensors."""
    from PIL import Image, ImageEnhance, ImageFilter

    image = image.convert("RGB")
    if kind == "scale":
        w, h = image.size
        return image.resize((w // 2, h // 2), Image.BILINEAR).resize((w, h), Image.BILINEAR)
    if kind == "blur":
        return image.filter(ImageFilter.GaussianBlur(1.0))
    if kind == "colour":
        image = ImageEnhance.Brightness(ImageEnhance.Color(image).enhance(0.6)).enhance(1.15)
        r, g, b = image.split()
        return Image.merge("RGB", (r.point(lambda v: min(255, int(v * 1.08))), g, b.point(lambda v: int(v * 0.88))))
    raise ValueError(f"unknown shift {kind!r}; expected one of {SHIFTS}")


def _shifted(ds, shift: str | None):
    """``ds`` with its images distribution-shifted (``None``: unchanged; ``"mixed"``: image ``i``
    gets shift ``i mod 3`` of the three)."""
    if shift is None:
        return ds
    if shift not in SHIFTS:
        raise ValueError(f"shift {shift!r}: expected None or one of {SHIFTS}")
    return ds.map(lambda b, idx: {"image": [shift_image(im, SHIFTS[i % 3] if shift == "mixed" else shift)
                                            for im, i in zip(b["image"], idx)]},
                  batched=True, with_indices=True, features=ds.features)


def syndg_classification(split: str = "test", profile: str | None = None, *, dataset=None, seed: int = 0,
                         shift: str | None = None):
    """Zero-shot classification view: ``image_id, image, label: ClassLabel(names=CLASSES)`` (22 classes).

    ``shift``: ``None`` (clean), ``"scale"``, ``"blur"``, ``"colour"`` or ``"mixed"`` (image ``i``
    gets shift ``i mod 3`` of the three; the distribution-shifted view reported beside the clean one)."""
    if shift is not None and shift not in SHIFTS:
        raise ValueError(f"shift {shift!r}: expected None or one of {SHIFTS}")
    ds = dataset if dataset is not None else load_syndg(profile, seed=seed)[split]
    features = classification_features(CLASSES)
    ds = ds.map(lambda b: {"label": [CLASSES.index(s) for s in b["scene"]]}, batched=True,
                remove_columns=_DROP, features=features)
    return _shifted(ds, shift)


def syndg_retention(profile: str | None = None, *, dataset=None, seed: int = 0, shift: str | None = None):
    """The retention test: held-out pre-training images of the three prior-only classes (golf
    course, solar farm, snowfield, never seen in fine-tuning), classified among all 25 class names
    (``label: ClassLabel(names=ALL_CLASSES)``): what fine-tuning keeps of the prior's knowledge.

    ``shift`` as in :func:`syndg_classification`. The evaluation's retention view takes the shifted
    images (``dgtrs_lib.evaluation.datasets``): on clean images the prior already scores at the
    ceiling, where forgetting cannot show (the instrument gate of issue #11)."""
    if shift is not None and shift not in SHIFTS:
        raise ValueError(f"shift {shift!r}: expected None or one of {SHIFTS}")
    ds = dataset if dataset is not None else load_prior(profile, seed=seed)["validation"]
    ds = ds.filter(lambda b: [s in PRIOR_ONLY_CLASSES for s in b["scene"]], batched=True)
    features = classification_features(ALL_CLASSES)
    ds = ds.map(lambda b: {"label": [ALL_CLASSES.index(s) for s in b["scene"]]}, batched=True,
                remove_columns=_DROP, features=features)
    return _shifted(ds, shift)


def prior_retrieval(profile: str | None = None, *, dataset=None, seed: int = 0):
    """Held-out alt-text retrieval on the pre-training corpus (Karpathy schema, one caption per
    image): the prior's own task, and what fine-tuning forgets of it."""
    ds = dataset if dataset is not None else load_prior(profile, seed=seed)["validation"]
    return ds.map(lambda b: {"captions": [[c] for c in b["short_caption"]]}, batched=True,
                  remove_columns=_DROP, features=retrieval_features())


def short_captions(row_meta: str, fallback: str) -> list[str]:
    """The five short captions of a sample (``meta["short_captions"]``), else ``[fallback]``."""
    return list(json.loads(row_meta).get("short_captions") or [fallback])


def syndg_retrieval(split: str = "test", profile: str | None = None, *, caption: str = "long",
                    dataset=None, seed: int = 0):
    """Retrieval view (Karpathy schema ``image_id, image, captions``).

    ``caption``: ``"long"`` (one description per image), ``"short"`` (the five short captions per
    image, RSITMD-style) or ``"both"`` (the first short caption, then the long one)."""
    if caption not in ("long", "short", "both"):
        raise ValueError(f"caption must be 'long', 'short' or 'both', got {caption!r}")
    ds = dataset if dataset is not None else load_syndg(profile, seed=seed)[split]
    features = retrieval_features()

    def fn(b):
        if caption == "both":
            return {"captions": [[short, long] for short, long in zip(b["short_caption"], b["long_caption"])]}
        if caption == "short":
            return {"captions": [short_captions(m, s) for m, s in zip(b["meta"], b["short_caption"])]}
        return {"captions": [[c] for c in b["long_caption"]]}

    return ds.map(fn, batched=True, remove_columns=_DROP, features=features)
