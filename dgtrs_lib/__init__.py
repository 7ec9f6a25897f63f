"""dgtrs_lib: the thin library behind the dgtrs-book reproduction of DGTRS-CLIP (arXiv:2503.19311).

Layers, each a sub-package; a module imports only from its own layer or the layers below it
(enforced by the import contracts in ``pyproject.toml``, checked by ``make test``)::

    publishing    notebooks' helpers, the book runner, the browser check, the report data
    experiments   the miniature pipeline (stage orchestration) and the ablation study
    evaluation    retrieval, zero-shot classification, semantic localization, the four-task entry point
    training      losses, DGCL schedules, learning-rate schedule, distributed helpers, the trainer
    data          SynDG-RS, Sentinel-2 imagery, one loader per published format, training pairs
    model         KPS, tokenizer, the long-text CLIP, checkpoint formats, the model-source registry
    profiles, io, results   settings per profile, atomic writes + provenance, the results layout

The names below are re-exported lazily, so ``import dgtrs_lib.io`` or ``dgtrs_lib.profiles``
does not import torch.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "dgtrs_lib.model.kps": ("kps_length", "linear_stretch_positional_embedding", "stretch_positional_embedding"),
    "dgtrs_lib.model.tokenizer": ("TokenizeError", "TruncationWarning", "token_lengths", "tokenize"),
    "dgtrs_lib.model.longclip": ("MODEL_CONFIGS", "DynamicCLIP", "LongCLIP", "create_long_model", "create_model",
                                 "stretch_model"),
    "dgtrs_lib.model.checkpoint": ("CheckpointError", "load_state_dict_file", "save_official"),
    "dgtrs_lib.model.sources": ("load_model", "resolve_source"),
    "dgtrs_lib.io": ("atomic_save",),
    "dgtrs_lib.profiles": ("Profile", "get_profile"),
    "dgtrs_lib.evaluation.evaluate": ("evaluate",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dgtrs_lib' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
