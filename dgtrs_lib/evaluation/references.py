"""Reference lines every task is read against: chance, a class-only model, the majority class, a flat map.

A number means little without the floor beside it. For each task this module COMPUTES (never
assumes) what a trivial model scores on the same test set, with the same metric code:

* retrieval -- ``chance``: a model whose similarities carry no information, i.e. the expected
  R@k when every candidate is tied (``retrieval_metrics`` with ``ties="expected"`` on constant
  features); ``class_only``: a model that knows each image's scene class and nothing else (image
  and caption features are one-hot class vectors, so all same-class candidates tie and the
  expected-rank rule averages over their orders). A retrieval task has signal beyond the class
  only when a model clears the class-only line.
* classification -- ``chance`` (1 / number of classes) and ``majority`` (always the most
  frequent class: its top-1 is that class's frequency, its mean per-class recall 1 / C).
* semantic localization -- ``flat``: the SLM indicators of a constant probability map (no
  localization at all) on each case's polygons, under the same SLM protocol.

Taught in: Long-text cross-modal retrieval (notebooks/04-long-text-retrieval.ipynb)
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
import torch

from dgtrs_lib.evaluation.retrieval import retrieval_metrics


def _one_hot(labels: Sequence, classes: list) -> torch.Tensor:
    index = {c: i for i, c in enumerate(classes)}
    out = torch.zeros(len(labels), len(classes))
    out[torch.arange(len(labels)), torch.tensor([index[c] for c in labels])] = 1.0
    return out


def chance_retrieval(text_to_image, n_images: int, ks=(1, 5, 10)) -> dict:
    """Expected R@k/mR (percent) of a model with no information (every candidate tied)."""
    t2i = np.asarray(text_to_image)
    return retrieval_metrics(torch.ones(n_images, 1), torch.ones(len(t2i), 1), t2i, ks=ks, ties="expected")


def class_only_retrieval(image_labels: Sequence, text_to_image, ks=(1, 5, 10)) -> dict:
    """Expected R@k/mR (percent) of a model that knows only each image's class.

    ``image_labels[i]`` is image i's class; caption j belongs to image ``text_to_image[j]`` and
    carries that image's class."""
    t2i = np.asarray(text_to_image)
    classes = sorted(set(image_labels), key=str)
    img = _one_hot(list(image_labels), classes)
    txt = img[torch.as_tensor(t2i)]
    return retrieval_metrics(img, txt, t2i, ks=ks, ties="expected")


def classification_references(labels: Sequence[int], num_classes: int) -> dict:
    """``{"chance_top1", "majority_top1", "majority_mean_per_class_recall"}`` in percent.

    The majority model's mean per-class recall is 1 over the classes *present* in ``labels``, as
    ``classification_metrics`` averages over the classes with support."""
    counts = Counter(int(v) for v in labels)
    n = max(len(labels), 1)
    return {"chance_top1": 100.0 / num_classes, "majority_top1": 100.0 * max(counts.values(), default=0) / n,
            "majority_mean_per_class_recall": 100.0 / max(len(counts), 1)}


def flat_map_selo(samples, protocol=None) -> dict:
    """Mean SLM indicators of a constant probability map on every case (no localization)."""
    from PIL import Image

    from dgtrs_lib.evaluation.slm import REFERENCE, mean_selo_metrics, selo_metrics

    protocol = protocol or REFERENCE
    rows = []
    sizes: dict[str, tuple[int, int]] = {}
    for s in samples:
        key = str(s.image_path)
        if key not in sizes:
            with Image.open(key) as im:
                sizes[key] = (im.height, im.width)
        rows.append(selo_metrics(np.full(sizes[key], 0.5), s.polygons, protocol=protocol))
    return mean_selo_metrics(rows)
