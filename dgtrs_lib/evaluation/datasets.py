"""The evaluation data: dataset specs and the three views the four tasks read.

A spec names a dataset (``parse_dataset_spec``): ``syndg`` and ``sentinel`` are the offline defaults
(the SynDG-RS test split, ``dgtrs_lib.data.syndg``; real Sentinel-2 patches and scene,
``dgtrs_lib.data.sentinel``), with three more embedded views: ``syndg-shift`` (the test split
under scale / blur / colour shift), ``syndg-retention`` (the prior-only classes, classified among
all 25 names, under the same shift: on clean images the prior sits at the ceiling) and ``syndg-prior`` (held-out alt-text retrieval of the prior's corpus); the public benchmarks of DGTRS-CLIP's evaluation (arXiv:2503.19311,
``chen2025dgtrs``) come in their published layouts, read by the loaders of ``dgtrs_lib.data`` (``karpathy``, ``classfolder``, ``airslt``):
``karpathy:NAME:JSON:IMAGE_DIR`` (RSICD ``lu2018rsicd``, RSITMD ``yuan2022rsitmd``, UCM),
``folder:NAME:ROOT[:remoteclip_80_20]`` (AID ``xia2017aid``, RESISC45 ``cheng2017resisc45``, EuroSAT
``helber2019eurosat``) and ``airslt:NAME:ROOT`` (AIR-SLT, ``yuan2022selo``).

Views: ``retrieval_data`` (``image, captions``), ``classification_data`` (``image, label``) and
``selo_data`` (AIR-SLT samples + tiling scales: the reference 256/512/768 for real AIR-SLT, 1/4 of
it for the embedded scenes at the 64 px miniature's scale). A profile's ``eval_limit`` caps the
embedded sets.

``check_dataset_spec(spec, task)`` is what the evaluation runs before it loads a model: the kind
has a view for the task and the files the spec names exist (a missing one is a
``DataFormatError`` with the near misses in its folder).

Taught in: Long-text cross-modal retrieval (notebooks/04-long-text-retrieval.ipynb)
"""
from __future__ import annotations

import re
from pathlib import Path

from dgtrs_lib.errors import UsageError, file_not_found
from dgtrs_lib.profiles import get_profile

SPEC_FORMS = ("syndg", "syndg-shift", "syndg-retention", "syndg-prior", "sentinel", "karpathy:NAME:JSON:IMAGES", "folder:NAME:ROOT[:full|remoteclip_80_20]",
              "airslt:NAME:ROOT")
FOLDER_PROTOCOLS = ("full", "remoteclip_80_20")
# which kinds of data each task reads (the views below)
TASK_KINDS = {"long_retrieval": ("syndg", "karpathy"), "short_retrieval": ("syndg", "syndg-prior", "karpathy"),
              "classification": ("syndg", "syndg-shift", "syndg-retention", "sentinel", "folder"),
              "selo": ("syndg", "sentinel", "airslt")}
# the distribution shift of the shifted views (``dgtrs_lib.data.syndg.shift_image``): image i gets
# scale, blur or colour by i mod 3
SHIFT = "mixed"
# the version of the embedded views: bumped when a view changes while the generated data do not
# (it is part of every evaluation's identity, so no cached result outlives its view).
# 2: the retention view takes the shifted images (SynDG-RS v4's prior scored 98.75 % top-1 on the
#    clean ones, above the instrument's ceiling; its colour-shifted third leaves room to forget)
VIEWS_VERSION = "2"
# the embedded kinds and their names in results files
EMBEDDED = {"syndg": "SynDG-RS", "syndg-shift": "SynDG-RS-shift", "syndg-retention": "SynDG-RS-retention",
            "syndg-prior": "SynDG-prior", "sentinel": "Sentinel-2"}


class EvaluationError(UsageError):
    """Bad evaluation input (task, dataset spec, argument): a ``UsageError``, exit code 2."""


