"""The input pipeline: batches of (image, long caption, short caption) for the trainer, decoded,
transformed and tokenised by ``torch.utils.data.DataLoader`` worker processes.

Three kinds of training data, one iteration contract (:func:`iterate_batches` yields one
:class:`StepBatch` of ``batch_size`` pairs per micro-step and reports a resumable ``state()``):

* the miniature's in-memory tensors (:class:`dgtrs_lib.data.pairs.PairData`): indexed in the
  training process, nothing to decode;
* :class:`HubPairs` -- a map-style ``datasets.Dataset`` whose images stay encoded (Arrow on disk,
  e.g. MGRS-200k): workers decode + transform + tokenise the indices that :class:`BatchOrder` gives
  each micro-step, so the order and DDP's rank split are the same pure function of ``(seed, epoch)``
  as for the miniature and a resumed run needs only its step;
* :class:`StreamPairs` -- a ``datasets`` IterableDataset (``streaming=True``: a Hub-scale set such as
  the 2 M-image DGTRSD is never materialised), shuffled with a buffer, split across DDP ranks with
  ``datasets.distributed.split_dataset_by_node`` and across loader workers by shards (``datasets``
  assigns each worker its shards). Each worker cycles through epochs (``set_epoch``) and yields
  chunks of ``chunk`` decoded pairs tagged with its id and with how many raw items of its share it
  has read; the training process takes the chunks in a fixed worker rotation (whatever order they
  arrive in), so the batch sequence is deterministic. ``state()`` holds, per worker, the epoch and
  the number of raw items consumed: a resumed run's workers skip exactly those items (read, not
  decoded) and the rotation continues where it stopped, so the resumed batches are the ones the
  uninterrupted run would have seen.

Workers run with pinned memory (CUDA), ``persistent_workers`` and ``prefetch_factor`` chunks each
in flight (PyTorch ``torch.utils.data`` documentation: "Multi-process data loading", "Memory
Pinning"). Chunks of ``chunk`` pairs (64), not whole steps, cross the process boundary: a step of
2048 pairs at 224 px is 1.2 GB of float32, so whole-step prefetching would hold gigabytes.

Bad samples (unreadable image, empty caption) follow :mod:`dgtrs_lib.data.common`: a
:class:`~dgtrs_lib.data.common.DataFormatError` from the decoder is counted and skipped -- a stream
moves on to its next item; a map-style set substitutes the next index (so every batch stays full,
which the contrastive loss and DDP's equal batch sizes need). Counts of skipped and truncated
samples are in ``stats``; the trainer logs them. Long captions longer than the context are cut as
:func:`dgtrs_lib.model.tokenizer.tokenize` does, counted instead of warned (a warning per worker
per sample would flood the log).

Taught in: Dual-granularity curriculum training (notebooks/03-curriculum-training.ipynb)
"""
from __future__ import annotations

import collections
import logging
import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from dgtrs_lib.data.common import DataFormatError, clean_caption, open_rgb
from dgtrs_lib.data.dual import first_sentence
from dgtrs_lib.env import usable_cpus
from dgtrs_lib.model.tokenizer import tokenize
from dgtrs_lib.model.transforms import make_preprocess

log = logging.getLogger(__name__)

CHUNK = 64                 # pairs per worker message
MAX_REPLACEMENTS = 16      # a map-style set gives up after this many bad rows in a row


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """Drop the trailing all-padding columns (padding id 0 only ever follows EOT)."""
    width = int((tokens != 0).sum(dim=1).max()) if tokens.numel() else 0
    return tokens[:, : max(width, 2)]


class StepBatch(NamedTuple):
    images: torch.Tensor        # [B, 3, H, W] float32 (pinned when the loader pins)
    long_tokens: torch.Tensor   # [B, L] trimmed to the longest caption
    short_tokens: torch.Tensor
    epoch: int


# ----------------------------------------------------------------------------- order (map-style)
class BatchOrder:
    """Which pair indices micro-step ``m`` of process ``rank`` uses (a pure function).

    The permutation of epoch ``e`` comes from a generator seeded with ``seed`` and ``e``; a global
    batch of ``batch_size * world`` indices is split rank by rank (``drop_last``).
    """

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


