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
* Captions are strings with whitespace and newlines collapsed; an empty one is an error. Fields
  that name files (``file_name``, ``filename``, ``jpg_name``) must be strings (:func:`name_field`).
* Text files must be UTF-8; a bad byte is an error naming the file and line (:func:`read_lines`).
* A set where nothing is left (every item skipped, or none at all) is an error, not an empty
  dataset (:func:`finish`); duplicate ids are an error, or a counted skip with ``on_error="skip"``
  (:class:`UniqueIds`).

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

from dgtrs_lib.errors import DataError, UsageError
from dgtrs_lib.io import png_bytes

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"}
CONVERTIBLE_MODES = {"RGB", "L", "LA", "P", "PA", "RGBA", "RGBX", "CMYK", "YCbCr", "1"}
ON_ERROR = ("raise", "skip")


class DataFormatError(DataError):
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
    ``query_type``: an optional label of the query's kind (SynDG-RS: ``region`` or ``attribute``),
    an extra field beside AIR-SLT's, reported separately when present.
    """
    image_path: str
    caption: str
    polygons: list
    sample_id: str
    query_type: str | None = None


def _utf8_error(path, data: bytes, err: UnicodeDecodeError) -> DataFormatError:
    line = data.count(b"\n", 0, err.start) + 1
    return DataFormatError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                           "expected a UTF-8 encoded file (re-save it as UTF-8)")


def read_bytes(path: Path, expected: str = "") -> bytes:
    """A file's bytes; missing or unreadable: a ``DataFormatError`` naming it (and near misses)."""
    from dgtrs_lib.errors import file_not_found

    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataFormatError(file_not_found(path) + (f"; {expected}" if expected else "")) from None
    except OSError as err:
        raise DataFormatError(f"{path}: cannot be read ({err.strerror or err}); expected a file") from None


def read_text(path: Path, expected: str = "") -> str:
    """A UTF-8 file's text; a bad byte is a ``DataFormatError`` naming the line."""
    data = read_bytes(path, expected)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _utf8_error(path, data, err) from None


def read_lines(path: Path, expected: str = "") -> list[str]:
    """The lines of a UTF-8 text file (see :func:`read_text`)."""
    return read_text(path, expected).splitlines()


def read_json(path: Path, expected: str = ""):
    """Parse a JSON file; a missing, non-UTF-8 or malformed file is a ``DataFormatError`` naming it."""
    text = read_text(path, expected)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON ({err})") from None
    except RecursionError:
        raise DataFormatError(f"{path}: JSON nested too deeply to read") from None


def name_field(value, item: str, name: str) -> str:
    """A field that names a file (``file_name``, ``filename``, ``jpg_name``): a non-empty string."""
    if not isinstance(value, str):
        raise DataFormatError(f"{item}: field {name!r} must be a string (a file name), got {type(value).__name__} "
                              f"{str(value)[:40]!r}")
    if not value.strip() or "\x00" in value:
        raise DataFormatError(f"{item}: field {name!r} is {value!r}; expected a file name")
    return value


def label_field(value, item: str, name: str) -> str:
    """An optional text field (``image_id``, ``scene``): a string or an integer, as a string."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataFormatError(f"{item}: field {name!r} must be a string, got {type(value).__name__}")
    return str(value)


class UniqueIds:
    """Ids seen so far in one load: a repeated id is a ``DataFormatError`` naming both items."""

    def __init__(self, what: str = "image_id"):
        self.what, self.first = what, {}

    def check(self, value: str, item: str) -> None:
        if value in self.first:
            raise DataFormatError(f"{item}: duplicate {self.what} {value!r} (first used by {self.first[value]}); "
                                  f"expected each {self.what} once")

    def add(self, value: str, item: str) -> None:
        self.first.setdefault(value, item)


def check_on_error(on_error: str):
    """``on_error`` must be ``"raise"`` or ``"skip"``."""
    if on_error not in ON_ERROR:
        raise UsageError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


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
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
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


def check_not_empty(report: LoadReport, expected: str = "at least one item") -> None:
    """Nothing loaded: a ``DataFormatError`` (every item skipped -- with the first reasons -- or none)."""
    if report.loaded:
        return
    if report.skipped:
        raise DataFormatError(f"{report.source}: every item was skipped ({len(report.skipped)}: "
                              + "; ".join(f"{i} ({r})" for i, r in report.skipped[:3])
                              + (" ..." if len(report.skipped) > 3 else "") + f"); expected {expected}")
    raise DataFormatError(f"{report.source}: no items; expected {expected}")


def finish(ds, report: LoadReport, expected: str = "at least one item"):
    """Log ``report`` (a warning when anything was skipped, converted or noted) and store its
    summary in ``ds.info.description``; nothing loaded is an error (:func:`check_not_empty`)."""
    check_not_empty(report, expected)
    if report.skipped or report.converted or report.notes:
        log.warning(report.summary())
    else:
        log.info(report.summary())
    ds.info.description = report.summary()
    return ds
