"""Gradient caching (Gao et al. 2021): loss and gradients equal to the full-batch computation, in one
process and in two gloo DDP processes, for both granularities and both loss presets."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from dgtrs_lib import create_model, stretch_model
from dgtrs_lib.training.config import TrainConfig
from dgtrs_lib.training.gradcache import RandState, contrastive_backward
from dgtrs_lib.training.losses import DualGranularityLoss
from dgtrs_lib.training.metrics_log import read_metrics
from dgtrs_lib.training.precision import Amp
from dgtrs_lib.training.trainer import DualEncoder, train

B = 8
LOSSES = {"dgtrs": dict(), "longclip-like": dict(pca_dim=4, label_smoothing=0.1)}  # PCA acts on a batch of 8 at k=4
WEIGHTS = {"dgcl": (1.0, 0.5), "long only": (1.0, 0.0), "short only": (0.0, 1.0)}


def _model():
    torch.manual_seed(0)
    return stretch_model(create_model("tiny"), keep=8, ratio=4)


def _batch(n=B, seed=5):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, 64, 64, generator=g)
    long_tok = torch.randint(1, 49000, (n, 30), generator=g)
    short_tok = torch.randint(1, 49000, (n, 9), generator=g)
    long_tok[:, -1] = short_tok[:, -1] = 49407
    long_tok[::3, 20:] = 0  # uneven caption lengths: each sub-batch is trimmed to its own longest
    long_tok[::3, 19] = 49407
    return images, long_tok, short_tok


def _grads_and_losses(sub_batch, loss_kw, weights, amp=None, loss_weight=1.0):
    model = _model()
    images, long_tok, short_tok = _batch()
    w_long, w_short = weights
    loss, l_long, l_short = contrastive_backward(
        DualEncoder(model), images, long_tok if w_long else None, short_tok if w_short else None,
        DualGranularityLoss(**loss_kw), w_long, w_short, amp or Amp("fp32", "cpu"), sub_batch=sub_batch,
        loss_weight=loss_weight)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return [None if x is None else x.item() for x in (loss, l_long, l_short)], grads


def _assert_same(a, b, rtol=1e-4, atol=1e-6):
    (losses_a, grads_a), (losses_b, grads_b) = a, b
    assert [x is None for x in losses_a] == [x is None for x in losses_b]
    assert [x for x in losses_a if x is not None] == pytest.approx([x for x in losses_b if x is not None], rel=1e-5)
    assert set(grads_a) == set(grads_b) and "logit_scale" in grads_a and "positional_embedding" not in grads_a
    for name, g in grads_b.items():
        torch.testing.assert_close(grads_a[name], g, rtol=rtol, atol=atol, msg=f"gradient of {name}")


def test_plain_step_is_the_reference_full_batch_backward():
    """sub_batch >= batch is the unchanged one-graph step."""
    model = _model()
    img, lng, sht, scale = DualEncoder(model)(*_batch())
    l_long, l_short = DualGranularityLoss()(img, lng, sht, scale)
    (l_long + 0.5 * l_short).backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    got = _grads_and_losses(None, {}, (1.0, 0.5))
    _assert_same(got, ([(l_long + 0.5 * l_short).item(), l_long.item(), l_short.item()], ref))


_FULL = {}


def _full(loss, weights):
    if (loss, weights) not in _FULL:
        _FULL[loss, weights] = _grads_and_losses(None, LOSSES[loss], WEIGHTS[weights])
    return _FULL[loss, weights]


@pytest.mark.parametrize("loss, weights, sub_batch", [
    *[(loss, weights, 3) for loss in LOSSES for weights in WEIGHTS],  # 3 of 8: an uneven last sub-batch
    ("dgtrs", "dgcl", 1), ("longclip-like", "dgcl", 4)])
def test_gradient_cache_equals_full_batch(loss, weights, sub_batch):
    cached = _grads_and_losses(sub_batch, LOSSES[loss], WEIGHTS[weights])
    _assert_same(cached, _full(loss, weights))
    if WEIGHTS[weights][1] == 0:
        assert cached[0][2] is None  # the switched-off branch is not computed


def test_gradient_cache_with_loss_weight_and_fp16_scaling():
    """``loss_weight`` (1/accum_steps) and fp16 loss scaling pass through the cached gradients."""
    _assert_same(_grads_and_losses(3, {}, (1.0, 1.0), loss_weight=0.25), _grads_and_losses(None, {}, (1.0, 1.0),
                                                                                         loss_weight=0.25))
    plain = _grads_and_losses(None, {}, (1.0, 1.0), amp=Amp("fp16", "cpu"))
    cached = _grads_and_losses(4, {}, (1.0, 1.0), amp=Amp("fp16", "cpu"))
    assert cached[0] == pytest.approx(plain[0], rel=1e-2)
    for name, g in plain[1].items():  # gradients carry the loss scale (65536) in both; compare relative norms
        assert (cached[1][name] - g).norm() <= 2e-2 * g.norm() + 1e-3, name


def test_rand_state_replays_dropout_masks():
    """The re-forward of a sub-batch sees the random state of its first, graph-free forward."""
    x = torch.ones(1000)
    state = RandState(torch.device("cpu"))
    first = torch.nn.functional.dropout(x, 0.5)
    following = torch.get_rng_state()
    with state.replay():
        again = torch.nn.functional.dropout(x, 0.5)
    assert torch.equal(first, again)
    assert torch.equal(torch.get_rng_state(), following)  # the replay leaves the outer random state alone


def test_trainer_with_contrastive_batch_matches_the_plain_trainer(tmp_path):
    """batch_size=3 inside a contrastive batch of 12 logs the losses of batch 12 in one pass."""
    from test_train import cfg, toy_data

    data = toy_data(24)
    cached = train(_model(), data, cfg(steps=3, batch_size=3, contrastive_batch=12, schedule="fixed",
                                       loss="longclip", loss_kwargs={"pca_dim": 4}), tmp_path / "cached", device="cpu")
    plain = train(_model(), data, cfg(steps=3, batch_size=12, schedule="fixed", loss="longclip",
                                      loss_kwargs={"pca_dim": 4}), tmp_path / "plain", device="cpu")
    assert cached.setup["grad_cache"] and cached.setup["sub_batch"] == 3 and not plain.setup["grad_cache"]
    for a, b in zip(read_metrics(cached.metrics), read_metrics(plain.metrics)):  # step 2 checks the updates too
        assert a["loss_long"] == pytest.approx(b["loss_long"], rel=1e-4)
        assert a["loss_short"] == pytest.approx(b["loss_short"], rel=1e-4)
    with pytest.raises(ValueError, match="contrastive_batch"):
        TrainConfig(batch_size="auto").check()
    with pytest.raises(ValueError, match="contrastive_batch must be None"):
        TrainConfig(contrastive_batch=0).check()


# ----------------------------------------------------------------------------- two gloo processes
DDP_CASES = {  # name: (loss kwargs, weights, sub-batch per rank or None)
    "cached dgcl": ({}, (1.0, 0.5), [1, 2]),
    "cached short only": ({}, (0.0, 1.0), [3, 2]),
    "cached pca": (dict(pca_dim=2, label_smoothing=0.1), (1.0, 0.5), [1, 2]),
    "plain pca": (dict(pca_dim=2, label_smoothing=0.1), (1.0, 0.5), None),
}


def _worker(rank, world, port, out_dir, mode):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        if mode == "steps":
            out = {}
            for name, (loss_kw, (w_long, w_short), subs) in DDP_CASES.items():
                model = _model()
                net = torch.nn.parallel.DistributedDataParallel(DualEncoder(model))
                images, long_tok, short_tok = _batch()
                part = slice(rank * B // world, (rank + 1) * B // world)
                losses = contrastive_backward(net, images[part], long_tok[part] if w_long else None,
                                              short_tok[part] if w_short else None, DualGranularityLoss(**loss_kw),
                                              w_long, w_short, Amp("fp32", "cpu"),
                                              sub_batch=None if subs is None else subs[rank], no_sync=net.no_sync)
                losses = torch.stack([x if x is not None else torch.tensor(0.0) for x in losses])
                torch.distributed.all_reduce(losses)  # DDP averages the gradients; log the mean loss
                out[name] = {"losses": (losses / world).tolist(),
                             "grads": {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}}
            if rank == 0:
                torch.save(out, os.path.join(out_dir, "ddp.pt"))
        else:
            from test_train import toy_data

            cfg = TrainConfig(steps=2, batch_size=2, contrastive_batch=8, lr=1e-4, warmup_steps=1, schedule="fixed",
                              progress=False)
            train(_model(), toy_data(16), cfg, os.path.join(out_dir, "ddp_run"), device="cpu")
    finally:
        torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gradient_cache_equals_the_full_batch(tmp_path):
    """Each process caches its 4 pairs in sub-batches (1 and 2, or 3 and 2); features gathered with
    gradient, DDP averaging: the loss and gradients of ONE process holding all 8 pairs in one pass,
    for both granularities and for the short branch alone. With Long-CLIP's PCA, which is computed on
    each process's local batch (as Long-CLIP does), the reference is the plain two-process step."""
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), "steps"), nprocs=2, join=True)
    got = torch.load(tmp_path / "ddp.pt", weights_only=True)
    for name, weights in (("cached dgcl", (1.0, 0.5)), ("cached short only", (0.0, 1.0))):
        losses, grads = _grads_and_losses(None, {}, weights)
        losses = [0.0 if x is None else x for x in losses]
        assert got[name]["losses"] == pytest.approx(losses, rel=1e-5), name
        assert set(got[name]["grads"]) == set(grads), name
        for param, g in grads.items():
            torch.testing.assert_close(got[name]["grads"][param], g, rtol=1e-4, atol=1e-6, msg=f"{name}: {param}")
    cached, plain = got["cached pca"], got["plain pca"]
    assert cached["losses"] == pytest.approx(plain["losses"], rel=1e-5)
    for param, g in plain["grads"].items():
        torch.testing.assert_close(cached["grads"][param], g, rtol=1e-4, atol=1e-6, msg=f"pca: {param}")


def test_two_process_trainer_with_gradient_cache_logs_the_one_process_losses(tmp_path):
    from test_train import toy_data

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), "train"), nprocs=2, join=True)
    cfg = TrainConfig(steps=2, batch_size=8, lr=1e-4, warmup_steps=1, schedule="fixed", progress=False)
    train(_model(), toy_data(16), cfg, tmp_path / "one", device="cpu")
    ddp, one = read_metrics(tmp_path / "ddp_run" / "metrics.jsonl"), read_metrics(tmp_path / "one" / "metrics.jsonl")
    assert len(ddp) == len(one) == 2
    for a, b in zip(ddp, one):  # step 1 also checks that both processes applied the same update
        assert a["loss_long"] == pytest.approx(b["loss_long"], rel=1e-4)
        assert a["loss_short"] == pytest.approx(b["loss_short"], rel=1e-4)
