"""Model sources: the ONE registry that turns a string into a model, its image preprocessing and a
description. ``resolve_source(source)`` returns ``(model, preprocess, info)``; ``load_model(source)``
returns ``(model, preprocess)``. The model is in eval mode on ``device``; ``encode_image`` /
``encode_text`` return unnormalised features, as the official implementation does.

Sources, in the order they are tried:

* ``"tiny-random"``: an untrained, KPS-stretched miniature -- chance-level numbers that only prove
  a code path;
* a name in ``BASELINES``: the paper's comparison models (arXiv:2503.19311, section 4, Tables 1-4);
  OpenAI-derived weights need open_clip's QuickGELU architectures;
* ``"open_clip:ARCH@TAG_OR_FILE"``: any open_clip architecture with a pretrained tag (downloads) or a
  local weights file (``open_clip.load_checkpoint``); use a ``-quickgelu`` architecture for
  OpenAI-derived weights;
* ``"openai:ViT-B-16"`` / ``"openai:ViT-L-14"``: OpenAI's CLIP weights through open_clip, KPS applied
  (Long-CLIP's ``load_from_clip``, Zhang et al. 2024);
* ``"hf:OWNER/NAME"`` or ``"hf:OWNER/NAME:FILE"``: a Hugging Face Hub repository (its single
  checkpoint file, or FILE in it); a bare ``owner/name`` goes to the Hub only when it is one of the
  released checkpoints in ``HUB_CHECKPOINTS`` and no such local path exists;
* an existing local ``.pt``/``.pth``/``.bin`` (``torch.load(weights_only=True)``) or ``.safetensors``
  file in the official long format (has ``positional_embedding_res``) or the OpenAI short format
  (KPS applied), with the keep recorded in it or in our ``.json`` sidecar
  (``dgtrs_lib.model.checkpoint``);
* an existing local transformers CLIP folder (``config.json`` with ``model_type: clip`` + weights,
  e.g. from ``dgtrs_lib.model.export``): long-context ones load as they are, 77-token ones get KPS.

A string that looks like a path (a folder separator, a weights suffix, ``.``/``~`` first) and does
not exist is "not found", with the near misses in its folder -- never a Hub id; any other
unknown string is an unknown source, and the error lists the baselines and the forms above.

``keep`` / ``ratio`` / ``stretch`` apply to the CLIP state-dict sources (files, ``openai:``, Hub ids);
``keep``/``ratio`` default to what the checkpoint records (file or sidecar); without a record only
the official shapes have defaults (``dgtrs_lib.model.checkpoint``), ratio 4.

Every download passes the one offline guard, ``dgtrs_lib.env.require_online``; offline (the default
unless ``DGTRS_ONLINE=1``) it fails fast with a ``CheckpointError`` naming the source and the way
out. Every other bad source (unknown name or architecture, missing or unfitting weights) is a
``CheckpointError`` too.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from dgtrs_lib.errors import OfflineError, choices, near_misses
from dgtrs_lib.model.checkpoint import (
    CheckpointError,
    _first_line,
    model_from_state_dict,
    read_checkpoint,
    safe_torch_load,
)
from dgtrs_lib.model.hf import is_hf_folder, load_hf_folder
from dgtrs_lib.model.transforms import make_preprocess, model_image_size

HUB_CHECKPOINTS = {
    # repo id -> file name (None: the repository's single .pt/.safetensors file)
    "MitsuiChen14/DGTRS-CLIP-ViT-B-16": None,
    "MitsuiChen14/DGTRS-CLIP-ViT-L-14": None,
    "BeichenZhang/LongCLIP-B": "longclip-B.pt",
    "BeichenZhang/LongCLIP-L": "longclip-L.pt",
}
OPENAI_NAMES = {"ViT-B-16": "ViT-B-16-quickgelu", "ViT-L-14": "ViT-L-14-quickgelu"}
RELEASED_DGTRS = "MitsuiChen14/DGTRS-CLIP-ViT-B-16"

# The paper's baselines (arXiv:2503.19311, section 4). OpenAI-derived weights need QuickGELU.
BASELINES = {
    "openai-vit-b-16": {"arch": "ViT-B-16-quickgelu", "pretrained": "openai"},
    "openai-vit-l-14": {"arch": "ViT-L-14-quickgelu", "pretrained": "openai"},
    "remoteclip-vit-b-32": {"arch": "ViT-B-32-quickgelu", "hub": ("chendelong/RemoteCLIP", "RemoteCLIP-ViT-B-32.pt")},
    "remoteclip-vit-l-14": {"arch": "ViT-L-14-quickgelu", "hub": ("chendelong/RemoteCLIP", "RemoteCLIP-ViT-L-14.pt")},
    "georsclip-vit-b-32": {"arch": "ViT-B-32-quickgelu", "hub": ("Zilun/GeoRSCLIP", "ckpt/RS5M_ViT-B-32.pt")},
    "georsclip-vit-l-14": {"arch": "ViT-L-14-quickgelu", "hub": ("Zilun/GeoRSCLIP", "ckpt/RS5M_ViT-L-14.pt")},
    "longclip-b": {"source": "BeichenZhang/LongCLIP-B"},
    "longclip-l": {"source": "BeichenZhang/LongCLIP-L"},
    "dgtrs-clip-b": {"source": "MitsuiChen14/DGTRS-CLIP-ViT-B-16"},
    "dgtrs-clip-l": {"source": "MitsuiChen14/DGTRS-CLIP-ViT-L-14"},
    # SkyCLIP: no single canonical hosted file was found; pass open_clip:ViT-L-14-quickgelu@<SkyCLIP .pt>
}
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
HUB_PREFIX = "hf:"
FORMS = ("tiny-random", "a baseline name", "openai:ViT-B-16 | openai:ViT-L-14", "open_clip:ARCH@TAG_OR_FILE",
         "hf:OWNER/NAME[:FILE]", "a local .pt/.pth/.bin/.safetensors file", "a transformers CLIP folder")


class SourceOfflineError(CheckpointError, OfflineError):
    """A model source that needs a download while the run is offline (exit code 5)."""

    exit_code = OfflineError.exit_code


# ----------------------------------------------------------------------------- the offline guard
def _require_online(what: str, alternative: str) -> None:
    """``dgtrs_lib.env.require_online``, raising this registry's ``CheckpointError``."""
    from dgtrs_lib.env import require_online

    try:
        require_online(what, alternative)
    except OfflineError as err:
        raise SourceOfflineError(str(err)) from None


