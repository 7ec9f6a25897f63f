"""The trainer: one plain PyTorch loop for dual-granularity (DGCL) fine-tuning and for the
short-caption pre-training of the miniature.

Recipe: Long-CLIP's ``train/train.py`` (github.com/beichenzbc/Long-CLIP, ``book/references.bib`` key
``zhang2024longclip``); DGTRS released no training code (arXiv:2503.19311, key ``chen2025dgtrs``).
This module is the loop and its resume state; the pieces it puts together live beside it:

* ``dgtrs_lib.training.config.TrainConfig``: the hyper-parameters (GPU default = Long-CLIP's lr
  1e-6, wd 1e-2, 200 warm-up steps, logit scale re-initialised to ln 100 and clamped to
  [0, ln 100] after each step, CLIP's clip).
* AdamW over every trainable parameter (no no-decay groups, as Long-CLIP), betas (0.9, 0.999),
  eps 1e-8; the learning rate follows ``dgtrs_lib.training.lr.cosine_lr`` (Long-CLIP's
  ``train/scheduler.py``): linear warm-up ``base*(step+1)/warmup``, then half-cosine to 0.
* loss ``w_long(t) * L_long + w_short(t) * L_short`` (``dgtrs_lib.training.losses``) with the weights of a
  curriculum ``dgtrs_lib.training.curriculum.Schedule``; a branch with weight 0 is not even encoded.
* precision that fits the device (``dgtrs_lib.training.precision``): ``precision="auto"`` is bf16
  autocast from compute capability 8.0, fp16 autocast + ``GradScaler`` below it, fp32 on the CPU;
  AdamW is fused on CUDA; ``compile=True`` wraps the dual encoder in ``torch.compile``. The mode
  is printed, written in every ``metrics.jsonl`` record and in the final checkpoint's sidecar.
* contrastive batch vs sub-batch: one contrastive problem of ``contrastive_batch`` pairs (all
  processes) is encoded ``batch_size`` pairs at a time; when that is smaller than the per-process
  share, the loss is computed by gradient caching (``dgtrs_lib.training.gradcache``, Gao et al.
  2021), which gives the full-batch loss and gradients in the memory of one sub-batch.
  ``batch_size="auto"`` picks the sub-batch from the device (``dgtrs_lib.training.plan``).
  Gradient accumulation (``accum_steps``) is separate: each micro-step is its own contrastive
  problem, as in open_clip without feature caching.
* data (``dgtrs_lib.data.loader.iterate_batches``): the miniature's :class:`PairData` of
  pre-computed image tensors is indexed in this process; the gpu profile's sets are decoded,
  transformed and tokenised by DataLoader workers (pinned memory, prefetch), map-style or
  streamed. Each batch is trimmed to its longest caption (dynamic padding: a short caption does
  not pay for 248 positions). A map-style order is a pure function of ``(seed, epoch)``
  (:class:`BatchOrder`): the permutation of epoch ``e`` comes from a generator seeded with
  ``seed`` and ``e``, and a global batch of ``B * world`` indices is split rank by rank
  (``drop_last``: every rank gets exactly ``B``); a stream is split across ranks by
  ``datasets.distributed.split_dataset_by_node`` and its position (per loader worker: epoch and
  raw items consumed) is saved in ``train_state.pt``.
* outputs in ``out_dir``: ``metrics.jsonl`` (one line per step: lr, losses, weights, logit scale,
  pairs/s; read and drawn by ``dgtrs_lib.training.metrics_log``), ``final.pt`` in the official
  DGTRS format (``dgtrs_lib.model.checkpoint.save_official``), ``step_<N>.pt`` every
  ``ckpt_every`` steps (unless ``save_snapshots=False``), and ``train_state.pt`` (weights, optimizer, loss scaler, step, RNG
  states, every rank's data position), all written atomically. ``train(..., resume=True)``
  continues from ``train_state.pt`` and ends with weights bitwise equal to an uninterrupted run
  with the same seed (a stream continues with the batches the uninterrupted run would have read).
* several processes: launch with ``torchrun`` (``dgtrs_lib.training.distributed.setup_distributed``
  reads its environment; gloo on CPU, nccl on GPU); the model is wrapped in DDP, negatives are
  gathered with gradient, and the averaged gradient equals the one-process gradient of the same
  global batch.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dgtrs_lib.data.loader import BatchOrder, LoaderSettings, iterate_batches, resolve_num_workers
from dgtrs_lib.data.pairs import PairData
from dgtrs_lib.io import append_jsonl, atomic_save, locked, remove_stale_tmp, write_jsonl
from dgtrs_lib.model.checkpoint import CheckpointError, safe_torch_load, save_official
from dgtrs_lib.training.config import TrainConfig
from dgtrs_lib.training.curriculum import get_schedule
from dgtrs_lib.training.distributed import setup_distributed
from dgtrs_lib.training.gradcache import contrastive_backward
from dgtrs_lib.training.losses import DualGranularityLoss
from dgtrs_lib.training.lr import cosine_lr
from dgtrs_lib.training.metrics_log import METRICS_FILE, read_metrics
from dgtrs_lib.training.plan import DeviceInfo, plan_training
from dgtrs_lib.training.precision import Amp, adamw, select_precision

__all__ = ["BatchOrder", "DualEncoder", "PairData", "TrainConfig", "TrainResult", "load_train_state", "read_metrics",
           "train"]

STATE_FILE = "train_state.pt"
FINAL_FILE = "final.pt"


# ----------------------------------------------------------------------------- model wrapper
class DualEncoder(nn.Module):
    """``forward(images, long_tokens, short_tokens)`` -> normalised features + logit scale.

    One module call per step so DDP sees one forward; a ``None`` text skips that encoder.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images, long_tokens=None, short_tokens=None):
        image = F.normalize(self.model.encode_image(images), dim=-1)
        long = F.normalize(self.model.encode_text(long_tokens), dim=-1) if long_tokens is not None else None
        short = F.normalize(self.model.encode_text(short_tokens), dim=-1) if short_tokens is not None else None
        return image, long, short, self.model.logit_scale


