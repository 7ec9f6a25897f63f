"""Export a model to the layouts the ecosystem loads without our code: transformers and open_clip.

``export(src, out, to="hf")`` writes a folder that ``transformers.CLIPModel.from_pretrained(out)``
and ``CLIPProcessor.from_pretrained(out)`` load with no custom code (``config.json`` with
``max_position_embeddings`` = the model's context, ``model.safetensors``, the tokenizer and the
image processor; see ``dgtrs_lib.model.hf``). ``to="open_clip"`` writes ``open_clip_config.json``
+ ``open_clip_model.safetensors``, the layout of open_clip's ``push_to_hf_hub.save_for_hf``, so
``open_clip.create_model_and_transforms("local-dir:OUT")`` builds the model and
``open_clip.get_tokenizer("local-dir:OUT")`` tokenises at its context. Both folders get a model card
(``README.md``, written with ``huggingface_hub.ModelCard``) whose evaluation numbers are read from
the results file of that checkpoint when one exists, never typed.

``src`` is anything ``dgtrs_lib.load_model`` accepts. Command line::

    python -m dgtrs_lib.model.export artifacts/cpu/pipeline/dgcl/final.pt exported/ --to hf

Taught in: The long-text encoder: from 77 to 248 tokens with KPS (notebooks/02-long-text-encoder.ipynb)
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from dgtrs_lib.errors import ResultExistsError, cli_parser, run_cli
from dgtrs_lib.model.hf import (
    ExportError,
    hf_config,
    hf_image_processor,
    hf_tokenizer,
    inference_state_dict,
    openai_to_hf,
)

TARGETS = ("hf", "open_clip")
OPEN_CLIP_CONFIG = "open_clip_config.json"    # open_clip.constants.HF_CONFIG_NAME
OPEN_CLIP_WEIGHTS = "open_clip_model.safetensors"  # open_clip.constants.HF_SAFE_WEIGHTS_NAME


class ExportExistsError(ExportError, ResultExistsError):
    """The export folder exists and ``overwrite`` was not given (exit code 6)."""

    exit_code = ResultExistsError.exit_code


def _load(src):
    if isinstance(src, tuple):
        return src[0], {"source": "in-memory"}
    if hasattr(src, "encode_text"):
        return src, {"source": "in-memory"}
    from dgtrs_lib.model.sources import load_model

    model, _ = load_model(str(src))
    return model, {"source": str(src)}


def open_clip_model_cfg(model) -> dict:
    """open_clip's ``model_cfg`` for ``model`` (QuickGELU, one positional table at its context)."""
    from dgtrs_lib.model.hf import _check_exportable
    from dgtrs_lib.model.longclip import config_from_model

    _check_exportable(model)
    cfg = config_from_model(model)
    return {"embed_dim": cfg["embed_dim"], "quick_gelu": True, "vision_cfg": cfg["vision_cfg"],
            "text_cfg": {k: v for k, v in cfg["text_cfg"].items()}}


def _write_hf(model, folder: Path, extra: dict) -> None:
    from safetensors.torch import save_file

    config = hf_config(model, extra)
    state = openai_to_hf(inference_state_dict(model))
    config.save_pretrained(folder)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    hf_tokenizer(model.context_length).save_pretrained(folder)
    from transformers import CLIPProcessor

    CLIPProcessor(image_processor=hf_image_processor(model.image_size),
                  tokenizer=hf_tokenizer(model.context_length)).save_pretrained(folder)


def _write_open_clip(model, folder: Path, extra: dict) -> None:
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from safetensors.torch import save_file

    cfg = {"model_cfg": open_clip_model_cfg(model),
           "preprocess_cfg": {"mean": list(OPENAI_DATASET_MEAN), "std": list(OPENAI_DATASET_STD),
                              "interpolation": "bicubic", "resize_mode": "shortest"},
           "dgtrs": extra}
    (folder / OPEN_CLIP_CONFIG).write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    save_file(inference_state_dict(model), str(folder / OPEN_CLIP_WEIGHTS))


