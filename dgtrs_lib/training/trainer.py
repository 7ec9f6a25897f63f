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
* bf16 autocast where supported (``precision="auto"``: bf16 on CUDA, fp32 on CPU), gradient
  accumulation (each micro-batch is its own contrastive problem, as in open_clip without
  feature caching).
* data: a :class:`PairData` of pre-computed image tensors and pre-tokenised captions; each batch
  is trimmed to its longest caption (dynamic padding: a short caption does not pay for 248
  positions). The order is a pure function of ``(seed, epoch)`` (:class:`BatchOrder`): the
  permutation of epoch ``e`` comes from a generator seeded with ``seed`` and ``e``, and a global
  batch of ``B * world`` indices is split rank by rank (``drop_last``: every rank gets exactly ``B``).
* outputs in ``out_dir``: ``metrics.jsonl`` (one line per step: lr, losses, weights, logit scale,
  pairs/s; read and drawn by ``dgtrs_lib.training.metrics_log``), ``final.pt`` in the official
  DGTRS format (``dgtrs_lib.model.checkpoint.save_official``), ``step_<N>.pt`` every
  ``ckpt_every`` steps, and ``train_state.pt`` (weights, optimizer, step, RNG states), all written
  atomically. ``train(..., resume=True)`` continues from ``train_state.pt`` and ends with weights
  bitwise equal to an uninterrupted run with the same seed.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dgtrs_lib.data.pairs import PairData
from dgtrs_lib.io import append_jsonl, atomic_save, write_jsonl
from dgtrs_lib.model.checkpoint import CheckpointError, save_official
from dgtrs_lib.training.config import TrainConfig
from dgtrs_lib.training.curriculum import get_schedule
from dgtrs_lib.training.distributed import setup_distributed
from dgtrs_lib.training.losses import DualGranularityLoss
from dgtrs_lib.training.lr import cosine_lr
from dgtrs_lib.training.metrics_log import METRICS_FILE, read_metrics

STATE_FILE = "train_state.pt"
FINAL_FILE = "final.pt"


# ----------------------------------------------------------------------------- data
class BatchOrder:
    """Which pair indices micro-step ``m`` of process ``rank`` uses (a pure function)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.b, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.per_epoch = n // (batch_size * world)
        if self.per_epoch == 0:
            raise ValueError(f"the training set has {n} pairs, fewer than one global batch "
                             f"({batch_size} per process x {world} processes); lower batch_size")
        self._epoch, self._perm = None, None

    def __call__(self, micro_step: int) -> tuple[torch.Tensor, int]:
        epoch, pos = divmod(micro_step, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=gen)
        span = self.b * self.world
        glob = self._perm[pos * span:(pos + 1) * span]
        return glob[self.rank * self.b:(self.rank + 1) * self.b], epoch


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


def _resume_key(cfg: TrainConfig, world: int, n: int) -> dict:
    return {"steps": cfg.steps, "batch_size": cfg.batch_size, "accum_steps": cfg.accum_steps,
            "seed": cfg.seed, "world_size": world, "pairs": n}


def load_train_state(path: str | os.PathLike) -> dict:
    """Read ``train_state.pt`` with ``weights_only=True``; a clear error if it is unusable."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read the training state ({str(err).splitlines()[0]}); "
                              "delete it to start from scratch") from err
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


def _autocast(device: torch.device, precision: str):
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16":
        return precision, torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return precision, contextlib.nullcontext()