def _hub_download(repo_id: str, filename: str | None = None) -> Path:
    """A file of a Hub repository (``filename=None``: its single checkpoint file)."""
    _require_online(f"{repo_id}" + (f"/{filename}" if filename else "") + " (Hugging Face Hub)",
                    "download the file and pass its local path (open_clip:ARCH@FILE for open_clip weights)")
    from huggingface_hub import hf_hub_download, list_repo_files

    try:
        if filename is None:
            files = [f for f in list_repo_files(repo_id) if f.endswith(WEIGHT_SUFFIXES)]
            if len(files) != 1:
                raise CheckpointError(f"{repo_id}: expected one checkpoint file in the repository, found {files}; "
                                      f"pass {HUB_PREFIX}{repo_id}:FILE or a local path")
            filename = files[0]
        return Path(hf_hub_download(repo_id, filename))
    except CheckpointError:
        raise
    except Exception as err:  # huggingface_hub: repository / file not found, network errors
        raise CheckpointError(f"{repo_id}" + (f":{filename}" if filename else "") + f": download from the Hugging Face "
                              f"Hub failed ({type(err).__name__}: {_first_line(err)}); expected an existing public "
                              "repository and file") from None


# ----------------------------------------------------------------------------- the sources
def tiny_random_model():
    """An untrained, KPS-stretched miniature LongCLIP and its preprocess (code-path checks only)."""
    import torch

    from dgtrs_lib.model.longclip import create_long_model

    torch.manual_seed(0)
    model = create_long_model("tiny").eval()
    return model, make_preprocess(model.image_size)


