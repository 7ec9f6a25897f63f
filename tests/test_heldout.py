"""The held-out loss callback: the same pairs at chosen steps, the run's own result unchanged."""
import pytest
import torch

from dgtrs_lib import create_model, stretch_model
from dgtrs_lib.data.pairs import PairData
from dgtrs_lib.experiments.ablations import converged
from dgtrs_lib.model.checkpoint import load_state_dict_file
from dgtrs_lib.training.config import TrainConfig
from dgtrs_lib.training.heldout import HELDOUT_FILE, HeldoutLoss, heldout_loss, read_heldout
from dgtrs_lib.training.losses import contrastive_loss
from dgtrs_lib.training.trainer import train

WORDS = "red green blue river field forest road house roof bridge lake sand".split()


def toy(n, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, 64, 64, generator=g)
    picks = torch.randint(0, len(WORDS), (n, 10), generator=g).tolist()
    return PairData.from_texts(images, ["a scene with " + " ".join(WORDS[i] for i in p) for p in picks],
                               [" ".join(WORDS[i] for i in p[:2]) for p in picks], context_length=104)


def tiny():
    torch.manual_seed(0)
    return stretch_model(create_model("tiny"), keep=8, ratio=4)


def test_heldout_loss_is_the_mean_contrastive_loss_of_fixed_batches():
    model, val = tiny(), toy(20, 1)
    got = heldout_loss(model, val, n=16, batch_size=8)
    model.eval()
    with torch.no_grad():
        want = 0.0
        for start in (0, 8):
            idx = torch.arange(start, start + 8)
            im = model.encode_image(val.images[idx], normalize=True)
            want += float(contrastive_loss(im, model.encode_text(val.long_tokens[idx], normalize=True),
                                           model.logit_scale)) / 2
    assert got["loss_long"] == pytest.approx(want, rel=1e-5)
    model.train()
    heldout_loss(model, val, n=16, batch_size=8)
    assert model.training  # the caller's mode is restored
    with pytest.raises(ValueError, match="at least batch_size"):
        heldout_loss(model, val, n=4, batch_size=8)


def test_callback_records_the_chosen_steps_and_leaves_training_unchanged(tmp_path):
    cfg = TrainConfig(steps=6, batch_size=8, lr=1e-3, warmup_steps=2, schedule="cosine", progress=False, seed=3,
                      deterministic=True)
    data, val = toy(24, 0), toy(16, 1)
    plain = tiny()
    train(plain, data, cfg, tmp_path / "plain")
    watched = tiny()
    train(watched, data, cfg, tmp_path / "watched", callback=HeldoutLoss(watched, val, tmp_path / "watched", at=(2, 5),
                                                                           n=16, batch_size=8))
    a = load_state_dict_file(tmp_path / "plain" / "final.pt")
    b = load_state_dict_file(tmp_path / "watched" / "final.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)       # no random number drawn, no weight touched
    held = read_heldout(tmp_path / "watched")
    assert held["step"] == [2, 5] and len(held["loss_long"]) == 2
    assert held["loss_long"][1] == pytest.approx(heldout_loss(watched, val, n=16, batch_size=8)["loss_long"], rel=1e-5)
    assert read_heldout(tmp_path / "plain") == {"step": [], "loss_long": [], "loss_short": []}
    assert (tmp_path / "watched" / HELDOUT_FILE).exists()


def test_convergence_reads_the_heldout_curve_when_there_is_one():
    steps = list(range(50))
    noisy = {"step": steps, "loss_long": [1.0 + (0.4 if i % 2 else -0.4) * (i >= 40) for i in steps],
             "loss_short": [None] * 50}
    flat = {"step": [19, 29, 39, 49], "loss_long": [1.2, 1.0, 1.0, 0.99], "loss_short": [2.0, 2.0, 2.0, 2.0]}
    falling = {**flat, "loss_long": [1.2, 1.0, 0.9, 0.8]}
    got = converged(noisy, heldout=flat)
    assert got["basis"] == "heldout" and got["passed"] and got["heldout_steps"] == [39, 49]
    assert set(got["heldout_change"]) == {"loss_long"}           # only the trained branch counts
    assert not converged(noisy, heldout=falling)["passed"]
    assert converged(noisy)["basis"] == "training"
