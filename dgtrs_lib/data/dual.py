"""Dual-granularity pairs (image, short caption, long description) from the published layouts.

All loaders return the **dual** schema of :mod:`dgtrs_lib.data.schema` (``image_id, image,
short_caption, long_caption, scene, meta``), the schema of SynDG-RS and of the paper's DGTRSD
(arXiv:2503.19311, section 3). Sources:

* a local image folder with ``metadata.jsonl`` (one JSON object per line:
  ``{"file_name": "a.png", "short_caption": "...", "long_caption": "..."}``, optional ``scene``
  and ``image_id``; the Hugging Face *imagefolder* convention): :func:`load_dual_imagefolder`;
* a parquet file (:func:`load_dual_parquet`) or any ``datasets.load_dataset`` source (a Hub id on
  Colab, a local folder in tests; :func:`load_dual_hf`), mapped by :func:`to_dual`;
* the ShareGPT4V JSON that Long-CLIP trains on (:func:`load_sharegpt4v`).

When a source has **only long captions**, the short caption is derived exactly as Long-CLIP
(Zhang et al., 2024) does in ``train/sharegpt4v.py``: ``long.split(". ")[0]``, the text before the
first ". " (:func:`first_sentence`); this is logged and recorded as
``meta["short_caption_derived"] = "first_sentence"``. Errors, skipping and RGB conversion follow
:mod:`dgtrs_lib.data.common`.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

import json
from pathlib import Path

from dgtrs_lib.data.common import (
    DataFormatError,
    LoadReport,
    UniqueIds,
    check_on_error,
    clean_caption,
    fail,
    finish,
    image_value,
    label_field,
    name_field,
    open_rgb,
    read_json,
    read_lines,
)
from dgtrs_lib.data.schema import DUAL_COLUMNS, dual_dataset, dual_features
from dgtrs_lib.io import png_bytes


def first_sentence(text: str) -> str:
    """Long-CLIP's short caption: the text before the first ". " (``train/sharegpt4v.py``)."""
    return text.split(". ")[0]


def load_dual_imagefolder(root, *, on_error: str = "raise", source: str | None = None):
    """Dual pairs from ``root/metadata.jsonl`` + the images it names (imagefolder layout).

    Each line: ``{"file_name": str, "long_caption": str, "short_caption": str (optional),
    "scene": str (optional), "image_id": str (optional)}``; ``file_name`` is relative to ``root``.
    A missing ``short_caption`` is derived from the long one (first sentence, see module doc).
    The image id (``image_id``, else the file name's stem) must be unique: a repeat is an error
    (``on_error="skip"``: the later line is skipped and counted).
    """
    check_on_error(on_error)
    root = Path(root)
    meta_path = root / "metadata.jsonl"
    report = LoadReport(source=str(meta_path))
    if not meta_path.is_file():
        raise DataFormatError(f"{meta_path}: not found; expected a metadata.jsonl with one JSON object per line "
                              "(file_name, short_caption, long_caption)")
    rows = {k: [] for k in DUAL_COLUMNS}
    derived = 0
    ids = UniqueIds("image_id")
    for n, line in enumerate(read_lines(meta_path), 1):
        if not line.strip():
            continue
        item = f"line {n}"
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as err:
            raise DataFormatError(f"{meta_path}: {item}: not valid JSON ({err})") from None
        if not isinstance(rec, dict) or "file_name" not in rec or "long_caption" not in rec:
            raise DataFormatError(f"{meta_path}: {item}: expected an object with 'file_name' and 'long_caption', "
                                  f"got {'keys ' + str(sorted(rec)) if isinstance(rec, dict) else type(rec).__name__}")
        file_name = name_field(rec["file_name"], f"{meta_path}: {item}", "file_name")
        item = f"{item} ({file_name})"
        try:
            long = clean_caption(rec["long_caption"], item, "long_caption")
            if rec.get("short_caption") is None:
                short, flag = first_sentence(long), True
            else:
                short, flag = clean_caption(rec["short_caption"], item, "short_caption"), False
            image_id = label_field(rec["image_id"], item, "image_id") if rec.get("image_id") is not None \
                else Path(file_name).stem
            scene = label_field(rec["scene"], item, "scene") if rec.get("scene") is not None else ""
            ids.check(image_id, item)
            image = image_value(root / file_name, item, report)
        except DataFormatError as err:
            fail(report, on_error, item, str(err).split(": ", 1)[-1])
            continue
        ids.add(image_id, item)
        derived += flag
        meta = {"source": source or str(root), "file_name": file_name}
        if flag:
            meta["short_caption_derived"] = "first_sentence"
        rows["image_id"].append(image_id)
        rows["image"].append(image)
        rows["short_caption"].append(short)
        rows["long_caption"].append(long)
        rows["scene"].append(scene)
        rows["meta"].append(json.dumps(meta))
        report.loaded += 1
    if derived:
        report.notes.append(f"{derived} short captions derived from the long caption's first sentence (Long-CLIP rule)")
    return finish(dual_dataset(rows), report)


