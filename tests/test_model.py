"""LongCLIP: frozen/trainable split, dynamic padding, stretching, official format, parity, bad files."""
import json

import pytest
import torch
from official_reference import OfficialLongCLIP

from dgtrs_lib import (
    CheckpointError,
    LongCLIP,
    create_long_model,
    create_model,
    load_model,
    save_official,
    stretch_model,
    stretch_positional_embedding,
    tokenize,
)
from dgtrs_lib.model.checkpoint import load_state_dict_file, model_from_state_dict

CAPTIONS = ["a harbor with boats", "a dense forest beside a winding river with two bridges and a road " * 3]


def _randomise(model):
    """Give every parameter non-trivial values so parity tests compare real numbers."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05 + (1.0 if p.ndim == 1 and p.shape[0] in (128, 64) else 0))
    return model


def test_tiny_shapes_and_split():
    base = create_model("tiny")
    assert base.context_length == 32 and base.image_size == 64
    long = stretch_model(base, keep=8, ratio=4)
    assert isinstance(long, LongCLIP) and long.context_length == 104 and long.keep == 8
    frozen = [n for n, p in long.named_parameters() if not p.requires_grad]
    assert frozen == ["positional_embedding"]
    assert set(long.state_dict()) - set(base.state_dict()) == {"positional_embedding_res"}
    # only rows >= keep of the trainable copy receive gradient
    long.encode_text(tokenize(CAPTIONS, 104, pad_to_longest=True)).sum().backward()
    grad = long.positional_embedding_res.grad
    assert torch.all(grad[:8] == 0) and grad[8:40].abs().sum() > 0


def test_stretch_keeps_weights_and_positions():
    base = create_model("tiny")
    long = stretch_model(base, keep=8, ratio=4)
    eff = long.text_positional_embedding()
    assert torch.allclose(eff, stretch_positional_embedding(base.positional_embedding.detach(), 8, 4))
    assert torch.equal(long.token_embedding.weight, base.token_embedding.weight)
    # texts that fit in the preserved rows encode exactly as before stretching
    short = tokenize(["a beach"], 32, pad_to_longest=True)
    assert short.shape[1] <= 8
    assert torch.allclose(long.encode_text(short), base.encode_text(short), atol=1e-6)
    lin = stretch_model(base, keep=8, ratio=4, mode="linear")
    assert lin.keep == 0 and lin.context_length == 104
    with pytest.raises(TypeError):
        stretch_model(long)


def test_dynamic_padding_matches_full_context():
    from dgtrs_lib.model.configs import stretch_of

    ctx = stretch_of("tiny")["context"]  # the configured (measured) stretch
    model = create_long_model("tiny").eval()
    assert model.context_length == ctx
    full = tokenize(CAPTIONS, ctx)
    trimmed = tokenize(CAPTIONS, ctx, pad_to_longest=True)
    assert trimmed.shape[1] < ctx
    assert torch.allclose(model.encode_text(full), model.encode_text(trimmed), atol=1e-5)
    with pytest.raises(ValueError, match=f"at most {ctx}"):
        model.encode_text(torch.zeros(1, ctx + 1, dtype=torch.long))


def test_official_round_trip(tmp_path):
    model = stretch_model(create_model("tiny"), keep=8, ratio=4)
    # "model" and "path" are metadata keys too (the run records name the model config)
    path = save_official(model, tmp_path / "mini.pt", note="test", model="tiny", path="elsewhere")
    meta = json.loads((tmp_path / "mini.json").read_text())
    assert meta["model"] == "tiny" and meta["path"] == "elsewhere" and meta["note"] == "test"
    assert meta["keep"] == 8 and meta["ratio"] == 4 and meta["base_context"] == 32 and meta["format"] == "dgtrs-official"
    state = torch.load(path, weights_only=True)
    assert state["positional_embedding"].shape == state["positional_embedding_res"].shape == (104, 128)
    loaded, preprocess = load_model(path)
    assert isinstance(loaded, LongCLIP) and loaded.keep == 8
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    from PIL import Image

    assert preprocess(Image.new("RGB", (100, 80))).shape == (3, 64, 64)


def test_safetensors_and_openai_short_format(tmp_path):
    from safetensors.torch import save_file

    base = create_model("tiny")
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, str(tmp_path / "openai.safetensors"))
    model, _ = load_model(tmp_path / "openai.safetensors", keep=8, ratio=4)       # KPS applied at load
    assert isinstance(model, LongCLIP) and model.context_length == 104
    assert torch.allclose(model.text_positional_embedding(), stretch_positional_embedding(base.positional_embedding.detach(), 8, 4))
    short, _ = load_model(tmp_path / "openai.safetensors", stretch=False)
    assert short.context_length == 32


@pytest.mark.parametrize("keep", [8, 20])
def test_parity_with_official_forward(tmp_path, keep):
    """Same checkpoint, same inputs: our LongCLIP == an independent official-format forward."""
    model = _randomise(create_long_model("tiny", keep=keep, ratio=4, context_length=104 if keep == 8 else 68))
    path = save_official(model, tmp_path / "ck.pt")
    state = torch.load(path, weights_only=True)
    ours, _ = load_model(path)
    ref = OfficialLongCLIP(state, keep=keep).eval()
    ctx = ours.context_length
    tokens = tokenize(CAPTIONS, ctx)
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours.encode_text(tokens), ref.encode_text(tokens), atol=1e-4, rtol=1e-4)
        assert torch.allclose(ours.encode_text(tokenize(CAPTIONS, ctx, pad_to_longest=True)), ref.encode_text(tokens), atol=1e-4, rtol=1e-4)
        assert torch.allclose(ours.encode_image(images), ref.encode_image(images), atol=1e-4, rtol=1e-4)


def test_official_default_keep_is_20(tmp_path):
    """The authors' format as downloaded (plain state dict, 248 tokens, no sidecar) loads with keep 20;
    any other context says nothing about its keep, so it needs the sidecar or an explicit keep (#14)."""
    model = create_long_model("tiny", keep=20, context_length=248)
    torch.save(model.state_dict(), tmp_path / "no_sidecar.pt")      # as downloaded: no sidecar
    loaded, _ = load_model(tmp_path / "no_sidecar.pt")
    assert loaded.keep == 20 and loaded.context_length == 248
    torch.save(create_long_model("tiny", keep=20, context_length=68).state_dict(), tmp_path / "mini68.pt")
    with pytest.raises(CheckpointError, match=r"mini68.pt: a long-format checkpoint at context 68 and nothing records "
                                              r"its keep \(no sidecar mini68.json"):
        load_model(tmp_path / "mini68.pt")
    assert load_model(tmp_path / "mini68.pt", keep=20)[0].keep == 20


# ------------------------------------------------------------------ bad checkpoints
def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pt")


def test_empty_and_truncated(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_model(tmp_path / "empty.pt")
    good = tmp_path / "good.pt"
    torch.save(create_model("tiny").state_dict(), good)
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(tmp_path / "cut.pt")
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(tmp_path / "cut.safetensors")


def test_not_a_state_dict(tmp_path):
    torch.save(create_model("tiny"), tmp_path / "module.pt")          # a pickled nn.Module
    with pytest.raises(CheckpointError, match="not a plain state dict"):
        load_model(tmp_path / "module.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_model(tmp_path / "list.pt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a CLIP ViT state dict"):
        load_model(tmp_path / "other.pt")


def test_missing_extra_and_shape_mismatch(tmp_path):
    state = create_long_model("tiny").state_dict()
    broken = dict(state)
    del broken["ln_final.bias"]
    broken["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"1 missing keys .*ln_final.bias.*1 unexpected keys .*extra.weight"):
        model_from_state_dict(broken, source="broken.pt")
    bad = dict(state)
    bad["positional_embedding_res"] = torch.zeros(50, 128)
    with pytest.raises(CheckpointError, match="positional_embedding_res has shape"):
        model_from_state_dict(bad, source="bad.pt")
    bad = dict(state)
    bad["transformer.resblocks.0.mlp.c_fc.weight"] = torch.zeros(10, 128)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        model_from_state_dict(bad, source="bad.pt")


def test_wrapped_and_prefixed_state_dicts(tmp_path):
    state = create_long_model("tiny").state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "ddp.pt")
    assert set(load_state_dict_file(tmp_path / "ddp.pt")) == set(state)


def test_hub_ids_fail_fast_offline(monkeypatch):
    monkeypatch.delenv("DGTRS_ONLINE", raising=False)
    with pytest.raises(CheckpointError, match="needs network access"):
        load_model("MitsuiChen14/DGTRS-CLIP-ViT-B-16")
    with pytest.raises(CheckpointError, match="unknown OpenAI model"):
        load_model("openai:RN50")
    # every download of the one registry passes the same guard (dgtrs_lib.env.require_online)
    for source in ("openai:ViT-B-16", "dgtrs-clip-b", "remoteclip-vit-b-32", "open_clip:ViT-B-32-quickgelu@openai"):
        with pytest.raises(CheckpointError, match="needs network access"):
            load_model(source)


def test_registry_resolves_every_kind_of_source(tmp_path):
    from PIL import Image

    from dgtrs_lib.model.sources import resolve_source

    model, preprocess, info = resolve_source("tiny-random")
    assert info["source"] == "tiny-random" and info["class"] == "LongCLIP" and info["image_size"] == 64
    assert "chance-level" in info["note"] and preprocess(Image.new("RGB", (80, 70))).shape == (3, 64, 64)
    save_official(create_long_model("tiny"), tmp_path / "ours.pt")
    _, _, info = resolve_source(tmp_path / "ours.pt")
    assert info["source"] == str(tmp_path / "ours.pt") and info["context_length"] == create_long_model("tiny").context_length
    with pytest.raises(CheckpointError, match="state dicts only"):
        resolve_source("tiny-random", keep=4)


def test_vit_b16_config_builds_official_shapes():
    model = create_long_model("ViT-B-16")
    sd = model.state_dict()
    assert sd["positional_embedding"].shape == sd["positional_embedding_res"].shape == (248, 512)
    assert sd["visual.positional_embedding"].shape == (197, 768) and sd["text_projection"].shape == (512, 512)
    assert model.keep == 20