# ----------------------------------------------------------------------------- one sample
@dataclass
class PairDecoder:
    """A raw row -> ``{"image", "long", "short", "truncated"}`` tensors; runs in the loader workers.

    ``derive_short``: the source has no short captions; use the long one's first sentence
    (Long-CLIP's rule, :func:`dgtrs_lib.data.dual.first_sentence`). ``short_only``: stage 1 -- the
    long slot carries the short caption too. Picklable (workers may be spawned).
    """

    image_size: int
    context_length: int
    long_column: str = "long_caption"
    short_column: str | None = "short_caption"
    image_column: str = "image"
    derive_short: bool = False
    short_only: bool = False

    def __post_init__(self):
        self.preprocess = make_preprocess(self.image_size)

    def texts(self, row: dict, item: str) -> tuple[str, str]:
        long = clean_caption(row.get(self.long_column), item, self.long_column)
        short = first_sentence(long) if self.derive_short else clean_caption(row.get(self.short_column), item,
                                                                              self.short_column)
        return (short if self.short_only else long), short

    def tokens(self, row: dict, item: str) -> tuple[torch.Tensor, torch.Tensor, int]:
        long, short = self.texts(row, item)
        ids, info = tokenize([long, short], self.context_length, return_info=True, warn=False)
        lengths = [min(n, self.context_length) for n in info.lengths]
        return ids[0, :lengths[0]], ids[1, :lengths[1]], int(info.lengths[0] > self.context_length)

    def image(self, row: dict, item: str) -> torch.Tensor:
        value = row.get(self.image_column)
        if isinstance(value, dict):
            value = value.get("bytes") if value.get("bytes") is not None else value.get("path")
        if value is None:
            raise DataFormatError(f"{item}: column {self.image_column!r} holds no image")
        if hasattr(value, "convert"):  # an already decoded PIL image (datasets Image(decode=True))
            im = value.convert("RGB")
        else:
            im, _ = open_rgb(value, item)
        return self.preprocess(im)

    def __call__(self, row: dict, item: str) -> dict:
        long, short, truncated = self.tokens(row, item)
        return {"image": self.image(row, item), "long": long, "short": short, "truncated": truncated}


