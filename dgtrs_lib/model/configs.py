"""The model shapes this project builds, as plain data (no torch at import).

``ViT-B-16`` and ``ViT-L-14`` are OpenAI CLIP's shapes (QuickGELU, 77-token text context), the two
towers DGTRS-CLIP releases (paper section 4.1); ``keep``/``ratio`` are their KPS settings
(Long-CLIP, Zhang et al. 2024, section 3.1: keep 20, ratio 4 -> 248 tokens). ``tiny`` is the CPU
miniature, base context 32 (CLIP's 77 in miniature); its ``keep`` and ``ratio`` are not guessed
but MEASURED on its pre-trained prior, as Long-CLIP measured CLIP's effective length
(``dgtrs_lib.experiments.instrument``: keep = the positional rows the prior uses, ratio = the
smallest one whose stretched context holds the longest SynDG-RS long description); the
instrument gate fails when these values and the measurement disagree. Every other setting that
depends on the model (a profile's stretch, the checkpoint sidecar) reads it here.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

MODEL_CONFIGS: dict[str, dict] = {
    "ViT-B-16": dict(
        embed_dim=512,
        vision_cfg=dict(image_size=224, layers=12, width=768, patch_size=16, head_width=64),
        text_cfg=dict(context_length=77, vocab_size=49408, width=512, heads=8, layers=12),
        keep=20, ratio=4,
    ),
    "ViT-L-14": dict(
        embed_dim=768,
        vision_cfg=dict(image_size=224, layers=24, width=1024, patch_size=14, head_width=64),
        text_cfg=dict(context_length=77, vocab_size=49408, width=768, heads=12, layers=12),
        keep=20, ratio=4,
    ),
    # The miniature: every head is 64 wide, as in OpenAI's models, so the architecture can be read
    # back from a state dict's shapes alone (official loaders infer heads = width // 64).
    # Patch 8 (an 8 x 8 grid, 65 image tokens). Patch 16 was tried for issue #11's build budget (the
    # prior's step 0.25 s against 0.63 s on 2 cores) and withdrawn: on the 16-pixel prior both
    # Sentinel-2 gates of the instrument failed (classification below chance, SeLo below the flat
    # map) while the SynDG-RS tasks barely moved (study amendment 3, dgtrs_lib.experiments.ablations).
    "tiny": dict(
        embed_dim=128,
        vision_cfg=dict(image_size=64, layers=3, width=128, patch_size=8, head_width=64),
        text_cfg=dict(context_length=32, vocab_size=49408, width=128, heads=2, layers=3),
        # measured (results/reference/instrument-cpu.json, gate effective_length_and_keep)
        keep=30, ratio=45,
    ),
}


def architecture_of(name: str) -> dict:
    """The shapes of configuration ``name`` (``embed_dim``, ``vision_cfg``, ``text_cfg``): what a
    trained run must match to be reused (``dgtrs_lib.experiments.pipeline``, the study's digests)."""
    if name not in MODEL_CONFIGS:
        raise KeyError(f"unknown model configuration {name!r}: expected one of {sorted(MODEL_CONFIGS)}")
    cfg = MODEL_CONFIGS[name]
    return {k: cfg[k] for k in ("embed_dim", "vision_cfg", "text_cfg")}


def stretch_of(name: str) -> dict:
    """``{"keep", "ratio", "base_context", "context"}`` of a configuration name."""
    if name not in MODEL_CONFIGS:
        raise KeyError(f"unknown model configuration {name!r}: expected one of {sorted(MODEL_CONFIGS)}")
    cfg = MODEL_CONFIGS[name]
    base = cfg["text_cfg"]["context_length"]
    keep, ratio = cfg["keep"], cfg["ratio"]
    return {"keep": keep, "ratio": ratio, "base_context": base, "context": ratio * base - (ratio - 1) * keep}
