"""Zero-shot classification: templates, class names, the two ensembles, and a tiny known case."""
import pytest
import torch

from dgtrs_lib.evaluation.classification import (
    CLIP_RS_TEMPLATES,
    GEORSCLIP_STYLE_TEMPLATES,
    REMOTECLIP_TEMPLATES,
    build_classifier,
    classify,
    ensemble_embeddings,
    get_templates,
    normalize_classname,
)
from dgtrs_lib.evaluation.encode import encode_texts, tokenizer_for


def test_classname_normalisation():
    assert normalize_classname("AnnualCrop") == "annual crop"
    assert normalize_classname("baseball_field") == "baseball field"
    assert normalize_classname("SeaLake") == "sea lake"
    assert normalize_classname("storage-tank/area") == "storage tank area"
    assert normalize_classname("AnnualCrop", style="georsclip") == "annualcrop"   # GeoRSCLIP's quirk


def test_template_sets_are_well_formed():
    for temps in (CLIP_RS_TEMPLATES, REMOTECLIP_TEMPLATES, GEORSCLIP_STYLE_TEMPLATES):
        assert all(t.count("{}") == 1 for t in temps)
        assert len(set(temps)) == len(temps)
    assert REMOTECLIP_TEMPLATES == ("a satellite photo of {}.",)
    assert "an aerial image of the {}." in GEORSCLIP_STYLE_TEMPLATES
    assert "a low resolution remote sensing image of the {}." in GEORSCLIP_STYLE_TEMPLATES
    with pytest.raises(ValueError, match="template set"):
        get_templates("nope")
    with pytest.raises(ValueError, match="'{}'"):
        get_templates(["no slot"])


def test_the_two_ensembles_differ_the_documented_way():
    # two template embeddings of one class: a long one along x, a short one along y
    f = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
    clip = ensemble_embeddings(f, "normalize_mean")           # equal votes -> 45 degrees
    geo = ensemble_embeddings(f, "mean_normalize")            # the long vector dominates
    assert torch.allclose(clip, torch.tensor([1.0, 1.0]) / 2 ** 0.5)
    assert torch.allclose(geo, torch.tensor([10.0, 1.0]) / 101 ** 0.5)
    same_norm = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    assert torch.allclose(ensemble_embeddings(same_norm, "normalize_mean"), ensemble_embeddings(same_norm, "mean_normalize"))


class BagOfWords(torch.nn.Module):
    """A transparent text encoder: embedding sum over tokens (so prompts differ by class word)."""

    def __init__(self):
        super().__init__()
        self.context_length = 16
        self.emb = torch.nn.Embedding(49408, 8)

    def encode_text(self, tokens):
        return self.emb(tokens).sum(1)


def test_classifier_on_a_tiny_known_case():
    model = BagOfWords()
    names = ["forest", "river", "airport"]
    clf = build_classifier(model, names, "remoteclip")
    assert clf.shape == (8, 3)
    assert torch.allclose(clf.norm(dim=0), torch.ones(3))
    # an "image" whose feature equals the river prompt's embedding is classified as river
    prompt = encode_texts(model, ["a satellite photo of river."], normalize=False)
    logits = classify(prompt, clf)
    assert logits.argmax(1).item() == 1
    assert logits[0, 1].item() == pytest.approx(100.0, rel=1e-5)
    # the ensemble over several templates is still a unit vector per class
    clf_many = build_classifier(model, names, "clip", ensemble="mean_normalize")
    assert torch.allclose(clf_many.norm(dim=0), torch.ones(3))


def test_tokenizer_pads_to_context_for_plain_open_clip_models():
    tok = tokenizer_for(BagOfWords())
    ids = tok(["a b", "a much longer caption than the other one " * 5])
    assert ids.shape == (2, 16)                               # fixed context, long text truncated
    assert int(ids[1, -1]) == 49407                           # EOT kept at the end
