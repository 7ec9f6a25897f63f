"""Hugging Face ``transformers`` layout of our CLIP: key mapping both ways, config, tokenizer, image processor.

The official DGTRS-CLIP / Long-CLIP checkpoints use OpenAI CLIP's parameter names; transformers'
``CLIPModel`` names the same tensors differently and splits each attention's packed
``in_proj_weight`` into ``q_proj``/``k_proj``/``v_proj``. The mapping below is the one of
transformers' ``models/clip/convert_clip_original_pytorch_to_hf.py``, written out for open_clip's
batch-first towers. Long-CLIP's two positional tables (frozen rows ``< keep`` + trainable rows
``>= keep``) become the ONE table inference uses, so a stock ``CLIPModel`` with
``max_position_embeddings`` = the model's context (248 for the released shapes) computes the same
features. ``hidden_act = "quick_gelu"`` (OpenAI's activation), ``eos_token_id = 49407`` (pool at the
first end-of-text token, as OpenAI's argmax over ids does). The tokenizer pads with ``<|endoftext|>``,
as OpenAI's own transformers conversion does (``dgtrs_lib.tokenize`` pads with 0; padding sits after
the EOT token and is never attended to, so features do not depend on it).

The tokenizer is built offline from open_clip's own BPE tables (``SimpleTokenizer.encoder`` and
``bpe_ranks``: the vocabulary and merges OpenAI published), as transformers' fast ``CLIPTokenizer``.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import re

import torch

from dgtrs_lib.model.checkpoint import CheckpointError
from dgtrs_lib.model.longclip import DynamicCLIP, LongCLIP

HF_MAX_VOCAB = 49408
SOT_ID, EOT_ID = 49406, 49407


class ExportError(CheckpointError):
    """A model (or a transformers folder) that the target layout cannot express as it is."""


# ----------------------------------------------------------------------------- key mapping
_LAYER = {
    "ln_1.weight": "layer_norm1.weight", "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight", "ln_2.bias": "layer_norm2.bias",
    "attn.out_proj.weight": "self_attn.out_proj.weight", "attn.out_proj.bias": "self_attn.out_proj.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight", "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight", "mlp.c_proj.bias": "mlp.fc2.bias",
}
_FIXED = {  # OpenAI name -> transformers name (transposed where marked below)
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight", "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "visual.ln_post.bias": "vision_model.post_layernorm.bias",
    "visual.proj": "visual_projection.weight",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight", "ln_final.bias": "text_model.final_layer_norm.bias",
    "text_projection": "text_projection.weight",
    "logit_scale": "logit_scale",
}
_TRANSPOSED = {"visual.proj", "text_projection"}
_BLOCK = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")


def openai_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI-named CLIP tensors (one positional table) -> transformers ``CLIPModel`` tensors."""
    out = {}
    for key, value in state.items():
        if key in _FIXED:
            out[_FIXED[key]] = value.t().contiguous() if key in _TRANSPOSED else value
            continue
        m = _BLOCK.match(key)
        if not m:
            raise ExportError(f"{key}: no transformers CLIPModel parameter corresponds to this key")
        tower = "vision_model" if m.group(1) else "text_model"
        prefix = f"{tower}.encoder.layers.{m.group(2)}."
        rest = m.group(3)
        if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
            kind = rest.rsplit("_", 1)[1]
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                out[f"{prefix}self_attn.{name}.{kind}"] = part.contiguous()
        elif rest in _LAYER:
            out[prefix + _LAYER[rest]] = value
        else:
            raise ExportError(f"{key}: no transformers CLIPModel parameter corresponds to this key")
    return out


