"""Loaders for the public formats the paper's tasks use, returning the project's schemas.

Schemas (CONTRIBUTING.md):

* **dual** -- ``image_id, image, short_caption, long_caption, scene, meta`` (SynDG-RS's schema).
  Sources: a local image folder with ``metadata.jsonl`` (one JSON object per line:
  ``{"file_name": "a.png", "short_caption": "...", "long_caption": "..."}``, optional ``scene``
  and ``image_id``; the Hugging Face *imagefolder* convention), a parquet file, or any
  ``datasets.load_dataset`` source (a Hub id on Colab, a local folder in tests), and the
  ShareGPT4V JSON that Long-CLIP trains on. When a source has **only long captions**, the short
  caption is derived exactly as Long-CLIP does (``long.split(". ")[0]``, the text before the first
  ". "; Long-CLIP ``train/sharegpt4v.py``); this is logged and recorded as
  ``meta["short_caption_derived"] = "first_sentence"``.
* **retrieval** (Karpathy) -- ``image_id, image, captions: list[str]``: the Karpathy JSON used
  by RSICD / RSITMD / UCM-Captions / Sydney-Captions (``images[*].filename / split /
  sentences[*].raw``; RemoteCLIP ``retrieval.py`` keeps ``split == "test"`` and groups captions
  by filename, images sorted by name) and the ``arampacha/rsicd`` parquet schema
  (``filename, captions, image``).
* **classification** -- ``image_id, image, label: ClassLabel``: folder-per-class sets (AID,
  RESISC45, EuroSAT, UCM, WHU-RS19, ...) and HF datasets with a ClassLabel column. Class names
  are normalised to words (``"BaseballField"`` / ``"storage_tanks"`` -> ``"baseball field"`` /
  ``"storage tanks"``) and mapped **by name, never by index**. Without an official split, the
  RemoteCLIP rule applies (RemoteCLIP issue #11): per class, sort by file name; the first 80 %
  are train, the last 20 % test.
* **SeLo** -- a list of :class:`SeloSample` read from AIR-SLT's ``annotations/anno.json`` +
  ``imgs/`` (Yuan et al. 2022, SemanticLocalizationMetrics).

Bad input raises :class:`DataFormatError` naming the file, item and what was expected. With
``on_error="skip"`` a missing/corrupt image or an empty caption is skipped instead, counted, and
reported (log warning + the returned dataset's ``info.description``). Images in modes ``L``,
``LA``, ``P``, ``RGBA``, ``CMYK``... are converted to RGB (counted); 16-bit / float modes (``I``,
``I;16``, ``F``) need a radiometric stretch we cannot guess and raise an error.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dgtrs_lib.io import atomic_write_text, png_bytes

log = logging.getLogger(__name__)

DUAL_COLUMNS = ("image_id", "image", "short_caption", "long_caption", "scene", "meta")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"}
CONVERTIBLE_MODES = {"RGB", "L", "LA", "P", "PA", "RGBA", "RGBX", "CMYK", "YCbCr", "1"}
ON_ERROR = ("raise", "skip")


class DataFormatError(ValueError):
    """Input that does not match the expected published format (names the file/item/field)."""


@dataclass
class LoadReport:
    """What a loader did: items read, skipped (with reasons) and converted to RGB."""
    source: str
    loaded: int = 0
    skipped: list = field(default_factory=list)  # [(item, reason)]
    converted: int = 0
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        s = f"{self.source}: {self.loaded} loaded, {len(self.skipped)} skipped, {self.converted} converted to RGB"
        if self.skipped:
            s += "; skipped: " + "; ".join(f"{i} ({r})" for i, r in self.skipped[:5])
            s += " ..." if len(self.skipped) > 5 else ""
        return s + "".join(f"; {n}" for n in self.notes)


@dataclass
class SeloSample:
    """One semantic-localization case: a query and its ground-truth polygons on a large image.

    ``polygons``: list of float arrays of shape (N, 2), (x = column, y = row) pixels, as AIR-SLT.
    """
    image_path: str
    caption: str
    polygons: list
    sample_id: str


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _read_json(path: Path, expected: str = ""):
    """Parse a JSON file; a missing or malformed file is a ``DataFormatError`` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(f"{path}: not found" + (f"; {expected}" if expected else "")) from None
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON ({err})") from None


