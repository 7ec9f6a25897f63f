"""Trainer: a real learning run, exact resume, crash-safe checkpoints, metrics, LR schedule."""
import json
import math

import pytest
import torch

from dgtrs_lib import create_model, load_model, stretch_model
from dgtrs_lib.data.pairs import PairData, trim_padding
from dgtrs_lib.model.checkpoint import load_state_dict_file
from dgtrs_lib.training.config import TrainConfig
from dgtrs_lib.training.lr import cosine_lr
from dgtrs_lib.training.metrics_log import plot_metrics, read_metrics
from dgtrs_lib.training.trainer import BatchOrder, load_train_state, train

WORDS = "red green blue river field forest road house roof bridge lake sand".split()


def toy_data(n=24, seed=0, image_size=64):
    """Random images; the captions name colours/objects chosen at random (honest, not learned here)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, image_size, image_size, generator=g)
    picks = torch.randint(0, len(WORDS), (n, 12), generator=g).tolist()
    short = [" ".join(WORDS[i] for i in p[:2]) for p in picks]
    long = ["an aerial image with " + ", ".join(WORDS[i] for i in p) + " seen from above" for p in picks]
    return PairData.from_texts(images, long, short, context_length=104)


def tiny_long():
    torch.manual_seed(0)
    return stretch_model(create_model("tiny"), keep=8, ratio=4)


def cfg(**kw):
    base = dict(steps=6, batch_size=8, lr=1e-3, warmup_steps=2, schedule="cosine", progress=False, seed=3,
                deterministic=True)
    return TrainConfig(**{**base, **kw})


def test_cosine_lr_matches_longclip_formula():
    assert cosine_lr(0, 1.0, 200, 1000) == pytest.approx(1 / 200)
    assert cosine_lr(199, 1.0, 200, 1000) == pytest.approx(1.0)
    assert cosine_lr(200, 1.0, 200, 1000) == pytest.approx(1.0)
    assert cosine_lr(600, 1.0, 200, 1000) == pytest.approx(0.5)
    assert cosine_lr(999, 1.0, 200, 1000) == pytest.approx(0.5 * (1 + math.cos(math.pi * 799 / 800)))


def test_batch_order_is_deterministic_and_splits_ranks():
    one = BatchOrder(20, 4, seed=1)
    r0, r1 = BatchOrder(20, 2, seed=1, rank=0, world=2), BatchOrder(20, 2, seed=1, rank=1, world=2)
    for m in range(12):  # crosses epochs (5 micro-steps per epoch)
        idx, epoch = one(m)
        assert epoch == m // 5 and len(idx) == 4
        assert torch.equal(torch.cat([r0(m)[0], r1(m)[0]]), idx)
    epoch0 = torch.cat([one(m)[0] for m in range(5)])
    assert sorted(epoch0.tolist()) == list(range(20))
    with pytest.raises(ValueError, match="fewer than one global batch"):
        BatchOrder(3, 4, seed=0)


def test_dynamic_padding_trims_each_batch():
    data = toy_data(8)
    _, long_tok, short_tok = data.batch(torch.arange(8))
    assert short_tok.shape[1] < long_tok.shape[1] <= 104
    assert (short_tok[:, -1] != 0).any() and (long_tok[:, -1] != 0).any()
    assert torch.equal(trim_padding(torch.tensor([[5, 6, 0, 0], [5, 0, 0, 0]])), torch.tensor([[5, 6], [5, 0]]))


def test_training_lowers_the_loss_and_writes_official_outputs(tmp_path):
    data, model = toy_data(16), tiny_long()
    res = train(model, data, cfg(steps=12, batch_size=16, schedule="fixed"), tmp_path / "run")
    recs = read_metrics(res.metrics)
    assert [r["step"] for r in recs] == list(range(12))
    assert recs[-1]["loss"] < recs[0]["loss"] - 0.5  # memorises 16 pairs
    assert recs[0]["logit_scale"] == pytest.approx(100.0, rel=1e-3)
    assert {"lr", "loss_long", "loss_short", "w_long", "w_short", "pairs_per_s"} <= set(recs[0])
    loaded, _ = load_model(res.final)
    assert type(loaded).__name__ == "LongCLIP" and loaded.context_length == 104 and loaded.keep == 8
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v.cpu()), k
    meta = json.loads(res.final.with_suffix(".json").read_text())
    assert meta["schedule"]["name"] == "fixed" and meta["step"] == 12
    # frozen KPS rows never move
    assert torch.equal(model.positional_embedding.cpu(), tiny_long().positional_embedding)
    fig = plot_metrics(res.metrics)
    assert len(fig.axes) >= 3


def test_short_only_branch_skips_long_text(tmp_path):
    res = train(tiny_long(), toy_data(16), cfg(steps=2, schedule="short_only"), tmp_path)
    recs = read_metrics(res.metrics)
    assert all(r["loss_long"] is None and r["loss_short"] is not None for r in recs)


def test_resume_after_interruption_is_bitwise_identical(tmp_path):
    data = toy_data(24)
    ref_model = tiny_long()
    train(ref_model, data, cfg(ckpt_every=3), tmp_path / "ref")

    class Crash(Exception):
        pass

    def crash_at_4(step, record):
        if step == 4:
            raise Crash

    with pytest.raises(Crash):
        train(tiny_long(), data, cfg(ckpt_every=3), tmp_path / "cut", callback=crash_at_4)
    assert load_train_state(tmp_path / "cut" / "train_state.pt")["step"] == 3
    resumed = tiny_long()
    train(resumed, data, cfg(ckpt_every=3), tmp_path / "cut")
    for k, v in ref_model.state_dict().items():
        assert torch.equal(resumed.state_dict()[k].cpu(), v.cpu()), f"{k} differs after resume"
    ref, cut = read_metrics(tmp_path / "ref" / "metrics.jsonl"), read_metrics(tmp_path / "cut" / "metrics.jsonl")
    assert [r["step"] for r in cut] == list(range(6))
    assert [r["loss"] for r in cut] == [r["loss"] for r in ref]


def test_resume_refuses_a_different_run(tmp_path):
    data = toy_data(16)
    train(tiny_long(), data, cfg(steps=1), tmp_path)
    with pytest.raises(Exception, match="different run"):
        train(tiny_long(), data, cfg(steps=1, batch_size=4), tmp_path)


def test_crash_while_writing_checkpoint_keeps_previous(tmp_path, monkeypatch):
    data = toy_data(16)
    real_save = torch.save
    calls = {"n": 0}

    def failing_save(obj, f, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # 1: step_000002.pt, 2: state at step 2, 3: final state -> dies half-way
            f.write(b"PK\x03\x04 half a zip")
            raise OSError("No space left on device")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        train(tiny_long(), data, cfg(steps=4, ckpt_every=2), tmp_path)
    monkeypatch.setattr(torch, "save", real_save)
    assert load_train_state(tmp_path / "train_state.pt")["step"] == 2
    assert load_state_dict_file(tmp_path / "step_000002.pt")
    assert not (tmp_path / "final.pt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # and the run completes from there
    train(tiny_long(), data, cfg(steps=4, ckpt_every=2), tmp_path)
    assert load_train_state(tmp_path / "train_state.pt")["step"] == 4


def test_gradient_accumulation_and_config_errors(tmp_path):
    res = train(tiny_long(), toy_data(16), cfg(steps=2, batch_size=4, accum_steps=2), tmp_path)
    assert all(r["pairs_per_s"] > 0 for r in read_metrics(res.metrics))
    with pytest.raises(ValueError, match="precision"):
        train(tiny_long(), toy_data(8), cfg(precision="fp8"), tmp_path / "x")
    with pytest.raises(ValueError, match="one row per pair"):
        PairData(torch.zeros(3, 3, 8, 8), torch.zeros(3, 4, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))


def test_checkpoints_without_snapshots(tmp_path):
    """``save_snapshots=False`` (the gpu profile): the resumable state every ckpt_every steps, no step_<N>.pt."""
    train(tiny_long(), toy_data(16), cfg(steps=4, ckpt_every=2, save_snapshots=False), tmp_path)
    assert load_train_state(tmp_path / "train_state.pt")["step"] == 4
    assert not list(tmp_path.glob("step_*.pt")) and (tmp_path / "final.pt").exists()
