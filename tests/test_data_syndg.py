"""SynDG-RS: determinism, schema, caption-pixel consistency, caption lengths, views, SeLo split."""
import json
import re

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from dgtrs_lib.data import syndg
from dgtrs_lib.data.airslt import load_airslt
from dgtrs_lib.data.syndg import (
    CLASSES,
    COLOUR_WORDS,
    NUMBER_WORDS,
    OBJECT_TYPES,
    PALETTE,
    SIZE_WORDS,
    generate_sample,
    generate_syndg,
)

N = 120  # samples checked by the per-sample tests (fast: ~2 ms each)


def _blobs(img: np.ndarray, rgb, tol: int = 20) -> int:
    mask = np.abs(img.astype(np.int16) - np.asarray(rgb, np.int16)).max(-1) <= tol
    return ndimage.label(mask, structure=np.ones((3, 3)))[1]


@pytest.fixture(scope="module")
def samples():
    return [generate_sample(0, "train", i) for i in range(N)]


def test_same_seed_same_bytes():
    a = generate_syndg(6, 2, 3, seed=7)
    b = generate_syndg(6, 2, 3, seed=7)
    c = generate_syndg(6, 2, 3, seed=8)
    for split in ("train", "validation", "test"):
        ta, tb = a[split].data.table, b[split].data.table
        assert ta.equals(tb), split
    assert not a["train"].data.table.equals(c["train"].data.table)
    # a sample does not depend on the split size: smoke is a prefix of cpu
    d = generate_syndg(3, 1, 1, seed=7)
    assert d["train"].data.table.equals(a["train"].data.table.slice(0, 3))


def test_processes_render_the_same_bytes_in_the_same_order():
    """A large split is rendered by several processes; joined, it is the one-process split."""
    from dgtrs_lib.data.syndg import generate_split

    one = generate_split(48, "prior", seed=3, workers=1)
    two = generate_split(48, "prior", seed=3, workers=2)  # three chunks of 16 over two processes
    assert two.data.table.equals(one.data.table)
    assert two["image_id"] == [f"syndg-prior-{i:06d}" for i in range(48)]


def test_schema_and_splits():
    dd = generate_syndg(10, 3, 4, seed=0)
    assert list(dd) == ["train", "validation", "test"]
    assert [len(dd[s]) for s in dd] == [10, 3, 4]
    f = dd["train"].features
    assert {k: type(v).__name__ for k, v in f.items()} == {
        "image_id": "Value", "image": "Image", "short_caption": "Value", "long_caption": "Value",
        "scene": "Value", "meta": "Value"}
    row = dd["test"][0]
    assert row["image"].size == (64, 64) and row["image"].mode == "RGB"
    assert row["scene"] in CLASSES
    meta = json.loads(row["meta"])
    assert meta["class"] == row["scene"] and meta["source"] == "syndg-rs"
    assert len(set(dd["train"]["image_id"]) | set(dd["test"]["image_id"])) == 14


def test_classes_balanced_enough_and_confusable():
    assert len(CLASSES) >= 20 and len(set(CLASSES)) == len(CLASSES)
    assert sorted(sum(syndg.CLASS_GROUPS.values(), [])) == sorted(CLASSES)
    assert {"dense residential", "sparse residential"} <= set(syndg.CLASS_GROUPS["residential"])
    assert {"harbor", "beach", "river"} <= set(syndg.CLASS_GROUPS["water"])
    scenes = [generate_sample(0, "test", i)["scene"] for i in range(2 * len(CLASSES))]
    assert {s: scenes.count(s) for s in set(scenes)} == {c: 2 for c in CLASSES}
    # the prior-only classes and objects never occur in fine-tuning
    assert not set(syndg.PRIOR_ONLY_CLASSES) & set(CLASSES)
    for c in CLASSES:
        assert not set(syndg.CLASS_OBJECTS[c]) & set(syndg.PRIOR_ONLY_OBJECTS), c


@pytest.fixture(scope="module")
def prior_samples():
    return [generate_sample(0, "prior", i) for i in range(3 * N)]


