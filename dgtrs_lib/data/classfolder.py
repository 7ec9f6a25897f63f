"""Scene-classification sets: folder-per-class (AID, RESISC45, EuroSAT, UCM, WHU-RS19...) and HF
datasets with a ClassLabel column.

Both return the **classification** schema of :mod:`dgtrs_lib.data.schema` (``image_id, image,
label: ClassLabel``). Class names are normalised to words (``"BaseballField"`` /
``"storage_tanks"`` -> ``"baseball field"`` / ``"storage tanks"``; :func:`normalize_class_name`)
and mapped **by name, never by index**. Without an official split, the RemoteCLIP rule applies
(RemoteCLIP, Liu et al., 2024, issue #11; :func:`remoteclip_80_20`): per class, sort by file name;
the first 80 % are train, the last 20 % test. ``protocol="full"`` keeps every image (the GeoRSCLIP
protocol). Errors, skipping and RGB conversion follow :mod:`dgtrs_lib.data.common`.

Taught in: Zero-shot scene classification (notebooks/06-zero-shot-classification.ipynb)
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dgtrs_lib.data.common import IMAGE_SUFFIXES, DataFormatError, LoadReport, check_on_error, fail, finish, image_value
from dgtrs_lib.data.schema import classification_features
from dgtrs_lib.errors import UsageError, file_not_found


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

    return datasets.Dataset.from_dict(rows, features=classification_features(names))


def remoteclip_80_20(files: list[str], split: str) -> list[str]:
    """RemoteCLIP's rule for one class: sort by file name, first 80 % train, last 20 % test."""
    if split not in ("train", "test"):
        raise UsageError(f"split must be 'train' or 'test' for the 80/20 rule, got {split!r}")
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
    check_on_error(on_error)
    if protocol not in ("full", "remoteclip_80_20"):
        raise UsageError(f"protocol must be 'full' or 'remoteclip_80_20', got {protocol!r}")
    root = Path(root)
    report = LoadReport(source=str(root))
    if not root.exists():
        raise DataFormatError(file_not_found(root, "a folder with one sub-folder of images per class"))
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
                image = image_value(f / name, item, report)
            except DataFormatError as err:
                fail(report, on_error, item, str(err).split(": ", 1)[-1])
                continue
            rows["image_id"].append(item)
            rows["image"].append(image)
            rows["label"].append(final.index(names[f.name]))
            report.loaded += 1
    return finish(_classlabel_dataset(rows, final), report, "images in the class sub-folders")


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
