"""Loading and saving models in the official DGTRS-CLIP / Long-CLIP checkpoint format.

The official checkpoints (``MitsuiChen14/DGTRS-CLIP-ViT-B-16``, ``-ViT-L-14``, ``BeichenZhang/LongCLIP-B``,
``-L``) are plain state dicts with OpenAI CLIP's key names plus ``positional_embedding_res``, at
context 248 (``shared/reference/anchors.md`` section 1). OpenAI CLIP state dicts have the same keys
without ``positional_embedding_res`` at context 77; loading one applies KPS, as Long-CLIP's
``load_from_clip`` does. The architecture is read from the tensor shapes, as OpenAI's
``build_model`` does (heads = width // 64).

``load_model(source)`` accepts

* a local ``.pt``/``.pth``/``.bin`` (``torch.load(weights_only=True)``) or ``.safetensors`` file in
  the official long format (has ``positional_embedding_res``) or the OpenAI short format (KPS applied);
* ``"openai:ViT-B-16"`` / ``"openai:ViT-L-14"``: OpenAI weights through open_clip (online only), KPS applied;
* a Hugging Face Hub id of the released checkpoints (online only, ``DGTRS_ONLINE=1``).

``save_official`` writes what we train in the same layout (so the authors' ``longclip.load`` reads it
for 248-token models) plus a ``.json`` sidecar with ``keep``/``ratio``/``base_context``, which the
miniature (keep 8) needs and the official format cannot express. Writes are atomic: a temporary
file in the same folder, fsync, then ``os.replace``.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transform import image_transform

from .model import DynamicCLIP, LongCLIP, stretch_model

HUB_CHECKPOINTS = {
    # repo id -> file name (None: the repository's single .pt/.safetensors file)
    "MitsuiChen14/DGTRS-CLIP-ViT-B-16": None,
    "MitsuiChen14/DGTRS-CLIP-ViT-L-14": None,
    "BeichenZhang/LongCLIP-B": "longclip-B.pt",
    "BeichenZhang/LongCLIP-L": "longclip-L.pt",
}
OPENAI_NAMES = {"ViT-B-16": "ViT-B-16-quickgelu", "ViT-L-14": "ViT-L-14-quickgelu"}
DROP_KEYS = ("input_resolution", "context_length", "vocab_size")  # OpenAI TorchScript extras


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or not in the expected format."""


# ----------------------------------------------------------------------------- writing
def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over ``path``.

    A crash at any point leaves either the previous file or the new one, never a partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


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
    atomic_save(state, path)
    atomic_write_text(json.dumps(meta, indent=2, default=str), sidecar_path(path))
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


def make_preprocess(image_size: int):
    """OpenAI CLIP's eval transform: resize (bicubic, shortest side), centre crop, RGB, normalise."""
    return image_transform(image_size, is_train=False, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD,
                           resize_mode="shortest", interpolation="bicubic")


def _hub_file(repo_id: str) -> Path:
    from .profiles import is_online

    if not is_online() or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise CheckpointError(
            f"{repo_id}: downloading from the Hugging Face Hub needs network access; this run is offline. "
            "Set DGTRS_ONLINE=1 (and unset HF_HUB_OFFLINE) on a machine with internet, or download the "
            "checkpoint and pass its local path."
        )
    from huggingface_hub import hf_hub_download, list_repo_files

    filename = HUB_CHECKPOINTS.get(repo_id)
    if filename is None:
        files = [f for f in list_repo_files(repo_id) if f.endswith((".pt", ".pth", ".bin", ".safetensors"))]
        if len(files) != 1:
            raise CheckpointError(f"{repo_id}: expected one checkpoint file in the repository, found {files}; pass a local path")
        filename = files[0]
    return Path(hf_hub_download(repo_id, filename))


def load_model(source: str | os.PathLike, device: str = "cpu", *, keep: int | None = None, ratio: int | None = None,
               stretch: bool = True):
    """Load a model and its image preprocessing: ``(model, preprocess)``, model in eval mode.

    ``model.encode_image`` / ``model.encode_text`` return unnormalised features, as the official
    implementation does. ``keep``/``ratio`` default to the sidecar's values, else 20 and 4.
    """
    src = str(source)
    if src.startswith("openai:"):
        name = src.split(":", 1)[1]
        if name not in OPENAI_NAMES:
            raise CheckpointError(f"{src}: unknown OpenAI model; choose one of {[f'openai:{n}' for n in OPENAI_NAMES]}")
        import open_clip

        try:
            reference = open_clip.create_model(OPENAI_NAMES[name], pretrained="openai")
        except RuntimeError as err:
            raise CheckpointError(f"{src}: OpenAI weights could not be downloaded ({err}); pass a local state dict instead") from err
        state = reference.state_dict()
        meta = {}
    else:
        path = Path(src)
        if not path.exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", src):
            path = _hub_file(src)
        state = load_state_dict_file(path)
        side = sidecar_path(path)
        meta = json.loads(side.read_text()) if side.exists() else {}
    keep = keep if keep is not None else meta.get("keep")
    ratio = ratio if ratio is not None else meta.get("ratio", 4)
    model = model_from_state_dict(state, keep=keep, ratio=ratio, stretch=stretch, source=src)
    model = model.to(device).eval()
    return model, make_preprocess(model.image_size)
