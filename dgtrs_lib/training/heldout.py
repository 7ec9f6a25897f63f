"""The held-out loss during training: a convergence signal without the batch-to-batch noise.

The training loss of one step is measured on that step's batch, so it moves with the batch as much
as with the model (on the miniature the per-step long-text loss varies by about a third from one
batch to the next). Whether a run has stopped improving is better read from the contrastive loss
(``dgtrs_lib.training.losses.contrastive_loss``, both granularities) of the SAME held-out pairs,
encoded at a few chosen steps: only the model changes between two readings. This is the held-out
loss that early stopping and the usual plateau checks read (e.g. Prechelt, *Early stopping --
but when?*, 1998); here it only reports, it never stops a run.

:class:`HeldoutLoss` is a ``callback`` for ``dgtrs_lib.training.trainer.train``: at each step of
``at`` (0-based) it evaluates the first ``n`` pairs of a :class:`~dgtrs_lib.data.pairs.PairData`
in fixed batches, with gradients off and the model in eval mode (then back in train mode; no
random number is drawn, so the run's data order is unchanged), and rank 0 appends one JSON line
``{"step", "loss_long", "loss_short"}`` to ``heldout.jsonl`` in the run folder.
:func:`read_heldout` reads it back (last line per step, as a resumed run may repeat one).

Taught in: Ablations: testing the paper's claims in miniature (notebooks/08-ablations.ipynb)
"""
from __future__ import annotations

from pathlib import Path

import torch

from dgtrs_lib.data.pairs import PairData, trim_padding
from dgtrs_lib.io import append_jsonl, read_jsonl
from dgtrs_lib.training.distributed import dist_info
from dgtrs_lib.training.losses import contrastive_loss

HELDOUT_FILE = "heldout.jsonl"


def heldout_loss(model, pairs: PairData, *, n: int = 512, batch_size: int = 64) -> dict:
    """Mean contrastive loss (long and short) of ``model`` on the first ``n`` pairs of ``pairs``,
    in batches of ``batch_size`` (each batch its own contrastive problem, as in training)."""
    n = min(n, pairs.n)
    if n < batch_size:
        raise ValueError(f"heldout_loss: need at least batch_size={batch_size} held-out pairs, got {n}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    totals, count = {"loss_long": 0.0, "loss_short": 0.0}, 0
    try:
        with torch.no_grad():
            for start in range(0, n - batch_size + 1, batch_size):
                idx = torch.arange(start, start + batch_size)
                images = pairs.images[idx] if isinstance(pairs.images, torch.Tensor) else pairs.images(idx)
                image = model.encode_image(images.to(device), normalize=True)
                for key, tokens in (("loss_long", pairs.long_tokens), ("loss_short", pairs.short_tokens)):
                    text = model.encode_text(trim_padding(tokens[idx]).to(device), normalize=True)
                    totals[key] += float(contrastive_loss(image, text, model.logit_scale))
                count += 1
    finally:
        model.train(was_training)
    return {k: v / count for k, v in totals.items()}


class HeldoutLoss:
    """``train(..., callback=HeldoutLoss(model, pairs, out_dir, at=...))``: the held-out loss at the
    steps ``at`` (0-based), appended to ``out_dir / HELDOUT_FILE``."""

    def __init__(self, model, pairs: PairData, out_dir, at, *, n: int = 512, batch_size: int = 64):
        self.model, self.pairs, self.n, self.batch_size = model, pairs, n, batch_size
        self.path = Path(out_dir) / HELDOUT_FILE
        self.at = set(int(s) for s in at)

    def __call__(self, step: int, record: dict) -> None:
        if step in self.at:
            loss = heldout_loss(self.model, self.pairs, n=self.n, batch_size=self.batch_size)
            if dist_info()[0] == 0:  # every rank holds the same model: one writes
                append_jsonl(self.path, {"step": step, **loss})


def read_heldout(out_dir) -> dict:
    """``{"step": [...], "loss_long": [...], "loss_short": [...]}`` from a run folder (empty lists
    when the run recorded none)."""
    path = Path(out_dir) / HELDOUT_FILE
    rows = {}
    if path.exists():
        for rec in read_jsonl(path):
            rows[rec["step"]] = rec
    steps = sorted(rows)
    return {"step": steps, **{k: [rows[s][k] for s in steps] for k in ("loss_long", "loss_short")}}
