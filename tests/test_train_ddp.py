"""Two CPU processes (gloo, DDP) give the loss and gradients of one process on the same global batch."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from dgtrs_lib import create_model, stretch_model
from dgtrs_lib.training.config import TrainConfig
from dgtrs_lib.training.losses import DualGranularityLoss
from dgtrs_lib.training.metrics_log import read_metrics
from dgtrs_lib.training.trainer import DualEncoder, train

GLOBAL_B = 8


def _model():
    torch.manual_seed(0)
    return stretch_model(create_model("tiny"), keep=8, ratio=4)


def _batch():
    g = torch.Generator().manual_seed(5)
    images = torch.randn(GLOBAL_B, 3, 64, 64, generator=g)
    long_tok = torch.randint(1, 49000, (GLOBAL_B, 30), generator=g)
    short_tok = torch.randint(1, 49000, (GLOBAL_B, 9), generator=g)
    long_tok[:, -1] = short_tok[:, -1] = 49407  # EOT (argmax pooling)
    return images, long_tok, short_tok


def _toy_pairs():
    from test_train import toy_data

    return toy_data(16)


def _one_process_loss_and_grads():
    model = _model()
    img, lng, sht, scale = DualEncoder(model)(*_batch())
    l_long, l_short = DualGranularityLoss()(img, lng, sht, scale)
    (l_long + 0.5 * l_short).backward()
    return l_long.item(), l_short.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _worker(rank, world, port, out_dir, mode):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        if mode == "grads":
            model = _model()
            net = torch.nn.parallel.DistributedDataParallel(DualEncoder(model))
            images, lng, sht = _batch()
            part = slice(rank * GLOBAL_B // world, (rank + 1) * GLOBAL_B // world)
            img_f, lng_f, sht_f, scale = net(images[part], lng[part], sht[part])
            l_long, l_short = DualGranularityLoss()(img_f, lng_f, sht_f, scale)
            (l_long + 0.5 * l_short).backward()  # DDP averages the gradients over processes
            losses = torch.stack([l_long.detach(), l_short.detach()])
            torch.distributed.all_reduce(losses)
            if rank == 0:
                grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
                torch.save({"losses": (losses / world).tolist(), "grads": grads}, os.path.join(out_dir, "ddp.pt"))
        else:
            cfg = TrainConfig(steps=2, batch_size=GLOBAL_B // world, lr=1e-4, warmup_steps=1, schedule="fixed", progress=False)
            train(_model(), _toy_pairs(), cfg, os.path.join(out_dir, "ddp_run"), device="cpu")
    finally:
        torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_loss_and_gradients_equal_one_process(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), "grads"), nprocs=2, join=True)
    got = torch.load(tmp_path / "ddp.pt", weights_only=True)
    l_long, l_short, grads = _one_process_loss_and_grads()
    assert got["losses"] == pytest.approx([l_long, l_short], rel=1e-5)
    assert set(got["grads"]) == set(grads) and "positional_embedding" not in grads
    for name, g in grads.items():
        torch.testing.assert_close(got["grads"][name], g, rtol=1e-4, atol=1e-6, msg=f"gradient of {name}")


def test_two_process_trainer_logs_the_one_process_losses(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), "train"), nprocs=2, join=True)
    cfg = TrainConfig(steps=2, batch_size=GLOBAL_B, lr=1e-4, warmup_steps=1, schedule="fixed", progress=False)
    train(_model(), _toy_pairs(), cfg, tmp_path / "one", device="cpu")
    ddp, one = read_metrics(tmp_path / "ddp_run" / "metrics.jsonl"), read_metrics(tmp_path / "one" / "metrics.jsonl")
    assert len(ddp) == len(one) == 2
    for a, b in zip(ddp, one):  # step 1 also checks that both processes applied the same update
        assert a["loss_long"] == pytest.approx(b["loss_long"], rel=1e-4)
        assert a["loss_short"] == pytest.approx(b["loss_short"], rel=1e-4)