def pad_tokens(seqs: list[torch.Tensor]) -> torch.Tensor:
    """Stack token sequences of different lengths, zero-padded to the longest."""
    out = torch.zeros(len(seqs), max((len(s) for s in seqs), default=2), dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


def collate_pairs(samples: list[dict]) -> dict:
    """Samples -> ``{"images", "long", "short", "truncated", "bad"}`` (tokens zero-padded)."""
    return {"images": torch.stack([s["image"] for s in samples]), "long": pad_tokens([s["long"] for s in samples]),
            "short": pad_tokens([s["short"] for s in samples]),
            "truncated": sum(s["truncated"] for s in samples), "bad": sum(s.get("bad", 0) for s in samples)}


# ----------------------------------------------------------------------------- settings
@dataclass
class LoaderSettings:
    """DataLoader knobs for the non-miniature sources."""

    num_workers: int = 0
    prefetch_factor: int = 4        # chunks in flight per worker
    pin_memory: bool = False        # True when training on CUDA
    chunk: int = CHUNK

    def loader_kwargs(self) -> dict:
        kw = {"num_workers": self.num_workers, "pin_memory": self.pin_memory}
        if self.num_workers > 0:
            kw.update(prefetch_factor=self.prefetch_factor, persistent_workers=True)
        return kw


def resolve_num_workers(value: "int | str" = "auto") -> int:
    """``"auto"``: one worker per CPU core this process may use, minus one for the training loop, shared
    between the processes of this machine (``LOCAL_WORLD_SIZE``), at most 8."""
    if value != "auto":
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"num_workers must be 'auto' or an integer >= 0, got {value!r}")
        return value
    cpus = usable_cpus()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(8, cpus // max(local, 1) - 1))


def _chunk_size(batch: int, chunk: int) -> int:
    """The largest divisor of ``batch`` that is <= ``chunk`` (steps are whole chunks)."""
    return next(c for c in range(min(batch, chunk), 0, -1) if batch % c == 0)


def _join(chunks: list[dict], pin: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate a step's chunks (into pinned memory when the loader pins)."""
    if len(chunks) == 1:
        c = chunks[0]
        return c["images"], trim_padding(c["long"]), trim_padding(c["short"])
    first = chunks[0]["images"]
    out = torch.empty((sum(len(c["images"]) for c in chunks), *first.shape[1:]), dtype=first.dtype, pin_memory=pin)
    torch.cat([c["images"] for c in chunks], out=out)
    long = pad_tokens([row for c in chunks for row in trim_padding(c["long"])])
    short = pad_tokens([row for c in chunks for row in trim_padding(c["short"])])
    return out, trim_padding(long), trim_padding(short)


# ----------------------------------------------------------------------------- in memory
class MemoryBatches:
    """The miniature: index the in-memory tensors in the training process."""

    def __init__(self, data, batch_size: int, seed: int, rank: int, world: int, start: int, stop: int):
        self.data, self.order, self.micro, self.stop = data, BatchOrder(len(data), batch_size, seed, rank, world), start, stop
        self.stats = {"samples": 0, "bad": 0, "truncated": 0}
        self.workers = 0

    def __iter__(self):
        return self

    def __next__(self) -> StepBatch:
        if self.micro >= self.stop:
            raise StopIteration
        idx, epoch = self.order(self.micro)
        self.micro += 1
        self.stats["samples"] += len(idx)
        return StepBatch(*self.data.batch(idx), epoch)

    def state(self) -> dict:
        return {"kind": "memory", **self.stats}

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------- map-style
class HubPairs(Dataset):
    """Dual pairs of a map-style ``datasets.Dataset`` with encoded images, decoded on demand.

    ``ds`` has an image column (``datasets.Image(decode=False)``: ``{"bytes", "path"}``) and caption
    columns named in ``decoder``. ``dataset[i]`` decodes row ``i`` (or, when it is bad, the next
    good row; counted in the sample's ``bad``); :meth:`batch` decodes a batch in this process (the
    evaluation helpers); :meth:`batches` is the training iterator with worker processes.
    """

    def __init__(self, ds, decoder: PairDecoder, source: str = "dataset"):
        missing = [c for c in (decoder.image_column, decoder.long_column,
                               None if decoder.derive_short else decoder.short_column) if c and c not in ds.column_names]
        if missing:
            raise DataFormatError(f"{source}: column(s) {missing} not found; columns are {ds.column_names}")
        self.ds, self.decoder, self.source = ds, decoder, source
        self._tokens = None

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        bad = 0
        for k in range(MAX_REPLACEMENTS):
            j = (int(i) + k) % len(self.ds)
            try:
                sample = self.decoder(self.ds[j], f"{self.source}: row {j}")
            except DataFormatError as err:
                bad += 1
                log.debug("skipped %s", err)
                continue
            sample["bad"] = bad
            return sample
        raise DataFormatError(f"{self.source}: rows {int(i)}..{int(i) + MAX_REPLACEMENTS - 1} are all unreadable; "
                              "check the dataset (or filter it with dgtrs_lib.data.dual.to_dual(on_error='skip'))")

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = collate_pairs([self[int(i)] for i in idx])
        return c["images"], trim_padding(c["long"]), trim_padding(c["short"])

    def _all_tokens(self):
        if self._tokens is None:
            longs, shorts = [], []
            for j in range(len(self.ds)):  # text only (no image decode); for the validation split
                row = {k: v for k, v in self.ds[j].items() if k != self.decoder.image_column}
                long, short, _ = self.decoder.tokens(row, f"{self.source}: row {j}")
                longs.append(long)
                shorts.append(short)
            self._tokens = pad_tokens(longs), pad_tokens(shorts)
        return self._tokens

    @property
    def long_tokens(self) -> torch.Tensor:
        """Every row's long caption tokens (computed once; text only, for the held-out checks)."""
        return self._all_tokens()[0]

    @property
    def short_tokens(self) -> torch.Tensor:
        return self._all_tokens()[1]

    def batches(self, *, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0,
                stop: int, state: dict | None = None, settings: LoaderSettings | None = None) -> "MapBatches":
        return MapBatches(self, batch_size, seed, rank, world, start, stop, settings or LoaderSettings())


class _ChunkSampler:
    """Index chunks of micro-steps ``start .. stop - 1`` (a DataLoader ``batch_sampler``)."""

    def __init__(self, order: BatchOrder, start: int, stop: int, chunk: int):
        self.order, self.start, self.stop, self.chunk = order, start, stop, chunk

    def __iter__(self):
        for m in range(self.start, self.stop):
            idx = self.order(m)[0].tolist()
            for k in range(0, len(idx), self.chunk):
                yield idx[k:k + self.chunk]

    def __len__(self) -> int:
        return (self.stop - self.start) * -(-self.order.b // self.chunk)


class MapBatches:
    """Training batches of a :class:`HubPairs`, decoded by DataLoader workers."""

    def __init__(self, pairs: HubPairs, batch_size: int, seed: int, rank: int, world: int, start: int, stop: int,
                 settings: LoaderSettings):
        self.order = BatchOrder(len(pairs), batch_size, seed, rank, world)
        self.chunk = _chunk_size(batch_size, settings.chunk)
        self.per_step = batch_size // self.chunk
        self.micro, self.stop, self.pin, self.workers = start, stop, settings.pin_memory, settings.num_workers
        self.stats = {"samples": 0, "bad": 0, "truncated": 0}
        self.loader = DataLoader(pairs, batch_sampler=_ChunkSampler(self.order, start, stop, self.chunk),
                                 collate_fn=collate_pairs, **settings.loader_kwargs())
        self._it = iter(self.loader) if start < stop else iter(())

    def __iter__(self):
        return self

    def __next__(self) -> StepBatch:
        if self.micro >= self.stop:
            raise StopIteration
        chunks = [next(self._it) for _ in range(self.per_step)]
        epoch = self.micro // self.order.per_epoch
        self.micro += 1
        for c in chunks:
            self.stats["samples"] += len(c["images"])
            self.stats["bad"] += c["bad"]
            self.stats["truncated"] += c["truncated"]
        return StepBatch(*_join(chunks, self.pin), epoch)

    def state(self) -> dict:
        return {"kind": "map", **self.stats}

    def close(self) -> None:
        self._it = iter(())
        del self.loader


# ----------------------------------------------------------------------------- streaming
class StreamPairs:
    """Dual pairs of a ``datasets.IterableDataset`` (``streaming=True``), never materialised.

    ``ds`` yields raw rows (image column ``datasets.Image(decode=False)``); ``shuffle_buffer`` > 0
    shuffles with ``IterableDataset.shuffle(seed, buffer_size)`` (shard order + buffer, re-drawn
    per epoch by ``set_epoch``). ``len()`` is unknown and raises ``TypeError``.
    """

    def __init__(self, ds, decoder: PairDecoder, source: str = "stream", shuffle_buffer: int = 0):
        missing = [c for c in (decoder.image_column, decoder.long_column,
                               None if decoder.derive_short else decoder.short_column)
                   if c and ds.column_names is not None and c not in ds.column_names]
        if missing:
            raise DataFormatError(f"{source}: column(s) {missing} not found; columns are {ds.column_names}")
        self.ds, self.decoder, self.source, self.shuffle_buffer = ds, decoder, source, shuffle_buffer

    def __len__(self):
        raise TypeError(f"{self.source}: a streamed dataset has no known length")

    def rank_stream(self, seed: int, rank: int, world: int, workers: int):
        """This rank's share of the stream, shuffled (the same shuffle on every rank) and split."""
        from datasets.distributed import split_dataset_by_node

        ds = self.ds
        if workers * world > ds.num_shards:
            try:
                ds = ds.reshard()  # parquet: one shard per row group instead of per file
            except NotImplementedError:  # other formats: fewer busy workers (datasets logs how many)
                pass
        if self.shuffle_buffer:
            ds = ds.shuffle(seed=seed, buffer_size=self.shuffle_buffer)
        if world > 1:
            ds = split_dataset_by_node(ds, rank=rank, world_size=world)
        return ds

    def batches(self, *, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0,
                stop: int, state: dict | None = None, settings: LoaderSettings | None = None) -> "StreamBatches":
        return StreamBatches(self, batch_size, seed, rank, world, stop - start, state, settings or LoaderSettings())


class _StreamWorker(IterableDataset):
    """Runs in each loader worker: its share of the rank's stream, decoded in chunks, epoch after epoch."""

    def __init__(self, ds, decoder: PairDecoder, source: str, chunk: int, positions: dict, exhausted: set):
        self.ds, self.decoder, self.source, self.chunk = ds, decoder, source, chunk
        self.positions, self.exhausted = positions, exhausted

    def __iter__(self):
        info = get_worker_info()
        w = info.id if info is not None else 0
        if w in self.exhausted:
            yield {"worker": w, "exhausted": True}
            return
        epoch, skip = self.positions.get(w, (0, 0))
        bad = 0
        while True:
            self.ds.set_epoch(epoch)
            raw, chunks, samples = 0, 0, []
            for row in self.ds:
                raw += 1
                if raw <= skip:  # consumed before the interruption: read, not decoded
                    continue
                try:
                    sample = self.decoder(row, f"{self.source}: worker {w}, epoch {epoch}, item {raw}")
                except DataFormatError as err:
                    bad += 1
                    log.debug("skipped %s", err)
                    continue
                samples.append(sample)
                if len(samples) == self.chunk:
                    out = collate_pairs(samples)
                    out.update(worker=w, epoch=epoch, raw=raw, bad=bad + out["bad"])
                    yield out
                    samples, bad, chunks = [], 0, chunks + 1
            if chunks == 0 and skip == 0:  # this worker's share holds less than one chunk: stop it
                yield {"worker": w, "exhausted": True}
                return
            epoch, skip = epoch + 1, 0


class StreamBatches:
    """Training batches of a :class:`StreamPairs`: a fixed worker rotation over the workers' chunks."""

    def __init__(self, pairs: StreamPairs, batch_size: int, seed: int, rank: int, world: int, n_steps: int,
                 state: dict | None, settings: LoaderSettings):
        self.chunk = _chunk_size(batch_size, settings.chunk)
        self.per_step, self.remaining, self.pin = batch_size // self.chunk, n_steps, settings.pin_memory
        self.workers = settings.num_workers
        n_workers = max(settings.num_workers, 1)
        state = state or {}
        if state and (state.get("workers") != n_workers or state.get("chunk") != self.chunk):
            raise ValueError(f"{pairs.source}: the saved stream position was read by {state.get('workers')} loader "
                             f"worker(s) in chunks of {state.get('chunk')}; resume with num_workers="
                             f"{state.get('workers')} (this run: {n_workers} worker(s), chunks of {self.chunk})")
        self.positions = {int(k): tuple(v) for k, v in state.get("positions", {}).items()}
        self.exhausted = set(state.get("exhausted", []))
        self.active = [w for w in range(n_workers) if w not in self.exhausted]
        self.turn = int(state.get("turn", 0))
        self.n_workers = n_workers
        self.stats = {k: int(state.get(k, 0)) for k in ("samples", "bad", "truncated")}
        self.pending = collections.defaultdict(collections.deque)
        worker = _StreamWorker(pairs.rank_stream(seed, rank, world, settings.num_workers), pairs.decoder,
                               pairs.source, self.chunk, dict(self.positions), set(self.exhausted))
        self.source = pairs.source
        self.loader = DataLoader(worker, batch_size=None, **settings.loader_kwargs())
        self._it = iter(self.loader) if n_steps > 0 else iter(())  # a finished run starts no workers

    def __iter__(self):
        return self

    def _next_chunk(self) -> dict:
        while True:
            if not self.active:
                raise RuntimeError(f"{self.source}: the stream holds less than one chunk of {self.chunk} readable "
                                   f"pairs per loader worker; use fewer workers or a larger dataset")
            self.turn %= len(self.active)
            w = self.active[self.turn]
            if self.pending[w]:
                item = self.pending[w].popleft()
            else:
                item = next(self._it)
                if item["worker"] != w:
                    self.pending[item["worker"]].append(item)
                    continue
            if item.get("exhausted"):
                self.active.remove(w)
                self.exhausted.add(w)
                continue
            self.turn += 1
            return item

    def __next__(self) -> StepBatch:
        if self.remaining <= 0:
            raise StopIteration
        chunks = [self._next_chunk() for _ in range(self.per_step)]
        self.remaining -= 1
        for c in chunks:
            self.positions[c["worker"]] = (c["epoch"], c["raw"])
            self.stats["samples"] += len(c["images"])
            self.stats["bad"] += c["bad"]
            self.stats["truncated"] += c["truncated"]
        return StepBatch(*_join(chunks, self.pin), max(c["epoch"] for c in chunks))

    def state(self) -> dict:
        """Where each worker stands (epoch, raw items consumed) and whose turn it is: enough to resume."""
        return {"kind": "stream", "workers": self.n_workers, "chunk": self.chunk,
                "positions": {w: list(p) for w, p in self.positions.items()}, "exhausted": sorted(self.exhausted),
                "turn": self.turn % max(len(self.active), 1), **self.stats}

    def close(self) -> None:
        self._it = iter(())
        del self.loader


# ----------------------------------------------------------------------------- one entry point
def iterate_batches(data: Any, *, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0,
                    stop: int, state: dict | None = None, settings: LoaderSettings | None = None):
    """The training iterator of ``data`` for micro-steps ``start .. stop - 1`` of this rank.

    In-memory ``PairData``: indexed here; :class:`HubPairs` / :class:`StreamPairs`: their
    ``batches`` (worker processes). ``state`` is what the iterator's ``state()`` returned when the
    run was saved (only streams need it).
    """
    if hasattr(data, "batches"):
        return data.batches(batch_size=batch_size, seed=seed, rank=rank, world=world, start=start, stop=stop,
                            state=state, settings=settings)
    return MemoryBatches(data, batch_size, seed, rank, world, start, stop)