def _open_clip_model(arch: str, weights: str | None, device: str):
    import open_clip

    src = f"open_clip:{arch}" + (f"@{weights}" if weights else "")
    if arch not in open_clip.list_models():
        raise CheckpointError(f"{src}: unknown architecture; see open_clip.list_models()")
    if weights and not Path(weights).exists() and not re.search(r"[/\\.]", weights):   # a pretrained tag
        _require_online(f"{src} (pretrained tag)", "pass a local weights file as open_clip:ARCH@FILE")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=weights, device=device)
        except Exception as err:  # unknown tag, failed download
            raise CheckpointError(f"{src}: open_clip could not load the pretrained weights {weights!r} "
                                  f"({_first_line(err)}); see open_clip.list_pretrained()") from None
    else:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, device=device)
        if weights:
            if not Path(weights).exists():
                raise CheckpointError(f"{src}: weights file {weights} not found{near_misses(weights)}")
            safe_torch_load(Path(weights), f"open_clip {arch} weights")   # a clear error for corrupt/unsafe files
            try:
                open_clip.load_checkpoint(model, weights, strict=True, weights_only=True)
            except Exception as err:  # open_clip raises RuntimeError/KeyError/ValueError/...: one message
                raise CheckpointError(f"{weights}: does not fit open_clip {arch} ({_first_line(err)})") from None
    return model, preprocess


def looks_like_path(src: str) -> bool:
    """A string meant as a local path: a folder separator, a weights suffix, or ``.``/``~`` first."""
    return ("/" in src or "\\" in src or os.sep in src or src.startswith((".", "~"))
            or src.lower().endswith((*WEIGHT_SUFFIXES, ".json")))


def _hub_spec(src: str) -> tuple[str, str | None]:
    """``hf:OWNER/NAME[:FILE]`` -> ``(repo id, file or None)``."""
    repo, _, filename = src[len(HUB_PREFIX):].partition(":")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise CheckpointError(f"{src}: not a Hub repository; expected hf:OWNER/NAME or hf:OWNER/NAME:FILE")
    return repo, filename or HUB_CHECKPOINTS.get(repo)


def unknown_source(src: str) -> CheckpointError:
    """The error for a string that names no source: what was tried and every valid form."""
    if looks_like_path(src):
        hub = (f"; to load a Hugging Face Hub repository write {HUB_PREFIX}{src}"
               if re.fullmatch(r"[\w.-]+/[\w.-]+", src) and not src.lower().endswith(WEIGHT_SUFFIXES) else "")
        return CheckpointError(f"{src}: file not found{near_misses(src)}{hub}; expected an existing checkpoint "
                               "file or transformers folder")
    known = [*BASELINES, "tiny-random"]
    return CheckpointError(f"{src!r}: unknown model source (not a file, a baseline or a released Hub id); expected "
                           f"{choices(known, src)}; other forms: {', '.join(FORMS[2:])}")


def _state_dict_of(src: str) -> tuple[dict, dict]:
    """``(state dict, keep/ratio metadata)`` of an ``openai:`` name, a local file or a Hub id."""
    if src.startswith("openai:"):
        name = src.split(":", 1)[1]
        if name not in OPENAI_NAMES:
            raise CheckpointError(f"{src}: unknown OpenAI model; choose one of {[f'openai:{n}' for n in OPENAI_NAMES]}")
        _require_online(f"{src} (OpenAI weights through open_clip)", "pass a local OpenAI-format state dict instead")
        import open_clip

        try:
            reference = open_clip.create_model(OPENAI_NAMES[name], pretrained="openai")
        except RuntimeError as err:
            raise CheckpointError(f"{src}: OpenAI weights could not be downloaded ({err}); pass a local state dict instead") from err
        return reference.state_dict(), {}
    path = Path(src).expanduser()
    if src.startswith(HUB_PREFIX):
        path = _hub_download(*_hub_spec(src))
    elif not path.exists():
        if src in HUB_CHECKPOINTS:                    # a released checkpoint, named by its Hub id
            path = _hub_download(src, HUB_CHECKPOINTS[src])
        else:
            raise unknown_source(src)
    elif path.is_dir():
        raise CheckpointError(f"{path}: a folder, but not a transformers CLIP folder (no config.json with model_type "
                              "'clip'); expected a checkpoint file or a folder written by dgtrs_lib.model.export")
    return read_checkpoint(path)


