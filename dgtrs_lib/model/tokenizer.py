"""CLIP BPE tokenization at any context length, reporting truncation instead of hiding it.

The ids are open_clip's (``open_clip.tokenizer.SimpleTokenizer``: the OpenAI BPE vocabulary that
ships in the open_clip wheel): ``<start_of_text>`` (49406), the BPE ids, ``<end_of_text>`` (49407),
zero padding. A text longer than the context is cut and its last kept token replaced by the end
token -- what open_clip and DGTRS's ``tokenize(..., truncate=True)`` do -- but here a
``TruncationWarning`` says how many texts lost content, so a 77-token model never silently
reads a fraction of a long remote-sensing description.

The BPE ids of the last 16384 distinct texts are kept in memory (``functools.lru_cache``): a
study evaluates dozens of models on the same captions.

``pad_to_longest=True`` trims the padding to the batch's longest sequence (per-batch dynamic
padding): a 12-token short caption then costs 12 positions, not 248. Models built by
``dgtrs_lib.model.longclip`` accept any length up to their context; the EOT token is still found by argmax.

Input: one string or a sequence of strings (list, tuple, array...). Anything else -- ``None``, a
``dict`` (whose keys would be tokenised), ``bytes``, a non-string item, a string that is not valid
Unicode (a lone surrogate), a context length that is not an integer >= 2 -- raises
``TokenizeError`` (a ``TypeError`` and a ``ValueError``) naming the item and what was expected.

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import operator
import warnings
from collections.abc import Mapping, Set
from dataclasses import dataclass
from functools import lru_cache

import torch

from dgtrs_lib.errors import UsageError

SOT_ID = 49406
EOT_ID = 49407


class TokenizeError(UsageError, TypeError):
    """Input the tokenizer cannot take (see the module doc); also a ``TypeError``/``ValueError``."""


class TruncationWarning(UserWarning):
    """Some texts were longer than the context length and were cut."""


@dataclass
class TokenizeInfo:
    lengths: list[int]        # untruncated token counts, SOT and EOT included
    context_length: int
    n_truncated: int

    @property
    def truncated_fraction(self) -> float:
        return self.n_truncated / max(1, len(self.lengths))


@lru_cache(maxsize=1)
def _bpe():
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def _check_text(text, where: str = "text") -> str:
    if isinstance(text, (bytes, bytearray)):
        raise TokenizeError(f"tokenize: {where} is {type(text).__name__}; expected a string to tokenize "
                            "(decode it first: text.decode('utf-8'))")
    if not isinstance(text, str):
        raise TokenizeError(f"tokenize: {where} is {type(text).__name__}; expected a string to tokenize")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise TokenizeError(f"tokenize: {where} holds {text[err.start:err.end]!r} at position {err.start}, "
                            "not valid Unicode (a lone surrogate); expected a valid string") from None
    return text


def _texts(texts) -> list[str]:
    """One string or a sequence of strings, as a checked list."""
    if isinstance(texts, str):
        return [_check_text(texts)]
    if texts is None or isinstance(texts, (bytes, bytearray, Mapping, Set)) or not hasattr(texts, "__iter__"):
        kind = type(texts).__name__
        why = {"dict": " (tokenising it would read its keys)", "set": " (a set has no order)",
               "frozenset": " (a set has no order)", "bytes": "; decode it first: text.decode('utf-8')"}
        raise TokenizeError(f"tokenize: got {kind}{why.get(kind, '')}; expected a string or a list of strings")
    return [_check_text(t, f"texts[{i}]") for i, t in enumerate(texts)]


@lru_cache(maxsize=16384)
def _bpe_ids(text: str) -> tuple[int, ...]:
    """BPE ids of one checked text, remembered: every evaluation of a study tokenises the same
    captions and prompts again, and BPE is the slow part (a full cache of long descriptions holds
    some tens of MB)."""
    return tuple(_bpe().encode(text))


def encode(text: str) -> list[int]:
    """BPE ids of one text with SOT and EOT, untruncated."""
    return [SOT_ID, *_bpe_ids(_check_text(text)), EOT_ID]


def token_lengths(texts) -> list[int]:
    """Untruncated token counts (SOT and EOT included) of each text."""
    return [len(encode(t)) for t in _texts(texts)]


def tokenize(texts, context_length: int = 248, *, pad_to_longest: bool = False,
             return_info: bool = False, warn: bool = True):
    """Tokenize ``texts`` to a ``[N, context_length]`` LongTensor (``[N, longest]`` with
    ``pad_to_longest``). With ``return_info`` also return a :class:`TokenizeInfo`."""
    texts = _texts(texts)
    try:
        ctx = None if isinstance(context_length, bool) else operator.index(context_length)
    except TypeError:
        ctx = None
    if ctx is None or ctx < 2:
        raise TokenizeError(f"tokenize: context_length must be an integer >= 2 (SOT + EOT), got {context_length!r}")
    context_length = ctx
    ids = [encode(t) for t in texts]
    lengths = [len(x) for x in ids]
    width = min(context_length, max(lengths, default=2)) if pad_to_longest else context_length
    out = torch.zeros(len(ids), width, dtype=torch.long)
    n_truncated = 0
    for i, seq in enumerate(ids):
        if len(seq) > context_length:
            seq = seq[:context_length]
            seq[-1] = EOT_ID
            n_truncated += 1
        out[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    if n_truncated and warn:
        warnings.warn(
            f"{n_truncated} of {len(ids)} texts exceed the context length of {context_length} tokens "
            f"and were truncated (longest: {max(lengths)} tokens)",
            TruncationWarning,
            stacklevel=2,
        )
    if return_info:
        return out, TokenizeInfo(lengths=lengths, context_length=context_length, n_truncated=n_truncated)
    return out
