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
miniature (keep 8) needs and the official format cannot express. The same numbers are recorded
inside the file as well, in the state dict's ``_metadata`` (the per-module record PyTorch itself
keeps there; entry ``"dgtrs_lib"``), which ``torch.load(weights_only=True)`` restores and
``load_state_dict`` ignores -- so a checkpoint copied without its sidecar still loads with its own
keep. Writes are atomic: a temporary file in the same folder, fsync, then ``os.replace``.

Reading is strict, so nothing loads wrong without an error:

* ``keep`` comes from the call, else the file, else the sidecar; when none records it, only the
  official shapes have a default (keep 20 at 248 tokens; KPS keep 20 for CLIP's 77) -- any other
  context is a ``CheckpointError`` asking for the sidecar or ``keep``. A corrupt sidecar, or one
  that disagrees with the file, is an error naming it.
* The architecture is read from the tensor shapes by majority over every tensor that carries each
  width, so one wrong tensor is reported as itself; the vocabulary must be CLIP's BPE (49408 rows),
  heads are 64 wide. Every key that is missing, unexpected, of the wrong shape or not floating
  point is listed.
* Anything that is not a plain state dict -- random bytes, a truncated archive, a pickled module
  (refused by ``weights_only=True``: loading it would run code from the file) -- is a
  ``CheckpointError`` saying what the file is and what was expected.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter, OrderedDict
from pathlib import Path

import torch

from dgtrs_lib.errors import ModelError
from dgtrs_lib.io import atomic_save, atomic_write_text
from dgtrs_lib.model.longclip import DynamicCLIP, LongCLIP, stretch_model

DROP_KEYS = ("input_resolution", "context_length", "vocab_size")  # OpenAI TorchScript extras
META_KEY = "dgtrs_lib"           # the state dict ``_metadata`` entry that records keep, ratio, contexts
META_FIELDS = ("keep", "ratio", "base_context", "context_length")
OFFICIAL_CONTEXT, OFFICIAL_KEEP = 248, 20   # the released DGTRS-CLIP / Long-CLIP checkpoints
OPENAI_CONTEXT = 77                         # OpenAI CLIP; KPS keep 20, ratio 4 -> 248
CLIP_VOCAB = 49408                          # the CLIP BPE vocabulary (dgtrs_lib.model.tokenizer)


class CheckpointError(ModelError):
    """A checkpoint file is missing, corrupt or not in the expected format, or a model source
    (``dgtrs_lib.model.sources``) cannot be resolved: unknown name, offline, unfitting weights."""


# ----------------------------------------------------------------------------- writing
def sidecar_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".json")


def save_official(model: DynamicCLIP, path: str | os.PathLike, /, **metadata) -> Path:
    """Save ``model`` as an official-format state dict (+ ``<stem>.json`` sidecar), atomically;
    keep / ratio / contexts are recorded in the file too (module doc). ``model`` and ``path`` are
    positional-only, so a metadata key may be called ``model`` (the run records' model name)."""
    source_state = model.state_dict()
    state = OrderedDict((k, v.detach().cpu().contiguous()) for k, v in source_state.items())
    stretch = getattr(model, "stretch_info", {}) or {}
    recorded = {"keep": getattr(model, "keep", None), "ratio": stretch.get("ratio", metadata.get("ratio")),
                "base_context": stretch.get("base_context", metadata.get("base_context")),
                "context_length": int(model.context_length)}
    state._metadata = OrderedDict(getattr(source_state, "_metadata", None) or {})
    state._metadata[META_KEY] = {k: int(v) for k, v in recorded.items() if v is not None}
    meta = {
        "format": "dgtrs-official" if isinstance(model, LongCLIP) else "openai-clip",
        "context_length": model.context_length,
        "quick_gelu": True,
        **stretch,
        "keep": getattr(model, "keep", None),
        **metadata,
    }
    atomic_save(path, state)
    atomic_write_text(sidecar_path(path), json.dumps(meta, indent=2, default=str))
    return Path(path)


