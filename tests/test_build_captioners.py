"""The dataset builder's captioners (dgtrs_lib.data.build.captioners) and the fact check.

The VLM tests run a *tiny randomly initialised* LLaVA built offline from transformers' config
classes (``tiny_random_vlm``): they check batching, prompting through the chat template, decoding
of the new tokens only, cleaning and the error paths. Its text is nonsense by construction; no test
reads meaning into it. The metadata captioner is checked on real inputs: SynDG-RS ground truth and
the Sentinel-2 tiles' NDWI/NDVI land cover, against the fact check.
"""
import pytest

from dgtrs_lib.data.build.captioners import (
    FirstSentenceCondenser,
    LLMCondenser,
    MetadataCaptioner,
    VLMCaptioner,
    clean_generation,
    land_cover_captions,
    tiny_random_llm,
    tiny_random_vlm,
)
from dgtrs_lib.data.build.facts import check_caption, hallucination_rate
from dgtrs_lib.data.build.inputs import Item, syndg_items
from dgtrs_lib.errors import DataError, ModelError, OfflineError
from dgtrs_lib.model.tokenizer import token_lengths


@pytest.fixture(scope="module")
def tiny_vlm():
    return tiny_random_vlm(seed=0)


def _items(n=5):
    return syndg_items("test", n).items


# ----------------------------------------------------------------------------- VLM (tiny, random: nonsense text)
def test_vlm_captioner_batches_prompts_and_decodes_only_new_tokens(tiny_vlm):
    model, processor = tiny_vlm
    calls, prompts = [], []
    real_generate, real_template = model.generate, processor.apply_chat_template

    def generate(**kw):
        calls.append(kw["input_ids"].shape[0])
        return real_generate(**kw)

    def template(messages, **kw):
        prompts.append(messages[0]["content"][1]["text"])
        return real_template(messages, **kw)

    model.generate, processor.apply_chat_template = generate, template
    try:
        cap = VLMCaptioner(model, processor, batch_size=2, max_new_tokens_short=6, max_new_tokens_long=12, min_side=32)
        out = cap.caption(_items(5))
    finally:
        del model.generate, processor.apply_chat_template
    assert len(out) == 5
    assert calls == [2, 2, 2, 2, 1, 1]                 # long + short per batch of 2, 2, 1
    assert set(prompts) == {cap.prompts["long"], cap.prompts["short"]}
    for c in out:
        assert isinstance(c.short, str) and isinstance(c.long, str)
        assert "<|assistant|>" not in c.long and "<image>" not in c.long   # prompt not echoed, specials skipped
        assert len(c.long.split()) <= 12
        assert set(c.notes) >= {"short_truncated", "long_truncated", "short_cleaning", "long_cleaning"}
    prov = cap.provenance()
    assert prov["captioner"] == "vlm" and len(prov["prompt_hash"]) == 12
    assert prov["settings"]["batch_size"] == 2 and prov["settings"]["dtype"] == "float32"
    # the nonsense is measured like any caption: the fact check runs and counts what it recognises
    rate = hallucination_rate(check_caption(c.long, it.meta) for c, it in zip(out, _items(5)))
    assert rate["captions"] == 5


def test_vlm_greedy_generation_is_deterministic_and_condense_uses_first_sentence(tiny_vlm):
    model, processor = tiny_vlm
    a = VLMCaptioner(model, processor, batch_size=3, max_new_tokens_long=8, min_side=32).caption(_items(3))
    b = VLMCaptioner(model, processor, batch_size=1, max_new_tokens_long=8, min_side=32).caption(_items(3))
    assert [c.long for c in a] == [c.long for c in b]     # batching (left padding) does not change the text
    cond = VLMCaptioner(model, processor, max_new_tokens_long=8, short_from="condense", min_side=32)
    out = cond.caption(_items(2))
    assert [c.short for c in out] == [FirstSentenceCondenser().condense([c.long])[0] for c in out]
    assert cond.provenance()["settings"]["condenser"] == "first_sentence"


def test_vlm_error_paths(tiny_vlm, monkeypatch):
    model, processor = tiny_vlm
    monkeypatch.delenv("DGTRS_ONLINE", raising=False)
    with pytest.raises(OfflineError, match="DGTRS_ONLINE=1"):
        VLMCaptioner.from_pretrained("Qwen/Qwen2-VL-2B-Instruct")
    with pytest.raises(ModelError, match="no generate"):
        VLMCaptioner(object(), processor)

    class NoTemplate:
        chat_template = None
        tokenizer = type("T", (), {"chat_template": None})()

    with pytest.raises(ModelError, match="chat template"):
        VLMCaptioner(model, NoTemplate())
    with pytest.raises(ModelError, match="short_from"):
        VLMCaptioner(model, processor, short_from="guess")
    bad = Item("x", lambda: "not an image")
    with pytest.raises(DataError, match="x: the image loader returned str; expected a PIL image"):
        VLMCaptioner(model, processor).caption([bad])


