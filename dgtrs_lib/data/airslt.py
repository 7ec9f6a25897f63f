"""Semantic-localization (SeLo) cases in the AIR-SLT layout (Yuan et al., 2022, "Learning to
Evaluate Performance of Multi-modal Semantic Localization", SemanticLocalizationMetrics).

The layout: ``root/annotations/anno.json``, a JSON list of ``{"caption", "jpg_name", "points"}``
(``points``: a list of polygons of ``[x, y]`` pixels, x = column, y = row), and the large images
in ``root/imgs/<jpg_name>``. :func:`load_airslt` reads it into :class:`SeloSample` records (polygons
checked to be >= 3 finite points inside the image); :func:`write_airslt` writes ``anno.json``
atomically (SynDG-RS SeLo scenes and the Sentinel-2 cases are written in this layout). Errors and
skipping follow :mod:`dgtrs_lib.data.common`.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dgtrs_lib.data.common import (
    DataFormatError,
    LoadReport,
    SeloSample,
    check_not_empty,
    check_on_error,
    clean_caption,
    fail,
    name_field,
    read_json,
)
from dgtrs_lib.errors import file_not_found
from dgtrs_lib.io import atomic_write_text

log = logging.getLogger(__name__)


def _polygon(poly, item: str) -> np.ndarray:
    try:
        arr = np.asarray(poly, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise DataFormatError(f"{item}: a polygon must be a list of [x, y] numbers") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 3 or not np.isfinite(arr).all():
        raise DataFormatError(f"{item}: a polygon must be >= 3 finite [x, y] points, got shape {arr.shape}")
    return arr


def load_airslt(root, *, check_images: bool = True, on_error: str = "raise") -> list[SeloSample]:
    """AIR-SLT cases from ``root/annotations/anno.json`` (list of ``{"caption", "jpg_name", "points"}``)
    and ``root/imgs/<jpg_name>``. Polygons are (N, 2) arrays of (x, y) pixels, checked to lie
    inside the image when ``check_images``.
    """
    check_on_error(on_error)
    root = Path(root)
    anno = root / "annotations" / "anno.json"
    report = LoadReport(source=str(anno))
    if not root.is_dir():
        raise DataFormatError(file_not_found(root, "an AIR-SLT folder holding annotations/anno.json and imgs/"))
    items = read_json(anno, "expected the AIR-SLT layout root/annotations/anno.json + root/imgs/")
    if not isinstance(items, list):
        raise DataFormatError(f"{anno}: expected a JSON list of {{caption, jpg_name, points}}")
    sizes: dict[str, tuple] = {}
    out = []
    for i, it in enumerate(items):
        item = f"item {i}"
        if not isinstance(it, dict) or not {"caption", "jpg_name", "points"} <= set(it):
            raise DataFormatError(f"{anno}: {item}: expected keys 'caption', 'jpg_name', 'points'")
        jpg_name = name_field(it["jpg_name"], f"{anno}: {item}", "jpg_name")
        item = f"item {i} ({jpg_name})"
        try:
            caption = clean_caption(it["caption"], item, "caption")
            if not isinstance(it["points"], list) or not it["points"]:
                raise DataFormatError(f"{item}: 'points' must be a non-empty list of polygons")
            polys = [_polygon(p, item) for p in it["points"]]
            query_type = it.get("query_type")
            if query_type is not None and (not isinstance(query_type, str) or not query_type.strip()):
                raise DataFormatError(f"{item}: 'query_type' must be a non-empty string when present, "
                                      f"got {query_type!r}")
            path = root / "imgs" / jpg_name
            if check_images:
                if jpg_name not in sizes:
                    try:
                        with Image.open(path) as im:
                            sizes[jpg_name] = im.size
                    except FileNotFoundError:
                        raise DataFormatError(f"{item}: image {path} not found") from None
                    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
                        raise DataFormatError(f"{item}: image {path} unreadable ({err})") from None
                w, h = sizes[jpg_name]
                for p in polys:
                    if p[:, 0].min() < -1 or p[:, 1].min() < -1 or p[:, 0].max() > w + 1 or p[:, 1].max() > h + 1:
                        raise DataFormatError(f"{item}: polygon outside the {w}x{h} image")
        except DataFormatError as err:
            fail(report, on_error, item, str(err).split(": ", 1)[-1])
            continue
        out.append(SeloSample(image_path=str(path), caption=caption, polygons=polys, sample_id=f"{i}",
                              query_type=query_type))
        report.loaded += 1
    check_not_empty(report, "at least one {caption, jpg_name, points} case")
    (log.warning if report.skipped else log.info)(report.summary())
    return out


def write_airslt(root, samples: list[dict]) -> Path:
    """Write ``anno.json`` (AIR-SLT format) atomically; ``samples`` are ``{caption, jpg_name, points}``."""
    root = Path(root)
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    clean = [{"caption": s["caption"], "jpg_name": s["jpg_name"],
              "points": [[[float(x), float(y)] for x, y in np.asarray(p)] for p in s["points"]]} for s in samples]
    return atomic_write_text(root / "annotations" / "anno.json", json.dumps(clean, indent=1))
