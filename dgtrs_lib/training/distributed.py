"""Several processes: the process group from ``torchrun``'s environment, and the feature gather of
the contrastive loss.

* ``setup_distributed`` initialises the default process group when ``torchrun`` set
  ``WORLD_SIZE`` > 1 (nccl + ``cuda:LOCAL_RANK`` on GPU, gloo on CPU), following the PyTorch
  ``torchrun`` / ``init_process_group`` documentation (environment-variable initialisation).
* ``dist_info`` is ``(rank, world_size)``, or ``(0, 1)`` without a process group, so the same
  code runs in one process.
* ``gather`` concatenates image and text features over all processes in rank order, with
  gradient, by open_clip's ``gather_features(..., local_loss=True)`` (open_clip
  ``src/open_clip/loss.py``, ``book/references.bib`` key ``ilharco2021openclip``). Long-CLIP's
  ``model/model_longclip.py`` gathers with gradient too since its DDP fix (README, 2024-05-21);
  DGTRS as released gathers without gradient (``gather_with_grad=False`` here, where open_clip
  re-inserts the local tensor).

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import os
import warnings

import torch

try:
    from open_clip.loss import gather_features as _open_clip_gather
except ImportError:  # pragma: no cover - open_clip is a hard dependency, this is defensive
    _open_clip_gather = None


def dist_info() -> tuple[int, int]:
    """(rank, world_size) of the default process group, or (0, 1) without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def setup_distributed(device: torch.device | str | None = None) -> tuple[int, int, torch.device]:
    """Initialise the process group from ``torchrun``'s environment (if ``WORLD_SIZE`` > 1).

    Returns ``(rank, world_size, device)``; nccl + ``cuda:LOCAL_RANK`` on GPU, gloo on CPU.
    An explicit ``device`` wins (e.g. ``"cpu"`` for a gloo run on a GPU machine).
    """
    use_cuda = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank, world = dist_info()
    if device is not None:
        return rank, world, torch.device(device)
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def gather(a: torch.Tensor, b: torch.Tensor, gather_with_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate ``a`` and ``b`` over all processes (rank order); identity in one process."""
    rank, world = dist_info()
    if world == 1:
        return a, b
    with warnings.catch_warnings():  # torch 2.14 marks torch.distributed.nn.all_gather deprecated; it still works
        warnings.simplefilter("ignore", FutureWarning)
        return _open_clip_gather(a, b, local_loss=True, gather_with_grad=gather_with_grad, rank=rank, world_size=world)
