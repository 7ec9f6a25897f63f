"""Run records: what one stage of the pipeline produced, as one object and one file.

``pretrain_stage1``, ``finetune_variant``, ``run_pipeline`` and ``get_or_train``
(``dgtrs_lib.experiments.pipeline``) all return a :class:`RunRecord`:

* ``stage`` (``stage1`` | ``stage2``), ``name`` (the run's folder under ``artifacts/<profile>/pipeline/``,
  e.g. ``stage1-s0``, ``dgcl``, ``ft-cosine-kps-nopca-s0-150steps``), ``profile``;
* ``source``: what ``dgtrs_lib.model.sources.load_model`` reads -- the checkpoint path, or a source
  string when the stage is not trained here (the gpu profile's stage 1 is OpenAI's CLIP,
  ``get_profile("gpu").stage1_source``; then ``checkpoint``, ``metrics`` and ``eval`` are None);
* ``checkpoint`` (``final.pt``), ``metrics`` (``metrics.jsonl``, one line per step), ``eval`` (this
  record as JSON, ``eval.json``), all in the run's folder;
* ``config`` (what trained it: seed, steps, schedule, stretch, PCA, the stage-1 source, ...),
  ``times`` (wall seconds) and ``heldout`` (held-out checks ``{checkpoint name: {pairs,
  chance_R@1, long_i2t_R@1, ...}}``: the record's own under its ``name``, and for the main
  pipeline run also ``stage1`` and ``stretched``);
* ``model``: the trained model, in memory when this process just trained it (never written).

``write_record`` is the one writer of ``eval.json`` (one schema, ``SCHEMA``); ``read_record`` reads
it back (also the two layouts written before this schema, so existing runs need no retraining).

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dgtrs_lib.io import atomic_write_json

SCHEMA = "dgtrs-run-record/1"
RECORD_FILE = "eval.json"
METRICS_FILE = "metrics.jsonl"
_PATHS = ("checkpoint", "metrics", "eval")


@dataclass
class RunRecord:
    stage: str
    name: str
    profile: str
    source: str
    checkpoint: Path | None = None
    metrics: Path | None = None
    eval: Path | None = None
    config: dict = field(default_factory=dict)
    times: dict = field(default_factory=dict)
    heldout: dict = field(default_factory=dict)
    model: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of_checkpoint(cls, stage: str, profile: str, checkpoint: str | os.PathLike, **fields) -> "RunRecord":
        """A record of a checkpoint in its run folder (name = the folder; metrics and eval beside it)."""
        checkpoint = Path(checkpoint)
        folder = checkpoint.parent
        return cls(stage=stage, name=folder.name, profile=str(profile), source=str(checkpoint), checkpoint=checkpoint,
                   metrics=folder / METRICS_FILE, eval=folder / RECORD_FILE, **fields)

    def load(self, device: str = "cpu"):
        """The model: the one in memory if this process trained it, else loaded from ``source``
        (stage 1 as trained -- short context, not stretched; stage 2 as saved)."""
        if self.model is not None:
            return self.model.to(device).eval()
        from dgtrs_lib.model.sources import load_model

        model, _ = load_model(self.source, device, stretch=self.stage != "stage1")
        return model

    def to_json(self) -> dict:
        doc = {"schema": SCHEMA, "stage": self.stage, "name": self.name, "profile": self.profile, "source": self.source}
        doc.update({k: None if getattr(self, k) is None else str(getattr(self, k)) for k in _PATHS})
        doc.update(config=self.config, times=self.times, heldout=self.heldout)
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> "RunRecord":
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"not a run record (schema {doc.get('schema')!r}, expected {SCHEMA!r})")
        paths = {k: None if doc.get(k) is None else Path(doc[k]) for k in _PATHS}
        return cls(stage=doc["stage"], name=doc["name"], profile=doc["profile"], source=doc["source"], **paths,
                   config=doc.get("config", {}), times=doc.get("times", {}), heldout=doc.get("heldout", {}))


def write_record(record: RunRecord) -> Path:
    """Write ``record`` to its ``eval`` path (atomically, strict JSON); returns the path."""
    if record.eval is None:
        raise ValueError(f"run record {record.name}: no eval path (a stage that is not trained here is not written)")
    return atomic_write_json(record.eval, record.to_json(), indent=2)


def _from_legacy(doc: dict, path: Path, stage: str, profile: str) -> RunRecord:
    """The two ``eval.json`` layouts written before ``SCHEMA``: the pipeline's summary
    (``final``, ``times``, ``validation: {stage: check}``) and a variant's (``variant``, ...,
    ``train_wall_s``, ``validation: check``)."""
    checkpoint = Path(doc.get("final") or path.parent / "final.pt")
    if "variant" in doc:
        config = {k: v for k, v in doc.items() if k not in ("variant", "train_wall_s", "validation")}
        return RunRecord.of_checkpoint(stage, profile, checkpoint, config=config,
                                       times={"train_wall_s": doc.get("train_wall_s")},
                                       heldout={path.parent.name: doc["validation"]} if "validation" in doc else {})
    config = {k: doc[k] for k in ("profile", "seed", "schedule") if k in doc}
    return RunRecord.of_checkpoint(stage, profile, checkpoint, config=config, times=doc.get("times", {}),
                                   heldout=doc.get("validation", {}))


def read_record(path: str | os.PathLike, *, stage: str = "stage2", profile: str | None = None) -> RunRecord:
    """The record in ``path`` (``eval.json``); ``stage``/``profile`` fill in what a pre-schema file lacks."""
    path = Path(path)
    doc = json.loads(path.read_text())
    if doc.get("schema") == SCHEMA:
        return RunRecord.from_json(doc)
    return _from_legacy(doc, path, stage, profile or doc.get("profile") or path.parent.parent.parent.name)


def record_of(checkpoint: str | os.PathLike, stage: str, profile: str) -> RunRecord:
    """The record of an existing checkpoint: its ``eval.json`` when there is one, else the paths
    alone. The paths are the checkpoint's own (a moved artifacts folder still reads)."""
    checkpoint = Path(checkpoint)
    here = RunRecord.of_checkpoint(stage, profile, checkpoint)
    if not here.eval.exists():
        return here
    record = read_record(here.eval, stage=stage, profile=profile)
    return replace(record, source=here.source, checkpoint=here.checkpoint, metrics=here.metrics, eval=here.eval)