def hf_to_openai(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`openai_to_hf` (``position_ids`` buffers are dropped)."""
    inverse = {v: k for k, v in _FIXED.items()}
    inv_layer = {v: k for k, v in _LAYER.items()}
    layer = re.compile(r"^(vision_model|text_model)\.encoder\.layers\.(\d+)\.(.+)$")
    out, qkv = {}, {}
    for key, value in state.items():
        if key.endswith("position_ids"):
            continue
        if key in inverse:
            name = inverse[key]
            out[name] = value.t().contiguous() if name in _TRANSPOSED else value
            continue
        m = layer.match(key)
        if not m:
            raise ExportError(f"{key}: not a transformers CLIPModel parameter this project can read")
        prefix = ("visual." if m.group(1) == "vision_model" else "") + f"transformer.resblocks.{m.group(2)}."
        rest = m.group(3)
        proj = re.fullmatch(r"self_attn\.([qkv])_proj\.(weight|bias)", rest)
        if proj:
            qkv.setdefault((prefix, proj.group(2)), {})[proj.group(1)] = value
        elif rest in inv_layer:
            out[prefix + inv_layer[rest]] = value
        else:
            raise ExportError(f"{key}: not a transformers CLIPModel parameter this project can read")
    for (prefix, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise ExportError(f"{prefix}: attention has {sorted(parts)} projections, expected q, k and v")
        out[f"{prefix}attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def inference_state_dict(model: DynamicCLIP) -> dict[str, torch.Tensor]:
    """OpenAI-named tensors of ``model`` with ONE positional table (Long-CLIP's two merged)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    state.pop("positional_embedding_res", None)
    state["positional_embedding"] = model.text_positional_embedding().detach().cpu().contiguous()
    state.pop("attn_mask", None)
    return state


# ----------------------------------------------------------------------------- config
def _check_exportable(model: DynamicCLIP) -> None:
    from open_clip.transformer import QuickGELU

    acts = {type(m).__name__ for m in model.modules() if type(m).__name__ in ("QuickGELU", "GELU", "SiLU", "ReLU")}
    if acts != {"QuickGELU"} or not any(isinstance(m, QuickGELU) for m in model.modules()):
        raise ExportError(f"hidden_act: the model's MLP activations are {sorted(acts) or 'unknown'}; this export "
                          "writes hidden_act='quick_gelu' and would silently change a non-QuickGELU tower")
    if getattr(model, "text_pool_type", "argmax") != "argmax":
        raise ExportError(f"text_pool_type: {model.text_pool_type!r}; transformers' CLIPModel pools at the EOT token")
    if model.vocab_size > HF_MAX_VOCAB:
        raise ExportError(f"vocab_size: {model.vocab_size} exceeds CLIP's BPE vocabulary of {HF_MAX_VOCAB}")


def hf_config(model: DynamicCLIP, extra: dict | None = None):
    """A ``transformers.CLIPConfig`` describing ``model`` (checked to be expressible)."""
    from transformers import CLIPConfig

    from dgtrs_lib.model.longclip import config_from_model

    _check_exportable(model)
    cfg = config_from_model(model)
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    text = dict(vocab_size=t["vocab_size"], hidden_size=t["width"], intermediate_size=4 * t["width"],
                num_hidden_layers=t["layers"], num_attention_heads=t["heads"],
                max_position_embeddings=t["context_length"], hidden_act="quick_gelu", layer_norm_eps=1e-5,
                projection_dim=cfg["embed_dim"], bos_token_id=SOT_ID, eos_token_id=EOT_ID, pad_token_id=0)
    vision = dict(hidden_size=v["width"], intermediate_size=4 * v["width"], num_hidden_layers=v["layers"],
                  num_attention_heads=v["width"] // v["head_width"], image_size=v["image_size"],
                  patch_size=v["patch_size"], hidden_act="quick_gelu", layer_norm_eps=1e-5,
                  projection_dim=cfg["embed_dim"])
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=cfg["embed_dim"],
                        logit_scale_init_value=float(model.logit_scale.detach()))
    config.architectures = ["CLIPModel"]
    stretch = {"keep": getattr(model, "keep", None), "context_length": model.context_length}
    stretch.update(getattr(model, "stretch_info", {}) or {})
    config.dgtrs = {k: v for k, v in {**stretch, **(extra or {})}.items() if v is not None}
    return config


def to_hf_model(model: DynamicCLIP, extra: dict | None = None):
    """A stock ``transformers.CLIPModel`` carrying ``model``'s weights."""
    from transformers import CLIPModel

    config = hf_config(model, extra)
    hf = CLIPModel(config).eval()
    state = openai_to_hf(inference_state_dict(model))
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ExportError(f"transformers CLIPModel: missing {missing[:4]}, unexpected {unexpected[:4]}")
    return hf


def from_hf_model(hf, *, keep: int | None = None, ratio: int | None = None, stretch: bool = True,
                  source: str = "transformers model") -> DynamicCLIP:
    """Our model from a transformers ``CLIPModel``: long-context ones load as they are (a
    ``LongCLIP``), OpenAI-shaped 77-token ones are stretched with KPS (as ``load_model`` does)."""
    from dgtrs_lib.model.checkpoint import model_from_state_dict

    cfg = hf.config
    for side, sub in (("text_config", cfg.text_config), ("vision_config", cfg.vision_config)):
        if getattr(sub, "hidden_act", "quick_gelu") != "quick_gelu":
            raise ExportError(f"{source}: {side}.hidden_act is {sub.hidden_act!r}; this project's towers use "
                              "quick_gelu (OpenAI CLIP)")
        if sub.hidden_size % 64:
            raise ExportError(f"{source}: {side}.hidden_size {sub.hidden_size} is not a multiple of 64 "
                              "(heads are 64 wide in OpenAI-shaped CLIP)")
        if sub.num_attention_heads != sub.hidden_size // 64:
            raise ExportError(f"{source}: {side}.num_attention_heads is {sub.num_attention_heads}, expected "
                              f"hidden_size // 64 = {sub.hidden_size // 64}")
    state = hf_to_openai({k: v.detach().cpu() for k, v in hf.state_dict().items()})
    meta = dict(getattr(cfg, "dgtrs", None) or {})
    ctx = cfg.text_config.max_position_embeddings
    base = meta.get("base_context")
    if ctx > 77 or (base is not None and ctx > base):
        # a long-context model (ours, or a community conversion of Long-CLIP): one table, loaded into
        # both of LongCLIP's tensors, so rows < keep and rows >= keep read the same values
        state["positional_embedding_res"] = state["positional_embedding"].clone()
    keep = keep if keep is not None else meta.get("keep")
    ratio = ratio if ratio is not None else meta.get("ratio", 4)
    return model_from_state_dict(state, keep=keep, ratio=ratio, stretch=stretch, source=source)


def is_hf_folder(path) -> bool:
    from pathlib import Path

    p = Path(path)
    if not (p.is_dir() and (p / "config.json").is_file()):
        return False
    import json

    try:
        return json.loads((p / "config.json").read_text()).get("model_type") == "clip"
    except (OSError, ValueError):
        return False


def load_hf_folder(path, *, keep: int | None = None, ratio: int | None = None, stretch: bool = True) -> DynamicCLIP:
    """Our model from a transformers CLIP folder (``config.json`` + weights), offline."""
    from transformers import CLIPModel

    try:
        hf = CLIPModel.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ExportError(f"{path}: not a loadable transformers CLIP folder ({str(err).splitlines()[0][:300]})") from err
    return from_hf_model(hf, keep=keep, ratio=ratio, stretch=stretch, source=str(path))


# ----------------------------------------------------------------------------- tokenizer, processor
def hf_tokenizer(context_length: int):
    """transformers' fast ``CLIPTokenizer`` with open_clip's vocabulary and merges, truncating at
    ``context_length`` (its ids equal ``dgtrs_lib.tokenize``'s up to the EOT token)."""
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    simple = SimpleTokenizer()
    merges = [tuple(pair) for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda kv: kv[1])]
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}  # OpenAI's spelling
    vocab = {rename.get(k, k): v for k, v in simple.encoder.items()}
    tok = CLIPTokenizer(vocab=vocab, merges=merges, unk_token="<|endoftext|>", bos_token="<|startoftext|>",
                        eos_token="<|endoftext|>", pad_token="<|endoftext|>", model_max_length=context_length)
    # open_clip cleans text with ftfy.fix_text, which straightens typographic quotes; transformers'
    # CLIP normalizer does not. Do the same replacement first (other ftfy repairs -- mojibake -- are
    # not reproduced: clean such text with ftfy before tokenizing).
    from tokenizers import normalizers

    quotes = [normalizers.Replace(a, b) for a, b in (("\u201c", '"'), ("\u201d", '"'), ("\u2018", "'"), ("\u2019", "'"))]
    current = tok.backend_tokenizer.normalizer
    tok.backend_tokenizer.normalizer = normalizers.Sequence(quotes + ([current] if current is not None else []))
    return tok


def hf_image_processor(image_size: int):
    """``CLIPImageProcessor`` matching ``dgtrs_lib.model.transforms.make_preprocess``: bicubic
    resize of the shortest side, centre crop, CLIP mean/std."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                              do_resize=True, do_center_crop=True, do_normalize=True, do_convert_rgb=True,
                              resample=3, image_mean=list(OPENAI_DATASET_MEAN), image_std=list(OPENAI_DATASET_STD))


def hf_processor(model: DynamicCLIP):
    from transformers import CLIPProcessor

    return CLIPProcessor(image_processor=hf_image_processor(model.image_size),
                         tokenizer=hf_tokenizer(model.context_length))


__all__ = ["ExportError", "LongCLIP", "from_hf_model", "hf_config", "hf_processor", "hf_tokenizer",
           "hf_to_openai", "inference_state_dict", "is_hf_folder", "load_hf_folder", "openai_to_hf", "to_hf_model"]