# ----------------------------------------------------------------------------- reading the file
def _first_line(err: BaseException) -> str:
    """An exception's first line, never torch's advice to retry with ``weights_only=False``."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0][:200]
    if "weights_only" in text or "weights only" in text.lower() or "Weights only" in text:
        return "refused by the safe loader"
    return text or type(err).__name__


def safe_torch_load(path: Path, what: str = "a state dict of tensors"):
    """``torch.load(path, weights_only=True)`` with one clear ``CheckpointError`` per failure
    (never a bare error, never the advice to load unsafely)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        from dgtrs_lib.errors import file_not_found

        raise CheckpointError(file_not_found(path, f"a checkpoint file ({what})")) from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror or err}); expected a checkpoint file") from None
    if not head:
        raise CheckpointError(f"{path}: file is empty (an interrupted download or save?); expected {what}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # every failure of the loader becomes one CheckpointError
        full = str(err)
        if "TorchScript" in full or "constants.pkl" in full:
            raise CheckpointError(
                f"{path}: a TorchScript archive, not {what}. Load it with torch.jit.load(path).state_dict() "
                "and save that dict, or use source='openai:ViT-B-16'.") from None
        blocked = re.search(r"GLOBAL ([\w.]+)", full)
        if blocked:
            raise CheckpointError(
                f"{path}: not a plain state dict of tensors: it holds Python objects ({blocked.group(1)}), which the "
                "safe loader refuses because loading them would run code from the file; expected "
                f"{what} such as model.state_dict() (re-save one with torch.save(model.state_dict(), path))") from None
        if head[:4] == b"PK\x03\x04":
            raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({_first_line(err)}); "
                                  "download or save it again") from None
        if head[:1] == b"\x80":
            raise CheckpointError(f"{path}: truncated or corrupt checkpoint (a damaged pickle: {_first_line(err)}); "
                                  "download or save it again") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a zip archive nor a pickle: it starts with "
                              f"{head!r}); expected {what} saved by torch.save") from None


def _read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state dict, metadata recorded in the file)`` of a ``.pt``/``.bin``/``.safetensors`` file."""
    path = Path(path)
    recorded: dict = {}
    if path.suffix == ".safetensors":
        if not path.exists():
            from dgtrs_lib.errors import file_not_found

            raise CheckpointError(file_not_found(path, "a safetensors checkpoint"))
        if path.stat().st_size == 0:
            raise CheckpointError(f"{path}: file is empty (an interrupted download?)")
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                obj = {k: fh.get_tensor(k) for k in fh.keys()}
                recorded = {k: v for k, v in (fh.metadata() or {}).items() if k in META_FIELDS}
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{path}: not a readable safetensors file ({_first_line(err)}); truncated download?") from None
        recorded = _check_meta({k: _as_int(v) for k, v in recorded.items()}, f"{path} (safetensors metadata)")
    else:
        obj = safe_torch_load(path)
        meta = getattr(obj, "_metadata", None)
        if isinstance(meta, dict) and isinstance(meta.get(META_KEY), dict):
            recorded = _check_meta(dict(meta[META_KEY]), f"{path} (recorded keep/contexts)")
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: expected a dict mapping parameter names to tensors, got "
                              f"{'an empty dict' if isinstance(obj, dict) else type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        shown = ", ".join(f"{k!r}: {type(obj[k]).__name__}" for k in bad[:4])
        raise CheckpointError(f"{path}: expected a dict mapping parameter names to tensors, got {len(bad)} other "
                              f"entries ({shown})")
    return {re.sub(r"^module\.", "", k): v for k, v in obj.items() if k not in DROP_KEYS}, recorded


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict safely (``weights_only=True`` / safetensors) with clear errors."""
    return _read_state(Path(path))[0]


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _check_meta(meta: dict, where) -> dict:
    """keep / ratio / base_context / context_length must be whole numbers (or null)."""
    for key in META_FIELDS:
        value = meta.get(key)
        low = 0 if key == "keep" else 1
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise CheckpointError(f"{where}: field {key!r} is {value!r}; expected a whole number >= {low} (or null)")
    return meta