def train(model: nn.Module, data: PairData, cfg: TrainConfig, out_dir: str | os.PathLike, *,
          resume: bool = True, device: torch.device | str | None = None,
          callback: Callable[[int, dict], None] | None = None, save_metadata: dict | None = None) -> TrainResult:
    """Train ``model`` (in place) on ``data`` for ``cfg.steps`` optimizer steps; see the module doc.

    ``callback(step, record)`` runs after every step (on every rank). ``save_metadata`` goes into
    the final checkpoint's JSON sidecar.
    """
    cfg.check()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world, device = setup_distributed(device)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    if cfg.deterministic:  # bitwise-reproducible kernels (CUDA embedding/scatter backward use atomics)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    precision, autocast = _autocast(device, cfg.precision)
    schedule = get_schedule(cfg.schedule, **cfg.schedule_kwargs)
    loss_fn = DualGranularityLoss.preset(cfg.loss, **cfg.loss_kwargs)
    order = BatchOrder(len(data), cfg.batch_size, cfg.seed, rank, world)

    model.to(device)
    model.train()
    state_path, metrics_path = out_dir / STATE_FILE, out_dir / METRICS_FILE
    key = _resume_key(cfg, world, len(data))
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
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        start = int(state["step"])
    net = DualEncoder(model)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    if rank == 0:  # keep the metrics of the steps that the state file covers, drop the rest
        kept = [r for r in read_metrics(metrics_path) if r["step"] < start] if (resume and metrics_path.exists()) else []
        write_jsonl(metrics_path, kept)

    def save_state(step: int) -> None:
        if rank == 0:
            atomic_save(state_path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                     "rng": _rng_state(), "resume_key": key,
                                     "config": json.loads(json.dumps(asdict(cfg)))})
        if world > 1:
            torch.distributed.barrier()

    bar = None
    if cfg.progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc=f"train ({schedule.name})", unit="step")
    t_start = time.time()
    for step in range(start, cfg.steps):
        t0 = time.time()
        lr = cosine_lr(step, cfg.lr, cfg.warmup_steps, cfg.steps)
        for group in opt.param_groups:
            group["lr"] = lr
        w_long, w_short = schedule(step, cfg.steps)
        totals = {"loss": 0.0, "loss_long": 0.0, "loss_short": 0.0}
        for micro in range(cfg.accum_steps):
            idx, epoch = order(step * cfg.accum_steps + micro)
            images, long_tok, short_tok = data.batch(idx)
            images = images.to(device, non_blocking=True)
            long_tok = long_tok.to(device) if w_long else None
            short_tok = short_tok.to(device) if w_short else None
            sync = contextlib.nullcontext() if (world == 1 or micro == cfg.accum_steps - 1) else net.no_sync()
            with sync:
                with autocast:
                    image_f, long_f, short_f, logit_scale = net(images, long_tok, short_tok)
                loss_long, loss_short = loss_fn(image_f.float(), None if long_f is None else long_f.float(),
                                                None if short_f is None else short_f.float(), logit_scale.float())
                loss = sum(w * part for w, part in ((w_long, loss_long), (w_short, loss_short)) if part is not None)
                (loss / cfg.accum_steps).backward()
            totals["loss"] += loss.item() / cfg.accum_steps
            totals["loss_long"] += (loss_long.item() if loss_long is not None else math.nan) / cfg.accum_steps
            totals["loss_short"] += (loss_short.item() if loss_short is not None else math.nan) / cfg.accum_steps
        if world > 1:  # log the global-batch loss (mean over processes), not rank 0's share
            vals = torch.tensor([totals[k] for k in ("loss", "loss_long", "loss_short")], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(vals)
            totals = dict(zip(("loss", "loss_long", "loss_short"), (vals / world).tolist()))
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            model.logit_scale.clamp_(0, cfg.max_logit_scale)
        dt = time.time() - t0
        record = {"step": step, "epoch": epoch, "lr": lr, **{k: _round(v) for k, v in totals.items()},
                  "w_long": w_long, "w_short": w_short, "logit_scale": round(model.logit_scale.exp().item(), 4),
                  "pairs_per_s": round(cfg.batch_size * cfg.accum_steps * world / dt, 2), "time_s": round(dt, 4)}
        if rank == 0:
            append_jsonl(metrics_path, record)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", w=f"{w_long:.2f}/{w_short:.2f}")
        done = step + 1
        if cfg.ckpt_every and done % cfg.ckpt_every == 0 and done < cfg.steps:
            save_state(done)
            if rank == 0:
                save_official(model, out_dir / f"step_{done:06d}.pt", step=done)
        if callback is not None:
            callback(step, record)
    if bar is not None:
        bar.close()
    wall = time.time() - t_start
    final = out_dir / FINAL_FILE
    save_state(cfg.steps)
    if rank == 0:
        save_official(model, final, step=cfg.steps, schedule=schedule.config(), loss=cfg.loss,
                      precision=precision, world_size=world, **(save_metadata or {}))
    if world > 1:
        torch.distributed.barrier()
    model.eval()
    torch.use_deterministic_algorithms(was_deterministic)
    return TrainResult(out_dir=out_dir, final=final, metrics=metrics_path, steps=cfg.steps, wall_s=wall)


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)