def to_dual(ds, *, long_column: str = "long_caption", short_column: str | None = "short_caption",
            image_column: str = "image", id_column: str | None = None, scene_column: str | None = None,
            source: str = "", on_error: str = "raise", verify_images: bool = True):
    """Map any ``datasets.Dataset`` with an image and a long caption onto the dual schema.

    ``short_column=None`` (or absent from the dataset) derives the short caption as Long-CLIP does.
    Runs as a batched ``Dataset.map`` (written to Arrow on disk, so Hub-sized sets do not fill
    memory). With ``verify_images`` every image is decoded once: non-RGB ones are converted
    (counted), unreadable ones raise or are skipped (``on_error``). ``verify_images=False`` only
    checks that each row holds image bytes or a path and keeps the bytes as they are -- faster for
    very large sets, but a corrupt file then fails later, when it is decoded.
    """
    import datasets

    check_on_error(on_error)
    report = LoadReport(source=source or "dataset")
    cols = ds.column_names
    for name, col in (("image_column", image_column), ("long_column", long_column)):
        if col not in cols:
            raise DataFormatError(f"{report.source}: {name}={col!r} is not a column; columns are {cols}")
    derive = short_column is None or short_column not in cols
    ds = ds.cast_column(image_column, datasets.Image(decode=False))
    ids = UniqueIds(f"{id_column} value") if id_column else None

    def fn(batch, indices):
        out = {k: [] for k in DUAL_COLUMNS}
        for j, i in enumerate(indices):
            rid = str(batch[id_column][j]) if id_column and id_column in batch else f"{i:06d}"
            item = f"row {i}" + (f" ({rid})" if id_column and id_column in batch else "")
            try:
                long = clean_caption(batch[long_column][j], item, long_column)
                short = first_sentence(long) if derive else clean_caption(batch[short_column][j], item, short_column)
                img = batch[image_column][j]
                if img is None or (img.get("bytes") is None and not img.get("path")):
                    raise DataFormatError(f"{item}: column {image_column!r} holds no image")
                value = {"bytes": img.get("bytes"), "path": img.get("path")}
                if verify_images:
                    im, conv = open_rgb(img["bytes"] if img.get("bytes") is not None else img["path"], item)
                    if conv:
                        report.converted += 1
                        value = {"bytes": png_bytes(im), "path": None}
                if ids is not None:
                    ids.check(rid, item)
            except DataFormatError as err:
                fail(report, on_error, item, str(err).split(": ", 1)[-1])
                continue
            if ids is not None:
                ids.add(rid, item)
            meta = {"source": report.source}
            if derive:
                meta["short_caption_derived"] = "first_sentence"
            out["image_id"].append(rid)
            out["image"].append(value)
            out["short_caption"].append(short)
            out["long_caption"].append(long)
            out["scene"].append(str(batch[scene_column][j]) if scene_column and scene_column in batch else "")
            out["meta"].append(json.dumps(meta))
            report.loaded += 1
        return out

    out = ds.map(fn, batched=True, with_indices=True, remove_columns=cols, features=dual_features(),
                 load_from_cache_file=False, desc=f"dual pairs from {report.source}")
    if derive:
        report.notes.append("short captions derived from the long caption's first sentence (Long-CLIP rule)")
    return finish(out, report)


