"""Property-based tests (hypothesis, issue #14): every generated bad input -- loader metadata,
tokenizer input, checkpoint bytes, truncations and wrong types -- ends in the project's own error
types (DataFormatError, TokenizeError, CheckpointError), never a bare Python error.

CI runs a few derandomized examples each (well under a minute); ``DGTRS_HYPOTHESIS_SCALE=20`` runs
twenty times as many fresh ones."""
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dgtrs_lib import CheckpointError, TokenizeError, create_long_model, load_model, tokenize
from dgtrs_lib.data.airslt import load_airslt
from dgtrs_lib.data.common import DataFormatError
from dgtrs_lib.data.dual import load_dual_imagefolder
from dgtrs_lib.data.karpathy import load_karpathy
from dgtrs_lib.model.checkpoint import model_from_state_dict

SCALE = int(os.environ.get("DGTRS_HYPOTHESIS_SCALE", "1"))   # e.g. 20 for a deep search by hand


def fast(n):
    """Few examples, reproducible (derandomized) and quick for CI; DGTRS_HYPOTHESIS_SCALE=N searches
    N times more, with fresh random examples."""
    return settings(max_examples=n * SCALE, deadline=None, database=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


ANY_CHAR = st.characters(exclude_categories=())            # surrogates and control characters included
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                    max_leaves=6)
NAMES = st.sampled_from(["a.png", "bad.png", "missing.png", "", ".", "../a.png", "a\x00.png", "imgs"])
FIELD = NAMES | JSON