def test_prior_corpus_alt_text_is_instance_level_short_and_unique(prior_samples):
    from dgtrs_lib.model.tokenizer import token_lengths

    alts = [s["short_caption"] for s in prior_samples]
    assert all(s["long_caption"] == s["short_caption"] for s in prior_samples)
    assert len(set(alts)) / len(alts) > 0.95
    lengths = np.asarray(token_lengths(alts))
    assert np.median(lengths) < 16 and np.percentile(lengths, 95) < 26 and lengths.max() <= 32
    assert lengths.max() > 22  # a thin tail towards the base context
    seen_classes = {s["scene"] for s in prior_samples}
    assert set(syndg.PRIOR_ONLY_CLASSES) <= seen_classes
    prior_objects = set()
    for s in prior_samples:
        meta = json.loads(s["meta"])
        groups = {g["colour"]: g for g in meta["objects"]}
        for colour, rgb in PALETTE.items():  # prior-only shapes are one blob each, too
            assert _blobs(s["image"], rgb) == (groups[colour]["count"] if colour in groups else 0), s["image_id"]
        # every "<n> <colour> <noun>" stated matches a group of the image
        for num, colour, noun in re.findall(r"\b(\d|one|two|three|four|five|six) (\w+) ([a-z ]+?)(?= top| bottom| left"
                                            r"| right| center| above| below| in | next|,|$)", s["short_caption"]):
            base = next(c for c, ws in COLOUR_WORDS.items() if colour in ws)
            g = groups[base]
            n = int(num) if num.isdigit() else NUMBER_WORDS_INV[num]
            assert g["count"] == n and noun in (g["type"], OBJECT_TYPES[g["type"]][1]), (s["short_caption"], g)
        prior_objects |= {g["type"] for g in meta["objects"]} & set(syndg.PRIOR_ONLY_OBJECTS)
    assert prior_objects == set(syndg.PRIOR_ONLY_OBJECTS)
    # the Sentinel-2 land-cover words occur in the prior's text
    text = " ".join(alts)
    for word in ("water", "vegetation", "bare", "built-up", "mixed"):
        assert word in text, word


NUMBER_WORDS_INV = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def test_counts_and_colours_match_ground_truth_and_pixels(samples):
    for s in samples:
        meta = json.loads(s["meta"])
        long = s["long_caption"].lower()
        present = {g["colour"]: g for g in meta["objects"]}
        assert 1 <= len(present) <= 3
        for colour, rgb in PALETTE.items():
            expected = present[colour]["count"] if colour in present else 0
            assert _blobs(s["image"], rgb) == expected, (s["image_id"], colour)
        for g in meta["objects"]:
            assert len(g["boxes"]) == g["count"] and 1 <= g["count"] <= 6
            noun = g["type"] if g["count"] == 1 else OBJECT_TYPES[g["type"]][1]
            colour_re = "|".join(COLOUR_WORDS[g["colour"]])
            num_re = "|".join(NUMBER_WORDS[g["count"]])
            # "<number> [<size>] <colour> <noun>" must be stated
            pat = rf"\b({num_re}) (?:(?:{'|'.join(sum(SIZE_WORDS.values(), []))}) )?({colour_re}) {noun}\b"
            assert re.search(pat, long), (s["image_id"], pat, long)
            # the stated colour is really the rendered colour inside the boxes
            x0, y0, x1, y1 = g["boxes"][0]
            patch = s["image"][y0:y1 + 1, x0:x1 + 1].reshape(-1, 3)
            assert (np.abs(patch.astype(int) - g["rgb"]).max(-1) == 0).any()
        total = sum(g["count"] for g in meta["objects"])
        assert re.search(rf"\b{total} objects\b", long)


def test_positions_in_caption_match_boxes(samples):
    words = syndg.POSITION_WORDS
    for s in samples[:40]:
        meta = json.loads(s["meta"])
        for g in meta["objects"]:
            assert any(p in s["long_caption"].lower() for p in words[g["position"]])
            cx = np.mean([(b[0] + b[2]) / 2 for b in g["boxes"]])
            cy = np.mean([(b[1] + b[3]) / 2 for b in g["boxes"]])
            r, c = divmod(syndg.POSITIONS.index(g["position"]), 3)
            assert abs(cx - (c + 0.5) * 64 / 3) < 64 / 3 and abs(cy - (r + 0.5) * 64 / 3) < 64 / 3


def test_background_never_looks_like_an_object(samples):
    for s in samples[:30]:
        meta = json.loads(s["meta"])
        bg = syndg.render_background(meta["class"], 64, 64, meta["layout"], np.random.default_rng(1))
        for rgb in PALETTE.values():
            assert np.abs(bg.astype(int) - rgb).max(-1).min() > 40


