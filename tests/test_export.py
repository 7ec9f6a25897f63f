"""Export to transformers and open_clip, import back: parity both ways, with the stock libraries.

All models here are small and randomly initialised (their features are meaningless; parity does not
depend on the weights). The long-position rows are perturbed so that a wrong merge of Long-CLIP's
two positional tables would show.
"""
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from dgtrs_lib import create_long_model, create_model, load_model, save_official, tokenize
from dgtrs_lib.model.configs import stretch_of
from dgtrs_lib.model.export import export, main
from dgtrs_lib.model.hf import ExportError, hf_tokenizer

SHORT = "a small harbor with two red boats"
LONG = ("This aerial image shows a harbor. " + "Three white storage tanks stand near the river, "
        "north of a row of orange warehouses, beside two red boats moored at the pier. " * 4)
CTX = stretch_of("tiny")["context"]  # the configured (measured) stretched context


def _rel(a, b):
    return float((a - b).norm() / a.norm())


def _ids(texts, ctx):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tokenize(texts, ctx)


@pytest.fixture(scope="module")
def long_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = create_long_model("tiny").eval()
    with torch.no_grad():  # rows >= keep differ from the frozen table, as after fine-tuning
        model.positional_embedding_res.add_(torch.randn_like(model.positional_embedding_res) * 0.05)
    path = tmp_path_factory.mktemp("ck") / "final.pt"
    save_official(model, path, stage="stage2", profile="smoke")
    return path


@pytest.fixture(scope="module")
def image():
    return Image.fromarray((np.random.RandomState(0).rand(80, 96, 3) * 255).astype("uint8"))


def test_long_description_exceeds_77_tokens():
    assert (_ids([LONG], 248) != 0).sum() > 77


def test_transformers_export_parity(long_ckpt, image, tmp_path):
    from transformers import CLIPModel, CLIPProcessor

    ours, preprocess = load_model(long_ckpt)
    out = export(long_ckpt, tmp_path / "hf", "hf")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["text_config"]["max_position_embeddings"] == ours.context_length == CTX
    assert cfg["text_config"]["hidden_act"] == cfg["vision_config"]["hidden_act"] == "quick_gelu"
    hf = CLIPModel.from_pretrained(out).eval()
    texts = [SHORT, LONG]
    ids = _ids(texts, ours.context_length)
    mask = (torch.arange(ids.shape[1])[None] <= ids.argmax(1)[:, None]).long()
    pixels = preprocess(image)[None]
    with torch.no_grad():
        t_ours, i_ours = ours.encode_text(ids), ours.encode_image(pixels)
        t_hf = hf.get_text_features(input_ids=ids, attention_mask=mask).pooler_output
        i_hf = hf.get_image_features(pixel_values=pixels).pooler_output
        for k in range(2):  # the short caption and the > 77-token description, one at a time
            assert _rel(t_ours[k], t_hf[k]) < 1e-5
        assert _rel(i_ours, i_hf) < 1e-5
        assert float(hf.logit_scale) == pytest.approx(float(ours.logit_scale))
        # through the stock processor: the PIL backend is our preprocessing exactly; the default
        # torchvision backend resizes with torch's bicubic, a few 1e-2 per pixel away
        exact = CLIPProcessor.from_pretrained(out, backend="pil")
        inp = exact(text=texts, images=[image], return_tensors="pt", padding=True, truncation=True)
        assert torch.equal(inp.pixel_values, pixels)
        t_p = hf.get_text_features(input_ids=inp.input_ids, attention_mask=inp.attention_mask).pooler_output
        i_p = hf.get_image_features(pixel_values=inp.pixel_values).pooler_output
        assert _rel(t_ours, t_p) < 1e-5 and _rel(i_ours, i_p) < 1e-5
        default = CLIPProcessor.from_pretrained(out)(images=[image], return_tensors="pt")
        assert _rel(i_ours, hf.get_image_features(pixel_values=default.pixel_values).pooler_output) < 1e-2


