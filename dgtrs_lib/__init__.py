"""dgtrs_lib: the thin library behind the dgtrs-book reproduction of DGTRS-CLIP (arXiv:2503.19311).

Top-level names are the long-text model API (see CONTRIBUTING.md for every contract); data,
training and evaluation live in their submodules (``dgtrs_lib.data``, ``dgtrs_lib.losses``,
``dgtrs_lib.curriculum``, ``dgtrs_lib.train``, ``dgtrs_lib.metrics``, ``dgtrs_lib.evaluate``...).
"""
from .checkpoint import CheckpointError, atomic_save, load_model, load_state_dict_file, save_official
from .kps import kps_length, linear_stretch_positional_embedding, stretch_positional_embedding
from .model import MODEL_CONFIGS, DynamicCLIP, LongCLIP, create_long_model, create_model, stretch_model
from .tokenizer import TruncationWarning, token_lengths, tokenize

__version__ = "0.1.0"
__all__ = [
    "CheckpointError", "DynamicCLIP", "LongCLIP", "MODEL_CONFIGS", "TruncationWarning", "atomic_save",
    "create_long_model", "create_model", "kps_length", "linear_stretch_positional_embedding", "load_model",
    "load_state_dict_file", "save_official", "stretch_model", "stretch_positional_embedding", "token_lengths", "tokenize",
]