def measured_results(source: str) -> list[dict]:
    """Result rows of the results files (``results/*/*.json``) whose model source is ``source``."""
    from dgtrs_lib.env import results_dir

    if not source or source == "in-memory":
        return []
    target = Path(source).resolve() if Path(source).exists() else None
    rows = []
    for path in sorted(results_dir().glob("*/*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        model = doc.get("model") or {}
        src = str(model.get("source") or model.get("checkpoint") or "")
        same = src == source or (target is not None and src and Path(src).exists() and Path(src).resolve() == target)
        if same and isinstance(doc.get("results"), list):
            rows += [dict(r, file=path.name, date=doc.get("date"), profile=doc.get("profile")) for r in doc["results"]
                     if isinstance(r, dict) and r.get("task", "").endswith(("retrieval", "classification", "localization"))]
    return rows


def model_card(model, info: dict, to: str, extra: dict):
    """A ``huggingface_hub.ModelCard``: licence, base model, data, recipe, measured numbers only."""
    from huggingface_hub import ModelCard, ModelCardData

    rows = measured_results(info.get("source", ""))
    lines = [f"| {r['task']} | {r['dataset']} | {r['metric']} | {r['value']:.2f} | {r.get('file')} |" for r in rows]
    table = ("| task | dataset | metric | value | results file |\n|---|---|---|---|---|\n" + "\n".join(lines)) if rows \
        else "No evaluation of this checkpoint was found in `results/`; run `python -m dgtrs_lib.evaluation.evaluate --model <checkpoint>` first."
    usage = ("```python\nfrom transformers import CLIPModel, CLIPProcessor\nmodel = CLIPModel.from_pretrained(PATH)\n"
             "processor = CLIPProcessor.from_pretrained(PATH)\n```" if to == "hf" else
             "```python\nimport open_clip\nmodel, _, preprocess = open_clip.create_model_and_transforms('local-dir:PATH')\n"
             "tokenizer = open_clip.get_tokenizer('local-dir:PATH')\n```")
    data = ModelCardData(license="apache-2.0", library_name="transformers" if to == "hf" else "open_clip",
                         tags=["clip", "remote-sensing", "long-text", "dgtrs-clip", "zero-shot-image-classification"],
                         base_model="openai/clip-vit-base-patch16" if model.context_length == 248 else None)
    text = f"""---
{data.to_yaml()}
---

# Long-text CLIP exported by dgtrs-book

A CLIP with a {model.context_length}-token text encoder (Long-CLIP's Knowledge-Preserved Stretching, keep
{extra.get('keep')}, ratio {extra.get('ratio')}) fine-tuned with the dual-granularity curriculum of DGTRS-CLIP
(Chen et al., arXiv:2503.19311), as reproduced by dgtrs-book.

- **source checkpoint**: `{info.get('source')}`
- **architecture**: image {model.image_size} px, text context {model.context_length} tokens, QuickGELU
- **training data and recipe**: `{json.dumps(extra.get('recipe') or 'see the checkpoint sidecar')}`

## Use

{usage}

## Evaluation (read from this checkpoint's results files)

{table}

Licence of the code: Apache-2.0. The training data's own licence applies to the weights (see the data cards).
"""
    return ModelCard(text)


def export(src, out, to: str = "hf", *, overwrite: bool = False) -> Path:
    """Write ``src`` (any ``load_model`` source, or a model) to the folder ``out`` in layout ``to``.

    The folder is written beside ``out`` and renamed into place, so a failed export leaves nothing;
    an existing ``out`` is replaced only with ``overwrite=True``."""
    if to not in TARGETS:
        raise ExportError(f"--to {to!r}: expected one of {', '.join(TARGETS)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExportExistsError(f"{out}: already exists; expected a new folder, or overwrite=True (--overwrite) to replace it")
    model, info = _load(src)
    model = model.cpu().eval()
    sidecar = {}
    if info["source"] != "in-memory":
        from dgtrs_lib.model.checkpoint import read_sidecar

        sidecar = read_sidecar(info["source"])   # a corrupt sidecar is an error naming it, never ignored
    extra = {"keep": getattr(model, "keep", None), "context_length": model.context_length,
             "ratio": (getattr(model, "stretch_info", None) or {}).get("ratio", sidecar.get("ratio")),
             "base_context": (getattr(model, "stretch_info", None) or {}).get("base_context", sidecar.get("base_context")),
             "source": info["source"],
             "recipe": {k: sidecar[k] for k in ("stage", "profile", "schedule", "loss", "seed", "step") if k in sidecar}}
    extra = {k: v for k, v in extra.items() if v not in (None, {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        (_write_hf if to == "hf" else _write_open_clip)(model, tmp, extra)
        model_card(model, info, to, extra).save(tmp / "README.md")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv=None) -> int:
    """The command line (``dgtrs-export``); returns the exit code (``dgtrs_lib.errors``)."""
    return run_cli(_main, argv)


def _main(argv) -> int:
    p = cli_parser(prog="dgtrs-export", description="Export a model to transformers or open_clip.")
    p.add_argument("src", help="a checkpoint path or any source dgtrs_lib.load_model accepts")
    p.add_argument("out", help="the folder to write")
    p.add_argument("--to", default="hf", choices=TARGETS)
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    a = p.parse_args(argv)
    path = export(a.src, a.out, a.to, overwrite=a.overwrite)
    print(f"wrote {path} ({a.to}): " + ", ".join(sorted(f.name for f in path.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
