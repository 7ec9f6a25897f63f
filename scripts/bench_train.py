"""Training throughput benchmark: pairs/s, peak memory and model FLOPs utilisation of one
optimizer step (forward, backward, AdamW) for the three kinds of step DGCL mixes:

* ``long``  -- image + long text (w_short = 0),
* ``short`` -- image + short text (w_long = 0),
* ``dgcl``  -- image + both texts (one image pass, two text passes).

CPU (default): the ``tiny`` LongCLIP (64 px, 104-token context) in fp32.
GPU (``--device cuda``): ViT-B/16 LongCLIP at 248 tokens in bf16 autocast (random weights: speed
does not depend on them), and model FLOPs utilisation = counted FLOPs per step
(``torch.utils.flop_counter``) / step time / the device's dense bf16 peak.

Text lengths are fixed per run (``--long-len``/``--short-len``; dynamic padding makes a real
batch as long as its longest caption). Writes a results JSON (+ CSV) in the book's layout:

    .venv/bin/python scripts/bench_train.py                      # tiny, CPU
    .venv/bin/python scripts/bench_train.py --device cuda --out $OUT/bench_train.json

Numbers measured on a shared machine must be labelled as such (``--note``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dgtrs_lib.env import results_dir  # noqa: E402
from dgtrs_lib.errors import run_cli  # noqa: E402
from dgtrs_lib.model.longclip import create_long_model  # noqa: E402
from dgtrs_lib.results import results_doc, write_results  # noqa: E402
from dgtrs_lib.training.losses import DualGranularityLoss  # noqa: E402
from dgtrs_lib.training.trainer import DualEncoder  # noqa: E402

# dense bf16 peak FLOP/s (vendor datasheets, no sparsity)
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "T4": 65e12, "V100": 125e12}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def make_batch(batch: int, image_size: int, long_len: int, short_len: int, device):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, image_size, image_size, generator=g)
    long_tok = torch.randint(1, 49000, (batch, long_len), generator=g)
    short_tok = torch.randint(1, 49000, (batch, short_len), generator=g)
    long_tok[:, -1] = short_tok[:, -1] = 49407
    return images.to(device), long_tok.to(device), short_tok.to(device)


def one_step(net, loss_fn, opt, batch, mode, autocast):
    images, long_tok, short_tok = batch
    with autocast:
        img, lng, sht, scale = net(images, long_tok if mode != "short" else None, short_tok if mode != "long" else None)
    l_long, l_short = loss_fn(img.float(), None if lng is None else lng.float(), None if sht is None else sht.float(), scale.float())
    loss = sum(x for x in (l_long, l_short) if x is not None)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def count_flops(net, loss_fn, opt, batch, mode, autocast) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        one_step(net, loss_fn, opt, batch, mode, autocast)
    return float(counter.get_total_flops())


def bench(model_name: str, device: torch.device, batch: int, long_len: int, short_len: int, steps: int, warmup: int,
          bf16: bool) -> list[dict]:
    torch.manual_seed(0)
    model = create_long_model(model_name).to(device).train()
    net, loss_fn = DualEncoder(model), DualGranularityLoss()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6, weight_decay=1e-2)
    data = make_batch(batch, model.image_size, min(long_len, model.context_length), short_len, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    peak = peak_flops(device)
    rows = []
    for mode in ("long", "short", "dgcl"):
        flops = count_flops(net, loss_fn, opt, data, mode, autocast)
        for _ in range(warmup):
            one_step(net, loss_fn, opt, data, mode, autocast)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            one_step(net, loss_fn, opt, data, mode, autocast)
            sync()
            times.append(time.perf_counter() - t0)
        med = sorted(times)[len(times) // 2]
        mem = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        row = {"mode": mode, "pairs_per_s": batch / med, "step_s": med, "peak_mem_mib": mem,
               "tflop_per_step": flops / 1e12, "achieved_tflops": flops / med / 1e12,
               "mfu": (flops / med / peak) if peak else None}
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="tiny (CPU default) or ViT-B-16 (CUDA default)")
    parser.add_argument("--batch", type=int, default=None, help="pairs per step (64 on CPU, 128 on CUDA)")
    parser.add_argument("--long-len", type=int, default=None, help="long-caption tokens (104 tiny / 248 ViT-B-16)")
    parser.add_argument("--short-len", type=int, default=20)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--note", default="", help="e.g. 'shared 2-core machine, other jobs running'")
    parser.add_argument("--out", default=None, help="results JSON path (default results/bench/bench_train.json)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model or ("ViT-B-16" if cuda else "tiny")
    batch = args.batch or (128 if cuda else 64)
    long_len = args.long_len or (248 if model != "tiny" else 104)
    steps = args.steps or (20 if cuda else 5)
    bf16 = cuda and torch.cuda.is_bf16_supported()
    hw = torch.cuda.get_device_name(device) if cuda else f"CPU x{os.cpu_count()}, {torch.get_num_threads()} torch threads"
    print(f"model={model} device={hw} batch={batch} long={long_len} short={args.short_len} "
          f"precision={'bf16' if bf16 else 'fp32'}", flush=True)
    rows = bench(model, device, batch, long_len, args.short_len, steps, args.warmup, bf16)

    results = []
    for r in rows:
        for metric in ("pairs_per_s", "peak_mem_mib", "mfu", "achieved_tflops"):
            if r[metric] is not None:
                results.append({"task": f"train-step-{r['mode']}", "dataset": "synthetic tokens", "metric": metric,
                                "value": float(r[metric]), "config": {"batch": batch, "long_len": long_len,
                                                                      "short_len": args.short_len}})
    out = Path(args.out) if args.out else None
    profile = "gpu" if cuda else "cpu"
    doc = results_doc("bench_train", profile, results, device="cuda" if cuda else "cpu",
                      model={"name": model, "precision": "bf16" if bf16 else "fp32"},
                      protocol={"steps": steps, "warmup": args.warmup, "statistic": "median step time",
                                "memory": "torch.cuda.max_memory_allocated" if cuda else "process peak RSS (ru_maxrss)",
                                "note": args.note, "hardware": hw})
    path = write_results(doc, results_dir(profile) / "bench_train.json")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(path.read_text())
        out.with_suffix(".csv").write_text(path.with_suffix(".csv").read_text())
        path = out
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(run_cli(main))   # library errors: one line and an exit code (dgtrs_lib.errors)
