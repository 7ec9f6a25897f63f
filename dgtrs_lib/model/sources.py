"""Model sources: one registry that turns a string into ``(model, preprocess)``.

``load_model(source)`` accepts

* a local ``.pt``/``.pth``/``.bin`` (``torch.load(weights_only=True)``) or ``.safetensors`` file in
  the official long format (has ``positional_embedding_res``) or the OpenAI short format (KPS applied);
* ``"openai:ViT-B-16"`` / ``"openai:ViT-L-14"``: OpenAI weights through open_clip (online only), KPS applied;
* a Hugging Face Hub id of the released checkpoints (online only, ``DGTRS_ONLINE=1``).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from dgtrs_lib.model.checkpoint import CheckpointError, load_state_dict_file, model_from_state_dict, sidecar_path
from dgtrs_lib.model.transforms import make_preprocess

HUB_CHECKPOINTS = {
    # repo id -> file name (None: the repository's single .pt/.safetensors file)
    "MitsuiChen14/DGTRS-CLIP-ViT-B-16": None,
    "MitsuiChen14/DGTRS-CLIP-ViT-L-14": None,
    "BeichenZhang/LongCLIP-B": "longclip-B.pt",
    "BeichenZhang/LongCLIP-L": "longclip-L.pt",
}
OPENAI_NAMES = {"ViT-B-16": "ViT-B-16-quickgelu", "ViT-L-14": "ViT-L-14-quickgelu"}

def _hub_file(repo_id: str) -> Path:
    from dgtrs_lib.env import is_online

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
    from dgtrs_lib.model.hf import is_hf_folder, load_hf_folder

    if is_hf_folder(src):  # a transformers CLIP folder (our export, or a community conversion)
        model = load_hf_folder(src, keep=keep, ratio=ratio, stretch=stretch).to(device).eval()
        return model, make_preprocess(model.image_size)
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