def load_dual_parquet(path, **kwargs):
    """Dual pairs from a parquet file (HF layout: ``image`` struct ``{bytes, path}`` + caption columns)."""
    import datasets

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: parquet file not found")
    try:
        ds = datasets.Dataset.from_parquet(str(path))
    except Exception as err:
        raise DataFormatError(f"{path}: not a readable parquet file ({err})") from None
    return to_dual(ds, source=str(path), **kwargs)


def load_dual_hf(name_or_path: str, split: str = "train", **kwargs):
    """Dual pairs from ``datasets.load_dataset(name_or_path, split=split)`` (a Hub id or a local folder)."""
    import datasets

    load_kwargs = {k: kwargs.pop(k) for k in ("revision", "data_files", "streaming") if k in kwargs}
    ds = datasets.load_dataset(name_or_path, split=split, **load_kwargs)
    return to_dual(ds, source=f"{name_or_path}[{split}]", **kwargs)


def load_sharegpt4v(json_path, image_root, *, limit: int | None = None, on_error: str = "raise"):
    """Long-only pairs from a ShareGPT4V-style JSON, as Long-CLIP's ``train/sharegpt4v.py`` reads them.

    Items ``{"id", "image": relative path, "conversations": [{"from": "human", ...},
    {"from": "gpt", "value": long caption}]}``; the long caption is ``conversations[1].value``
    (newlines to spaces) and the short one its first sentence (flagged in ``meta``).
    """
    check_on_error(on_error)
    json_path, image_root = Path(json_path), Path(image_root)
    report = LoadReport(source=str(json_path))
    items = read_json(json_path)
    if not isinstance(items, list):
        raise DataFormatError(f"{json_path}: expected a JSON list of items with 'image' and 'conversations'")
    rows = {k: [] for k in DUAL_COLUMNS}
    ids = UniqueIds("id")
    for i, it in enumerate(items[:limit] if limit else items):
        item = f"item {i}"
        if not isinstance(it, dict) or "image" not in it or "conversations" not in it:
            raise DataFormatError(f"{json_path}: {item}: expected keys 'image' and 'conversations'")
        conv = it["conversations"]
        if not isinstance(conv, list) or len(conv) < 2 or not isinstance(conv[1], dict) or "value" not in conv[1]:
            raise DataFormatError(f"{json_path}: {item}: 'conversations' must hold at least 2 turns, "
                                  "the second with a 'value' (the long caption)")
        image_name = name_field(it["image"], f"{json_path}: {item}", "image")
        item = f"{item} ({image_name})"
        try:
            long = clean_caption(conv[1]["value"], item, "conversations[1].value")
            image_id = label_field(it["id"], item, "id") if it.get("id") is not None else Path(image_name).stem
            ids.check(image_id, item)
            image = image_value(image_root / image_name, item, report)
        except DataFormatError as err:
            fail(report, on_error, item, str(err).split(": ", 1)[-1])
            continue
        ids.add(image_id, item)
        rows["image_id"].append(image_id)
        rows["image"].append(image)
        rows["short_caption"].append(first_sentence(long))
        rows["long_caption"].append(long)
        rows["scene"].append("")
        rows["meta"].append(json.dumps({"source": str(json_path), "file_name": image_name,
                                        "short_caption_derived": "first_sentence"}))
        report.loaded += 1
    report.notes.append("short captions derived from the long caption's first sentence (Long-CLIP rule)")
    return finish(dual_dataset(rows), report)