# ----------------------------------------------------------------------------- state files
def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy_key": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_rest": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    name, pos, has_gauss, cached = state["numpy_rest"]
    np.random.set_state((name, state["numpy_key"].numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _resume_key(cfg: TrainConfig, world: int, per_process: int, n) -> dict:
    """What must match for a saved state to continue this run. ``batch_size`` is the per-process
    contrastive batch (the sub-batch is not part of it: gradient caching gives the same update)."""
    return {"steps": cfg.steps, "batch_size": per_process, "accum_steps": cfg.accum_steps,
            "seed": cfg.seed, "world_size": world, "pairs": n}


def load_train_state(path: str | os.PathLike) -> dict:
    """Read ``train_state.pt`` with ``weights_only=True``; a clear error if it is unusable."""
    path = Path(path)
    try:
        state = safe_torch_load(path, "a training state")
    except CheckpointError as err:
        raise CheckpointError(f"{err}; delete it to start from scratch") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a training state (a dict), got {type(state).__name__}; "
                              "delete it to start from scratch")
    for key in ("model", "optimizer", "step", "rng", "resume_key"):
        if key not in state:
            raise CheckpointError(f"{path}: training state lacks the field {key!r}")
    return state


# ----------------------------------------------------------------------------- the loop
@dataclass
class TrainResult:
    out_dir: Path
    final: Path
    metrics: Path
    steps: int
    wall_s: float
    setup: dict = field(default_factory=dict)   # precision, batches, optimizer, loader (see _setup)


def _data_size(data):
    try:
        return len(data)
    except TypeError:  # a stream
        return getattr(data, "source", "stream")


def _setup(cfg: TrainConfig, model: nn.Module, data, device: torch.device, world: int) -> dict:
    """Resolve the ``auto`` settings for this device: precision, per-process batch, sub-batch, workers."""
    precision = select_precision(cfg.precision, device)
    if cfg.contrastive_batch is None:
        per_process = cfg.batch_size
    else:
        if cfg.contrastive_batch % world:
            raise ValueError(f"TrainConfig.contrastive_batch={cfg.contrastive_batch} must be a multiple of the number "
                             f"of processes ({world})")
        per_process = cfg.contrastive_batch // world
    sub = cfg.batch_size
    plan = None
    if sub == "auto":
        plan = plan_training(None, DeviceInfo.current(device), world=world, model=model, precision=precision,
                             contrastive_batch=cfg.contrastive_batch)
        sub = plan.sub_batch
    sub = min(sub, per_process)
    streamed = hasattr(data, "batches")
    return {"precision": precision, "contrastive_batch": per_process * world, "per_process_batch": per_process,
            "sub_batch": sub, "grad_cache": sub < per_process, "world_size": world,
            "optimizer": "AdamW (fused)" if device.type == "cuda" else "AdamW",
            "compile": cfg.compile if cfg.compile else False,
            "num_workers": resolve_num_workers(cfg.num_workers) if streamed else 0,
            "plan": plan.summary() if plan is not None else None}


def _describe(setup: dict, amp: Amp) -> str:
    how = (f"gradient caching, sub-batches of {setup['sub_batch']}" if setup["grad_cache"]
           else "one pass per micro-step")
    parts = [f"train: precision {setup['precision']} ({amp.describe()['reason']})",
             f"contrastive batch {setup['contrastive_batch']} ({setup['world_size']} x {setup['per_process_batch']}, {how})",
             f"{setup['optimizer']}, loader workers {setup['num_workers']}"
             + (f", torch.compile {setup['compile']}" if setup["compile"] else "")]
    return "\n  ".join(parts)  # short lines: they are read on terminals and in the book's content column


def _one_run_per_folder(train_fn):
    """``train`` holding its output folder's lock (``dgtrs_lib.io.locked``: a second trainer in the
    same folder fails at once with a ``LockedError`` naming the first), after removing the
    temporary files a killed run left there. Under torchrun only rank 0 (``RANK``) takes the lock."""
    import functools
    import inspect
    import logging

    signature = inspect.signature(train_fn)

    @functools.wraps(train_fn)
    def wrapper(*args, **kwargs):
        out_dir = Path(signature.bind(*args, **kwargs).arguments["out_dir"])
        if int(os.environ.get("RANK", "0")) != 0:
            return train_fn(*args, **kwargs)
        with locked(out_dir, "training"):
            for stale in remove_stale_tmp(out_dir):
                logging.getLogger(__name__).info("removed %s, left by an interrupted write", stale)
            return train_fn(*args, **kwargs)

    return wrapper


@_one_run_per_folder
def train(model: nn.Module, data: PairData, cfg: TrainConfig, out_dir: str | os.PathLike, *,
          resume: bool = True, device: torch.device | str | None = None,
          callback: Callable[[int, dict], None] | None = None, save_metadata: dict | None = None) -> TrainResult:
    """Train ``model`` (in place) on ``data`` for ``cfg.steps`` optimizer steps; see the module doc.

    ``data``: a :class:`PairData` (in memory) or a ``dgtrs_lib.data.loader`` ``HubPairs`` /
    ``StreamPairs``. ``callback(step, record)`` runs after every step (on every rank).
    ``save_metadata`` goes into the final checkpoint's JSON sidecar.
    """
    cfg.check()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world, device = setup_distributed(device)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    if cfg.deterministic:  # bitwise-reproducible kernels (CUDA embedding/scatter backward use atomics)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    setup = _setup(cfg, model, data, device, world)
    precision, per_process, sub = setup["precision"], setup["per_process_batch"], setup["sub_batch"]
    amp = Amp(precision, device)
    setup["amp"] = amp.describe()
    schedule = get_schedule(cfg.schedule, **cfg.schedule_kwargs)
    loss_fn = DualGranularityLoss.preset(cfg.loss, **cfg.loss_kwargs)

    model.to(device)
    model.train()
    state_path, metrics_path = out_dir / STATE_FILE, out_dir / METRICS_FILE
    key = _resume_key(cfg, world, per_process, _data_size(data))
    start = 0
    state = load_train_state(state_path) if resume and state_path.exists() else None
    if state is not None and state["resume_key"] != key:
        raise CheckpointError(f"{state_path}: was written by a different run {state['resume_key']}, "
                              f"this run is {key}; use another out_dir or delete the file")
    if state is None:
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        if cfg.init_logit_scale is not None:
            with torch.no_grad():
                model.logit_scale.fill_(cfg.init_logit_scale)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = adamw(params, device, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        amp.load_state_dict(state.get("scaler", {}))
        _set_rng_state(state["rng"])
        start = int(state["step"])
    net = DualEncoder(model)
    ddp = None
    if world > 1:
        net = ddp = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net, backend="inductor" if cfg.compile is True else cfg.compile)
    data_state = (state.get("data") or [None] * world)[rank] if state is not None else None
    batches = iterate_batches(data, batch_size=per_process, seed=cfg.seed, rank=rank, world=world,
                              start=start * cfg.accum_steps, stop=cfg.steps * cfg.accum_steps, state=data_state,
                              settings=LoaderSettings(num_workers=setup["num_workers"],
                                                      prefetch_factor=cfg.prefetch_factor,
                                                      pin_memory=device.type == "cuda"))

    if rank == 0:  # keep the metrics of the steps that the state file covers, drop the rest
        kept = [r for r in read_metrics(metrics_path) if r["step"] < start] if (resume and metrics_path.exists()) else []
        write_jsonl(metrics_path, kept)

    def save_state(step: int) -> None:
        ranks_data = [batches.state()]
        if world > 1:
            ranks_data = [None] * world
            torch.distributed.all_gather_object(ranks_data, batches.state())
        if rank == 0:
            atomic_save(state_path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                     "scaler": amp.state_dict(), "rng": _rng_state(), "resume_key": key,
                                     "data": ranks_data, "config": json.loads(json.dumps(asdict(cfg)))})
        if world > 1:
            torch.distributed.barrier()

    bar = None
    if cfg.progress and rank == 0:
        from tqdm.auto import tqdm

        print(_describe(setup, amp), flush=True)
        bar = tqdm(total=cfg.steps, initial=start, desc=f"train ({schedule.name})", unit="step")
    t_start = time.time()
    no_sync = ddp.no_sync if ddp is not None else None
    for step in range(start, cfg.steps):
        t0 = time.time()
        lr = cosine_lr(step, cfg.lr, cfg.warmup_steps, cfg.steps)
        for group in opt.param_groups:
            group["lr"] = lr
        w_long, w_short = schedule(step, cfg.steps)
        totals = {"loss": 0.0, "loss_long": 0.0, "loss_short": 0.0}
        for micro in range(cfg.accum_steps):
            images, long_tok, short_tok, epoch = next(batches)
            sync = contextlib.nullcontext() if (ddp is None or micro == cfg.accum_steps - 1) else ddp.no_sync()
            with sync:
                loss, loss_long, loss_short = contrastive_backward(
                    net, images, long_tok if w_long else None, short_tok if w_short else None, loss_fn, w_long,
                    w_short, amp, sub_batch=sub, loss_weight=1.0 / cfg.accum_steps, device=device, no_sync=no_sync)
            totals["loss"] += loss.item() / cfg.accum_steps
            totals["loss_long"] += (loss_long.item() if loss_long is not None else math.nan) / cfg.accum_steps
            totals["loss_short"] += (loss_short.item() if loss_short is not None else math.nan) / cfg.accum_steps
        bad = float(batches.stats["bad"])
        if world > 1:  # log the global-batch loss (mean over processes), not rank 0's share
            vals = torch.tensor([totals[k] for k in ("loss", "loss_long", "loss_short")] + [bad * world],
                                dtype=torch.float64, device=device)
            torch.distributed.all_reduce(vals)
            vals = (vals / world).tolist()
            totals, bad = dict(zip(("loss", "loss_long", "loss_short"), vals[:3])), vals[3]
        amp.step(opt, params, cfg.grad_clip)
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            model.logit_scale.clamp_(0, cfg.max_logit_scale)
        dt = time.time() - t0
        record = {"step": step, "epoch": epoch, "lr": lr, **{k: _round(v) for k, v in totals.items()},
                  "w_long": w_long, "w_short": w_short, "logit_scale": round(model.logit_scale.exp().item(), 4),
                  "pairs_per_s": round(per_process * cfg.accum_steps * world / dt, 2), "time_s": round(dt, 4),
                  "precision": precision, "loss_scale": amp.loss_scale(), "bad_samples": int(bad)}
        if rank == 0:
            append_jsonl(metrics_path, record)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", w=f"{w_long:.2f}/{w_short:.2f}")
        done = step + 1
        if cfg.ckpt_every and done % cfg.ckpt_every == 0 and done < cfg.steps:
            if rank == 0 and cfg.save_snapshots:  # the step checkpoint first: a kill before the state is saved redoes the step
                save_official(model, out_dir / f"step_{done:06d}.pt", step=done)
            save_state(done)
        if callback is not None:
            callback(step, record)
    if bar is not None:
        bar.close()
    wall = time.time() - t_start
    final = out_dir / FINAL_FILE
    save_state(cfg.steps)
    batches.close()
    setup["data"] = batches.state()
    if rank == 0:
        save_official(model, final, step=cfg.steps, schedule=schedule.config(), loss=cfg.loss,
                      precision=precision, world_size=world, train_setup=json.loads(json.dumps(setup)),
                      **(save_metadata or {}))
    if world > 1:
        torch.distributed.barrier()
    model.eval()
    torch.use_deterministic_algorithms(was_deterministic)
    return TrainResult(out_dir=out_dir, final=final, metrics=metrics_path, steps=cfg.steps, wall_s=wall, setup=setup)


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)