def test_five_short_captions_coarse_distinct_and_true(samples):
    all_positions = sum(syndg.POSITION_WORDS.values(), [])
    shorts = []
    for s in samples:
        meta = json.loads(s["meta"])
        caps = meta["short_captions"]
        assert len(caps) == syndg.N_SHORT == 5 and len(set(caps)) == 5 and caps[0] == s["short_caption"]
        colours = {g["colour"] for g in meta["objects"]}
        for c in caps:
            low = c.lower()
            assert 3 <= len(c.split()) <= 20, c
            assert not any(p in low for p in all_positions), c           # coarse: no grid positions
            assert not re.search(r"\b[3-6]\b|\bthree|four|five|six\b", low), c  # nor exact counts above two
            for colour, ws in COLOUR_WORDS.items():                      # a colour named is in the image
                if any(re.search(rf"\b{w}\b", low) for w in ws):
                    assert colour in colours, (c, colours)
            assert s["scene"].split()[-1] in low, c                      # names its scene
        shorts.append(caps)
    from dgtrs_lib.data.stats import distinct_stats

    assert distinct_stats(shorts)["shared_with_other_image"] < 0.25


def test_long_caption_word_range_and_varied_positions(samples):
    from open_clip.tokenizer import SimpleTokenizer

    tok = SimpleTokenizer()
    lengths, after32 = [], 0
    for s in samples:
        n = len(s["long_caption"].split())
        assert 60 <= n <= 120, (n, s["long_caption"])
        lengths.append(n)
        meta = json.loads(s["meta"])
        ids = tok.encode(s["long_caption"])
        late = tok.decode(ids[30:]).lower()  # text beyond the 32-token base context (SOT + 30 + EOT)
        after32 += any(any(w in late for w in COLOUR_WORDS[g["colour"]]) for g in meta["objects"])
    assert np.mean(lengths) > 65
    assert after32 / len(samples) > 0.9  # some distinguishing fact lies beyond token 32
    # sentence order varies: the first object sentence is not always at the same place
    firsts = {s["long_caption"].split(". ")[1][:12] for s in samples[:30]}
    assert len(firsts) > 5


def test_sizes_for_profiles():
    from dgtrs_lib.profiles import get_profile

    assert dict(get_profile("smoke").syndg_sizes) == {"train": 256, "validation": 64, "test": 128}
    assert get_profile("cpu").syndg_sizes["train"] == 6000
    assert dict(get_profile("gpu").syndg_sizes) == dict(get_profile("cpu").syndg_sizes)
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("tpu")


def test_load_syndg_caches_and_views(tmp_outputs):
    sizes = {"train": 12, "validation": 4, "test": 10}
    dd = syndg.load_syndg(sizes=sizes, progress=False)
    path = syndg.cache_key(sizes, 0)
    from dgtrs_lib.env import cache_dir

    assert (cache_dir("syndg") / path).is_dir()
    dd2 = syndg.load_syndg(sizes=sizes, progress=False)  # from the cache
    assert dd2["test"]["long_caption"] == dd["test"]["long_caption"]
    cls = syndg.syndg_classification("test", dataset=dd["test"])
    assert cls.features["label"].names == CLASSES
    assert [CLASSES[i] for i in cls["label"]] == dd["test"]["scene"]
    ret = syndg.syndg_retrieval("test", dataset=dd["test"], caption="both")
    assert ret[0]["captions"] == [dd["test"][0]["short_caption"], dd["test"][0]["long_caption"]]
    short = syndg.syndg_retrieval("test", dataset=dd["test"], caption="short")
    assert short[0]["captions"] == json.loads(dd["test"][0]["meta"])["short_captions"]
    shifted = syndg.syndg_classification("test", dataset=dd["test"], shift="mixed")
    assert shifted["label"] == cls["label"]
    for i in range(3):  # scale, blur, colour: each changes the pixels
        assert not np.array_equal(np.asarray(shifted[i]["image"]), np.asarray(cls[i]["image"]))
    with pytest.raises(ValueError, match="shift"):
        syndg.syndg_classification("test", dataset=dd["test"], shift="fog")
    prior = syndg.load_prior(sizes={"train": 6, "validation": 30}, progress=False)
    ret_view = syndg.syndg_retention(dataset=prior["validation"])
    assert ret_view.features["label"].names == syndg.ALL_CLASSES
    assert {syndg.ALL_CLASSES[i] for i in ret_view["label"]} == set(syndg.PRIOR_ONLY_CLASSES)
    ret_shifted = syndg.syndg_retention(dataset=prior["validation"], shift="mixed")
    assert ret_shifted["label"] == ret_view["label"] and ret_shifted.features == ret_view.features
    for i in range(3):  # the same shift per index as the classification view: each changes the pixels
        assert np.array_equal(np.asarray(ret_shifted[i]["image"]),
                              np.asarray(syndg.shift_image(ret_view[i]["image"], syndg.SHIFTS[i])))
    with pytest.raises(ValueError, match="shift"):
        syndg.syndg_retention(dataset=prior["validation"], shift="fog")
    assert syndg.prior_retrieval(dataset=prior["validation"])[0]["captions"] == [prior["validation"][0]["short_caption"]]
    with pytest.raises(ValueError, match="caption must be"):
        syndg.syndg_retrieval("test", dataset=dd["test"], caption="medium")


