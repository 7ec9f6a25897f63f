"""The command line of the dataset builder: ``python -m dgtrs_lib.data.build --input ... --out ...``.

Examples::

    # offline, CPU: Sentinel-2 tiles captioned from their NDWI/NDVI land cover
    python -m dgtrs_lib.data.build --input sentinel --out artifacts/built/sentinel2 --limit 400
    # a folder of your images (optional metadata.jsonl), checked against a local RSICD copy
    python -m dgtrs_lib.data.build --input ~/imagery --out built/mine \\
        --eval karpathy:RSICD:~/rsicd/dataset_rsicd.json:~/rsicd/images
    # a vision-language model (online: DGTRS_ONLINE=1), bf16 on a GPU, CLIP agreement >= 0.2
    DGTRS_ONLINE=1 python -m dgtrs_lib.data.build --input ~/imagery --out built/vlm --captioner vlm \\
        --model Qwen/Qwen2-VL-2B-Instruct --batch-size 16 --clip dgtrs-clip-b --clip-threshold 0.2

Rerunning the same command resumes (finished shards are skipped); ``--overwrite`` starts again.
The evaluation sets ``sentinel`` and ``syndg`` (embedded, always present) are checked for leaks
unless ``--no-default-eval``; ``--eval`` adds any set in the forms of
:data:`dgtrs_lib.data.build.leakage.EVAL_FORMS`. Every argument and spec is checked before a model
is loaded (``errors.run_cli``: a mistake is one line and its exit code). It prints the funnel.

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from dgtrs_lib.errors import cli_parser, positive_int, run_cli

DEFAULT_EVAL = ("sentinel", "syndg")


def parser():
    from dgtrs_lib.data.build.captioners import DEFAULT_VLM
    from dgtrs_lib.data.build.inputs import INPUT_FORMS

    p = cli_parser(prog="python -m dgtrs_lib.data.build",
                   description="Build a dual-granularity (short + long caption) dataset from images.")
    p.add_argument("--input", required=True, help=f"what to caption: {', '.join(INPUT_FORMS)}")
    p.add_argument("--out", required=True, help="the build folder (resumed when it holds the same build)")
    p.add_argument("--captioner", choices=("metadata", "vlm"), default="metadata")
    p.add_argument("--model", default=DEFAULT_VLM,
                   help=f"--captioner vlm: a transformers id (online) or a local folder (default {DEFAULT_VLM})")
    p.add_argument("--revision", default=None, help="--captioner vlm: the model's revision (commit, tag)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--dtype", choices=("auto", "bf16", "fp16", "fp32"), default="auto")
    p.add_argument("--batch-size", type=positive_int, default=8, help="images per generate() call")
    p.add_argument("--short-from", choices=("prompt", "condense"), default="prompt",
                   help="VLM short caption: its own prompt, or the first sentence of the long one")
    p.add_argument("--limit", type=positive_int, default=None, help="caption only N images, spread over the input")
    p.add_argument("--shard-size", type=positive_int, default=64)
    p.add_argument("--eval", action="append", default=[], metavar="SPEC", help="an evaluation set to check for leaks")
    p.add_argument("--no-default-eval", action="store_true", help="do not check the embedded sentinel / syndg sets")
    p.add_argument("--clip", default=None, metavar="SOURCE", help="a dgtrs_lib.load_model source for the CLIP score")
    p.add_argument("--clip-threshold", type=float, default=None)
    p.add_argument("--min-short-tokens", type=positive_int, default=5)
    p.add_argument("--max-short-tokens", type=positive_int, default=None, help="default: 77")
    p.add_argument("--min-long-tokens", type=positive_int, default=20)
    p.add_argument("--max-long-tokens", type=positive_int, default=None, help="default: 248")
    p.add_argument("--max-wrong", type=int, default=0, help="fact-check errors a row may have")
    p.add_argument("--near-jaccard", type=float, default=0.9)
    p.add_argument("--overwrite", action="store_true", help="replace a different build in --out")
    p.add_argument("--no-progress", action="store_true")
    return p


def check_eval_spec(spec: str) -> str:
    """An evaluation spec's form and its paths, before anything is loaded."""
    from dgtrs_lib.data.build.leakage import EVAL_FORMS
    from dgtrs_lib.errors import UsageError, file_not_found

    parts = spec.split(":")
    forms = {"sentinel": (1,), "syndg": (1, 2), "karpathy": (4,), "folder": (3,), "airslt": (3,), "images": (3,)}
    if parts[0] not in forms or len(parts) not in forms[parts[0]] or any(not p for p in parts[1:]):
        raise UsageError(f"--eval {spec!r}: expected one of {', '.join(EVAL_FORMS)}")
    for p in parts[2:]:
        if not Path(p).expanduser().exists():
            raise UsageError(f"--eval {spec!r}: " + file_not_found(p))
    return spec


def _main(argv) -> int:
    args = parser().parse_args(argv)
    from dgtrs_lib.data.build.builder import build_dataset
    from dgtrs_lib.data.build.filters import FilterConfig
    from dgtrs_lib.data.build.inputs import load_inputs
    from dgtrs_lib.data.build.report import funnel_rows
    from dgtrs_lib.profiles import check_device

    cfg = FilterConfig(min_short_tokens=args.min_short_tokens, max_short_tokens=args.max_short_tokens,
                       min_long_tokens=args.min_long_tokens, max_long_tokens=args.max_long_tokens,
                       max_wrong=args.max_wrong, clip_threshold=args.clip_threshold,
                       near_jaccard=args.near_jaccard).check()
    evals = [check_eval_spec(s) for s in ([] if args.no_default_eval else list(DEFAULT_EVAL)) + args.eval]
    device = check_device(args.device)
    if args.clip_threshold is not None and not args.clip:
        from dgtrs_lib.errors import UsageError

        raise UsageError("--clip-threshold: needs --clip SOURCE (the CLIP model that scores image-text agreement)")
    if args.captioner == "vlm" and not Path(args.model).expanduser().is_dir():
        from dgtrs_lib.env import require_online

        require_online(f"--captioner vlm --model {args.model}", "use --captioner metadata or a local model folder")
    inputs = load_inputs(args.input).limit(args.limit)
    if args.captioner == "vlm":
        from dgtrs_lib.data.build.captioners import VLMCaptioner

        captioner = VLMCaptioner.from_pretrained(args.model, revision=args.revision, device=device, dtype=args.dtype,
                                                 batch_size=args.batch_size, short_from=args.short_from)
    else:
        from dgtrs_lib.data.build.captioners import MetadataCaptioner

        captioner = MetadataCaptioner()
    clip = None
    if args.clip:
        from dgtrs_lib.data.build.filters import ClipAgreement

        clip = ClipAgreement.from_source(args.clip, device or "cpu")
    report = build_dataset(inputs, captioner, args.out, filters=cfg, shard_size=args.shard_size, eval_sets=evals,
                           clip=clip, overwrite=args.overwrite, progress=not args.no_progress)
    width = max(len(r["step"]) for r in report["funnel"])
    for r in funnel_rows(report):
        print(f"{r['step']:<{width}}  dropped {r['dropped']:>6}  left {r['rows left']:>6}")
    print(f"kept {report['kept']} of {report['input_rows']} images; skipped {report['skipped_shards']} finished "
          f"shard(s); leaks found: {len(report['leaks'])}")
    if report["leaks"]:
        print("leaks: " + json.dumps(report["leaks"][:5]) + (" ..." if len(report["leaks"]) > 5 else ""))
    print(f"report: {Path(args.out) / 'report.json'}; data card: {Path(args.out) / 'README.md'}")
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
