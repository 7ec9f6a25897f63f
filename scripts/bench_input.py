"""Input-pipeline benchmark: can the loader feed the training step? (issue #15)

1. **loader alone** -- images/s (and images per CPU-second, all processes) of ``dgtrs_lib.data.loader`` (a map-style ``HubPairs``: DataLoader
   workers decode each JPEG, apply the model's CLIP preprocess and tokenise both captions) on
   real-size JPEG files generated into a temporary folder (``--n`` images of ``--px`` pixels,
   textured like aerial imagery: smooth fields, edges and fine grain, quality 90), transformed to
   ``--size`` (224: ViT-B/16), at ``--workers`` 0, 2, 4. Steady state: timed from the first batch
   (worker start-up excluded and reported separately).
2. **step alone** -- pairs/s of one training step (dual-granularity loss, AdamW) with the images
   already in memory: the ``tiny`` model on the CPU (fp32), ViT-B/16 at 248 tokens on CUDA in the
   precision ``select_precision`` picks.
3. **ratio** -- loader images/s / step pairs/s per worker count: above 1 the loader is not the
   bottleneck. On a CPU machine both compete for the same cores, so ``--e2e`` also runs the real
   trainer fed by the loader (``tiny`` at its 64 px) with 0 and 2 workers against the same run on
   in-memory tensors.

Writes a results JSON (+ CSV) in the book's layout (``dgtrs_lib.results``)::

    .venv/bin/python scripts/bench_input.py --note "shared 2-core machine"
    .venv/bin/python scripts/bench_input.py --device cuda --workers 0 4 8 --out $OUT/bench_input.json
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dgtrs_lib.data.loader import HubPairs, LoaderSettings, PairDecoder, iterate_batches  # noqa: E402
from dgtrs_lib.env import results_dir  # noqa: E402
from dgtrs_lib.model.longclip import create_long_model  # noqa: E402
from dgtrs_lib.results import results_doc, write_results  # noqa: E402
from dgtrs_lib.training.losses import DualGranularityLoss  # noqa: E402
from dgtrs_lib.training.precision import Amp, adamw, select_precision  # noqa: E402
from dgtrs_lib.training.trainer import DualEncoder  # noqa: E402

LONG = ("An aerial image of a rural area: {k} rectangular fields in green and brown run from the top left to the "
        "bottom right, a river with sandy banks bends through the centre, two small villages of red-roofed houses "
        "sit on its north side, a paved road with a bridge crosses the water near the bottom edge, and patches of "
        "dark forest border the fields on the right, with a few farm buildings and tracks between them.")
SHORT = "fields, a river and villages seen from above ({k})."


def make_jpegs(folder: Path, n: int, px: int, seed: int = 0) -> list[str]:
    """``n`` textured RGB JPEGs of ``px`` x ``px`` (quality 90) in ``folder``; returns their paths."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    yy, xx = np.mgrid[0:px, 0:px] / px
    for i in range(n):
        low = rng.random((8, 8, 3)).astype(np.float32)
        fields = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((px, px), Image.NEAREST), np.float32)
        smooth = np.asarray(Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).resize(
            (px, px), Image.BICUBIC), np.float32)
        river = (np.abs(yy - 0.5 - 0.15 * np.sin(6 * xx + i)) < 0.03)[..., None] * np.array([-60, -20, 40])
        grain = rng.normal(0, 12, (px, px, 3))
        img = np.clip(0.55 * fields + 0.35 * smooth + river + grain, 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(img).save(path, "JPEG", quality=90)
        paths.append(str(path))
    return paths


def dual_dataset(paths: list[str]):
    import datasets

    features = datasets.Features({"image": datasets.Image(decode=False), "long_caption": datasets.Value("string"),
                                  "short_caption": datasets.Value("string")})
    return datasets.Dataset.from_dict({"image": [{"path": p, "bytes": None} for p in paths],
                                       "long_caption": [LONG.format(k=i) for i in range(len(paths))],
                                       "short_caption": [SHORT.format(k=i) for i in range(len(paths))]},
                                      features=features)


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (loader workers, once shut down)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_loader(ds, size: int, context: int, batch: int, steps: int, workers: int, pin: bool) -> dict:
    """Wall-clock images/s after the first batch, and images per CPU-second over the whole run (all
    processes; much less sensitive than wall time to other jobs sharing the cores)."""
    pairs = HubPairs(ds, PairDecoder(image_size=size, context_length=context), "bench")
    c0, t0 = _cpu_seconds(), time.perf_counter()
    it = iterate_batches(pairs, batch_size=batch, seed=0, stop=steps + 1,
                         settings=LoaderSettings(num_workers=workers, pin_memory=pin))
    n = len(next(it).images)  # worker start-up + the first batch
    t1 = time.perf_counter()
    for b in it:
        n += len(b.images)
    t2 = time.perf_counter()
    it.close()
    del it
    gc.collect()  # shut the persistent workers down so their CPU time is counted
    time.sleep(0.5)
    return {"images_per_s": (n - batch) / (t2 - t1), "startup_s": t1 - t0, "images": n,
            "images_per_cpu_s": n / max(_cpu_seconds() - c0, 1e-9)}


def bench_step(model_name: str, device: torch.device, batch: int, long_len: int, short_len: int, steps: int,
               precision: str) -> dict:
    torch.manual_seed(0)
    model = create_long_model(model_name).to(device).train()
    net, loss_fn, amp = DualEncoder(model), DualGranularityLoss(), Amp(precision, device)
    opt = adamw([p for p in model.parameters() if p.requires_grad], device, lr=1e-6, betas=(0.9, 0.999), eps=1e-8,
                weight_decay=1e-2)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, model.image_size, model.image_size, generator=g).to(device)
    long_tok = torch.randint(1, 49000, (batch, min(long_len, model.context_length)), generator=g)
    short_tok = torch.randint(1, 49000, (batch, short_len), generator=g)
    long_tok[:, -1] = short_tok[:, -1] = 49407
    long_tok, short_tok = long_tok.to(device), short_tok.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        with amp.autocast():
            img, lng, sht, scale = net(images, long_tok, short_tok)
        l_long, l_short = loss_fn(img.float(), lng.float(), sht.float(), scale.float())
        amp.scale(l_long + l_short).backward()
        amp.step(opt)
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    med = sorted(times)[len(times) // 2]
    return {"pairs_per_s": batch / med, "step_s": med}


def bench_e2e(ds_small, steps: int, batch: int, workers: int | None) -> float:
    """Pairs/s of the real trainer (tiny, CPU) fed by the loader (``workers``) or by in-memory tensors (None)."""
    from dgtrs_lib.data.pairs import PairData
    from dgtrs_lib.training.config import TrainConfig
    from dgtrs_lib.training.metrics_log import read_metrics
    from dgtrs_lib.training.trainer import train

    torch.manual_seed(0)
    model = create_long_model("tiny")
    pairs = HubPairs(ds_small, PairDecoder(image_size=64, context_length=104), "bench")
    if workers is None:
        images, long_tok, short_tok = pairs.batch(torch.arange(len(pairs)))
        data = PairData(images, long_tok, short_tok)
    else:
        data = pairs
    cfg = TrainConfig(steps=steps, batch_size=batch, lr=1e-4, warmup_steps=1, schedule="fixed", progress=False,
                      num_workers=workers or 0)
    with tempfile.TemporaryDirectory() as out:
        recs = read_metrics(train(model, data, cfg, out, device="cpu").metrics)
    times = sorted(r["time_s"] for r in recs[1:])  # the first step waits for the worker start-up
    return batch / times[len(times) // 2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=256, help="JPEG files to generate")
    parser.add_argument("--px", type=int, default=512, help="their side in pixels")
    parser.add_argument("--size", type=int, default=224, help="the transform's output side (ViT-B/16: 224)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--batch", type=int, default=32, help="pairs per loader step")
    parser.add_argument("--loader-steps", type=int, default=None, help="timed loader steps (default: 1.5 epochs)")
    parser.add_argument("--model", default=None, help="step model: tiny (CPU default) or ViT-B-16 (CUDA default)")
    parser.add_argument("--step-batch", type=int, default=None, help="training-step batch (CPU 64, CUDA 128)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (CPU 5, CUDA 10)")
    parser.add_argument("--e2e", action=argparse.BooleanOptionalAction, default=None,
                        help="also time the trainer fed by the loader (default: on for CPU)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--note", default="", help="e.g. 'shared 2-core machine, other jobs running'")
    parser.add_argument("--out", default=None, help="results JSON (default results/<cpu|gpu>/bench_input.json)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model or ("ViT-B-16" if cuda else "tiny")
    step_batch = args.step_batch or (128 if cuda else 64)
    steps = args.steps or (10 if cuda else 5)
    precision = select_precision("auto", device)
    e2e = (not cuda) if args.e2e is None else args.e2e
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    hw = (f"{torch.cuda.get_device_name(device)}, {cpus} CPU cores" if cuda
          else f"CPU x{cpus}, {torch.get_num_threads()} torch threads")
    loader_steps = args.loader_steps or max(4, (3 * args.n) // (2 * args.batch))
    rows, cfg = [], {"px": args.px, "size": args.size, "batch": args.batch}
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        paths = make_jpegs(Path(folder), args.n, args.px)
        mean_kb = sum(os.path.getsize(p) for p in paths) / len(paths) / 1024
        print(f"{args.n} JPEGs of {args.px} px ({mean_kb:.0f} KB each) in {time.perf_counter() - t0:.1f} s; "
              f"device={hw}", flush=True)
        ds = dual_dataset(paths)
        loader = {}
        for w in args.workers:
            r = bench_loader(ds, args.size, 248, args.batch, loader_steps, w, pin=cuda)
            loader[w] = r["images_per_s"]
            print(json.dumps({"loader_workers": w, **{k: round(v, 2) for k, v in r.items()}}), flush=True)
            rows.append({"task": "loader", "dataset": f"jpeg-{args.px}px", "metric": "images_per_s",
                         "value": r["images_per_s"], "config": {**cfg, "workers": w}})
            rows.append({"task": "loader", "dataset": f"jpeg-{args.px}px", "metric": "startup_s",
                         "value": r["startup_s"], "config": {**cfg, "workers": w}})
            rows.append({"task": "loader", "dataset": f"jpeg-{args.px}px", "metric": "images_per_cpu_s",
                         "value": r["images_per_cpu_s"], "config": {**cfg, "workers": w}})
        long_len = 248 if model != "tiny" else 104
        s = bench_step(model, device, step_batch, long_len, 20, steps, precision)
        print(json.dumps({"step_model": model, "precision": precision, **{k: round(v, 4) for k, v in s.items()}}),
              flush=True)
        step_cfg = {"model": model, "batch": step_batch, "long_len": long_len, "short_len": 20, "precision": precision}
        rows.append({"task": "train-step", "dataset": "in-memory tensors", "metric": "pairs_per_s",
                     "value": s["pairs_per_s"], "config": step_cfg})
        for w, ips in loader.items():
            ratio = ips / s["pairs_per_s"]
            print(f"workers={w}: loader {ips:.1f} images/s / step {s['pairs_per_s']:.1f} pairs/s = {ratio:.2f} "
                  f"({'keeps up' if ratio >= 1 else 'the loader is the bottleneck'})", flush=True)
            rows.append({"task": "loader-vs-step", "dataset": f"jpeg-{args.px}px", "metric": "ratio", "value": ratio,
                         "config": {**cfg, "workers": w, "step_model": model}})
        if e2e:
            small = ds.select(range(min(len(ds), 8 * args.batch)))
            for w in (None, 0, 2):
                pps = bench_e2e(small, 6, args.batch, w)
                name = "in-memory tensors" if w is None else f"loader, {w} workers"
                print(json.dumps({"trainer_fed_by": name, "pairs_per_s": round(pps, 2)}), flush=True)
                rows.append({"task": "train-e2e", "dataset": f"jpeg-{args.px}px -> 64 px", "metric": "pairs_per_s",
                             "value": pps, "config": {"model": "tiny", "batch": args.batch, "fed_by": name}})
    profile = "gpu" if cuda else "cpu"
    doc = results_doc("bench_input", profile, rows, model={"name": model, "precision": precision},
                      protocol={"images": args.n, "px": args.px, "mean_jpeg_kb": round(mean_kb, 1),
                                "transform": f"CLIP eval preprocess to {args.size} (make_preprocess)",
                                "captions": "one ~100-token long, one ~15-token short per image, tokenised in workers",
                                "loader": "HubPairs + DataLoader (pinned on CUDA, persistent workers, prefetch 4)",
                                "loader_steps": loader_steps, "step_steps": steps,
                                "statistic": "loader: images after the first batch / time; step: median",
                                "note": args.note, "hardware": hw}, device=str(device))
    out = Path(args.out) if args.out else results_dir(profile) / "bench_input.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"wrote {write_results(doc, out)}")


if __name__ == "__main__":
    main()
