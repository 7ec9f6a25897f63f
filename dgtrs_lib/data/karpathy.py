"""Retrieval sets in the Karpathy layout: RSICD, RSITMD, UCM-Captions, Sydney-Captions.

Both loaders return the **retrieval** schema of :mod:`dgtrs_lib.data.schema` (``image_id, image,
captions: list[str]``), one row per image sorted by file name:

* the Karpathy JSON (``images[*].filename / split / sentences[*].raw``) these sets ship with; as
  in RemoteCLIP's ``retrieval.py`` (Liu et al., 2024) the ``split == "test"`` images are kept and
  their captions grouped by file name (:func:`load_karpathy`);
* the ``arampacha/rsicd`` parquet / Hub schema (``filename, captions, image``;
  :func:`rsicd_hf_to_retrieval`, :func:`load_rsicd_parquet`).

Errors, skipping and RGB conversion follow :mod:`dgtrs_lib.data.common`.

Taught in: Short-text cross-modal retrieval (notebooks/05-short-text-retrieval.ipynb)
"""
from __future__ import annotations

from pathlib import Path

from dgtrs_lib.data.common import (
    DataFormatError,
    LoadReport,
    check_on_error,
    clean_caption,
    fail,
    finish,
    image_value,
    name_field,
    read_json,
)
from dgtrs_lib.data.schema import retrieval_features
from dgtrs_lib.errors import file_not_found


def _retrieval_dataset(rows):
    import datasets

    return datasets.Dataset.from_dict(rows, features=retrieval_features())


def load_karpathy(json_path, image_dir, split: str | None = "test", *, capitalize: bool = False,
                  on_error: str = "raise"):
    """Karpathy-style retrieval JSON (RSICD, RSITMD, UCM-Captions, Sydney-Captions).

    Keeps ``images[*]`` with ``split == split`` (``None``: all), captions ``sentences[*].raw``
    (optionally ``.capitalize()``, RemoteCLIP's ``retrieval.py`` convention), one row per image
    sorted by filename. Duplicate captions are kept (RemoteCLIP / GeoRSCLIP do the same); entries
    that repeat a file name are grouped under it, and counted in the report's notes.
    """
    check_on_error(on_error)
    json_path, image_dir = Path(json_path), Path(image_dir)
    report = LoadReport(source=str(json_path))
    data = read_json(json_path, "expected a Karpathy JSON (e.g. dataset_rsicd.json)")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataFormatError(f"{json_path}: expected an object with an 'images' list (Karpathy format)")
    if not image_dir.is_dir():
        raise DataFormatError(file_not_found(image_dir, "the folder holding the JSON's images"))
    by_name: dict[str, list[str]] = {}
    repeated = 0
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "filename" not in im or "sentences" not in im or "split" not in im:
            raise DataFormatError(f"{json_path}: images[{i}]: expected keys 'filename', 'split', 'sentences'")
        if split is not None and im["split"] != split:
            continue
        filename = name_field(im["filename"], f"{json_path}: images[{i}]", "filename")
        item = f"images[{i}] ({filename})"
        try:
            if not isinstance(im["sentences"], list) or not im["sentences"]:
                raise DataFormatError(f"{item}: 'sentences' is empty; expected a list of {{'raw': caption}}")
            caps = []
            for j, s in enumerate(im["sentences"]):
                if not isinstance(s, dict) or "raw" not in s:
                    raise DataFormatError(f"{item}: sentences[{j}] has no 'raw' caption")
                c = clean_caption(s["raw"], item, f"sentences[{j}].raw").strip()
                caps.append(c.capitalize() if capitalize else c)
        except DataFormatError as err:
            fail(report, on_error, item, str(err).split(": ", 1)[-1])
            continue
        repeated += filename in by_name
        by_name.setdefault(filename, []).extend(caps)
    rows = {"image_id": [], "image": [], "captions": []}
    for name in sorted(by_name):
        item = f"{name}"
        try:
            image = image_value(image_dir / name, item, report)
        except DataFormatError as err:
            fail(report, on_error, item, str(err).split(": ", 1)[-1])
            continue
        rows["image_id"].append(name)
        rows["image"].append(image)
        rows["captions"].append(by_name[name])
        report.loaded += 1
    if not rows["image_id"] and not report.skipped:
        raise DataFormatError(f"{json_path}: no images with split == {split!r}")
    if repeated:
        report.notes.append(f"{repeated} entries repeat a file name; their captions were grouped under it")
    return finish(_retrieval_dataset(rows), report, f"images with split == {split!r}")


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
