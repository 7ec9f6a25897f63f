"""Zero-shot scene classification: remote-sensing prompt templates, class-name normalisation,
template-ensemble classifiers and the accuracy metrics.

DGTRS-CLIP (arXiv:2503.19311, ``chen2025dgtrs``) reports zero-shot top-1 per dataset and their mean
("average accuracy"); the protocol is CLIP's (Radford et al. 2021, ``radford2021clip``) as run by
CLIP_benchmark and the remote-sensing CLIPs it compares with:

* **CLIP / CLIP_benchmark** ensemble: for each class, encode every template filled with the class
  name, L2-normalise each embedding, average, renormalise (``ensemble="normalize_mean"``, the
  default; also open_clip's ``build_zero_shot_classifier``). Every template gets the same vote.
* **GeoRSCLIP** (Zhang et al. 2024, ``zhang2024rs5m``; RS5M ``inference_tool.py``): average the
  *unnormalised* template embeddings, then normalise (``ensemble="mean_normalize"``). A template
  whose embedding happens to have a larger norm pulls the class direction towards itself, so the
  two agree only when all template embeddings of a class have the same norm; with one template
  they are identical.
* Templates: ``CLIP_RS_TEMPLATES`` (the prompts CLIP's authors used for EuroSAT and RESISC45,
  written out by us from their stated pattern), ``REMOTECLIP_TEMPLATES`` ("a satellite photo of
  {}.", RemoteCLIP issue #18) and ``GEORSCLIP_STYLE_TEMPLATES``, our own list following the RS5M
  pattern (CLIP-style variants x {remote sensing image, aerial image, satellite image}); it is
  *not* GeoRSCLIP's file.
* Class names: ``normalize_classname`` splits CamelCase ("AnnualCrop" -> "annual crop"), maps
  "_", "-" and "/" to spaces and lower-cases; ``style="georsclip"`` reproduces GeoRSCLIP's
  lower-case-and-replace rule, which leaves "annualcrop" glued.
* Metrics (``classification_metrics``): top-1, top-5 (NaN with fewer than 5 classes, like
  CLIP_benchmark) and the mean per-class recall (sklearn's ``balanced_accuracy_score``: the mean
  recall over the classes present in the labels), plus a confusion matrix.

Logits are ``100 * image_feature . class_embedding`` as in CLIP; the ranking does not depend on
the scale. Features come from ``dgtrs_lib.evaluation.encode``.

Taught in: Zero-shot scene classification (notebooks/06-zero-shot-classification.ipynb)
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dgtrs_lib.evaluation.encode import encode_images, encode_texts

CLIP_RS_TEMPLATES = (
    "a centered satellite photo of {}.",
    "a centered satellite photo of a {}.",
    "a centered satellite photo of the {}.",
    "satellite imagery of {}.",
    "aerial imagery of {}.",
    "satellite photo of {}.",
    "aerial photo of {}.",
    "satellite view of {}.",
    "aerial view of {}.",
    "satellite imagery of a {}.",
    "aerial imagery of a {}.",
    "satellite photo of a {}.",
    "aerial photo of a {}.",
    "satellite view of a {}.",
    "aerial view of a {}.",
    "satellite imagery of the {}.",
    "aerial imagery of the {}.",
    "satellite photo of the {}.",
    "aerial photo of the {}.",
    "satellite view of the {}.",
    "aerial view of the {}.",
)

REMOTECLIP_TEMPLATES = ("a satellite photo of {}.",)

_MEDIA = ("remote sensing image", "aerial image", "satellite image")
_QUALITIES = ("", "low resolution ", "high resolution ", "blurry ", "clear ", "bright ", "dark ",
              "cropped ", "close-up ", "good ", "bad ", "noisy ")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


GEORSCLIP_STYLE_TEMPLATES = tuple(
    f"{_article(q + m)} {q}{m} of {det} {{}}." for m in _MEDIA for q in _QUALITIES for det in ("a", "the")
)

TEMPLATE_SETS = {
    "clip": CLIP_RS_TEMPLATES,
    "remoteclip": REMOTECLIP_TEMPLATES,
    "georsclip": GEORSCLIP_STYLE_TEMPLATES,
}


def normalize_classname(name: str, style: str = "ours") -> str:
    """A readable prompt word from a dataset class name (see the module docstring)."""
    if style == "georsclip":
        return name.lower().replace("_", " ").replace("/", " ")
    if style != "ours":
        raise ValueError(f"style must be 'ours' or 'georsclip', got {style!r}")
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    s = re.sub(r"[_\-/]+", " ", s)
    return re.sub(r"\s+", " ", s).strip().lower()


def get_templates(templates: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(templates, str):
        if templates not in TEMPLATE_SETS:
            raise ValueError(f"unknown template set {templates!r}; choose one of {sorted(TEMPLATE_SETS)} or pass a list")
        return TEMPLATE_SETS[templates]
    out = tuple(templates)
    if not out or any("{}" not in t for t in out):
        raise ValueError("templates: expected a non-empty list of strings each containing '{}'")
    return out


# ----------------------------------------------------------------------------------------------
# Classifiers
# ----------------------------------------------------------------------------------------------
def ensemble_embeddings(template_features: torch.Tensor, ensemble: str = "normalize_mean") -> torch.Tensor:
    """One class embedding from ``[T, E]`` *unnormalised* template embeddings."""
    f = template_features.float()
    if ensemble == "normalize_mean":
        return F.normalize(F.normalize(f, dim=-1).mean(0), dim=0)
    if ensemble == "mean_normalize":
        return F.normalize(f.mean(0), dim=0)
    raise ValueError(f"ensemble must be 'normalize_mean' (CLIP) or 'mean_normalize' (GeoRSCLIP), got {ensemble!r}")


def build_classifier(model, classnames: Sequence[str], templates: str | Sequence[str] = "clip", *,
                     ensemble: str = "normalize_mean", tokenizer=None, normalize_names: bool = True,
                     batch_size: int = 256) -> torch.Tensor:
    """``[E, C]`` zero-shot classifier: column c is the ensembled embedding of class c's prompts."""
    temps = get_templates(templates)
    names = [normalize_classname(c) if normalize_names else c for c in classnames]
    if not names:
        raise ValueError("build_classifier: no class names")
    prompts = [t.format(n) for n in names for t in temps]
    feats = encode_texts(model, prompts, tokenizer=tokenizer, batch_size=batch_size, normalize=False)
    feats = feats.view(len(names), len(temps), -1)
    return torch.stack([ensemble_embeddings(f, ensemble) for f in feats], dim=1)


