"""Mixed precision that fits the device, fused AdamW, torch.compile, and the per-GPU plan (fake devices)."""
import json

import pytest
import torch

from dgtrs_lib import create_model, stretch_model
from dgtrs_lib.training.config import TrainConfig
from dgtrs_lib.training.metrics_log import read_metrics
from dgtrs_lib.training.plan import KNOWN_GPUS, DeviceInfo, ModelShape, bytes_per_pair, largest_sub_batch, plan_training
from dgtrs_lib.training.precision import Amp, PrecisionWarning, adamw_kwargs, select_precision
from dgtrs_lib.training.trainer import load_train_state, train


@pytest.mark.parametrize("capability, expected", [((7, 0), "fp16"),   # V100
                                                  ((7, 5), "fp16"),   # T4
                                                  ((8, 0), "bf16"),   # A100
                                                  ((8, 9), "bf16"),   # L4
                                                  ((9, 0), "bf16")])  # H100
def test_auto_precision_follows_compute_capability(capability, expected):
    assert select_precision("auto", "cuda", capability=capability) == expected


def test_auto_precision_ignores_emulated_bf16(monkeypatch):
    """torch.cuda.is_bf16_supported() says True on a T4 (emulation counts); the choice must not use it."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert select_precision("auto", "cuda") == "fp16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert select_precision("auto", "cuda") == "bf16"


def test_explicit_precisions_and_errors():
    assert select_precision("auto", "cpu") == "fp32"
    assert select_precision("fp32", "cuda", capability=(9, 0)) == "fp32"
    assert select_precision("fp16", "cuda", capability=(9, 0)) == "fp16"
    with pytest.warns(PrecisionWarning, match="emulated"):
        assert select_precision("bf16", "cuda", capability=(7, 5)) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        select_precision("fp8", "cpu")
    with pytest.raises(ValueError, match="TrainConfig.precision"):
        TrainConfig(precision="tf32").check()


def test_amp_scaler_only_for_fp16():
    fp16, bf16, fp32 = Amp("fp16", "cpu"), Amp("bf16", "cpu"), Amp("fp32", "cpu")
    assert fp16.loss_scaling and not bf16.loss_scaling and not fp32.loss_scaling
    assert fp16.loss_scale() == 65536.0 and bf16.loss_scale() is None
    loss = torch.tensor(2.0)
    assert fp16.scale(loss).item() == 2.0 * 65536 and bf16.scale(loss).item() == 2.0
    with fp16.autocast():
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float16
    with bf16.autocast():
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    assert fp16.describe()["loss_scaling"] is True and fp32.describe()["autocast"] is None
    with pytest.raises(ValueError, match="resolve 'auto'"):
        Amp("auto", "cpu")


def test_fused_adamw_on_cuda_only():
    assert adamw_kwargs("cuda") == {"fused": True}
    assert adamw_kwargs(torch.device("cuda", 1)) == {"fused": True}
    assert adamw_kwargs("cpu") == {"foreach": True}


def test_multi_tensor_adamw_on_the_cpu_gives_the_same_weights_to_the_bit():
    """The CPU's foreach AdamW is a speed switch only: five steps of the miniature with the
    per-parameter loop and with it end on identical weights (the cached runs stay valid)."""
    from dgtrs_lib.training.losses import contrastive_loss
    from dgtrs_lib.training.precision import adamw

    torch.manual_seed(1)
    images, tokens = torch.randn(8, 3, 64, 64), torch.randint(1, 400, (8, 12))
    weights = []
    for foreach in (False, True):
        model = _tiny()
        opt = (adamw(model.parameters(), "cpu", lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1)
               if foreach else torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-6,
                                                 weight_decay=0.1, foreach=False))
        assert opt.defaults["foreach"] is foreach
        for _ in range(5):
            opt.zero_grad()
            img = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
            txt = torch.nn.functional.normalize(model.encode_text(tokens), dim=-1)
            contrastive_loss(img, txt, model.logit_scale).backward()
            opt.step()
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def _tiny():
    torch.manual_seed(0)
    return stretch_model(create_model("tiny"), keep=8, ratio=4)


def _cfg(**kw):
    from test_train import cfg

    return cfg(**kw)


def test_fp16_with_loss_scaling_trains_and_resumes_on_cpu(tmp_path):
    """The T4/V100 path (fp16 autocast + GradScaler) runs for real, here on CPU autocast."""
    from test_train import toy_data

    data = toy_data(16)
    res = train(_tiny(), data, _cfg(steps=3, batch_size=8, precision="fp16", ckpt_every=2), tmp_path, device="cpu")
    recs = read_metrics(res.metrics)
    assert all(r["precision"] == "fp16" and r["loss_scale"] > 0 for r in recs)
    assert all(r["loss"] == r["loss"] for r in recs)  # finite (no NaN)
    assert res.setup["precision"] == "fp16" and res.setup["amp"]["loss_scaling"] is True
    state = load_train_state(tmp_path / "train_state.pt")
    assert state["scaler"]["scale"] > 0  # the loss scale is part of the resume state
    meta = json.loads(res.final.with_suffix(".json").read_text())
    assert meta["precision"] == "fp16" and meta["train_setup"]["amp"]["autocast"] == "float16"


def test_cpu_auto_is_fp32_and_logged(tmp_path):
    from test_train import toy_data

    res = train(_tiny(), toy_data(16), _cfg(steps=1, batch_size=8), tmp_path, device="cpu")
    assert read_metrics(res.metrics)[0]["precision"] == "fp32"
    assert res.setup["optimizer"] == "AdamW" and res.setup["grad_cache"] is False


def test_torch_compile_switch(tmp_path):
    """``compile`` wraps the dual encoder (the ``eager`` backend here: no C++ compiler needed)."""
    from test_train import toy_data

    res = train(_tiny(), toy_data(16), _cfg(steps=2, batch_size=8, compile="eager"), tmp_path, device="cpu")
    assert res.setup["compile"] == "eager"
    assert len(read_metrics(res.metrics)) == 2
    with pytest.raises(ValueError, match="TrainConfig.compile"):
        TrainConfig(compile=3.0).check()


# ----------------------------------------------------------------------------- the per-GPU plan
@pytest.mark.parametrize("gpu, precision", [("T4", "fp16"), ("L4", "bf16"), ("A100-SXM4-40GB", "bf16"),
                                            ("A100-SXM4-80GB", "bf16"), ("H100", "bf16")])
def test_plan_for_colab_gpus(gpu, precision):
    plan = plan_training("gpu", DeviceInfo.known(gpu))
    assert plan.precision == precision
    assert plan.contrastive_batch == 2048 and plan.per_process_batch == 2048
    assert plan.sub_batch % 8 == 0 and 8 <= plan.sub_batch < 2048 and plan.grad_cache
    assert plan.predicted_gib < DeviceInfo.known(gpu).memory_gib * 0.86
    assert plan.overrides() == {"precision": precision, "batch_size": plan.sub_batch, "contrastive_batch": 2048}
    assert precision in plan.summary() and "gradient caching" in plan.summary()
    json.dumps(plan.as_dict())  # plain data for the results file


def test_plan_grows_with_memory_and_splits_over_processes():
    subs = [plan_training("gpu", DeviceInfo.known(g)).sub_batch for g in ("T4", "L4", "A100-SXM4-40GB", "H100")]
    assert subs == sorted(subs) and subs[0] < subs[-1]
    t4 = plan_training("gpu", DeviceInfo.known("T4"))
    assert 24 <= t4.sub_batch <= 64  # ViT-B/16 at 248 tokens on 15 GB: tens of pairs, not 128
    eight = plan_training("gpu", DeviceInfo.known("H100"), world=8)
    assert eight.per_process_batch == 256 and eight.contrastive_batch == 2048
    assert eight.sub_batch == min(256, plan_training("gpu", DeviceInfo.known("H100")).sub_batch)
    cpu = plan_training("gpu", DeviceInfo(type="cpu"))
    assert cpu.precision == "fp32" and not cpu.grad_cache and cpu.predicted_gib is None
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        plan_training("gpu", DeviceInfo.known("T4"), world=3)
    with pytest.raises(ValueError, match="not even 8 pairs"):
        plan_training("gpu", DeviceInfo(type="cuda", name="tiny GPU", capability=(7, 5), memory_gib=4.0))
    with pytest.raises(ValueError, match="unknown or ambiguous GPU"):
        DeviceInfo.known("A100")  # two A100s are known: ambiguous


def test_current_device_info_reads_torch(monkeypatch):
    class Props:
        name, major, minor, total_memory = "Tesla T4", 7, 5, 15_835_660_288

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: Props)
    info = DeviceInfo.current("cuda")
    assert info.capability == (7, 5) and info.name == "Tesla T4" and 14.5 < info.memory_gib < 15
    assert plan_training("gpu", info).precision == "fp16"
    cpu = DeviceInfo.current("cpu")
    assert cpu.type == "cpu" and cpu.capability is None and cpu.memory_gib > 0  # RAM
    ram_plan = plan_training("gpu", DeviceInfo(type="cpu", memory_gib=23.0))  # the gpu run on a 23 GiB CPU machine
    assert ram_plan.precision == "fp32" and 8 <= ram_plan.sub_batch < 2048 and ram_plan.grad_cache
    assert set(KNOWN_GPUS) >= {"Tesla T4", "NVIDIA L4", "NVIDIA H100 80GB HBM3"}


def test_memory_model_matches_the_saved_activations_of_this_code():
    """The bytes-per-pair constant against what autograd really saves for the tiny model (bf16 autocast)."""
    from dgtrs_lib.model.longclip import create_long_model
    from dgtrs_lib.training.trainer import DualEncoder

    def saved(batch):
        model = create_long_model("tiny").train()
        x = torch.randn(batch, 3, 64, 64)
        tok = torch.randint(1, 49000, (batch, 104))
        short = torch.randint(1, 49000, (batch, 32))
        tok[:, -1] = short[:, -1] = 49407
        seen, total = set(), [0]

        def pack(t):
            if t.untyped_storage().data_ptr() not in seen:
                seen.add(t.untyped_storage().data_ptr())
                total[0] += t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
            DualEncoder(model)(x, tok, short)
        return total[0]

    measured = (saved(4) - saved(2)) / 2
    predicted = bytes_per_pair(ModelShape.of("tiny"), "bf16", long_tokens=104, short_tokens=32)
    assert predicted == pytest.approx(measured, rel=0.15)
    assert largest_sub_batch(ModelShape.of("ViT-B-16"), "bf16", 4.0) == 0
