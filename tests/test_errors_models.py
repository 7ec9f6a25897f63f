"""Issue #14, loading the wrong model without an error: source resolution, the keep, the sidecar,
shapes, and files that are not state dicts -- each a CheckpointError naming the file and the key."""
import json
import os

import pytest
import torch
from official_reference import OfficialLongCLIP

from dgtrs_lib import CheckpointError, create_long_model, load_model, save_official, tokenize
from dgtrs_lib.model import sources
from dgtrs_lib.model.checkpoint import META_KEY, model_from_state_dict, read_checkpoint
from dgtrs_lib.model.configs import MODEL_CONFIGS
from dgtrs_lib.model.longclip import LongCLIP

TEXTS = ["a harbor with boats", "a dense forest beside a winding river with two bridges and a road"]


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """A trained-shape miniature (keep 8, 104 tokens) saved by save_official, and its model."""
    torch.manual_seed(3)  # an explicit keep 8 / ratio 4 stretch (not the configured one): the shapes below
    model = create_long_model("tiny", keep=8, ratio=4, context_length=104).eval()
    path = save_official(model, tmp_path_factory.mktemp("ck") / "mini.pt")
    return model, path


def _copy(path, dest, sidecar=True):
    dest.write_bytes(path.read_bytes())
    if sidecar:
        dest.with_suffix(".json").write_text(path.with_suffix(".json").read_text())
    return dest


# ----------------------------------------------------------------------------- which source
def test_missing_local_path_is_not_found_never_a_hub_id(tmp_path, monkeypatch):
    """``dir/file.pt`` matched the Hub pattern: offline "needs network access", online a download."""
    def no_download(*a, **k):
        raise AssertionError("tried the Hub")

    monkeypatch.setattr(sources, "_hub_download", no_download)
    monkeypatch.setenv("DGTRS_ONLINE", "1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "final.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"dir/file.pt: file not found; near misses in dir: final.pt"):
        load_model("dir/file.pt")
    with pytest.raises(CheckpointError, match=r"owner/model: file not found.*write hf:owner/model"):
        load_model("owner/model")
    with pytest.raises(CheckpointError, match="unknown model source.*did you mean longclip-b"):
        load_model("longclip-bb")


def test_only_hf_prefix_or_released_ids_go_to_the_hub(monkeypatch):
    asked = []
    monkeypatch.setattr(sources, "_hub_download", lambda repo, filename=None: asked.append((repo, filename)) or 1 / 0)
    for src in ("hf:owner/model", "hf:owner/model:weights.pt", "BeichenZhang/LongCLIP-B"):
        with pytest.raises(ZeroDivisionError):
            load_model(src)
    assert asked == [("owner/model", None), ("owner/model", "weights.pt"), ("BeichenZhang/LongCLIP-B", "longclip-B.pt")]


# ----------------------------------------------------------------------------- the keep
def test_keep_is_recorded_inside_our_checkpoints(mini, tmp_path):
    """Without its sidecar a miniature loaded with keep 20 instead of 8 (text cosine 0.979)."""
    model, path = mini
    bare = _copy(path, tmp_path / "copied.pt", sidecar=False)
    assert not bare.with_suffix(".json").exists()
    loaded, _ = load_model(bare)
    assert loaded.keep == 8
    tokens = tokenize(TEXTS, 104)
    with torch.no_grad():
        assert torch.equal(loaded.encode_text(tokens), model.encode_text(tokens))
    recorded = torch.load(bare, weights_only=True)._metadata[META_KEY]
    assert recorded["keep"] == 8 and recorded["context_length"] == 104


def test_our_checkpoints_still_load_in_the_official_layout(mini):
    """The recorded keep sits in PyTorch's own _metadata: a strict load_state_dict ignores it."""
    model, path = mini
    state = torch.load(path, weights_only=True)
    ref = OfficialLongCLIP(state, keep=8).eval()
    tokens = tokenize(TEXTS, 104)
    with torch.no_grad():
        assert torch.allclose(ref.encode_text(tokens), model.encode_text(tokens), atol=1e-4)
    LongCLIP(128, vision_cfg=dict(MODEL_CONFIGS["tiny"]["vision_cfg"]),
             text_cfg=dict(context_length=104, vocab_size=49408, width=128, heads=2, layers=3),
             quick_gelu=True, keep=8).load_state_dict(state, strict=True)


def test_no_keep_recorded_off_the_official_shapes_is_an_error(mini, tmp_path):
    model, _ = mini
    torch.save(dict(model.state_dict()), tmp_path / "plain.pt")                 # no sidecar, no record
    with pytest.raises(CheckpointError, match=r"plain.pt: a long-format checkpoint at context 104 and nothing "
                                              r"records its keep \(no sidecar plain.json"):
        load_model(tmp_path / "plain.pt")
    assert load_model(tmp_path / "plain.pt", keep=8)[0].keep == 8


