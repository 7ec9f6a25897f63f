"""Benchmark of the dataset builder (issue #17): filter throughput on the CPU, VLM captions per second.

1. **Filters** on real inputs: ``--n`` Sentinel-2 tiles (``dgtrs_lib.data.build.inputs``) captioned
   by the metadata captioner, then each stage of ``build_dataset`` timed on its own, in one run and
   on the same rows: the metadata captioner, refusal patterns, CLIP-BPE token counts, the fact check
   (both granularities), the duplicate index (exact + near), pHash hashing of the images and the
   leak search against the embedded evaluation sets (900 Sentinel-2 patches + the SynDG-RS test
   split of ``--syndg`` images). Reported: rows per second per stage and each stage's share of the
   summed time (the ratios, so the slowest filter is named on any machine), and the whole
   ``build_dataset`` (shards written) in rows per second.
2. **VLM captions per second** (``--vlm``): ``tiny`` (a random two-layer LLaVA, the code path, no
   download), a local transformers folder, or a Hub id (downloads: ``DGTRS_ONLINE=1``), on
   ``--device`` in the precision ``VLMCaptioner`` picks (bf16 from compute capability 8.0), batched
   by ``--batch-size``: images per second with both prompts (long + short), after one warm-up batch.

Results go to ``results/<cpu|gpu>/bench_build.json`` (+ CSV; ``--out``), with the 1-minute load
average (this project's machines are shared).

    python scripts/bench_build.py                            # filters on 400 tiles (about 30 s on 2 cores)
    python scripts/bench_build.py --vlm tiny --vlm-n 32      # + the tiny VLM's code path
    python scripts/bench_build.py --device cuda --vlm /models/Qwen2-VL-2B-Instruct --batch-size 32
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dgtrs_lib.env import results_dir  # noqa: E402
from dgtrs_lib.results import results_doc, write_results  # noqa: E402


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_filters(n: int, syndg: int) -> tuple[list[dict], dict]:
    from dgtrs_lib.data.build import MetadataCaptioner, build_dataset
    from dgtrs_lib.data.build.facts import check_caption
    from dgtrs_lib.data.build.filters import DuplicateIndex, refusal, token_counts
    from dgtrs_lib.data.build.inputs import sentinel_tiles
    from dgtrs_lib.data.build.leakage import HashIndex, eval_index, find_matches

    tiles = sentinel_tiles().limit(n)
    items = tiles.items
    images = [it.image for it in items]
    index, t_index = _timed(lambda: eval_index(["sentinel", f"syndg:{syndg}"]))
    token_counts(["warm up"], ["warm up"])  # the BPE tables load once
    caps, t = _timed(lambda: MetadataCaptioner().caption(items))
    times = {"metadata captioner": t}
    shorts, longs = [c.short for c in caps], [c.long for c in caps]
    _, times["refusal patterns"] = _timed(lambda: [refusal(s) or refusal(lo) for s, lo in zip(shorts, longs)])
    _, times["token counts"] = _timed(lambda: token_counts(shorts, longs))
    _, times["fact check"] = _timed(lambda: [(check_caption(s, it.meta), check_caption(lo, it.meta))
                                             for s, lo, it in zip(shorts, longs, items)])
    _, times["duplicates"] = _timed(lambda: DuplicateIndex().check(longs, [it.image_id for it in items]))
    query, times["pHash"] = _timed(lambda: HashIndex().add(images, [it.image_id for it in items]))
    _, times["leak search"] = _timed(lambda: find_matches(query, index))
    total = sum(times.values())
    rows = []
    for stage, s in times.items():
        rows.append({"task": "build-filters", "dataset": "Sentinel-2 tiles", "metric": f"rows_per_s:{stage}",
                     "value": n / s if s else None, "n": n})
        rows.append({"task": "build-filters", "dataset": "Sentinel-2 tiles", "metric": f"share:{stage}",
                     "value": s / total, "n": n})
        print(f"{stage:<20} {n / s if s else float('inf'):>10.0f} rows/s  {100 * s / total:5.1f} % of the stages")
    with tempfile.TemporaryDirectory() as folder:
        _, t_build = _timed(lambda: build_dataset(tiles, MetadataCaptioner(), Path(folder) / "b", shard_size=64,
                                                  leak_index=index, progress=False))
    print(f"{'build_dataset':<20} {n / t_build:>10.0f} rows/s  (captions, filters, shards written)")
    rows.append({"task": "build", "dataset": "Sentinel-2 tiles", "metric": "rows_per_s", "value": n / t_build,
                 "n": n})
    return rows, {"eval_index_s": round(t_index, 3), "eval_images": len(index)}


def bench_vlm(source: str, n: int, batch_size: int, device: str) -> list[dict]:
    import torch

    from dgtrs_lib.data.build.captioners import VLMCaptioner, _dtype_for, tiny_random_vlm
    from dgtrs_lib.data.build.inputs import sentinel_tiles

    if source == "tiny":
        model, processor = tiny_random_vlm()
        model = model.to(device, dtype=_dtype_for(device))  # bf16 from compute capability 8.0, as from_pretrained
        vlm = VLMCaptioner(model, processor, model_id="tiny-random-llava", batch_size=batch_size, min_side=32,
                           max_new_tokens_long=64, max_new_tokens_short=16)
    else:
        vlm = VLMCaptioner.from_pretrained(source, device=device, batch_size=batch_size)
    items = sentinel_tiles().limit(n + batch_size).items
    vlm.caption(items[:batch_size])  # warm-up: kernels, caches
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    caps, t = _timed(lambda: vlm.caption(items[batch_size:]))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    words = sum(len(c.long.split()) + len(c.short.split()) for c in caps)
    print(f"VLM {vlm.model_id} on {device}: {len(caps) / t:.2f} images/s (long + short), {words / t:.0f} words/s, "
          f"batch {batch_size}, {vlm.settings()['dtype']}")
    cfg = {"model": vlm.model_id, "device": device, **vlm.settings()}
    return [{"task": "build-vlm", "dataset": "Sentinel-2 tiles", "metric": "images_per_s", "value": len(caps) / t,
             "n": len(caps), "config": cfg},
            {"task": "build-vlm", "dataset": "Sentinel-2 tiles", "metric": "words_per_s", "value": words / t,
             "n": len(caps), "config": cfg}]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400, help="Sentinel-2 tiles through the filters")
    parser.add_argument("--syndg", type=int, default=128, help="SynDG-RS test images in the leak index")
    parser.add_argument("--skip-filters", action="store_true")
    parser.add_argument("--vlm", default=None, help="tiny, a local transformers folder or a Hub id (online)")
    parser.add_argument("--vlm-n", type=int, default=32, help="images the VLM captions (after a warm-up batch)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", default=None, help="results JSON (default results/<cpu|gpu>/bench_build.json)")
    args = parser.parse_args(argv)
    notes = {"load_avg_1min_before": os.getloadavg()[0], "note": args.note}
    rows = []
    if not args.skip_filters:
        r, extra = bench_filters(args.n, args.syndg)
        rows += r
        notes.update(extra)
    if args.vlm:
        rows += bench_vlm(args.vlm, args.vlm_n, args.batch_size, args.device)
    profile = "gpu" if args.device.startswith("cuda") else "cpu"
    doc = results_doc("bench_build", profile, rows, protocol={"tiles": args.n, "syndg_eval": args.syndg,
                                                              "vlm": args.vlm, **notes}, device=args.device)
    out = Path(args.out) if args.out else results_dir(profile) / "bench_build.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"wrote": str(write_results(doc, out, overwrite=True))}))


if __name__ == "__main__":
    main()