def parse_dataset_spec(spec) -> dict:
    """``"syndg"``, ``"sentinel"``, ``"karpathy:NAME:JSON:IMAGES"``, ``"folder:NAME:ROOT[:PROTOCOL]"``,
    ``"airslt:NAME:ROOT"`` or an already parsed dict -> ``{"kind", "name", ...}``."""
    if isinstance(spec, dict):
        if "kind" not in spec:
            raise EvaluationError(f"dataset spec {spec}: missing 'kind'")
        return {"name": spec.get("name", spec["kind"]), **spec}
    parts = str(spec).split(":")
    kind = parts[0]
    if kind in ("karpathy", "folder", "airslt") and any(not p.strip() for p in parts[1:]):
        raise EvaluationError(f"dataset spec {spec!r}: an empty field; expected one of {', '.join(SPEC_FORMS)}")
    if kind in EMBEDDED and len(parts) == 1:
        return {"kind": kind, "name": EMBEDDED[kind]}
    if kind == "karpathy" and len(parts) == 4:
        return {"kind": kind, "name": parts[1], "json": parts[2], "images": parts[3]}
    if kind == "folder" and len(parts) in (3, 4):
        protocol = parts[3] if len(parts) == 4 else "full"
        if protocol not in FOLDER_PROTOCOLS:
            raise EvaluationError(f"dataset spec {spec!r}: protocol {protocol!r}; expected one of {', '.join(FOLDER_PROTOCOLS)}")
        return {"kind": kind, "name": parts[1], "root": parts[2], "protocol": protocol}
    if kind == "airslt" and len(parts) == 3:
        return {"kind": kind, "name": parts[1], "root": parts[2]}
    raise EvaluationError(f"dataset spec {spec!r}: expected one of {', '.join(SPEC_FORMS)}")


def check_dataset_spec(spec: dict, task: str) -> dict:
    """``spec`` if ``task`` can read it and the files it names exist (see the module doc)."""
    kinds = TASK_KINDS.get(task)
    if kinds is None:
        raise EvaluationError(f"task {task!r}: expected one of {', '.join(TASK_KINDS)}")
    if spec["kind"] not in kinds:
        raise EvaluationError(f"dataset {spec.get('name', spec['kind'])} ({spec['kind']}) for {task}: this task reads "
                              f"{', '.join(kinds)}; expected a spec of one of these kinds")
    need = {"karpathy": (("json", "file", "a Karpathy JSON (e.g. dataset_rsicd.json)"),
                         ("images", "dir", "the folder of its images")),
            "folder": (("root", "dir", "a folder with one sub-folder of images per class"),),
            "airslt": (("root", "dir", "an AIR-SLT folder with annotations/anno.json and imgs/"),)}
    from dgtrs_lib.data.common import DataFormatError

    for key, kind, expected in need.get(spec["kind"], ()):
        path = Path(str(spec[key])).expanduser()
        if not path.exists():
            raise DataFormatError(f"dataset {spec['name']}: " + file_not_found(path, expected))
        if (kind == "dir") != path.is_dir():
            raise DataFormatError(f"dataset {spec['name']}: {path} is a {'folder' if path.is_dir() else 'file'}; "
                                  f"expected {expected}")
    if spec["kind"] == "airslt" and not (Path(str(spec["root"])).expanduser() / "annotations" / "anno.json").is_file():
        anno = Path(str(spec["root"])).expanduser() / "annotations" / "anno.json"
        raise DataFormatError(f"dataset {spec['name']}: " + file_not_found(anno, "the AIR-SLT layout ROOT/annotations/anno.json"))
    return spec


def _limit(ds, profile: str):
    limit = get_profile(profile).eval_limit
    return ds.select(range(min(len(ds), limit))) if limit else ds


def retrieval_data(spec: dict, caption: str, profile: str):
    """A retrieval-schema dataset (``image, captions``)."""
    if spec["kind"] == "syndg":
        from dgtrs_lib.data.syndg import syndg_retrieval

        return _limit(syndg_retrieval("test", profile, caption=caption), profile)
    if spec["kind"] == "syndg-prior":
        from dgtrs_lib.data.syndg import prior_retrieval

        return _limit(prior_retrieval(profile), profile)
    if spec["kind"] == "karpathy":
        from dgtrs_lib.data.karpathy import load_karpathy

        return load_karpathy(spec["json"], spec["images"], spec.get("split", "test"),
                             capitalize=spec.get("capitalize", False))
    raise EvaluationError(f"dataset {spec['name']}: kind {spec['kind']!r} has no retrieval view")


_CLASS_FILE = re.compile(r"^(?P<cls>[A-Za-z][A-Za-z0-9 ]*?)_\d+\.[A-Za-z0-9]+$")