def test_clean_generation_removes_labels_markdown_quotes():
    assert clean_generation("Caption: A lake.") == ("A lake.", ["label"])
    text, done = clean_generation('**Description:** "Two boats\n\n on a lake."')
    assert text == "Two boats on a lake." and {"label", "quotes", "whitespace"} <= set(done)
    assert clean_generation("- a road\n- two cars")[0] == "a road two cars"


def test_llm_condenser_writes_one_text_per_description():
    model, tok = tiny_random_llm()
    out = LLMCondenser(model, tok, max_new_tokens=5).condense(["the water is green . two boats", "a road"])
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    assert LLMCondenser(model, tok).condense([]) == []


# ----------------------------------------------------------------------------- metadata captioner
def test_metadata_captioner_on_syndg_states_only_true_facts():
    items = syndg_items("train", 30).items
    caps = MetadataCaptioner().caption(items)
    checks = [check_caption(c.long, it.meta) for c, it in zip(caps, items)]
    checks += [check_caption(c.short, it.meta) for c, it in zip(caps, items)]
    rate = hallucination_rate(checks)
    assert rate["wrong"] == 0 and rate["statements"] > 100, rate
    assert max(token_lengths([c.short for c in caps])) <= 77
    assert max(token_lengths([c.long for c in caps])) <= 248
    g = items[0].meta["objects"][0]
    assert f"{g['colour']}" in caps[0].long and caps[0].long.startswith("This aerial image shows")


def test_metadata_captioner_on_sentinel_tiles_states_the_land_cover():
    from dgtrs_lib.data.build.inputs import sentinel_tiles

    tiles = sentinel_tiles().limit(60)
    caps = MetadataCaptioner().caption(tiles)
    rate = hallucination_rate([check_caption(c.long, it.meta) for c, it in zip(caps, tiles)])
    assert rate["wrong"] == 0 and rate["checked_captions"] == 60, rate
    assert max(token_lengths([c.short for c in caps])) <= 77
    water = next(it for it in tiles if it.meta["water_fraction"] > 0.9)
    short, long = land_cover_captions(water.meta)
    assert "open water" in short and f"{round(100 * water.meta['water_fraction'])} % open water" in long


def test_metadata_captioner_label_only_existing_short_and_nothing_known():
    cap = MetadataCaptioner()
    c = cap.caption_one(Item("a", lambda: None, {"label": "airport", "short_caption": "Planes at a gate."}))
    assert c.short == "Planes at a gate." and "an airport" in c.long and c.notes["short"] == "existing"
    assert cap.caption_one(Item("b", lambda: None, {})).long == ""


# ----------------------------------------------------------------------------- fact check on crafted captions
META = {"source": "syndg-rs", "class": "harbor", "mix": {"class": "beach"},
        "objects": [{"type": "boat", "colour": "red", "count": 3}, {"type": "container", "colour": "cyan", "count": 2}]}


@pytest.mark.parametrize("text,wrong", [
    ("Three red boats and two turquoise containers in a harbor.", 0),
    ("Four red boats lie in the harbor.", 1),                     # count
    ("Three yellow boats.", 1),                                  # colour with a count
    ("The white containers stand on the quay.", 1),              # colour without a count
    ("Two airplanes are parked.", 1),                            # an object that is not there
    ("An airport with a beach.", 1),                             # class (beach is the mixed strip: right)
    ("Altogether there are 5 objects.", 0),
    ("Altogether there are 7 objects.", 1),
])
def test_fact_check_finds_wrong_counts_colours_objects_classes(text, wrong):
    res = check_caption(text, META)
    assert res.checked >= 1 and len(res.wrong) == wrong, res


def test_fact_check_land_cover_shares_and_negation():
    meta = {"water_fraction": 0.7, "vegetation_fraction": 0.0}
    assert check_caption("About 70 % open water and 30 % bare land.", meta).ok
    assert not check_caption("Water covers 20 percent of it.", meta).ok
    assert not check_caption("There is no water.", meta).ok
    assert check_caption("There is no green vegetation.", meta).ok
    assert not check_caption("Lush green vegetation along a lake.", meta).ok
    assert check_caption("A nice picture.", meta).checked == 0
