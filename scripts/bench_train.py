"""Training throughput benchmark: pairs/s, peak memory and model FLOPs utilisation of one
optimizer step (forward, backward, AdamW) for the three kinds of step DGCL mixes:

* ``long``  -- image + long text (w_short = 0),
* ``short`` -- image + short text (w_long = 0),
* ``dgcl``  -- image + both texts (one image pass, two text passes).

CPU (default): the ``tiny`` LongCLIP (64 px, 104-token context) in fp32.
GPU (``--device cuda``): ViT-B/16 LongCLIP at 248 tokens in the precision
``dgtrs_lib.training.precision.select_precision`` picks (bf16 from compute capability 8.0, fp16 +
loss scaling below; random weights: speed does not depend on them), and model FLOPs utilisation
= counted FLOPs per step (``torch.utils.flop_counter``) / step time / the device's dense 16-bit peak.

Two more measurements (issue #15):

* ``--gradcache``: the cost of gradient caching (``dgtrs_lib.training.gradcache``) against the
  plain step at EQUAL contrastive batch (``--contrastive``, default 256): step time and peak
  memory with the whole batch in one pass and with sub-batches of 1/4 and 1/16 of it. Memory:
  ``torch.cuda.max_memory_allocated`` on CUDA; on the CPU the peak resident set of a fresh
  process per configuration (``ru_maxrss``; the same model and optimizer in each, so the
  differences are the activations).
* ``--max-sub-batch`` (CUDA): the largest batch whose plain dual-granularity step at 248 tokens
  runs without running out of memory (doubling, then bisection in multiples of 8), beside the
  prediction of the memory model in ``dgtrs_lib.training.plan``.

Text lengths are fixed per run (``--long-len``/``--short-len``; dynamic padding makes a real
batch as long as its longest caption). Writes a results JSON (+ CSV) in the book's layout:

    .venv/bin/python scripts/bench_train.py                      # tiny, CPU
    .venv/bin/python scripts/bench_train.py --device cuda --out $OUT/bench_train.json
    .venv/bin/python scripts/bench_train.py --gradcache          # tiny, CPU, contrastive batch 256
    .venv/bin/python scripts/bench_train.py --device cuda --gradcache --max-sub-batch --out $OUT/bench_gc.json

Numbers measured on a shared machine must be labelled as such (``--note``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dgtrs_lib.env import results_dir  # noqa: E402
from dgtrs_lib.errors import run_cli  # noqa: E402
from dgtrs_lib.model.longclip import create_long_model  # noqa: E402
from dgtrs_lib.results import results_doc, write_results  # noqa: E402
from dgtrs_lib.training.gradcache import contrastive_backward  # noqa: E402
from dgtrs_lib.training.losses import DualGranularityLoss  # noqa: E402
from dgtrs_lib.training.plan import DeviceInfo, ModelShape, largest_sub_batch, step_memory_gib  # noqa: E402
from dgtrs_lib.training.precision import Amp, adamw, select_precision  # noqa: E402
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


def one_step(net, loss_fn, opt, batch, mode, amp: Amp):
    images, long_tok, short_tok = batch
    with amp.autocast():
        img, lng, sht, scale = net(images, long_tok if mode != "short" else None, short_tok if mode != "long" else None)
    l_long, l_short = loss_fn(img.float(), None if lng is None else lng.float(), None if sht is None else sht.float(), scale.float())
    loss = sum(x for x in (l_long, l_short) if x is not None)
    amp.scale(loss).backward()
    amp.step(opt)
    opt.zero_grad(set_to_none=True)


def count_flops(net, loss_fn, opt, batch, mode, amp) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        one_step(net, loss_fn, opt, batch, mode, amp)
    return float(counter.get_total_flops())


def _setup(model_name: str, device: torch.device, precision: str):
    torch.manual_seed(0)
    model = create_long_model(model_name).to(device).train()
    opt = adamw([p for p in model.parameters() if p.requires_grad], device, lr=1e-6, betas=(0.9, 0.999), eps=1e-8,
                weight_decay=1e-2)
    return model, DualEncoder(model), DualGranularityLoss(), opt, Amp(precision, device)


def bench(model_name: str, device: torch.device, batch: int, long_len: int, short_len: int, steps: int, warmup: int,
          precision: str) -> list[dict]:
    model, net, loss_fn, opt, amp = _setup(model_name, device, precision)
    data = make_batch(batch, model.image_size, min(long_len, model.context_length), short_len, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    peak = peak_flops(device)
    rows = []
    for mode in ("long", "short", "dgcl"):
        flops = count_flops(net, loss_fn, opt, data, mode, amp)
        for _ in range(warmup):
            one_step(net, loss_fn, opt, data, mode, amp)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            one_step(net, loss_fn, opt, data, mode, amp)
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


def _peak_memory_mib(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gradcache_run(model_name: str, device: torch.device, contrastive: int, sub: int, long_len: int, short_len: int,
                  steps: int, precision: str) -> dict:
    """Median step time and peak memory of ``contrastive`` pairs per step, encoded ``sub`` at a time."""
    model, net, loss_fn, opt, amp = _setup(model_name, device, precision)
    images, long_tok, short_tok = make_batch(contrastive, model.image_size, min(long_len, model.context_length),
                                             short_len, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        contrastive_backward(net, images, long_tok, short_tok, loss_fn, 1.0, 1.0, amp, sub_batch=sub, device=device)
        amp.step(opt)
        opt.zero_grad(set_to_none=True)

    step()  # warm-up (allocator, AdamW state)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    med = sorted(times)[len(times) // 2]
    return {"sub_batch": sub, "step_s": med, "pairs_per_s": contrastive / med, "peak_mem_mib": _peak_memory_mib(device)}


def gradcache_bench(model_name, device, contrastive, long_len, short_len, steps, precision):
    subs = [contrastive, contrastive // 4, contrastive // 16]
    runs = []
    for sub in subs:
        if device.type == "cuda":
            r = gradcache_run(model_name, device, contrastive, sub, long_len, short_len, steps, precision)
            torch.cuda.empty_cache()
        else:  # a fresh process per configuration: ru_maxrss is a lifetime peak
            cmd = [sys.executable, __file__, "--device", "cpu", "--model", model_name, "--contrastive", str(contrastive),
                   "--one-gradcache", str(sub), "--long-len", str(long_len), "--short-len", str(short_len),
                   "--steps", str(steps), "--precision", precision]
            if torch.get_num_threads():
                cmd += ["--threads", str(torch.get_num_threads())]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
        r["grad_cache"] = sub < contrastive
        print(json.dumps({"gradcache": r}), flush=True)
        runs.append(r)
    plain = runs[0]
    rows = []
    for r in runs:
        cfg = {"contrastive_batch": contrastive, "sub_batch": r["sub_batch"], "long_len": long_len,
               "short_len": short_len}
        rows += [{"task": "gradcache", "dataset": "synthetic tokens", "metric": m, "value": float(r[m]), "config": cfg}
                 for m in ("step_s", "pairs_per_s", "peak_mem_mib")]
        rows.append({"task": "gradcache", "dataset": "synthetic tokens", "metric": "time_vs_plain",
                     "value": r["step_s"] / plain["step_s"], "config": cfg})
        rows.append({"task": "gradcache", "dataset": "synthetic tokens", "metric": "memory_vs_plain",
                     "value": r["peak_mem_mib"] / plain["peak_mem_mib"], "config": cfg})
    return rows, {"contrastive_batch": contrastive, "sub_batches": subs,
                  "memory": "torch.cuda.max_memory_allocated" if device.type == "cuda"
                  else "peak RSS of a fresh process per configuration (model, AdamW state and imports included)"}


def max_sub_batch_bench(model_name, device, long_len, short_len, precision, limit: int = 2048):
    """The largest plain-step batch that fits (doubling, then bisection in multiples of 8)."""
    model, net, loss_fn, opt, amp = _setup(model_name, device, precision)
    peaks = {}

    def fits(b: int) -> bool:
        try:
            batch = make_batch(b, model.image_size, min(long_len, model.context_length), short_len, device)
            torch.cuda.reset_peak_memory_stats(device)
            one_step(net, loss_fn, opt, batch, "dgcl", amp)
            torch.cuda.synchronize(device)
            peaks[b] = torch.cuda.max_memory_allocated(device) / 2**30
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            opt.zero_grad(set_to_none=True)
            batch = None
            torch.cuda.empty_cache()

    lo = 8
    if not fits(lo):
        raise SystemExit(f"{model_name}: not even a batch of {lo} fits")
    hi = lo * 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 8:
        mid = (lo + hi) // 2 // 8 * 8
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    info = DeviceInfo.current(device)
    shape = ModelShape.of(model)
    predicted = largest_sub_batch(shape, precision, info.memory_gib, long_tokens=long_len, short_tokens=short_len)
    out = {"largest_sub_batch": lo, "peak_gib": round(peaks[lo], 2), "device_gib": round(info.memory_gib, 1),
           "predicted_sub_batch": predicted, "predicted_gib_at_largest": round(step_memory_gib(
               shape, precision, lo, long_tokens=long_len, short_tokens=short_len), 2), "limit": limit}
    print(json.dumps({"max_sub_batch": out}), flush=True)
    cfg = {"long_len": long_len, "short_len": short_len, "precision": precision, "search_limit": limit}
    rows = [{"task": "max-sub-batch", "dataset": "synthetic tokens", "metric": m, "value": float(out[k]), "config": cfg}
            for m, k in (("largest_sub_batch", "largest_sub_batch"), ("peak_gib", "peak_gib"),
                         ("predicted_sub_batch", "predicted_sub_batch"))]
    return rows, {**out, "note": "predicted = dgtrs_lib.training.plan memory model at 85 % of the device memory"}


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
    parser.add_argument("--precision", default="auto", help="auto (select_precision) | fp32 | bf16 | fp16")
    parser.add_argument("--gradcache", action="store_true", help="also: gradient caching vs the plain step")
    parser.add_argument("--contrastive", type=int, default=256, help="contrastive batch of --gradcache")
    parser.add_argument("--max-sub-batch", action="store_true", help="also (CUDA): the largest batch that fits")
    parser.add_argument("--only-extra", action="store_true", help="skip the per-mode throughput table")
    parser.add_argument("--one-gradcache", type=int, default=None, help=argparse.SUPPRESS)
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
    precision = select_precision(args.precision, device)
    hw = torch.cuda.get_device_name(device) if cuda else f"CPU x{os.cpu_count()}, {torch.get_num_threads()} torch threads"
    if args.one_gradcache is not None:  # a child process of --gradcache on the CPU: one configuration
        print(json.dumps(gradcache_run(model, device, args.contrastive, args.one_gradcache, long_len, args.short_len,
                                       steps, precision)), flush=True)
        return
    print(f"model={model} device={hw} batch={batch} long={long_len} short={args.short_len} "
          f"precision={precision}", flush=True)
    extra_rows, extra_protocol = [], {}
    if args.gradcache:
        gc_rows, extra_protocol["gradcache"] = gradcache_bench(model, device, args.contrastive, long_len, args.short_len,
                                                               steps, precision)
        extra_rows += gc_rows
    if args.max_sub_batch:
        if not cuda:
            raise SystemExit("--max-sub-batch needs --device cuda (on the CPU there is no device memory to fill)")
        ms_rows, extra_protocol["max_sub_batch"] = max_sub_batch_bench(model, device, long_len, args.short_len,
                                                                       precision)
        extra_rows += ms_rows
    rows = [] if args.only_extra else bench(model, device, batch, long_len, args.short_len, steps, args.warmup,
                                            precision)

    results = []
    for r in rows:
        for metric in ("pairs_per_s", "peak_mem_mib", "mfu", "achieved_tflops"):
            if r[metric] is not None:
                results.append({"task": f"train-step-{r['mode']}", "dataset": "synthetic tokens", "metric": metric,
                                "value": float(r[metric]), "config": {"batch": batch, "long_len": long_len,
                                                                      "short_len": args.short_len}})
    results += extra_rows
    out = Path(args.out) if args.out else None
    profile = "gpu" if cuda else "cpu"
    run = "bench_train" if not args.only_extra else ("bench_gradcache" if args.gradcache else "bench_max_sub_batch")
    doc = results_doc(run, profile, results, device="cuda" if cuda else "cpu",
                      model={"name": model, "precision": precision},
                      protocol={"steps": steps, "warmup": args.warmup, "statistic": "median step time",
                                "memory": "torch.cuda.max_memory_allocated" if cuda else "process peak RSS (ru_maxrss)",
                                "note": args.note, "hardware": hw, **extra_protocol})
    path = write_results(doc, results_dir(profile) / f"{run}.json")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(path.read_text())
        out.with_suffix(".csv").write_text(path.with_suffix(".csv").read_text())
        path = out
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(run_cli(main))   # library errors: one line and an exit code (dgtrs_lib.errors)
