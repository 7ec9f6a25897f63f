"""The CUDA paths on a real GPU (skipped without one; ``scripts/gpu_check.sh`` runs them with
``DGTRS_TEST_CUDA=1``): the precision picked from the device's compute capability, fused AdamW,
fp16 loss scaling where there is no native bf16, gradient caching on the GPU, pinned loader batches."""
import pytest
import torch

from dgtrs_lib import create_model, stretch_model
from dgtrs_lib.training.gradcache import contrastive_backward
from dgtrs_lib.training.losses import DualGranularityLoss
from dgtrs_lib.training.metrics_log import read_metrics
from dgtrs_lib.training.plan import DeviceInfo, plan_training
from dgtrs_lib.training.precision import NATIVE_BF16, Amp
from dgtrs_lib.training.trainer import DualEncoder, load_train_state, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (scripts/gpu_check.sh)")


def _tiny(device="cuda"):
    torch.manual_seed(0)
    return stretch_model(create_model("tiny"), keep=8, ratio=4).to(device)


def test_trainer_picks_the_device_precision_and_fused_adamw(tmp_path):
    from test_train import cfg, toy_data

    native = torch.cuda.get_device_capability() >= NATIVE_BF16
    res = train(_tiny(), toy_data(16), cfg(steps=2, batch_size=8, ckpt_every=1), tmp_path, device="cuda")
    expected = "bf16" if native else "fp16"
    assert res.setup["precision"] == expected and res.setup["optimizer"] == "AdamW (fused)"
    assert [r["precision"] for r in read_metrics(res.metrics)] == [expected, expected]
    print("device plan:", plan_training("gpu").summary())


def test_fp16_loss_scaling_on_the_gpu(tmp_path):
    from test_train import cfg, toy_data

    res = train(_tiny(), toy_data(16), cfg(steps=3, batch_size=8, precision="fp16", ckpt_every=2), tmp_path,
                device="cuda")
    recs = read_metrics(res.metrics)
    assert all(r["loss_scale"] > 0 and r["loss"] == r["loss"] for r in recs)
    assert load_train_state(tmp_path / "train_state.pt")["scaler"]["scale"] > 0


@pytest.mark.parametrize("precision, rtol", [("fp32", 1e-4), ("bf16", 5e-2)])
def test_gradient_cache_on_the_gpu(precision, rtol, monkeypatch):
    if precision == "bf16" and torch.cuda.get_device_capability() < NATIVE_BF16:
        pytest.skip("no native bf16 on this GPU")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # the patch conv in true fp32
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    g = torch.Generator().manual_seed(5)
    images = torch.randn(8, 3, 64, 64, generator=g)
    long_tok = torch.randint(1, 49000, (8, 30), generator=g)
    short_tok = torch.randint(1, 49000, (8, 9), generator=g)
    long_tok[:, -1] = short_tok[:, -1] = 49407
    grads = {}
    for sub in (None, 3):
        model = _tiny()
        contrastive_backward(DualEncoder(model), images, long_tok, short_tok, DualGranularityLoss(), 1.0, 0.5,
                             Amp(precision, "cuda"), sub_batch=sub, device="cuda")
        grads[sub] = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    for name, g_full in grads[None].items():
        assert (grads[3][name] - g_full).norm() <= rtol * g_full.norm() + 1e-6, name


def test_device_info_and_pinned_batches():
    info = DeviceInfo.current("cuda")
    assert info.memory_gib > 1 and info.capability == torch.cuda.get_device_capability()
    from dgtrs_lib.data.loader import LoaderSettings, _join

    chunk = {"images": torch.zeros(2, 3, 4, 4).pin_memory(), "long": torch.ones(2, 3, dtype=torch.long),
             "short": torch.ones(2, 2, dtype=torch.long)}
    images, _, _ = _join([chunk, chunk], pin=True)
    assert images.is_pinned() and images.shape[0] == 4
    assert LoaderSettings(num_workers=2, pin_memory=True).loader_kwargs()["pin_memory"] is True
