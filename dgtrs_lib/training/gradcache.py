"""One contrastive step's backward pass, plain or by gradient caching.

A contrastive loss couples every pair of the batch, so the batch cannot simply be split into
micro-batches: each micro-batch would be its own, smaller contrastive problem with fewer negatives
(gradient accumulation does not add negatives). Gradient caching -- Gao, Zhang, Han and Callan
2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup" (GradCache,
github.com/luyug/GradCache) -- computes the loss of the WHOLE batch with the memory of one
sub-batch:

1. encode the batch sub-batch by sub-batch without autograd graphs and keep only the (normalised)
   features -- ``[B, D]`` per tower, a few MB even for thousands of pairs;
2. compute the loss on those features (leaf tensors) and backpropagate it to them: the "gradient
   cache" ``dL/df`` (and ``dL/dlogit_scale``);
3. re-encode each sub-batch WITH its graph and backpropagate ``sum(f * dL/df)``: by the chain rule
   the parameter gradients add up to exactly those of the full-batch backward.

Each sub-batch's random state is recorded in step 1 and replayed in step 3 (GradCache's
``RandContext``), so a model with dropout sees the same masks twice. The cost is one extra
forward pass (about +1/3 of a step's compute) for a memory that no longer grows with the batch.

Under DDP (``dgtrs_lib.training.distributed``) the cached features are gathered with gradient by
the loss as in the plain step, every sub-batch backward but the last runs under ``no_sync`` (the
gradients accumulate locally) and the last one -- which also carries the temperature's gradient,
so every parameter is reduced -- triggers DDP's all-reduce once. Tested in
``tests/test_gradcache.py``: loss and gradients equal the full-batch ones within float tolerance,
for both granularities, both loss presets and two gloo processes.

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from dgtrs_lib.data.pairs import trim_padding
from dgtrs_lib.training.precision import Amp


class RandState:
    """The CPU (and CUDA) random state at one moment, replayable later (GradCache's RandContext)."""

    def __init__(self, device: torch.device):
        self.devices = [device] if device.type == "cuda" else []
        self.cpu = torch.get_rng_state()
        self.cuda = [torch.cuda.get_rng_state(d) for d in self.devices]

    @contextlib.contextmanager
    def replay(self):
        with torch.random.fork_rng(devices=self.devices, enabled=True, device_type="cuda"):
            torch.set_rng_state(self.cpu)
            for d, state in zip(self.devices, self.cuda):
                torch.cuda.set_rng_state(state, d)
            yield


def weighted_loss(loss_long, loss_short, w_long: float, w_short: float) -> torch.Tensor:
    """``w_long * L_long + w_short * L_short`` over the branches that were computed."""
    return sum(w * loss for w, loss in ((w_long, loss_long), (w_short, loss_short)) if loss is not None)


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _encode(net, images, long_tok, short_tok, device, amp: Amp):
    """Move one (sub-)batch to the device and run the dual encoder under autocast."""
    images = images.to(device, non_blocking=True)
    long_tok = None if long_tok is None else trim_padding(long_tok).to(device, non_blocking=True)
    short_tok = None if short_tok is None else trim_padding(short_tok).to(device, non_blocking=True)
    with amp.autocast():
        return net(images, long_tok, short_tok)


def _float(x):
    return None if x is None else x.float()


def contrastive_backward(net: nn.Module, images: torch.Tensor, long_tok: torch.Tensor | None,
                         short_tok: torch.Tensor | None, loss_fn: nn.Module, w_long: float, w_short: float,
                         amp: Amp, *, sub_batch: int | None = None, loss_weight: float = 1.0,
                         device: torch.device | str | None = None, no_sync=None):
    """Forward + backward of one contrastive batch; parameter gradients are ACCUMULATED (``+=``).

    ``net(images, long, short) -> (image_f, long_f, short_f, logit_scale)`` (normalised features;
    :class:`dgtrs_lib.training.trainer.DualEncoder`, possibly DDP-wrapped). A ``None`` text skips
    that branch. ``sub_batch`` >= the batch (or None): the plain step, one graph for the batch;
    smaller: gradient caching (module doc). ``loss_weight`` multiplies the loss before backward
    (``1 / accum_steps``). ``no_sync``: DDP's ``no_sync`` for all sub-batch backwards but the last.
    Inputs may live on the CPU (pinned): each sub-batch is moved to ``device`` when it is encoded.
    Returns the detached ``(loss, loss_long, loss_short)`` (a skipped branch: None).
    """
    n = images.shape[0]
    device = torch.device(device) if device is not None else images.device
    if sub_batch is None or sub_batch >= n:
        image_f, long_f, short_f, logit_scale = _encode(net, images, long_tok, short_tok, device, amp)
        loss_long, loss_short = loss_fn(image_f.float(), _float(long_f), _float(short_f), logit_scale.float())
        loss = weighted_loss(loss_long, loss_short, w_long, w_short)
        amp.scale(loss * loss_weight).backward()
        return loss.detach(), _detach(loss_long), _detach(loss_short)

    parts = _chunks(n, sub_batch)
    # 1. features of every sub-batch, no graphs; the random state of each is kept for step 3
    states, cached = [], []
    with torch.no_grad():
        for part in parts:
            states.append(RandState(device))
            out = _encode(net, images[part], _part(long_tok, part), _part(short_tok, part), device, amp)
            cached.append(out)
    leaves = []
    for k in range(3):  # image, long, short features of the whole batch, as leaves of the loss graph
        leaves.append(None if cached[0][k] is None else
                      torch.cat([c[k].float() for c in cached]).requires_grad_(True))
    scale_leaf = cached[0][3].detach().float().clone().requires_grad_(True)
    # 2. the loss of the whole batch and its gradient w.r.t. the features (the cache)
    loss_long, loss_short = loss_fn(leaves[0], leaves[1], leaves[2], scale_leaf)
    loss = weighted_loss(loss_long, loss_short, w_long, w_short)
    amp.scale(loss * loss_weight).backward()
    # 3. re-encode each sub-batch with its graph and backpropagate the cached gradients
    for j, part in enumerate(parts):
        last = j == len(parts) - 1
        sync = contextlib.nullcontext() if (last or no_sync is None) else no_sync()
        with sync:
            with states[j].replay():
                out = _encode(net, images[part], _part(long_tok, part), _part(short_tok, part), device, amp)
            surrogate = sum((o.float() * leaf.grad[part]).sum()
                            for o, leaf in zip(out[:3], leaves) if leaf is not None and o is not None)
            if last:  # the temperature's gradient, once, inside the synchronised backward
                surrogate = surrogate + out[3].float() * scale_leaf.grad
            surrogate.backward()
    return loss.detach(), _detach(loss_long), _detach(loss_short)


def _part(tokens, part):
    return None if tokens is None else tokens[part]


def _detach(x):
    return None if x is None else x.detach()
