"""Zero-shot use of a CLIP model: batched image/text encoding, remote-sensing prompt templates,
class-name normalisation and template-ensemble classifiers.

References (paper.md section 6.3, anchors.md sections 3 and 6):

* **CLIP / CLIP_benchmark** ensemble: for each class, encode every template filled with the class
  name, L2-normalise each embedding, average, renormalise (``ensemble="normalize_mean"``, the
  default; also open_clip's ``build_zero_shot_classifier``). Every template gets the same vote.
* **GeoRSCLIP** (RS5M ``inference_tool.py``): average the *unnormalised* template embeddings, then
  normalise (``ensemble="mean_normalize"``). A template whose embedding happens to have a larger
  norm pulls the class direction towards itself, so the two agree only when all template
  embeddings of a class have the same norm; with one template they are identical.
* Templates: ``CLIP_RS_TEMPLATES`` (the prompts CLIP's authors used for EuroSAT and RESISC45,
  written out by us from their stated pattern), ``REMOTECLIP_TEMPLATES`` ("a satellite photo of
  {}.", RemoteCLIP issue #18) and ``GEORSCLIP_STYLE_TEMPLATES``, our own list following the RS5M
  pattern (CLIP-style variants x {remote sensing image, aerial image, satellite image}); it is
  *not* GeoRSCLIP's file.
* Class names: ``normalize_classname`` splits CamelCase ("AnnualCrop" -> "annual crop"), maps
  "_", "-" and "/" to spaces and lower-cases; ``style="georsclip"`` reproduces GeoRSCLIP's
  lower-case-and-replace rule, which leaves "annualcrop" glued.

Logits are ``100 * image_feature . class_embedding`` as in CLIP; the ranking does not depend on
the scale.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

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
# Encoding
# ----------------------------------------------------------------------------------------------
def model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def tokenizer_for(model) -> Callable[[list[str]], torch.Tensor]:
    """Token ids for ``model``: open_clip's BPE at ``model.context_length`` (long captions are
    truncated with EOT kept). Models with a dynamic-length text tower (``dgtrs_lib.model.longclip``) get
    per-batch padding to the longest text; plain open_clip models get the full context."""
    from dgtrs_lib.model.tokenizer import tokenize

    ctx = int(getattr(model, "context_length", 77))
    dynamic = hasattr(model, "text_positional_embedding")

    def _tok(texts):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # truncation is part of the protocol at this length
            return tokenize(list(texts), ctx, pad_to_longest=dynamic)

    return _tok


@torch.no_grad()
def encode_texts(model, texts: Sequence[str], *, tokenizer=None, batch_size: int = 256, normalize: bool = True,
                 progress: bool = False) -> torch.Tensor:
    """``[N, E]`` float32 CPU text features (L2-normalised unless ``normalize=False``)."""
    from tqdm.auto import tqdm

    tokenizer = tokenizer or tokenizer_for(model)
    device = model_device(model)
    texts = list(texts)
    out = []
    for s in tqdm(range(0, len(texts), batch_size), desc="texts", disable=not progress, leave=False):
        f = model.encode_text(tokenizer(texts[s:s + batch_size]).to(device)).float()
        out.append((F.normalize(f, dim=-1) if normalize else f).cpu())
    if not out:
        raise ValueError("encode_texts: no texts")
    return torch.cat(out)


def _image_batches(images, batch_size: int):
    if hasattr(images, "column_names") and "image" in getattr(images, "column_names", []):  # datasets.Dataset
        for s in range(0, len(images), batch_size):
            yield images[s:s + batch_size]["image"]
    else:
        images = list(images)
        for s in range(0, len(images), batch_size):
            yield images[s:s + batch_size]


@torch.no_grad()
def encode_images(model, images, preprocess, *, batch_size: int = 64, normalize: bool = True,
                  progress: bool = False) -> torch.Tensor:
    """``[N, E]`` float32 CPU image features of PIL images (a list, or a ``datasets.Dataset``
    with an ``image`` column), preprocessed with ``preprocess``."""
    from tqdm.auto import tqdm

    device = model_device(model)
    out = []
    total = (len(images) + batch_size - 1) // batch_size if hasattr(images, "__len__") else None
    for batch in tqdm(_image_batches(images, batch_size), total=total, desc="images", disable=not progress, leave=False):
        x = torch.stack([preprocess(im.convert("RGB")) for im in batch]).to(device)
        f = model.encode_image(x).float()
        out.append((F.normalize(f, dim=-1) if normalize else f).cpu())
    if not out:
        raise ValueError("encode_images: no images")
    return torch.cat(out)


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
    ``dgtrs_lib.evaluation.metrics.classification_metrics`` plus ``classnames`` and ``logits``."""
    from dgtrs_lib.evaluation.metrics import classification_metrics

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
