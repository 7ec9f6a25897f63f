"""Loading and saving models in the official DGTRS-CLIP / Long-CLIP checkpoint format.

The official checkpoints (``MitsuiChen14/DGTRS-CLIP-ViT-B-16``, ``-ViT-L-14``, ``BeichenZhang/LongCLIP-B``,
``-L``) are plain state dicts with OpenAI CLIP's key names plus ``positional_embedding_res``, at
context 248 (the layout of Long-CLIP's ``model/model_longclip.py``, Zhang et al. 2024).
OpenAI CLIP state dicts have the same keys without ``positional_embedding_res`` at context 77;
loading one applies KPS, as Long-CLIP's ``load_from_clip`` does. The architecture is read from the
tensor shapes, as OpenAI's ``build_model`` does (heads = width // 64). Which strings name a model
(files, ``openai:``, Hub ids, baselines, open_clip) is decided in one place,
``dgtrs_lib.model.sources``.

``save_official`` writes what we train in the same layout (so the authors' ``longclip.load`` reads it
for 248-token models) plus a ``.json`` sidecar with ``keep``/``ratio``/``base_context``, which the
miniature (keep 8) needs and the official format cannot express. Writes are atomic: a temporary
file in the same folder, fsync, then ``os.replace``.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import torch

from dgtrs_lib.io import atomic_save, atomic_write_text
from dgtrs_lib.model.longclip import DynamicCLIP, LongCLIP, stretch_model

DROP_KEYS = ("input_resolution", "context_length", "vocab_size")  # OpenAI TorchScript extras


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or not in the expected format, or a model source
    (``dgtrs_lib.model.sources``) cannot be resolved: unknown name, offline, unfitting weights."""


# ----------------------------------------------------------------------------- writing
def sidecar_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".json")


def save_official(model: DynamicCLIP, path: str | os.PathLike, **metadata) -> Path:
    """Save ``model`` as an official-format state dict (+ ``<stem>.json`` sidecar), atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": "dgtrs-official" if isinstance(model, LongCLIP) else "openai-clip",
        "context_length": model.context_length,
        "quick_gelu": True,
        **getattr(model, "stretch_info", {}),
        "keep": getattr(model, "keep", None),
        **metadata,
    }
    atomic_save(path, state)
    atomic_write_text(sidecar_path(path), json.dumps(meta, indent=2, default=str))
    return Path(path)


# ----------------------------------------------------------------------------- reading
def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict safely (``weights_only=True`` / safetensors) with clear errors."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty (an interrupted download?)")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path}: not a readable safetensors file ({err}); truncated download?") from err
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except (zipfile.BadZipFile, EOFError) as err:
            raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({err}); download it again") from err
        except RuntimeError as err:
            msg = str(err)
            if "zip archive" in msg or "central directory" in msg or "file read failed" in msg:
                raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({msg.splitlines()[0]}); download it again") from err
            if "TorchScript" in msg or "constants.pkl" in msg:
                raise CheckpointError(
                    f"{path}: a TorchScript archive, not a state dict. Load it with "
                    "torch.jit.load(path).state_dict() and save that dict, or use source='openai:ViT-B-16'."
                ) from err
            raise CheckpointError(f"{path}: cannot be read as a state dict ({msg.splitlines()[0]})") from err
        except Exception as err:  # weights_only refuses arbitrary pickles (whole nn.Modules, etc.)
            raise CheckpointError(
                f"{path}: not a plain state dict of tensors (torch.load with weights_only=True refused it: "
                f"{str(err).splitlines()[0]}). Expected an OrderedDict of tensors such as model.state_dict()."
            ) from err
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a dict mapping parameter names to tensors, got {type(obj).__name__}")
    return {re.sub(r"^module\.", "", k): v for k, v in obj.items() if k not in DROP_KEYS}


def _count(state: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def infer_config(state: dict[str, torch.Tensor], source: str = "checkpoint") -> dict:
    """open_clip-style config from a state dict's shapes (OpenAI ``build_model``'s rules)."""
    required = ("visual.conv1.weight", "visual.positional_embedding", "text_projection",
                "positional_embedding", "token_embedding.weight", "ln_final.weight")
    if "visual.layer1.0.conv1.weight" in state:
        raise CheckpointError(f"{source}: ResNet image towers are not supported (DGTRS-CLIP releases ViT-B/16 and ViT-L/14)")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{source}: not a CLIP ViT state dict; missing keys {missing} "
                              "(expected OpenAI/Long-CLIP key names such as 'visual.conv1.weight', 'positional_embedding')")
    conv = state["visual.conv1.weight"]
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    width = state["ln_final.weight"].shape[0]
    return dict(
        embed_dim=state["text_projection"].shape[1],
        vision_cfg=dict(image_size=conv.shape[-1] * grid, layers=_count(state, r"visual\.transformer\.resblocks\.(\d+)\."),
                        width=conv.shape[0], patch_size=conv.shape[-1], head_width=64),
        text_cfg=dict(context_length=state["positional_embedding"].shape[0], vocab_size=state["token_embedding.weight"].shape[0],
                      width=width, heads=max(1, width // 64), layers=_count(state, r"transformer\.resblocks\.(\d+)\.")),
    )


def _load_strict(model: torch.nn.Module, state: dict, source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    shapes = [f"{k}: got {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {missing[:4]})")
    if extra:
        problems.append(f"{len(extra)} unexpected keys (e.g. {extra[:4]})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches (e.g. {shapes[:3]})")
    if problems:
        raise CheckpointError(f"{source}: does not match the CLIP architecture read from its own shapes: " + "; ".join(problems))
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def model_from_state_dict(state: dict[str, torch.Tensor], *, keep: int | None = None, ratio: int = 4,
                          stretch: bool = True, source: str = "checkpoint") -> DynamicCLIP:
    """Build the model a state dict describes.

    Long format (``positional_embedding_res`` present): a ``LongCLIP`` with ``keep`` frozen rows
    (default 20, the official value). Short OpenAI format: a ``DynamicCLIP``, stretched with KPS
    (``keep``, ``ratio``) when ``stretch`` is true -- Long-CLIP's ``load_from_clip``.
    """
    cfg = infer_config(state, source)
    ctx = cfg["text_cfg"]["context_length"]
    if "positional_embedding_res" in state:
        if state["positional_embedding_res"].shape != state["positional_embedding"].shape:
            raise CheckpointError(f"{source}: positional_embedding_res has shape {tuple(state['positional_embedding_res'].shape)}, "
                                  f"expected {tuple(state['positional_embedding'].shape)} like positional_embedding")
        keep = 20 if keep is None else keep
        model = LongCLIP(cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"], quick_gelu=True, keep=keep)
        _load_strict(model, state, source)
        return model
    model = DynamicCLIP(cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"], quick_gelu=True)
    _load_strict(model, state, source)
    if stretch:
        keep = 20 if keep is None else keep
        if ctx - keep < 2:
            raise CheckpointError(f"{source}: context {ctx} is too short to stretch with keep={keep}")
        model = stretch_model(model, keep=keep, ratio=ratio)
    return model