def classify(image_features: torch.Tensor, classifier: torch.Tensor, logit_scale: float = 100.0) -> torch.Tensor:
    """``[N, C]`` logits = scale * normalised image features . classifier."""
    return logit_scale * F.normalize(image_features.float(), dim=-1) @ classifier.float()


def class_names(dataset) -> list[str]:
    """Class names of a classification-schema dataset (``features["label"].names``)."""
    try:
        return list(dataset.features["label"].names)
    except (AttributeError, KeyError) as err:
        raise ValueError("dataset: expected a 'label' ClassLabel feature (classification schema)") from err


def evaluate_classifier(model, dataset, preprocess, *, templates: str | Sequence[str] = "clip",
                        ensemble: str = "normalize_mean", batch_size: int = 64, progress: bool = False) -> dict:
    """Zero-shot classification of a classification-schema ``datasets.Dataset``: the metrics of
    ``classification_metrics`` plus ``classnames`` and ``logits``."""
    names = class_names(dataset)
    clf = build_classifier(model, names, templates, ensemble=ensemble)
    feats = encode_images(model, dataset, preprocess, batch_size=batch_size, progress=progress)
    logits = classify(feats, clf)
    out = classification_metrics(logits, np.asarray(dataset["label"]), num_classes=len(names))
    out.update(classnames=names, logits=logits.numpy())
    return out


def mean_over_datasets(per_dataset: Iterable[dict], key: str = "acc1") -> float:
    vals = [d[key] for d in per_dataset if not np.isnan(d[key])]
    return float(np.mean(vals)) if vals else float("nan")


# ----------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------
def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """``cm[true, predicted]`` counts."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def classification_metrics(logits, labels, *, num_classes: int | None = None) -> dict:
    """Top-1 / top-5 accuracy (percent; top-5 is NaN with fewer than 5 classes), mean per-class
    recall (percent, over the classes present in ``labels``) and the confusion matrix.

    The top-1 prediction is ``argmax`` (the lowest class index wins an exact tie).
    """
    logits = torch.as_tensor(logits).float()
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != labels_t.numel():
        raise ValueError(f"logits: expected [N, C] with N = len(labels) = {labels_t.numel()}, got {tuple(logits.shape)}")
    n, c = logits.shape
    num_classes = num_classes or c
    if c != num_classes:
        raise ValueError(f"logits have {c} columns but num_classes is {num_classes}")
    if n and (labels_t.min() < 0 or labels_t.max() >= c):
        raise ValueError(f"labels must lie in [0, {c}), got [{int(labels_t.min())}, {int(labels_t.max())}]")
    pred = logits.argmax(1)
    acc1 = 100.0 * (pred == labels_t).float().mean().item()
    if c >= 5:
        top5 = logits.topk(5, dim=1).indices
        acc5 = 100.0 * (top5 == labels_t[:, None]).any(1).float().mean().item()
    else:
        acc5 = float("nan")
    cm = confusion_matrix(labels_t.numpy(), pred.numpy(), c)
    support = cm.sum(1)
    present = support > 0
    per_class = np.full(c, np.nan)
    per_class[present] = np.diag(cm)[present] / support[present]
    mpcr = 100.0 * float(np.mean(per_class[present])) if present.any() else float("nan")
    return {"acc1": acc1, "acc5": acc5, "mean_per_class_recall": mpcr,
            "per_class_recall": per_class, "confusion_matrix": cm, "predictions": pred.numpy()}