@pytest.fixture(scope="module")
def folder():
    """One real image, one file that is not an image, reused by every example."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "imgs").mkdir()
        for where in (root, root / "imgs"):
            Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(where / "a.png")
            (where / "bad.png").write_bytes(b"not a png")
        (root / "annotations").mkdir()
        yield root


# ----------------------------------------------------------------------------- loaders
OPTIONAL = {k: FIELD for k in ("short_caption", "image_id", "scene")}
RECORD = (st.fixed_dictionaries({"file_name": FIELD, "long_caption": FIELD}, optional=OPTIONAL)
          | st.fixed_dictionaries({}, optional={"file_name": FIELD, "long_caption": FIELD, **OPTIONAL}))
LINE = (RECORD.map(json.dumps).map(str.encode) | JSON.map(json.dumps).map(str.encode)
        | st.binary(max_size=12) | st.text(alphabet=ANY_CHAR, max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")))


@fast(40)
@given(lines=st.lists(LINE, max_size=4), on_error=st.sampled_from(["raise", "skip"]))
def test_metadata_jsonl_parsing_never_raises_a_bare_error(folder, lines, on_error):
    (folder / "metadata.jsonl").write_bytes(b"\n".join(lines))
    try:
        ds = load_dual_imagefolder(folder, on_error=on_error)
    except DataFormatError:
        return
    assert len(ds) >= 1 and len(set(ds["image_id"])) == len(ds)      # never empty, never duplicate ids


SENTENCES = (st.lists(st.fixed_dictionaries({"raw": st.text(min_size=1, max_size=8)}), min_size=1, max_size=2)
             | st.lists(st.fixed_dictionaries({}, optional={"raw": FIELD}) | FIELD, max_size=3) | FIELD)
IMAGE = {"filename": FIELD, "split": st.sampled_from(["test", "test", "test", "train", 1, None]), "sentences": SENTENCES}
IMAGES = st.fixed_dictionaries({"images": st.lists(
    st.fixed_dictionaries(IMAGE) | st.fixed_dictionaries(IMAGE) | st.fixed_dictionaries({}, optional=IMAGE) | JSON,
    max_size=4)})
KARPATHY = IMAGES | IMAGES | JSON


@fast(120)
@given(doc=KARPATHY, on_error=st.sampled_from(["raise", "skip"]))
def test_karpathy_json_parsing_never_raises_a_bare_error(folder, doc, on_error):
    (folder / "k.json").write_text(json.dumps(doc))
    try:
        ds = load_karpathy(folder / "k.json", folder, on_error=on_error)
    except DataFormatError:
        return
    assert len(ds) >= 1


NUMBER = st.floats() | st.integers(-10**30, 10**30) | st.text(max_size=2) | st.none()
POINTS = FIELD | st.lists(st.lists(st.lists(NUMBER, max_size=3), max_size=4), max_size=2)
CASE = {"caption": FIELD, "jpg_name": FIELD, "points": POINTS}
ANNO = JSON | st.lists(st.fixed_dictionaries(CASE) | st.fixed_dictionaries({}, optional=CASE) | JSON, max_size=3)


@fast(40)
@given(anno=ANNO, on_error=st.sampled_from(["raise", "skip"]))
def test_airslt_annotations_parsing_never_raises_a_bare_error(folder, anno, on_error):
    (folder / "annotations" / "anno.json").write_text(json.dumps(anno))
    try:
        samples = load_airslt(folder, on_error=on_error)
    except DataFormatError:
        return
    assert samples and all(p.ndim == 2 and p.shape[1] == 2 and len(p) >= 3 for s in samples for p in s.polygons)


# ----------------------------------------------------------------------------- tokenizer
TEXT = st.text(alphabet=ANY_CHAR, max_size=24)
ITEM = TEXT | st.none() | st.integers() | st.floats() | st.booleans() | st.binary(max_size=4)
TEXTS = (TEXT | st.lists(ITEM, max_size=4) | st.lists(TEXT, max_size=4).map(tuple) | st.none() | st.integers()
         | st.binary(max_size=8) | st.dictionaries(TEXT, st.integers(), max_size=2) | st.sets(TEXT, max_size=2))
CONTEXT = st.integers(-3, 80) | st.floats() | st.none() | st.booleans() | st.text(max_size=3)


@fast(80)
@given(texts=TEXTS, context_length=CONTEXT)
def test_tokenizer_takes_strings_or_raises_tokenize_error(texts, context_length):
    try:
        out = tokenize(texts, context_length, warn=False)
    except TokenizeError:
        return
    n = 1 if isinstance(texts, str) else len(texts)
    assert out.dtype == torch.long and out.shape == (n, context_length)


# ----------------------------------------------------------------------------- checkpoints
@fast(60)
@given(data=st.binary(max_size=2048) | st.binary(max_size=512).map(lambda b: b"PK\x03\x04" + b)
       | st.binary(max_size=512).map(lambda b: b"\x80\x02" + b),
       suffix=st.sampled_from([".pt", ".bin", ".safetensors"]))
def test_random_bytes_are_a_checkpoint_error(folder, data, suffix):
    path = folder / f"random{suffix}"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    assert "weights_only" not in str(err.value)


@pytest.fixture(scope="module")
def small_files():
    """A small state dict saved by torch.save and as safetensors (truncated by the next test)."""
    from safetensors.torch import save

    state = {"visual.conv1.weight": torch.randn(4, 3, 2, 2), "positional_embedding": torch.randn(6, 4)}
    buf = io.BytesIO()
    torch.save(state, buf)
    return {".pt": buf.getvalue(), ".safetensors": save(state)}


@fast(40)
@given(suffix=st.sampled_from([".pt", ".safetensors"]), cut=st.floats(0, 1, exclude_max=True))
def test_truncated_checkpoints_are_a_checkpoint_error(folder, small_files, suffix, cut):
    data = small_files[suffix]
    path = folder / f"cut{suffix}"
    path.write_bytes(data[: int(cut * len(data))])
    with pytest.raises(CheckpointError):
        load_model(path)


@fast(30)
@given(value=JSON | st.just(torch.zeros(2)).map(lambda t: [t]) | st.just(object),
       key=st.sampled_from(["ln_final.weight", "state_dict", 3, "model"]))
def test_entries_that_are_not_tensors_are_a_checkpoint_error(folder, value, key):
    path = folder / "types.pt"
    try:
        torch.save({key: value, "visual.conv1.weight": torch.zeros(1)}, path)
    except Exception:      # torch cannot even save it: nothing to load
        return
    with pytest.raises(CheckpointError):
        load_model(path)


@pytest.fixture(scope="module")
def tiny_state():
    torch.manual_seed(0)
    return dict(create_long_model("tiny").state_dict())


DIMS = st.lists(st.sampled_from([0, 1, 3, 8, 65, 100, 104, 128, 512, 1000]), max_size=4).filter(
    lambda dims: int(np.prod(dims)) <= 1_000_000)
SHAPE_KEYS = ["visual.conv1.weight", "visual.positional_embedding", "visual.class_embedding", "visual.proj",
              "text_projection", "positional_embedding", "positional_embedding_res", "token_embedding.weight",
              "ln_final.weight", "transformer.resblocks.0.ln_1.weight"]   # the tensors the shapes are read from
DTYPES = st.sampled_from([torch.float32, torch.float16, torch.int64, torch.bool])


@fast(20)
@given(data=st.data())
def test_wrong_shapes_and_dtypes_are_a_checkpoint_error(tiny_state, data):
    state = dict(tiny_state)
    for _ in range(data.draw(st.integers(1, 2))):
        key = data.draw(st.sampled_from([k for k in SHAPE_KEYS if k in state]) | st.sampled_from(sorted(state)))
        action = data.draw(st.sampled_from(["shape", "dtype", "delete", "extra"]))
        if action == "shape":
            state[key] = torch.zeros(data.draw(DIMS))
        elif action == "dtype":
            state[key] = state[key].to(data.draw(DTYPES))
        elif action == "delete":
            del state[key]
        else:
            state[key + ".extra"] = torch.zeros(1)
    try:
        model = model_from_state_dict(state, keep=8, stretch=False, source="mutated.pt")
    except CheckpointError:
        return
    assert set(model.state_dict()) == set(state)                              # only a harmless mutation loads