def read_sidecar(path: str | os.PathLike) -> dict:
    """The ``<stem>.json`` sidecar of a checkpoint (``{}`` when there is none), checked."""
    side = sidecar_path(path)
    if not side.exists():
        return {}
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{side}: the sidecar of {Path(path).name} is not readable JSON ({_first_line(err)}); "
                              "expected the JSON save_official writes ({\"keep\": ..., \"ratio\": ...}); restore it, "
                              "or delete it and pass keep=... explicitly") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{side}: the sidecar of {Path(path).name} holds a {type(meta).__name__}; expected a JSON "
                              "object with keep / ratio / base_context")
    return _check_meta(meta, side)


def checkpoint_metadata(path: str | os.PathLike, recorded: dict | None = None) -> dict:
    """keep / ratio / contexts of a checkpoint: recorded in the file, else from its sidecar; the
    two must agree where both say something."""
    path = Path(path)
    side = read_sidecar(path)
    recorded = recorded or {}
    for key in META_FIELDS:
        if recorded.get(key) is not None and side.get(key) is not None and recorded[key] != side[key]:
            raise CheckpointError(f"{sidecar_path(path)}: says {key} = {side[key]!r} but {path.name} records {recorded[key]!r}; "
                                  "expected them to agree (is the sidecar another checkpoint's?)")
    merged = {**side, **{k: v for k, v in recorded.items() if v is not None}}
    if side or recorded:
        merged["metadata_from"] = "file" if recorded.get("keep") is not None or not side else "sidecar"
    return merged


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state dict, metadata)``: the tensors and keep / ratio / contexts (``checkpoint_metadata``);
    a recorded context that is not the tensors' is an error naming where it is recorded."""
    path = Path(path)
    state, recorded = _read_state(path)
    meta = checkpoint_metadata(path, recorded)
    if recorded.get("keep") is not None and "positional_embedding_res" not in state:
        raise CheckpointError(f"{path}: records keep {recorded['keep']} (a long-format model) but has no "
                              "positional_embedding_res; expected the official long format (damaged file?)")
    ctx = meta.get("context_length")
    pe = state.get("positional_embedding")
    if ctx is not None and isinstance(pe, torch.Tensor) and pe.ndim == 2 and pe.shape[0] != ctx:
        where = sidecar_path(path) if meta.get("metadata_from") == "sidecar" else path
        raise CheckpointError(f"{where}: records context_length {ctx} but positional_embedding has {pe.shape[0]} rows; "
                              "expected the checkpoint's own metadata (is the sidecar another checkpoint's?)")
    return state, meta


# ----------------------------------------------------------------------------- reading the architecture
_BLOCK_TEXT = r"transformer\.resblocks\.(\d+)\."
_BLOCK_VISUAL = r"visual\.transformer\.resblocks\.(\d+)\."