def test_open_clip_export_parity(long_ckpt, image, tmp_path):
    import open_clip

    ours, preprocess = load_model(long_ckpt)
    out = export(long_ckpt, tmp_path / "oc", "open_clip")
    assert {"open_clip_config.json", "open_clip_model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    model, _, oc_pre = open_clip.create_model_and_transforms(f"local-dir:{out}")
    tok = open_clip.get_tokenizer(f"local-dir:{out}")
    assert tok.context_length == ours.context_length
    model.eval()
    with torch.no_grad():
        assert _rel(ours.encode_text(_ids([SHORT, LONG], CTX)), model.encode_text(tok([SHORT, LONG]))) < 1e-5
        assert _rel(ours.encode_image(preprocess(image)[None]), model.encode_image(oc_pre(image)[None])) < 1e-5


def test_transformers_folder_round_trip(long_ckpt, tmp_path):
    ours, _ = load_model(long_ckpt)
    out = export(long_ckpt, tmp_path / "hf", "hf")
    back, _ = load_model(out)
    assert type(back).__name__ == "LongCLIP" and back.keep == ours.keep and back.context_length == CTX
    ids = _ids([SHORT, LONG], CTX)
    with torch.no_grad():
        assert _rel(ours.encode_text(ids), back.encode_text(ids)) < 1e-6
        x = torch.randn(2, 3, 64, 64)
        assert _rel(ours.encode_image(x), back.encode_image(x)) < 1e-6


def test_short_transformers_folder_gets_kps_at_load(tmp_path):
    """An OpenAI-shaped 77-token model comes back stretched with KPS (keep 20, ratio 4 -> 248)."""
    from dgtrs_lib.model.checkpoint import model_from_state_dict
    from dgtrs_lib.model.hf import inference_state_dict

    torch.manual_seed(1)
    short = create_model("tiny", context_length=77).eval()
    out = export(short, tmp_path / "hf77", "hf")
    back, _ = load_model(out)
    reference = model_from_state_dict(inference_state_dict(short), stretch=True)
    assert back.context_length == 248 and back.keep == 20
    ids = _ids([SHORT, LONG], 248)
    with torch.no_grad():
        assert _rel(reference.encode_text(ids), back.encode_text(ids)) < 1e-6


def test_exported_tokenizer_ids_and_truncation():
    from dgtrs_lib.data.syndg import generate_syndg

    ds = generate_syndg(8, 1, 1)["train"]
    texts = list(ds["short_caption"]) + list(ds["long_caption"]) + [SHORT, LONG, "Café — “quoted” ‘x’, 3.5 km² (N=12)!"]
    for ctx in (32, CTX, 248):
        tok = hf_tokenizer(ctx)
        ours = _ids(texts, ctx)
        enc = tok(texts, truncation=True, max_length=ctx).input_ids
        for row, ids in zip(ours, enc):
            assert ids == row[: int(row.argmax()) + 1].tolist()  # equal up to and including EOT
            assert len(ids) <= ctx and ids[-1] == 49407
    assert len(hf_tokenizer(32)(LONG, truncation=True).input_ids) == 32  # model_max_length is the context


def test_non_quickgelu_tower_is_refused(tmp_path):
    from dgtrs_lib.model.longclip import DynamicCLIP, get_config

    cfg = get_config("tiny")
    gelu = DynamicCLIP(cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"], quick_gelu=False)
    for to in ("hf", "open_clip"):
        with pytest.raises(ExportError, match="hidden_act"):
            export(gelu, tmp_path / to, to)
        assert not (tmp_path / to).exists()  # nothing half-written


def test_mismatching_transformers_config_names_the_key(long_ckpt, tmp_path):
    from dgtrs_lib import CheckpointError

    out = export(long_ckpt, tmp_path / "hf", "hf")
    cfg = json.loads((out / "config.json").read_text())
    cfg["text_config"]["hidden_act"] = "gelu"
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises((ExportError, CheckpointError), match="text_config.hidden_act"):
        load_model(out)


def test_existing_folder_needs_overwrite(long_ckpt, tmp_path):
    export(long_ckpt, tmp_path / "hf", "hf")
    with pytest.raises(ExportError, match="already exists"):
        export(long_ckpt, tmp_path / "hf", "hf")
    export(long_ckpt, tmp_path / "hf", "hf", overwrite=True)


def test_model_card_reports_only_measured_numbers(long_ckpt, tmp_path, tmp_outputs):
    card = (export(long_ckpt, tmp_path / "a", "hf") / "README.md").read_text()
    assert "No evaluation of this checkpoint was found" in card and "license: apache-2.0" in card
    res = tmp_outputs / "results" / "smoke"
    res.mkdir(parents=True)
    doc = {"run": "evaluate-x", "profile": "smoke", "date": "2026-12-01", "model": {"source": str(long_ckpt)},
           "results": [{"task": "long_text_retrieval", "dataset": "SynDG-RS", "metric": "mR", "value": 12.345}]}
    (res / "evaluate-x.json").write_text(json.dumps(doc))
    card = (export(long_ckpt, tmp_path / "b", "open_clip") / "README.md").read_text()
    assert "| long_text_retrieval | SynDG-RS | mR | 12.35 | evaluate-x.json |" in card


def test_cli(long_ckpt, tmp_path, capsys):
    assert main([str(long_ckpt), str(tmp_path / "o"), "--to", "open_clip"]) == 0
    assert "open_clip_model.safetensors" in capsys.readouterr().out
    assert main([str(long_ckpt), str(tmp_path / "o"), "--to", "open_clip"]) == 6   # exists: a conflict (#14)
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.slow
def test_vit_b16_shapes_transformers_parity(tmp_path):
    """The released shapes (ViT-B/16, 248 tokens) through a stock CLIPModel."""
    from transformers import CLIPModel

    torch.manual_seed(0)
    model = create_long_model("ViT-B-16").eval()
    out = export(model, tmp_path / "b16", "hf")
    hf = CLIPModel.from_pretrained(out).eval()
    assert hf.config.text_config.max_position_embeddings == 248
    ids = _ids([LONG], 248)
    with torch.no_grad():
        assert _rel(model.encode_text(ids), hf.get_text_features(input_ids=ids).pooler_output) < 1e-5
        x = torch.randn(1, 3, 224, 224)
        assert _rel(model.encode_image(x), hf.get_image_features(pixel_values=x).pooler_output) < 1e-5