def describe_model(model) -> dict:
    """What a results file records about a model: class, text context, image size, parameters."""
    return {"class": type(model).__name__, "context_length": int(getattr(model, "context_length", 0)) or None,
            "image_size": model_image_size(model),
            "parameters": int(sum(p.numel() for p in model.parameters()))}


def resolve_source(source: str | os.PathLike, device: str = "cpu", *, keep: int | None = None,
                   ratio: int | None = None, stretch: bool = True):
    """``(model, preprocess, info)`` for any source of the module docstring; ``info`` holds the
    source, how it was resolved (``baseline``, ``arch``, ``weights``, ``note``) and ``describe_model``."""
    src = str(source)
    if not src.strip():
        raise CheckpointError(f"model source {src!r} is empty; expected {', '.join(FORMS)}")
    info: dict = {"source": src}
    state_dict_only = keep is not None or ratio is not None or not stretch
    if src in BASELINES and "source" in BASELINES[src]:           # a released long-text checkpoint
        model, preprocess, inner = resolve_source(BASELINES[src]["source"], device, keep=keep, ratio=ratio,
                                                  stretch=stretch)
        return model, preprocess, {**inner, "baseline": src}
    if state_dict_only and (src == "tiny-random" or src in BASELINES or src.startswith("open_clip:")):
        raise CheckpointError(f"{src}: keep / ratio / stretch apply to CLIP state dicts only "
                              "(local files, openai:NAME, Hub ids)")
    if src == "tiny-random":
        model, preprocess = tiny_random_model()
        info["note"] = "untrained random miniature: chance-level numbers, a code-path check only"
    elif src in BASELINES:
        spec = BASELINES[src]
        weights = spec.get("pretrained") or str(_hub_download(*spec["hub"]))
        model, preprocess = _open_clip_model(spec["arch"], weights, device)
        info.update(baseline=src, arch=spec["arch"], weights=spec.get("pretrained") or "/".join(spec["hub"]))
    elif src.startswith("open_clip:"):
        arch, _, weights = src.split(":", 1)[1].partition("@")
        model, preprocess = _open_clip_model(arch, weights or None, device)
        info.update(arch=arch, weights=weights or None)
    elif is_hf_folder(Path(src).expanduser()):  # a transformers CLIP folder: our export, or a community conversion
        model = load_hf_folder(Path(src).expanduser(), keep=keep, ratio=ratio, stretch=stretch)
        preprocess = make_preprocess(model.image_size)
        info["format"] = "transformers"
    else:
        state, meta = _state_dict_of(src)
        keep = keep if keep is not None else meta.get("keep")
        ratio = ratio if ratio is not None else (meta.get("ratio") or 4)
        model = model_from_state_dict(state, keep=keep, ratio=ratio, stretch=stretch, source=src)
        if meta.get("metadata_from"):
            info["keep_from"] = meta["metadata_from"]
        preprocess = make_preprocess(model.image_size)
    model = model.to(device).eval()
    info.update(describe_model(model))
    return model, preprocess, info


def load_model(source: str | os.PathLike, device: str = "cpu", *, keep: int | None = None, ratio: int | None = None,
               stretch: bool = True):
    """``(model, preprocess)`` of a source (see ``resolve_source``), model in eval mode on ``device``."""
    model, preprocess, _ = resolve_source(source, device, keep=keep, ratio=ratio, stretch=stretch)
    return model, preprocess
