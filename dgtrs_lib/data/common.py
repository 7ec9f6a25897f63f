"""What every loader of a published format shares: errors, reports, image and caption checks.

The loaders (:mod:`dgtrs_lib.data.dual`, :mod:`~dgtrs_lib.data.karpathy`,
:mod:`~dgtrs_lib.data.classfolder`, :mod:`~dgtrs_lib.data.airslt`) follow one contract:

* Bad input raises :class:`DataFormatError` naming the file, item and what was expected.
* With ``on_error="skip"`` a missing/corrupt image or an empty caption is skipped instead,
  counted, and reported (log warning + the returned dataset's ``info.description``) through a
  :class:`LoadReport`.
* Images in modes ``L``, ``LA``, ``P``, ``RGBA``, ``CMYK``... are converted to RGB (counted; alpha
  is composited on black); 16-bit / float modes (``I``, ``I;16``, ``F``) need a radiometric
  stretch we cannot guess and raise an error (:func:`open_rgb`).
* Captions are strings with whitespace and newlines collapsed; an empty one is an error.

:class:`SeloSample` is the semantic-localization record of AIR-SLT (Yuan et al. 2022,
SemanticLocalizationMetrics), shared by the AIR-SLT loader, the SeLo evaluation and the
Sentinel-2 cases.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from dgtrs_lib.io import png_bytes

log = logging.getLogger(__name__)

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


def read_json(path: Path, expected: str = ""):
    """Parse a JSON file; a missing or malformed file is a ``DataFormatError`` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(f"{path}: not found" + (f"; {expected}" if expected else "")) from None
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON ({err})") from None


def check_on_error(on_error: str):
    """``on_error`` must be ``"raise"`` or ``"skip"``."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


def fail(report: LoadReport, on_error: str, item: str, reason: str):
    """A bad item: raise (``on_error="raise"``) or record it as skipped in ``report``."""
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


def image_value(path: Path, item: str, report: LoadReport) -> dict:
    """A datasets Image value: the file's path when it is RGB, else converted PNG bytes."""
    im, converted = open_rgb(path, item)
    if converted:
        report.converted += 1
        return {"bytes": png_bytes(im), "path": None}
    return {"bytes": None, "path": str(path)}


def clean_caption(value, item: str, name: str) -> str:
    """A caption field as one line of single-spaced text; not a string or empty: an error."""
    if value is None or not isinstance(value, str):
        raise DataFormatError(f"{item}: field {name!r} must be a string, got {type(value).__name__}")
    value = " ".join(value.replace("\n", " ").split())
    if not value:
        raise DataFormatError(f"{item}: field {name!r} is empty; expected a caption")
    return value


def finish(ds, report: LoadReport):
    """Log ``report`` (a warning when anything was skipped, converted or noted) and store its
    summary in ``ds.info.description``."""
    if report.skipped or report.converted or report.notes:
        log.warning(report.summary())
    else:
        log.info(report.summary())
    ds.info.description = report.summary()
    return ds
