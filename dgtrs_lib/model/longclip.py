"""The long-text CLIP of DGTRS-CLIP / Long-CLIP, built on open_clip's ``CLIP``.

DGTRS-CLIP (arXiv:2503.19311) is Long-CLIP's architecture (Zhang et al. 2024,
``model/model_longclip.py``): an OpenAI CLIP whose text positional embedding was stretched by KPS
from 77 to 248 rows and stored as two tensors,

* ``positional_embedding``     ``[248, D]``, frozen; only rows ``< keep`` (20) are used;
* ``positional_embedding_res`` ``[248, D]``, trainable; only rows ``>= keep`` are used,

so fine-tuning cannot move the first ``keep`` positions that CLIP trained well. ``LongCLIP`` keeps
exactly these parameter names, so its ``state_dict()`` *is* the official checkpoint layout.

Two differences from the official module, neither changing outputs: the towers are open_clip's
(batch-first attention, same parameter names), and ``encode_text`` accepts token tensors shorter
than the context (per-batch dynamic padding; causal attention makes the padding positions after
EOT irrelevant to the pooled EOT feature). QuickGELU is used everywhere, as in OpenAI's weights.

Configs: ``ViT-B-16`` and ``ViT-L-14`` (OpenAI shapes, context 77 before stretching) and ``tiny``,
the CPU miniature of this book: 64 px images, patch 8, width 128, 3+3 layers, a 32-token base
context standing in for CLIP's 77, stretched by KPS with the keep and ratio measured on its prior
(``dgtrs_lib.model.configs``).

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import copy

import torch
from open_clip.model import CLIP
from open_clip.transformer import text_global_pool
from torch import nn

from dgtrs_lib.model.configs import MODEL_CONFIGS
from dgtrs_lib.model.kps import kps_length, linear_stretch_positional_embedding, stretch_positional_embedding


class DynamicCLIP(CLIP):
    """open_clip ``CLIP`` (QuickGELU) whose ``encode_text`` takes any token length <= context."""

    def text_positional_embedding(self) -> torch.Tensor:
        return self.positional_embedding

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        seq_len = text.shape[1]
        if seq_len > self.context_length:
            raise ValueError(
                f"token tensor has {seq_len} positions but the text encoder takes at most "
                f"{self.context_length}; tokenize with context_length={self.context_length}"
            )
        cast_dtype = self.transformer.get_cast_dtype()
        x = self.token_embedding(text).to(cast_dtype)
        x = x + self.text_positional_embedding()[:seq_len].to(cast_dtype)
        x = self.transformer(x, attn_mask=self.attn_mask[:seq_len, :seq_len])
        x = self.ln_final(x)
        x = text_global_pool(x, text, self.text_pool_type, eos_token_id=getattr(self, "text_eos_id", None))
        x = self.text_projection(x) if isinstance(self.text_projection, nn.Linear) else x @ self.text_projection
        return nn.functional.normalize(x, dim=-1) if normalize else x

    @property
    def image_size(self) -> int:
        size = self.visual.image_size
        return size[0] if isinstance(size, (tuple, list)) else int(size)


class LongCLIP(DynamicCLIP):
    """CLIP with the official long-text split of the positional embedding (see module docstring)."""

    def __init__(self, *args, keep: int = 20, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 <= keep <= self.context_length:
            raise ValueError(f"keep must be in [0, {self.context_length}], got {keep}")
        self.keep = keep
        self.positional_embedding.requires_grad_(False)
        self.positional_embedding_res = nn.Parameter(self.positional_embedding.detach().clone())

    def text_positional_embedding(self) -> torch.Tensor:
        """Rows ``< keep`` from the frozen table, rows ``>= keep`` from the trainable one."""
        return torch.cat([self.positional_embedding[: self.keep], self.positional_embedding_res[self.keep:]], dim=0)

    def set_positional_embedding(self, pe: torch.Tensor) -> None:
        """Load one ``[context, D]`` table into both tensors (frozen copy + trainable copy)."""
        with torch.no_grad():
            self.positional_embedding.copy_(pe)
            self.positional_embedding_res.copy_(pe)


def _build(cls, cfg: dict, context_length: int, **kwargs):
    text_cfg = dict(cfg["text_cfg"], context_length=context_length)
    return cls(cfg["embed_dim"], vision_cfg=dict(cfg["vision_cfg"]), text_cfg=text_cfg, quick_gelu=True, **kwargs)


def get_config(name: str) -> dict:
    if name not in MODEL_CONFIGS:
        raise KeyError(f"unknown model config {name!r}; known: {', '.join(MODEL_CONFIGS)}")
    return copy.deepcopy(MODEL_CONFIGS[name])


def create_model(name: str = "tiny", *, context_length: int | None = None) -> DynamicCLIP:
    """A randomly initialised short-context CLIP (the stand-in for OpenAI CLIP before KPS)."""
    cfg = get_config(name)
    return _build(DynamicCLIP, cfg, context_length or cfg["text_cfg"]["context_length"])


def create_long_model(name: str = "tiny", *, keep: int | None = None, ratio: int | None = None,
                      context_length: int | None = None) -> LongCLIP:
    """A randomly initialised LongCLIP at the stretched context (248 for ViT-B-16/L-14, 104 for tiny)."""
    cfg = get_config(name)
    keep = cfg["keep"] if keep is None else keep
    ratio = cfg["ratio"] if ratio is None else ratio
    ctx = context_length or kps_length(cfg["text_cfg"]["context_length"], keep, ratio)
    return _build(LongCLIP, cfg, ctx, keep=keep)


def config_from_model(model: DynamicCLIP) -> dict:
    """The open_clip-style config (embed_dim, vision_cfg, text_cfg) that rebuilds ``model``."""
    visual = model.visual
    vis_layers = len(visual.transformer.resblocks)
    vis_width = visual.conv1.weight.shape[0]
    patch = visual.conv1.weight.shape[-1]
    return dict(
        embed_dim=model.text_projection.shape[1],
        vision_cfg=dict(image_size=model.image_size, layers=vis_layers, width=vis_width, patch_size=patch, head_width=64),
        text_cfg=dict(context_length=model.context_length, vocab_size=model.vocab_size,
                      width=model.ln_final.weight.shape[0], heads=model.transformer.resblocks[0].attn.num_heads,
                      layers=len(model.transformer.resblocks)),
    )


def stretch_model(model: DynamicCLIP, keep: int = 20, ratio: int = 4, mode: str = "kps",
                  frozen: int | None = None, seed: int = 0) -> LongCLIP:
    """Long-CLIP's ``load_from_clip``: a LongCLIP carrying ``model``'s weights with the text
    positions stretched to ``ratio*L - (ratio-1)*keep``.

    ``mode="kps"`` uses Knowledge-Preserved Stretching and freezes the first ``keep`` rows.
    ``mode="linear"`` interpolates all positions to the same length (the naive baseline; Long-CLIP's
    "direct fine-tuning") and by default freezes nothing (``frozen=0``).
    ``mode="random"`` keeps (and freezes) the first ``keep`` rows and initialises every new row at
    random, as open_clip initialises a positional table (normal, std 0.01): the ablation that
    separates KPS's interpolation from its freezing. ``frozen`` overrides how many leading rows
    stay frozen (e.g. ``mode="kps", frozen=0``: KPS's rows, nothing frozen).
    """
    if isinstance(model, LongCLIP):
        raise TypeError("model is already stretched (LongCLIP); stretch the short-context model")
    pe = model.positional_embedding.detach()
    new_len = kps_length(pe.shape[0], keep, ratio)
    if mode == "kps":
        stretched = stretch_positional_embedding(pe, keep=keep, ratio=ratio)
        frozen = keep if frozen is None else frozen
    elif mode == "linear":
        stretched = linear_stretch_positional_embedding(pe, new_len)
        frozen = 0 if frozen is None else frozen
    elif mode == "random":
        gen = torch.Generator().manual_seed(seed)
        fresh = torch.randn(new_len - keep, pe.shape[1], generator=gen, dtype=torch.float32) * 0.01
        stretched = torch.cat([pe[:keep], fresh.to(pe.dtype).to(pe.device)], dim=0)
        frozen = keep if frozen is None else frozen
    else:
        raise ValueError(f"mode must be 'kps', 'linear' or 'random', got {mode!r}")
    if not 0 <= frozen <= keep and mode != "linear":
        raise ValueError(f"frozen must be in [0, keep={keep}], got {frozen}")
    cfg = config_from_model(model)
    long_model = _build(LongCLIP, cfg, new_len, keep=frozen)
    state = {k: v for k, v in model.state_dict().items() if k != "positional_embedding"}
    missing, unexpected = long_model.load_state_dict(state, strict=False)
    assert set(missing) == {"positional_embedding", "positional_embedding_res"} and not unexpected, (missing, unexpected)
    long_model.set_positional_embedding(stretched)
    long_model.stretch_info = {"mode": mode, "keep": keep, "ratio": ratio, "base_context": pe.shape[0],
                               "frozen": frozen}
    return long_model.to(pe.device)