def test_selo_split_in_airslt_layout(tmp_path):
    root = syndg.write_syndg_selo(tmp_path / "selo", "smoke")
    cases = load_airslt(root)
    assert len(cases) >= 4
    anno = json.loads((root / "annotations" / "anno.json").read_text())
    assert set(anno[0]) == {"caption", "jpg_name", "points", "query_type"}
    types = [a["query_type"] for a in anno]
    assert types.count("region") == types.count("attribute") > 0  # balanced
    img = np.asarray(Image.open(cases[0].image_path))
    assert img.shape == (320, 320, 3)
    # attribute queries: the polygon holds exactly the stated number of blobs of the stated colour
    for case in cases:
        m = re.match(r"(one|two|three|four|five|six) (\w+) ", case.caption)
        if not m:
            continue
        n = ["one", "two", "three", "four", "five", "six"].index(m.group(1)) + 1
        img = np.asarray(Image.open(case.image_path))
        (poly,) = case.polygons
        x0, y0 = poly.min(0).astype(int)
        x1, y1 = poly.max(0).astype(int)
        # JPEG: exact colours blur, so count blobs with a looser tolerance
        assert _blobs(img[y0:y1 + 1, x0:x1 + 1], PALETTE[m.group(2)], tol=60) == n, case.caption


def test_stats_and_report(tmp_outputs):
    from dgtrs_lib.data import stats

    s = stats.length_stats([10, 20, 30, 100, 300])
    assert s["median"] == 30 and s["frac_over_32"] == 0.4 and s["frac_over_248"] == 0.2
    assert stats.only_in_long(["a harbor ."], ["a harbor with three red boats"]) == [("three", 1), ("red", 1), ("boats", 1)]
    dd = generate_syndg(4, 2, 20, seed=0)
    s0 = dd["test"][0]
    pos = stats.fact_token_positions(s0["long_caption"], s0["meta"])
    from dgtrs_lib.model.tokenizer import encode

    ids = encode(s0["long_caption"])
    meta = json.loads(s0["meta"])
    for p, g in zip(pos, meta["objects"]):  # the token at that index decodes to the colour word
        from open_clip.tokenizer import SimpleTokenizer

        assert SimpleTokenizer().decode([ids[p]]).strip() in COLOUR_WORDS[g["colour"]]
    doc = stats.syndg_report(dd, "smoke", generation_s=1.0)
    metrics = {r["metric"]: r["value"] for r in doc["results"]}
    assert metrics["n_test"] == 20 and metrics["short_tokens_max"] <= 32
    assert metrics["short_per_image"] == 5 and 0 <= metrics["short_shared_with_other_image"] < 0.5
    from dgtrs_lib.env import results_dir

    assert (results_dir("smoke") / "data-syndg-rs.json").exists() and (results_dir("smoke") / "data-syndg-rs.csv").exists()


def test_stated_sizes_match_boxes(samples):
    for s in samples:
        for g in json.loads(s["meta"])["objects"]:
            lo, hi = syndg.SIZES[g["size"]]
            assert lo <= g["size_px"] <= hi
            for x0, y0, x1, y1 in g["boxes"]:
                assert g["size_px"] <= max(x1 - x0, y1 - y0) + 1 <= g["size_px"] + 2
                assert min(x1 - x0, y1 - y0) + 1 >= 3  # visible at 64 px


def test_mixed_scenes_keep_the_main_class_in_the_majority():
    mixed = 0
    for i in range(60):
        s = generate_sample(0, "train", i)
        mix = json.loads(s["meta"])["mix"]
        if mix is None:
            continue
        mixed += 1
        assert mix["class"] in syndg.MIX_PARTNERS[s["scene"]] and mix["class"] != s["scene"]
        assert syndg.MIX_FRAC[0] <= mix["frac"] <= syndg.MIX_FRAC[1] < 0.51  # the label covers more
        group = next(g for g in syndg.CLASS_GROUPS.values() if s["scene"] in g)
        assert mix["class"] in group  # a confusable class, from the same group
        assert mix["side"] in s["long_caption"]
    assert 15 <= mixed <= 45  # about MIX_PROB of the scenes
