"""Tokenizer: ids identical to open_clip's, truncation reported, dynamic padding."""
import open_clip
import pytest
import torch

from dgtrs_lib import TruncationWarning, token_lengths, tokenize
from dgtrs_lib.model.tokenizer import EOT_ID, SOT_ID

TEXTS = [
    "A harbor with many boats.",
    "An aerial image of a dense residential area; three red-roofed houses sit beside a grey road, "
    "and a small green park lies in the lower left corner of the scene.",
    "",
    "Ünïcödé & punctuation!!! 1234 km²",
]


@pytest.mark.parametrize("ctx", [77, 248, 32])
def test_ids_identical_to_open_clip(ctx):
    with pytest.warns(TruncationWarning) if ctx == 32 else _no_warning():
        ours = tokenize(TEXTS, context_length=ctx)
    assert torch.equal(ours, open_clip.tokenize(TEXTS, context_length=ctx))
    assert ours.dtype == torch.long


class _no_warning:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error", TruncationWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def test_remembered_ids_are_the_same_and_cannot_be_corrupted():
    """The BPE cache answers a repeated text with the same ids; truncating one result (which
    rewrites its last token) leaves the next call untouched."""
    from dgtrs_lib.model.tokenizer import _bpe_ids, encode

    _bpe_ids.cache_clear()
    first = tokenize(TEXTS[1], context_length=8, warn=False)
    again = tokenize(TEXTS[1], context_length=248)
    assert _bpe_ids.cache_info().hits >= 1
    assert torch.equal(again, open_clip.tokenize([TEXTS[1]], context_length=248))
    assert first[0, -1] == EOT_ID and encode(TEXTS[1])[7] != EOT_ID


def test_truncation_is_reported_with_counts():
    long = "the river bends past " * 40
    with pytest.warns(TruncationWarning, match=r"2 of 3 texts exceed the context length of 20 tokens"):
        toks, info = tokenize([long, "a beach", long + "x"], context_length=20, return_info=True)
    assert info.n_truncated == 2 and info.truncated_fraction == pytest.approx(2 / 3)
    assert info.lengths == token_lengths([long, "a beach", long + "x"])
    assert toks[0, 0] == SOT_ID and toks[0, -1] == EOT_ID     # EOT kept at the cut
    assert toks[1, :4].tolist()[0] == SOT_ID and (toks[1] == EOT_ID).sum() == 1


def test_pad_to_longest_trims_padding_only():
    texts = ["a beach", "a forest with a winding river"]
    full = tokenize(texts, context_length=77)
    short = tokenize(texts, context_length=77, pad_to_longest=True)
    assert short.shape == (2, max(token_lengths(texts)))
    assert torch.equal(full[:, : short.shape[1]], short)
    assert (full[:, short.shape[1]:] == 0).all()


def test_bad_inputs():
    with pytest.raises(TypeError, match="expected a string"):
        tokenize(["ok", None])
    with pytest.raises(ValueError, match="context_length"):
        tokenize("x", context_length=1)
