"""The dataset builder's quality filters and its perceptual-hash leakage check, on crafted cases."""
import io

import numpy as np
import pytest
from PIL import Image

from dgtrs_lib.data.build.filters import (
    ClipAgreement,
    DuplicateIndex,
    FilterConfig,
    length_problem,
    normalise,
    refusal,
    token_counts,
)
from dgtrs_lib.data.build.leakage import HashIndex, find_matches, hamming, phash, phash_bits, thumbnail
from dgtrs_lib.errors import UsageError


@pytest.mark.parametrize("text", ["I'm sorry, I cannot see the image.", "As an AI language model I think",
                                  "Sure! Here is a caption.", "Here is a detailed description of it",
                                  "# Scene\nwater", "Let me know if you need more.", "   "])
def test_refusals_and_boilerplate_are_caught(text):
    assert refusal(text)


@pytest.mark.parametrize("text", ["A harbor with three red boats.", "Sure footing on a rocky shore is rare."])
def test_ordinary_captions_pass_the_refusal_filter(text):
    assert refusal(text) is None


def test_token_windows_default_to_77_and_248():
    cfg = FilterConfig().check()
    assert (cfg.max_short_tokens, cfg.max_long_tokens) == (77, 248)
    s, l_ = token_counts(["Lake"], ["word " * 300])   # SOT + 1 + EOT: below the minimum of 5
    assert length_problem(s[0], l_[0], cfg) == "short caption has 3 tokens; window 5-77"
    s, l_ = token_counts(["A lake with two boats near the shore."], ["word " * 300])
    assert "long description has 302 tokens; window 20-248" == length_problem(s[0], l_[0], cfg)
    s, l_ = token_counts(["A lake with two boats near the shore."], ["word " * 100])
    assert length_problem(s[0], l_[0], cfg) is None
    with pytest.raises(UsageError, match="expected 0 < min <= max"):
        FilterConfig(min_short_tokens=90).check()
    with pytest.raises(UsageError, match="near_jaccard"):
        FilterConfig(near_jaccard=0).check()


def test_exact_and_near_duplicates_within_and_across_batches():
    base = "a harbor with three red boats moored at a long concrete pier beside two cyan containers and a crane"
    d = DuplicateIndex(near_jaccard=0.8)
    res = d.check([base, base.upper() + "!", base.replace("crane", "tower"), "a forest with a cabin"], list("abcd"))
    assert [r["exact"] for r in res] == [None, "a", None, None]
    assert res[2]["near"] == "a" and res[2]["jaccard"] >= 0.8
    assert res[3]["near"] is None
    res = d.check([base + ".", "a forest with a cabin", "a desert"], list("efg"), skip=[False, False, True])
    assert res[0]["exact"] == "a" and res[1]["exact"] == "d" and res[2]["jaccard"] is None
    # a resumed build registers the kept texts of its finished shards
    d2 = DuplicateIndex(0.8)
    d2.add([base], ["a"])
    assert d2.check([base.replace("crane", "tower")], ["z"])[0]["near"] == "a"
    assert normalise("A Lake, with: 2 boats!") == "a lake with 2 boats"


def test_clip_agreement_scores_every_pair_with_any_load_model_source():
    clip = ClipAgreement.from_source("tiny-random")
    images = [Image.fromarray(np.full((64, 64, 3), v, np.uint8)) for v in (0, 128, 255)]
    s = clip.scores(images, ["a lake", "a forest with many trees", "a road"])
    assert s.shape == (3,) and np.all(np.abs(s) <= 1.0001)
    assert clip.source == "tiny-random"


# ----------------------------------------------------------------------------- pHash leakage
def _texture(seed, size=64):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (8, 8, 3)).astype(np.uint8)
    return Image.fromarray(base).resize((size, size), Image.BICUBIC)


def _jpeg(im, q=85):
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=q)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def test_phash_is_the_dct_hash_of_the_32px_thumbnail():
    im = _texture(0)
    bits = phash_bits(thumbnail(im))
    assert bits.shape == (64,) and 20 < bits.sum() < 44    # median split: about half the bits set
    assert phash(im) == int("".join("1" if b else "0" for b in bits), 2)
    assert phash(_texture(0, 128)) == phash(_texture(0, 128))


def test_leak_check_finds_reencoded_and_resized_copies_and_nothing_else():
    evals = HashIndex().add([_texture(s) for s in range(20)], [f"EVAL/{s}" for s in range(20)])
    query = HashIndex().add([_jpeg(_texture(3)), _texture(7).resize((96, 96), Image.BICUBIC), _texture(100)],
                            ["copy", "resized", "other"])
    m = find_matches(query, evals)
    assert m[0]["match"] == "EVAL/3" and m[1]["match"] == "EVAL/7" and m[2] is None
    assert hamming(query.bits[:1], evals.bits[3:4])[0, 0] <= 6


def test_flat_tiles_hash_alike_but_the_thumbnail_test_tells_them_apart():
    dark, light = (Image.new("RGB", (64, 64), (20, 40, 90)), Image.new("RGB", (64, 64), (200, 210, 220)))
    a, b = HashIndex().add([dark], ["EVAL/dark"]), HashIndex().add([light], ["light"])
    assert hamming(a.bits, b.bits)[0, 0] <= 6          # the DCT of a constant image: the same bits
    assert find_matches(b, a) == [None]                # ... but not the same picture
    assert find_matches(HashIndex().add([dark.copy()], ["again"]), a)[0]["match"] == "EVAL/dark"