def test_bad_sidecars_are_named(mini, tmp_path):
    _, path = mini
    ck = _copy(path, tmp_path / "ck.pt")
    side = ck.with_suffix(".json")
    side.write_text('{"keep": 8,')
    with pytest.raises(CheckpointError, match=r"ck.json: the sidecar of ck.pt is not readable JSON"):
        load_model(ck)
    side.write_text(json.dumps({"keep": "eight"}))
    with pytest.raises(CheckpointError, match=r"ck.json: field 'keep' is 'eight'; expected a whole number"):
        load_model(ck)
    side.write_text(json.dumps({"keep": 20}))
    with pytest.raises(CheckpointError, match=r"ck.json: says keep = 20 but ck.pt records 8"):
        load_model(ck)
    side.write_text(json.dumps({"context_length": 248}))
    with pytest.raises(CheckpointError, match="context_length"):
        load_model(ck)
    side.write_text("[]")
    with pytest.raises(CheckpointError, match="ck.json: the sidecar of ck.pt holds a list"):
        load_model(ck)


def test_a_sidecar_still_gives_the_keep_of_older_checkpoints(mini, tmp_path):
    model, _ = mini
    torch.save(dict(model.state_dict()), tmp_path / "old.pt")                   # written before keep was recorded
    (tmp_path / "old.json").write_text(json.dumps({"keep": 8, "ratio": 4, "base_context": 32}))
    state, meta = read_checkpoint(tmp_path / "old.pt")
    assert meta["keep"] == 8 and meta["metadata_from"] == "sidecar"
    assert load_model(tmp_path / "old.pt")[0].keep == 8


# ----------------------------------------------------------------------------- shapes
def test_wrong_vocabulary_is_an_error_not_an_index_error_later(mini):
    model, _ = mini
    state = dict(model.state_dict())
    state["token_embedding.weight"] = torch.zeros(1000, 128)
    with pytest.raises(CheckpointError, match=r"vocab.pt: token_embedding.weight has 1000 rows; expected 49408"):
        model_from_state_dict(state, keep=8, source="vocab.pt")


def test_one_wrong_tensor_is_reported_as_itself(mini):
    """One wrong ln_final.weight was reported as '41 shape mismatches' in other keys."""
    model, _ = mini
    state = dict(model.state_dict())
    state["ln_final.weight"] = torch.zeros(100)
    with pytest.raises(CheckpointError) as err:
        model_from_state_dict(state, keep=8, source="lnf.pt")
    assert "1 shape mismatches (ln_final.weight: got (100,), expected (128,))" in str(err.value)
    state = dict(model.state_dict())
    state["visual.ln_post.bias"] = torch.zeros(128, dtype=torch.long)
    with pytest.raises(CheckpointError, match=r"1 tensors that are not floating point \(visual.ln_post.bias: torch.int64\)"):
        model_from_state_dict(state, keep=8, source="int.pt")
    state = dict(model.state_dict())
    state["visual.positional_embedding"] = torch.zeros(60, 128)
    with pytest.raises(CheckpointError, match=r"visual.positional_embedding has 60 rows; expected 1 \+ a square"):
        model_from_state_dict(state, keep=8, source="grid.pt")
    with pytest.raises(CheckpointError, match=r"keep 500; expected a whole number in \[0, 104\]"):
        model_from_state_dict(dict(model.state_dict()), keep=500, source="k.pt")


# ----------------------------------------------------------------------------- not a state dict
def test_files_that_are_not_state_dicts_never_get_unsafe_advice(mini, tmp_path):
    model, _ = mini
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    (tmp_path / "pickle.pt").write_bytes(b"\x80\x02" + os.urandom(512))
    torch.save(model, tmp_path / "module.pt")
    cases = {"random.pt": "not a PyTorch checkpoint", "pickle.pt": "truncated or corrupt checkpoint",
             "module.pt": "holds Python objects (dgtrs_lib.model.longclip.LongCLIP)"}
    for name, words in cases.items():
        with pytest.raises(CheckpointError) as err:
            load_model(tmp_path / name)
        assert words in str(err.value) and "weights_only" not in str(err.value) and "False" not in str(err.value), name
    torch.save({1: torch.zeros(2)}, tmp_path / "intkeys.pt")
    with pytest.raises(CheckpointError, match=r"expected a dict mapping parameter names to tensors, got 1 other"):
        load_model(tmp_path / "intkeys.pt")


def test_a_training_state_of_random_bytes_is_a_clear_error(tmp_path):
    from dgtrs_lib.training.trainer import load_train_state

    (tmp_path / "train_state.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(CheckpointError) as err:
        load_train_state(tmp_path / "train_state.pt")
    assert "delete it to start from scratch" in str(err.value) and "weights_only" not in str(err.value)