def _count(state: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def _vote(state: dict, what: str, specs, source: str) -> int:
    """The value most tensors agree on for one width: ``specs`` = [(key or regex, ndim, axis)]."""
    votes: Counter = Counter()
    seen = []
    for key, ndim, axis in specs:
        keys = [k for k in state if re.fullmatch(key, k)] if "\\" in key or "(" in key else [key]
        for k in keys:
            t = state.get(k)
            if t is None:
                continue
            seen.append(k)
            if t.ndim == ndim:
                votes[int(t.shape[axis])] += 1
    if not votes:
        raise CheckpointError(f"{source}: cannot read the {what} from {seen or [s[0] for s in specs]}: "
                              "unexpected shapes; expected an OpenAI/Long-CLIP ViT state dict")
    value = votes.most_common(1)[0][0]
    if value < 1:
        raise CheckpointError(f"{source}: the {what} is {value}; expected a positive size")
    return value


def _shape(state: dict, key: str, ndim: int, expected: str, source: str) -> tuple:
    t = state[key]
    if t.ndim != ndim or min(t.shape, default=1) < 1:
        raise CheckpointError(f"{source}: {key} has shape {tuple(t.shape)}; expected {expected}")
    return tuple(t.shape)


def infer_config(state: dict[str, torch.Tensor], source: str = "checkpoint") -> dict:
    """open_clip-style config from a state dict's shapes (OpenAI ``build_model``'s rules), each
    width taken by majority over the tensors that carry it (module doc)."""
    required = ("visual.conv1.weight", "visual.positional_embedding", "text_projection",
                "positional_embedding", "token_embedding.weight", "ln_final.weight")
    if "visual.layer1.0.conv1.weight" in state:
        raise CheckpointError(f"{source}: ResNet image towers are not supported (DGTRS-CLIP releases ViT-B/16 and ViT-L/14)")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{source}: not a CLIP ViT state dict; missing keys {missing} "
                              "(expected OpenAI/Long-CLIP key names such as 'visual.conv1.weight', 'positional_embedding')")
    width = _vote(state, "text width", [("token_embedding.weight", 2, 1), ("positional_embedding", 2, 1),
                                        ("ln_final.weight", 1, 0), ("ln_final.bias", 1, 0), ("text_projection", 2, 0),
                                        (_BLOCK_TEXT + r"ln_[12]\.(weight|bias)", 1, 0)], source)
    vwidth = _vote(state, "image width", [("visual.conv1.weight", 4, 0), ("visual.class_embedding", 1, 0),
                                          ("visual.positional_embedding", 2, 1), ("visual.ln_pre.weight", 1, 0),
                                          ("visual.ln_post.weight", 1, 0), ("visual.proj", 2, 0),
                                          (_BLOCK_VISUAL + r"ln_[12]\.(weight|bias)", 1, 0)], source)
    embed = _vote(state, "embedding width", [("text_projection", 2, 1), ("visual.proj", 2, 1)], source)
    conv = _shape(state, "visual.conv1.weight", 4, f"[{vwidth}, 3, patch, patch]", source)
    if conv[1] != 3 or conv[2] != conv[3]:
        raise CheckpointError(f"{source}: visual.conv1.weight has shape {conv}; expected [{vwidth}, 3, patch, patch] "
                              "(RGB input, square patches)")
    vpos = _shape(state, "visual.positional_embedding", 2, f"[1 + grid*grid, {vwidth}]", source)
    grid = round((vpos[0] - 1) ** 0.5)
    if grid < 1 or grid * grid != vpos[0] - 1:
        raise CheckpointError(f"{source}: visual.positional_embedding has {vpos[0]} rows; expected 1 + a square "
                              "number (the class token + a square grid of patches)")
    ctx = _shape(state, "positional_embedding", 2, f"[context, {width}]", source)[0]
    vocab = _shape(state, "token_embedding.weight", 2, f"[{CLIP_VOCAB}, {width}]", source)[0]
    if vocab != CLIP_VOCAB:
        raise CheckpointError(f"{source}: token_embedding.weight has {vocab} rows; expected {CLIP_VOCAB}, the CLIP BPE "
                              "vocabulary the tokenizer's ids index (dgtrs_lib.tokenize)")
    if ctx < 2:
        raise CheckpointError(f"{source}: positional_embedding has {ctx} rows; expected a context of at least 2 tokens")
    heads, vheads = max(1, width // 64), vwidth // 64
    if width % heads:
        raise CheckpointError(f"{source}: text width {width} cannot be split into 64-wide attention heads "
                              "(OpenAI's rule heads = width // 64); expected a multiple of 64")
    if vheads < 1 or vwidth % vheads:
        raise CheckpointError(f"{source}: image width {vwidth} cannot be split into 64-wide attention heads "
                              "(OpenAI's rule heads = width // 64); expected a multiple of 64")
    layers, vlayers = _count(state, _BLOCK_TEXT), _count(state, _BLOCK_VISUAL)
    if layers < 1 or vlayers < 1:
        raise CheckpointError(f"{source}: no {'text' if layers < 1 else 'image'} transformer blocks "
                              f"({'transformer' if layers < 1 else 'visual.transformer'}.resblocks.N.*); "
                              "expected a CLIP ViT state dict")
    return dict(
        embed_dim=embed,
        vision_cfg=dict(image_size=conv[-1] * grid, layers=vlayers, width=vwidth, patch_size=conv[-1], head_width=64),
        text_cfg=dict(context_length=ctx, vocab_size=vocab, width=width, heads=heads, layers=layers),
    )


def _load_strict(model: torch.nn.Module, state: dict, source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    shapes = [f"{k}: got {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    dtypes = [f"{k}: {state[k].dtype}" for k in expected
              if k in state and expected[k].is_floating_point() and not state[k].is_floating_point()]

    def listed(items, n=8):
        return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")

    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({listed(missing)})")
    if extra:
        problems.append(f"{len(extra)} unexpected keys ({listed(extra)})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches ({listed(shapes)})")
    if dtypes:
        problems.append(f"{len(dtypes)} tensors that are not floating point ({listed(dtypes)})")
    if problems:
        raise CheckpointError(f"{source}: does not match the CLIP architecture read from its own shapes: " + "; ".join(problems))
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def _keep(keep, ctx: int, default_context: int, source: str, what: str) -> int:
    """The keep to use: the given one (checked), else the official 20 at the official context."""
    if keep is None:
        if ctx == default_context:
            return OFFICIAL_KEEP
        raise CheckpointError(
            f"{source}: {what} at context {ctx} and nothing records its keep (no sidecar {Path(source).stem}.json, "
            f"none in the file); expected the sidecar save_official wrote, or keep=... (official checkpoints: "
            f"{OFFICIAL_CONTEXT} tokens with keep {OFFICIAL_KEEP}; KPS of CLIP's {OPENAI_CONTEXT}: keep {OFFICIAL_KEEP})")
    if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= ctx:
        raise CheckpointError(f"{source}: keep {keep!r}; expected a whole number in [0, {ctx}] (the context)")
    return keep


def model_from_state_dict(state: dict[str, torch.Tensor], *, keep: int | None = None, ratio: int = 4,
                          stretch: bool = True, source: str = "checkpoint") -> DynamicCLIP:
    """Build the model a state dict describes.

    Long format (``positional_embedding_res`` present): a ``LongCLIP`` with ``keep`` frozen rows
    (default 20 only at the official 248 tokens). Short OpenAI format: a ``DynamicCLIP``, stretched
    with KPS (``keep``, ``ratio``; keep default 20 only at CLIP's 77 tokens) when ``stretch`` is
    true -- Long-CLIP's ``load_from_clip``. Any other context without ``keep`` is an error.
    """
    if "positional_embedding_res" in state and "positional_embedding" in state:
        res, pe = state["positional_embedding_res"], state["positional_embedding"]
        if res.shape != pe.shape:
            raise CheckpointError(f"{source}: positional_embedding_res has shape {tuple(res.shape)}, "
                                  f"expected {tuple(pe.shape)} like positional_embedding")
    cfg = infer_config(state, source)
    ctx = cfg["text_cfg"]["context_length"]
    if "positional_embedding_res" in state:   # shapes first (keep changes no shape), then the keep
        model = LongCLIP(cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"], quick_gelu=True,
                         keep=min(OFFICIAL_KEEP, ctx))
        _load_strict(model, state, source)
        model.keep = _keep(keep, ctx, OFFICIAL_CONTEXT, source, "a long-format checkpoint")
        return model
    model = DynamicCLIP(cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"], quick_gelu=True)
    _load_strict(model, state, source)
    if stretch:
        keep = _keep(keep, ctx, OPENAI_CONTEXT, source, "a short-format checkpoint to stretch with KPS")
        if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
            raise CheckpointError(f"{source}: ratio {ratio!r}; expected a whole number >= 1")
        if ctx - keep < 2:
            raise CheckpointError(f"{source}: context {ctx} is too short to stretch with keep={keep}")
        model = stretch_model(model, keep=keep, ratio=ratio)
    return model