def _check_on_error(on_error: str):
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


def _fail(report: LoadReport, on_error: str, item: str, reason: str):
    if on_error == "raise":
        raise DataFormatError(f"{report.source}: {item}: {reason}")
    report.skipped.append((item, reason))


def open_rgb(path_or_bytes, item: str) -> tuple[Image.Image, bool]:
    """Open an image fully and return ``(RGB image, converted?)``; clear errors otherwise."""
    try:
        src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else path_or_bytes
        with Image.open(src) as im:
            im.load()
            mode = im.mode
            if mode == "RGB":
                return im.copy(), False
            if mode not in CONVERTIBLE_MODES:
                raise DataFormatError(
                    f"{item}: image mode {mode!r} (16-bit or float) cannot be converted to 8-bit RGB "
                    "without a radiometric stretch; convert it yourself (e.g. a 2-98 % stretch)")
            if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
                return Image.alpha_composite(bg, im).convert("RGB"), True
            return im.convert("RGB"), True
    except FileNotFoundError:
        raise DataFormatError(f"{item}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataFormatError(f"{item}: not a readable image ({err})") from None


def _image_value(path: Path, item: str, report: LoadReport) -> dict:
    """A datasets Image value: the file's path when it is RGB, else converted PNG bytes."""
    im, converted = open_rgb(path, item)
    if converted:
        report.converted += 1
        return {"bytes": png_bytes(im), "path": None}
    return {"bytes": None, "path": str(path)}


def first_sentence(text: str) -> str:
    """Long-CLIP's short caption: the text before the first ". " (``train/sharegpt4v.py``)."""
    return text.split(". ")[0]


def _finish(ds, report: LoadReport):
    if report.skipped or report.converted or report.notes:
        log.warning(report.summary())
    else:
        log.info(report.summary())
    ds.info.description = report.summary()
    return ds


def _dual_dataset(rows: dict):
    import datasets

    from dgtrs_lib.data.syndg import dual_features

    return datasets.Dataset.from_dict(rows, features=dual_features())


# ---------------------------------------------------------------------------------------------
# dual granularity
# ---------------------------------------------------------------------------------------------

def _caption(value, item: str, name: str) -> str:
    if value is None or not isinstance(value, str):
        raise DataFormatError(f"{item}: field {name!r} must be a string, got {type(value).__name__}")
    value = " ".join(value.replace("\n", " ").split())
    if not value:
        raise DataFormatError(f"{item}: field {name!r} is empty; expected a caption")
    return value


def load_dual_imagefolder(root, *, on_error: str = "raise", source: str | None = None):
    """Dual pairs from ``root/metadata.jsonl`` + the images it names (imagefolder layout).

    Each line: ``{"file_name": str, "long_caption": str, "short_caption": str (optional),
    "scene": str (optional), "image_id": str (optional)}``; ``file_name`` is relative to ``root``.
    A missing ``short_caption`` is derived from the long one (first sentence, see module doc).
    """
    _check_on_error(on_error)
    root = Path(root)
    meta_path = root / "metadata.jsonl"
    report = LoadReport(source=str(meta_path))
    if not meta_path.is_file():
        raise DataFormatError(f"{meta_path}: not found; expected a metadata.jsonl with one JSON object per line "
                              "(file_name, short_caption, long_caption)")
    rows = {k: [] for k in DUAL_COLUMNS}
    derived = 0
    for n, line in enumerate(meta_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = f"line {n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{meta_path}: {item}: not valid JSON ({err})") from None
        if not isinstance(rec, dict) or "file_name" not in rec or "long_caption" not in rec:
            raise DataFormatError(f"{meta_path}: {item}: expected an object with 'file_name' and 'long_caption', "
                                  f"got keys {sorted(rec) if isinstance(rec, dict) else type(rec).__name__}")
        item = f"{item} ({rec['file_name']})"
        try:
            long = _caption(rec["long_caption"], item, "long_caption")
            if rec.get("short_caption") is None:
                short, flag = first_sentence(long), True
            else:
                short, flag = _caption(rec["short_caption"], item, "short_caption"), False
            image = _image_value(root / rec["file_name"], item, report)
        except DataFormatError as err:
            _fail(report, on_error, item, str(err).split(": ", 1)[-1])
            continue
        derived += flag
        meta = {"source": source or str(root), "file_name": rec["file_name"]}
        if flag:
            meta["short_caption_derived"] = "first_sentence"
        rows["image_id"].append(str(rec.get("image_id") or Path(rec["file_name"]).stem))
        rows["image"].append(image)
        rows["short_caption"].append(short)
        rows["long_caption"].append(long)
        rows["scene"].append(str(rec.get("scene") or ""))
        rows["meta"].append(json.dumps(meta))
        report.loaded += 1
    if derived:
        report.notes.append(f"{derived} short captions derived from the long caption's first sentence (Long-CLIP rule)")
    return _finish(_dual_dataset(rows), report)


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

    from dgtrs_lib.data.syndg import dual_features

    _check_on_error(on_error)
    report = LoadReport(source=source or "dataset")
    cols = ds.column_names
    for name, col in (("image_column", image_column), ("long_column", long_column)):
        if col not in cols:
            raise DataFormatError(f"{report.source}: {name}={col!r} is not a column; columns are {cols}")
    derive = short_column is None or short_column not in cols
    ds = ds.cast_column(image_column, datasets.Image(decode=False))

    def fn(batch, indices):
        out = {k: [] for k in DUAL_COLUMNS}
        for j, i in enumerate(indices):
            rid = str(batch[id_column][j]) if id_column and id_column in batch else f"{i:06d}"
            item = f"row {i}" + (f" ({rid})" if id_column and id_column in batch else "")
            try:
                long = _caption(batch[long_column][j], item, long_column)
                short = first_sentence(long) if derive else _caption(batch[short_column][j], item, short_column)
                img = batch[image_column][j]
                if img is None or (img.get("bytes") is None and not img.get("path")):
                    raise DataFormatError(f"{item}: column {image_column!r} holds no image")
                value = {"bytes": img.get("bytes"), "path": img.get("path")}
                if verify_images:
                    im, conv = open_rgb(img["bytes"] if img.get("bytes") is not None else img["path"], item)
                    if conv:
                        report.converted += 1
                        value = {"bytes": png_bytes(im), "path": None}
            except DataFormatError as err:
                _fail(report, on_error, item, str(err).split(": ", 1)[-1])
                continue
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
    return _finish(out, report)


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
    _check_on_error(on_error)
    json_path, image_root = Path(json_path), Path(image_root)
    report = LoadReport(source=str(json_path))
    items = _read_json(json_path)
    if not isinstance(items, list):
        raise DataFormatError(f"{json_path}: expected a JSON list of items with 'image' and 'conversations'")
    rows = {k: [] for k in DUAL_COLUMNS}
    for i, it in enumerate(items[:limit] if limit else items):
        item = f"item {i}"
        if not isinstance(it, dict) or "image" not in it or "conversations" not in it:
            raise DataFormatError(f"{json_path}: {item}: expected keys 'image' and 'conversations'")
        conv = it["conversations"]
        if not isinstance(conv, list) or len(conv) < 2 or not isinstance(conv[1], dict) or "value" not in conv[1]:
            raise DataFormatError(f"{json_path}: {item}: 'conversations' must hold at least 2 turns, "
                                  "the second with a 'value' (the long caption)")
        item = f"{item} ({it['image']})"
        try:
            long = _caption(conv[1]["value"], item, "conversations[1].value")
            image = _image_value(image_root / it["image"], item, report)
        except DataFormatError as err:
            _fail(report, on_error, item, str(err).split(": ", 1)[-1])
            continue
        rows["image_id"].append(str(it.get("id", Path(it["image"]).stem)))
        rows["image"].append(image)
        rows["short_caption"].append(first_sentence(long))
        rows["long_caption"].append(long)
        rows["scene"].append("")
        rows["meta"].append(json.dumps({"source": str(json_path), "file_name": it["image"],
                                        "short_caption_derived": "first_sentence"}))
        report.loaded += 1
    report.notes.append("short captions derived from the long caption's first sentence (Long-CLIP rule)")
    return _finish(_dual_dataset(rows), report)


# ---------------------------------------------------------------------------------------------
# retrieval (Karpathy JSON; arampacha/rsicd parquet)
# ---------------------------------------------------------------------------------------------

def _retrieval_dataset(rows):
    import datasets

    features = datasets.Features({"image_id": datasets.Value("string"), "image": datasets.Image(),
                                  "captions": datasets.Sequence(datasets.Value("string"))})
    return datasets.Dataset.from_dict(rows, features=features)


def load_karpathy(json_path, image_dir, split: str | None = "test", *, capitalize: bool = False,
                  on_error: str = "raise"):
    """Karpathy-style retrieval JSON (RSICD, RSITMD, UCM-Captions, Sydney-Captions).

    Keeps ``images[*]`` with ``split == split`` (``None``: all), captions ``sentences[*].raw``
    (optionally ``.capitalize()``, RemoteCLIP's ``retrieval.py`` convention), one row per image
    sorted by filename. Duplicate captions are kept (RemoteCLIP / GeoRSCLIP do the same).
    """
    _check_on_error(on_error)
    json_path, image_dir = Path(json_path), Path(image_dir)
    report = LoadReport(source=str(json_path))
    data = _read_json(json_path, "expected a Karpathy JSON (e.g. dataset_rsicd.json)")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataFormatError(f"{json_path}: expected an object with an 'images' list (Karpathy format)")
    by_name: dict[str, list[str]] = {}
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "filename" not in im or "sentences" not in im or "split" not in im:
            raise DataFormatError(f"{json_path}: images[{i}]: expected keys 'filename', 'split', 'sentences'")
        if split is not None and im["split"] != split:
            continue
        item = f"images[{i}] ({im['filename']})"
        try:
            if not isinstance(im["sentences"], list) or not im["sentences"]:
                raise DataFormatError(f"{item}: 'sentences' is empty; expected a list of {{'raw': caption}}")
            caps = []
            for j, s in enumerate(im["sentences"]):
                if not isinstance(s, dict) or "raw" not in s:
                    raise DataFormatError(f"{item}: sentences[{j}] has no 'raw' caption")
                c = _caption(s["raw"], item, f"sentences[{j}].raw").strip()
                caps.append(c.capitalize() if capitalize else c)
        except DataFormatError as err:
            _fail(report, on_error, item, str(err).split(": ", 1)[-1])
            continue
        by_name.setdefault(im["filename"], []).extend(caps)
    rows = {"image_id": [], "image": [], "captions": []}
    for name in sorted(by_name):
        item = f"{name}"
        try:
            image = _image_value(image_dir / name, item, report)
        except DataFormatError as err:
            _fail(report, on_error, item, str(err).split(": ", 1)[-1])
            continue
        rows["image_id"].append(name)
        rows["image"].append(image)
        rows["captions"].append(by_name[name])
        report.loaded += 1
    if not rows["image_id"]:
        raise DataFormatError(f"{json_path}: no images with split == {split!r}")
    return _finish(_retrieval_dataset(rows), report)


def rsicd_hf_to_retrieval(ds, *, capitalize: bool = False, source: str = "arampacha/rsicd"):
    """The ``arampacha/rsicd`` schema (``filename, captions, image``) -> retrieval schema, sorted by name."""
    expected = {"filename", "captions", "image"}
    if not expected <= set(ds.column_names):
        raise DataFormatError(f"{source}: expected columns {sorted(expected)}, got {ds.column_names}")
    ds = ds.sort("filename")

    def fn(b):
        out = []
        for name, caps in zip(b["filename"], b["captions"]):
            if not caps or any(not isinstance(c, str) or not c.strip() for c in caps):
                raise DataFormatError(f"{source}: {name}: empty caption list or empty caption")
            out.append([c.strip().capitalize() if capitalize else c.strip() for c in caps])
        return {"image_id": b["filename"], "captions": out}

    ds = ds.map(fn, batched=True, remove_columns=["filename"])
    return ds.select_columns(["image_id", "image", "captions"])


def load_rsicd_parquet(path_or_id: str, split: str = "test", **kwargs):
    """RSICD from a parquet file or the ``arampacha/rsicd`` Hub dataset (split ``valid``, not ``validation``)."""
    import datasets

    p = Path(path_or_id)
    if p.suffix == ".parquet":
        if not p.is_file():
            raise DataFormatError(f"{p}: parquet file not found")
        ds = datasets.Dataset.from_parquet(str(p))
    else:
        ds = datasets.load_dataset(path_or_id, split=split)
    return rsicd_hf_to_retrieval(ds, source=str(path_or_id), **kwargs)


# ---------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------

def normalize_class_name(name: str) -> str:
    """``"BaseballField"`` -> ``"baseball field"``; ``"storage_tanks"`` -> ``"storage tanks"``.

    Splits CamelCase (keeping acronyms), replaces ``_``, ``-`` and ``/`` by spaces, lower-cases.
    It is mechanical: use a per-dataset table (``class_map``) for real renames (EuroSAT ``SeaLake``
    -> ``"sea or lake"``).
    """
    s = re.sub(r"[_\-/]+", " ", name.strip())
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", s)
    return " ".join(s.lower().split())


def _classlabel_dataset(rows, names):
    import datasets

    features = datasets.Features({"image_id": datasets.Value("string"), "image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=list(names))})
    return datasets.Dataset.from_dict(rows, features=features)


def remoteclip_80_20(files: list[str], split: str) -> list[str]:
    """RemoteCLIP's rule for one class: sort by file name, first 80 % train, last 20 % test."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test' for the 80/20 rule, got {split!r}")
    files = sorted(files)
    cut = int(round(0.8 * len(files)))
    return files[:cut] if split == "train" else files[cut:]


def load_class_folder(root, *, protocol: str = "full", split: str = "test", class_map: dict | None = None,
                      on_error: str = "raise"):
    """A folder-per-class scene set (``root/<Class>/<image>``) as a classification dataset.

    ``protocol``: ``"full"`` (every image; the GeoRSCLIP protocol) or ``"remoteclip_80_20"``
    (``split`` = ``train``/``test`` by :func:`remoteclip_80_20`). Class names are the folder
    names normalised by :func:`normalize_class_name`, then renamed by ``class_map`` (keys: folder or
    normalised name). Labels index the sorted final names.
    """
    _check_on_error(on_error)
    if protocol not in ("full", "remoteclip_80_20"):
        raise ValueError(f"protocol must be 'full' or 'remoteclip_80_20', got {protocol!r}")
    root = Path(root)
    report = LoadReport(source=str(root))
    if not root.is_dir():
        raise DataFormatError(f"{root}: not a folder; expected one sub-folder of images per class")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataFormatError(f"{root}: no class sub-folders found")
    class_map = class_map or {}
    names = {f.name: class_map.get(f.name, class_map.get(normalize_class_name(f.name), normalize_class_name(f.name)))
             for f in folders}
    if len(set(names.values())) != len(names):
        raise DataFormatError(f"{root}: two folders map to the same class name: {names}")
    final = sorted(set(names.values()))
    rows = {"image_id": [], "image": [], "label": []}
    for f in folders:
        files = [p.name for p in f.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            report.notes.append(f"class folder {f.name!r} holds no images")
            continue
        if protocol == "remoteclip_80_20":
            files = remoteclip_80_20(files, split)
        for name in sorted(files):
            item = f"{f.name}/{name}"
            try:
                image = _image_value(f / name, item, report)
            except DataFormatError as err:
                _fail(report, on_error, item, str(err).split(": ", 1)[-1])
                continue
            rows["image_id"].append(item)
            rows["image"].append(image)
            rows["label"].append(final.index(names[f.name]))
            report.loaded += 1
    return _finish(_classlabel_dataset(rows, final), report)


def to_classification(ds, *, label_column: str = "label", image_column: str = "image",
                      id_column: str | None = None, class_map: dict | None = None, source: str = "dataset"):
    """Normalise a HF classification dataset (ClassLabel column) to ``image_id, image, label``.

    The new label names are the old ClassLabel *names* normalised (and renamed by ``class_map``);
    every row is re-indexed through its name, so a different index order upstream cannot shift
    labels.
    """
    import datasets

    if label_column not in ds.column_names or image_column not in ds.column_names:
        raise DataFormatError(f"{source}: expected columns {label_column!r} and {image_column!r}, got {ds.column_names}")
    feat = ds.features[label_column]
    if not isinstance(feat, datasets.ClassLabel):
        raise DataFormatError(f"{source}: column {label_column!r} is {feat}, expected a ClassLabel with names")
    class_map = class_map or {}
    new = [class_map.get(n, class_map.get(normalize_class_name(n), normalize_class_name(n))) for n in feat.names]
    if len(set(new)) != len(new):
        raise DataFormatError(f"{source}: class names collide after normalisation: {new}")
    final = sorted(new)
    remap = np.array([final.index(n) for n in new])

    def fn(b, idx):
        return {"label": [int(remap[x]) for x in b[label_column]],
                "image_id": [str(v) for v in (b[id_column] if id_column else idx)]}

    out = ds.map(fn, batched=True, with_indices=True,
                 remove_columns=[c for c in ds.column_names if c != image_column])
    if image_column != "image":
        out = out.rename_column(image_column, "image")
    out = out.cast_column("label", datasets.ClassLabel(names=final))
    return out.select_columns(["image_id", "image", "label"])


# ---------------------------------------------------------------------------------------------
# AIR-SLT (semantic localization)
# ---------------------------------------------------------------------------------------------

def _polygon(poly, item: str) -> np.ndarray:
    try:
        arr = np.asarray(poly, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFormatError(f"{item}: a polygon must be a list of [x, y] numbers") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 3 or not np.isfinite(arr).all():
        raise DataFormatError(f"{item}: a polygon must be >= 3 finite [x, y] points, got shape {arr.shape}")
    return arr


def load_airslt(root, *, check_images: bool = True, on_error: str = "raise") -> list[SeloSample]:
    """AIR-SLT cases from ``root/annotations/anno.json`` (list of ``{"caption", "jpg_name", "points"}``)
    and ``root/imgs/<jpg_name>``. Polygons are (N, 2) arrays of (x, y) pixels, checked to lie
    inside the image when ``check_images``.
    """
    _check_on_error(on_error)
    root = Path(root)
    anno = root / "annotations" / "anno.json"
    report = LoadReport(source=str(anno))
    items = _read_json(anno, "expected the AIR-SLT layout root/annotations/anno.json + root/imgs/")
    if not isinstance(items, list):
        raise DataFormatError(f"{anno}: expected a JSON list of {{caption, jpg_name, points}}")
    sizes: dict[str, tuple] = {}
    out = []
    for i, it in enumerate(items):
        item = f"item {i}"
        if not isinstance(it, dict) or not {"caption", "jpg_name", "points"} <= set(it):
            raise DataFormatError(f"{anno}: {item}: expected keys 'caption', 'jpg_name', 'points'")
        item = f"item {i} ({it['jpg_name']})"
        try:
            caption = _caption(it["caption"], item, "caption")
            if not isinstance(it["points"], list) or not it["points"]:
                raise DataFormatError(f"{item}: 'points' must be a non-empty list of polygons")
            polys = [_polygon(p, item) for p in it["points"]]
            path = root / "imgs" / it["jpg_name"]
            if check_images:
                if it["jpg_name"] not in sizes:
                    try:
                        with Image.open(path) as im:
                            sizes[it["jpg_name"]] = im.size
                    except FileNotFoundError:
                        raise DataFormatError(f"{item}: image {path} not found") from None
                    except (UnidentifiedImageError, OSError) as err:
                        raise DataFormatError(f"{item}: image {path} unreadable ({err})") from None
                w, h = sizes[it["jpg_name"]]
                for p in polys:
                    if p[:, 0].min() < -1 or p[:, 1].min() < -1 or p[:, 0].max() > w + 1 or p[:, 1].max() > h + 1:
                        raise DataFormatError(f"{item}: polygon outside the {w}x{h} image")
        except DataFormatError as err:
            _fail(report, on_error, item, str(err).split(": ", 1)[-1])
            continue
        out.append(SeloSample(image_path=str(path), caption=caption, polygons=polys, sample_id=f"{i}"))
        report.loaded += 1
    (log.warning if report.skipped else log.info)(report.summary())
    return out


def write_airslt(root, samples: list[dict]) -> Path:
    """Write ``anno.json`` (AIR-SLT format) atomically; ``samples`` are ``{caption, jpg_name, points}``."""
    root = Path(root)
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    clean = [{"caption": s["caption"], "jpg_name": s["jpg_name"],
              "points": [[[float(x), float(y)] for x, y in np.asarray(p)] for p in s["points"]]} for s in samples]
    return atomic_write_text(root / "annotations" / "anno.json", json.dumps(clean, indent=1))
