"""The prompts of the dataset builder: what a vision-language model is asked for each granularity.

DGTRSD (arXiv:2503.19311, section 3) pairs every image with a **short caption** and a **long
description** written by multimodal LLMs; the paper does not publish its prompts. These are ours,
written for what the book's tasks test: the short caption is one RSICD-like sentence (the scene and
its most salient objects, within CLIP's 77 tokens), the long description names the facts the
long-text retrieval and the fine-grained classification need -- scene type, objects with counts,
colours, sizes and positions, their relations, and the land cover (water, vegetation, bare or
built-up land) with rough shares -- and says nothing it cannot see (no place names, dates, sensors).
The condensing prompt asks a text-only LLM for the short caption of a long description (the
alternative to Long-CLIP's first-sentence rule, :func:`dgtrs_lib.data.dual.first_sentence`).

Every generated row records :func:`prompt_hash` of the prompts it was written with, so two builds
can be compared prompt for prompt (the provenance of :mod:`dgtrs_lib.data.build.writer`).

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from __future__ import annotations

import hashlib
import json

SHORT_PROMPT = (
    "You are looking at an overhead remote sensing image. Write ONE short sentence (at most 20 words) "
    "that says what kind of scene it is and names its most visible objects or land cover. "
    "Do not start with 'This image' and do not mention the camera, sensor, place or date.")

LONG_PROMPT = (
    "You are looking at an overhead remote sensing image. Describe it in one paragraph of 4 to 8 "
    "sentences (at most 150 words) for someone who cannot see it. Say what kind of scene it is; name "
    "every kind of object you can see with its exact count when you can count it, its colour and size; "
    "say where each group lies in the image (upper left, top, upper right, left, center, right, lower "
    "left, bottom, lower right) and how groups lie relative to each other; and say which land covers "
    "(water, green vegetation, bare or built-up land) take up the image, with rough percentages. "
    "Only state what is visible; never guess place names, dates, sensors or things outside the image. "
    "Write plain sentences without lists, headings or markdown.")

CONDENSE_PROMPT = (
    "Here is a description of a remote sensing image:\n\n{long}\n\n"
    "Rewrite it as ONE short caption of at most 20 words that keeps the scene type and the most "
    "important objects. Answer with the caption only.")

VLM_PROMPTS = {"short": SHORT_PROMPT, "long": LONG_PROMPT}   # what VLMCaptioner asks by default
PROMPTS = {**VLM_PROMPTS, "condense": CONDENSE_PROMPT}


def prompt_hash(prompts: dict | None = None) -> str:
    """The first 12 hex digits of the SHA-256 of the prompts (JSON, sorted keys); default: the VLM's
    two prompts, the hash its rows record."""
    text = json.dumps(dict(prompts or VLM_PROMPTS), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