def labels_from_filenames(names) -> list[str] | None:
    """Scene classes from file names of the form ``<class>_<digits>.<ext>`` (RSICD's and RSITMD's
    ``airport_12.jpg``), when EVERY name has that form and at least two classes occur; else
    ``None`` (no class-only line is drawn rather than a wrong one)."""
    names = [str(n).rsplit("/", 1)[-1] for n in names]
    found = [_CLASS_FILE.match(n) for n in names]
    if not names or not all(found):
        return None
    labels = [m.group("cls").lower() for m in found]
    return labels if len(set(labels)) >= 2 else None


def retrieval_labels(spec: dict, profile: str, n: int, ds=None) -> list[str] | None:
    """Per-image scene classes of a retrieval view, in its order (for the class-only reference):
    the ``scene`` column of the embedded sets; for Karpathy sets the class in the file names
    (:func:`labels_from_filenames`, given the view ``ds``); ``None`` for sets without class labels."""
    if spec["kind"] == "karpathy":
        return labels_from_filenames(ds["image_id"]) if ds is not None else None
    if spec["kind"] == "syndg":
        from dgtrs_lib.data.syndg import load_syndg

        return list(load_syndg(profile)["test"]["scene"][:n])
    if spec["kind"] == "syndg-prior":
        from dgtrs_lib.data.syndg import load_prior

        return list(load_prior(profile)["validation"]["scene"][:n])
    return None


def classification_data(spec: dict, profile: str):
    if spec["kind"] == "syndg":
        from dgtrs_lib.data.syndg import syndg_classification

        return _limit(syndg_classification("test", profile), profile)
    if spec["kind"] == "syndg-shift":
        from dgtrs_lib.data.syndg import syndg_classification

        return _limit(syndg_classification("test", profile, shift=SHIFT), profile)
    if spec["kind"] == "syndg-retention":
        from dgtrs_lib.data.syndg import syndg_retention

        return _limit(syndg_retention(profile, shift=SHIFT), profile)
    if spec["kind"] == "sentinel":
        from dgtrs_lib.data.sentinel import sentinel_patches

        return _limit(sentinel_patches(), profile)
    if spec["kind"] == "folder":
        from dgtrs_lib.data.classfolder import load_class_folder

        return load_class_folder(spec["root"], protocol=spec.get("protocol", "full"), split=spec.get("split", "test"))
    raise EvaluationError(f"dataset {spec['name']}: kind {spec['kind']!r} has no classification view")


def slm_protocol(scales) -> "SLMProtocol":  # noqa: F821 (imported lazily)
    """The SLM protocol for scenes tiled at ``scales``: the reference constants for AIR-SLT's
    256/512/768 px tiles, scaled by ``scales[0] / 256`` for scenes drawn at another pixel scale
    (the embedded scenes: 64/128/192, so 0.25)."""
    from dgtrs_lib.evaluation.selo import REFERENCE_SCALES
    from dgtrs_lib.evaluation.slm import REFERENCE, SLMProtocol

    factor = min(1.0, float(scales[0]) / REFERENCE_SCALES[0])
    return REFERENCE if factor == 1.0 else SLMProtocol.scaled(factor)


def selo_data(spec: dict, profile: str):
    """``(samples, scales)``: AIR-SLT-layout samples and the tiling scales for their pixel size
    (the SLM protocol that goes with them: :func:`slm_protocol`)."""
    from dgtrs_lib.data.airslt import load_airslt
    from dgtrs_lib.env import cache_dir
    from dgtrs_lib.evaluation.selo import MINIATURE_SCALES, REFERENCE_SCALES

    if spec["kind"] == "syndg":
        from dgtrs_lib.data.syndg import VERSION, write_syndg_selo

        root = cache_dir("selo") / f"syndg-v{VERSION}-{profile}"  # a new generator version never reads old scenes
        if not (root / "annotations" / "anno.json").exists():
            write_syndg_selo(root, profile)
        return load_airslt(root), MINIATURE_SCALES
    if spec["kind"] == "sentinel":
        from dgtrs_lib.data.sentinel import write_sentinel_selo

        root = cache_dir("selo") / "sentinel"
        if not (root / "annotations" / "anno.json").exists():
            write_sentinel_selo(root)
        return load_airslt(root), MINIATURE_SCALES
    if spec["kind"] == "airslt":
        return load_airslt(spec["root"]), tuple(spec.get("scales", REFERENCE_SCALES))
    raise EvaluationError(f"dataset {spec['name']}: kind {spec['kind']!r} has no SeLo view")
