"""The input pipeline (dgtrs_lib.data.loader): DataLoader workers decode + transform + tokenise, bad
samples are counted and skipped, a stream is split across ranks and resumes where it stopped."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dgtrs_lib.data.common import DataFormatError
from dgtrs_lib.data.loader import BatchOrder, HubPairs, LoaderSettings, PairDecoder, StreamPairs, iterate_batches
from dgtrs_lib.training.metrics_log import read_metrics
from dgtrs_lib.training.trainer import load_train_state, train

N, BAD_IMAGE, BAD_CAPTION = 48, 5, 9


def _jpeg(rng) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(autouse=True)
def _short_arrow_shutdown_wait(monkeypatch):
    """``datasets`` sleeps ``SLEEP_TIME_ON_THREADS_SHUTDOWN`` (5 s) each time a parquet stream's
    iterator closes, to let Arrow's reader threads finish (apache/arrow#45214); these shards are one
    row group of a dozen rows, read long before, so a fraction of a second is wait enough and each
    stream test stops spending most of its time asleep."""
    import datasets

    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0.2)


@pytest.fixture(scope="module")
def dual(tmp_path_factory):
    """48 JPEG pairs (one corrupt image, one empty short caption) as a Dataset and as 4 parquet shards."""
    import datasets

    rng = np.random.default_rng(0)
    rows = {"image": [], "long_caption": [], "short_caption": []}
    for i in range(N):
        rows["image"].append({"bytes": b"not a jpeg" if i == BAD_IMAGE else _jpeg(rng), "path": None})
        rows["long_caption"].append(f"item {i}: an aerial view with fields, a river and {i} houses " * 2)
        rows["short_caption"].append("" if i == BAD_CAPTION else f"item {i}")
    features = datasets.Features({"image": datasets.Image(decode=False), "long_caption": datasets.Value("string"),
                                  "short_caption": datasets.Value("string")})
    ds = datasets.Dataset.from_dict(rows, features=features)
    folder = tmp_path_factory.mktemp("dual")
    files = []
    for k in range(4):
        files.append(str(folder / f"part-{k}.parquet"))
        ds.shard(4, k, contiguous=True).to_parquet(files[-1])
    return ds, files


def _decoder(**kw):
    return PairDecoder(image_size=64, context_length=104, **kw)


def _stream(files, shuffle_buffer=0):
    import datasets

    return StreamPairs(datasets.load_dataset("parquet", data_files=files, split="train", streaming=True),
                       _decoder(), "test-stream", shuffle_buffer=shuffle_buffer)


def _take(it, n):
    return [next(it) for _ in range(n)]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x.images, y.images) and torch.equal(x.long_tokens, y.long_tokens)
        assert torch.equal(x.short_tokens, y.short_tokens) and x.epoch == y.epoch


def test_map_style_workers_give_the_in_process_batches(dual):
    ds, _ = dual
    pairs = HubPairs(ds, _decoder(), "test")
    runs = {}
    for workers in (0, 2):
        it = iterate_batches(pairs, batch_size=8, seed=1, stop=5, settings=LoaderSettings(num_workers=workers, chunk=4))
        runs[workers] = list(it)
        if workers:
            assert it.loader.num_workers == 2 and it.loader.persistent_workers and it.loader.prefetch_factor == 4
        assert it.state()["samples"] == 40
    _same(runs[0], runs[2])
    order = BatchOrder(N, 8, seed=1)
    images, long_tok, short_tok = pairs.batch(order(2)[0])
    assert torch.equal(runs[2][2].images, images) and torch.equal(runs[2][2].long_tokens, long_tok)
    assert runs[0][0].images.shape == (8, 3, 64, 64) and runs[0][0].images.dtype == torch.float32
    assert runs[0][0].long_tokens.shape[1] > runs[0][0].short_tokens.shape[1]  # tokenised in the workers, trimmed


def test_bad_samples_are_counted_and_skipped(dual):
    ds, _ = dual
    pairs = HubPairs(ds, _decoder(), "test")
    assert pairs[BAD_IMAGE]["bad"] == 1 and torch.equal(pairs[BAD_IMAGE]["image"], pairs[BAD_IMAGE + 1]["image"])
    assert pairs[BAD_CAPTION]["bad"] == 1 and pairs[0]["bad"] == 0
    it = iterate_batches(pairs, batch_size=8, seed=0, stop=6, settings=LoaderSettings(chunk=8))
    batches = list(it)
    assert all(len(b.images) == 8 for b in batches)  # batches stay full
    assert it.state()["bad"] == 2  # one epoch of 48: both bad rows met once
    only_bad = HubPairs(ds.select([BAD_IMAGE]), _decoder(), "test")
    with pytest.raises(DataFormatError, match="all unreadable"):
        only_bad[0]
    with pytest.raises(DataFormatError, match="'caption'"):
        HubPairs(ds, _decoder(long_column="caption"), "test")


def test_stream_is_split_across_ranks(dual):
    _, files = dual
    seen = {}
    for rank in (0, 1):
        it = iterate_batches(_stream(files), batch_size=4, seed=0, rank=rank, world=2, stop=40,
                             settings=LoaderSettings(chunk=4))
        rows = set()
        for batch in it:
            if batch.epoch > 0:
                break
            rows |= {tuple(r.tolist()) for r in batch.long_tokens}
        seen[rank] = rows
    assert not seen[0] & seen[1]  # disjoint shares
    assert len(seen[0]) + len(seen[1]) == N - 2 - 2  # every good pair once (2 bad, 2 left in a partial chunk)


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_resume_continues_where_it_stopped(dual, workers):
    _, files = dual
    settings = LoaderSettings(num_workers=workers, chunk=4)
    full = _take(iterate_batches(_stream(files, shuffle_buffer=8), batch_size=4, seed=3, stop=14, settings=settings), 14)
    first = iterate_batches(_stream(files, shuffle_buffer=8), batch_size=4, seed=3, stop=14, settings=settings)
    head = _take(first, 5)
    state = json.loads(json.dumps(first.state()))  # the state survives a round trip through plain data
    first.close()
    if workers:
        assert state["turn"] == 1  # stopped mid-rotation: worker 1's chunk comes next
    resumed = iterate_batches(_stream(files, shuffle_buffer=8), batch_size=4, seed=3, start=5, stop=14, state=state,
                              settings=settings)
    _same(head + _take(resumed, 9), full)
    assert max(b.epoch for b in full) >= 1  # the run crossed an epoch boundary
    with pytest.raises(ValueError, match="num_workers="):
        iterate_batches(_stream(files), batch_size=4, seed=3, start=5, stop=14, state=state,
                        settings=LoaderSettings(num_workers=workers + 2, chunk=4))


def _tiny():
    from dgtrs_lib import create_model, stretch_model

    torch.manual_seed(0)
    return stretch_model(create_model("tiny"), keep=8, ratio=4)


def test_trainer_resumes_a_stream_bitwise(dual, tmp_path):
    from test_train import cfg

    _, files = dual
    conf = dict(steps=6, batch_size=4, ckpt_every=3, num_workers=2, schedule="fixed")
    ref_model = _tiny()
    train(ref_model, _stream(files, shuffle_buffer=8), cfg(**conf), tmp_path / "ref")

    class Crash(Exception):
        pass

    def crash_at_4(step, record):
        if step == 4:
            raise Crash

    with pytest.raises(Crash):
        train(_tiny(), _stream(files, shuffle_buffer=8), cfg(**conf), tmp_path / "cut", callback=crash_at_4)
    data_state = load_train_state(tmp_path / "cut" / "train_state.pt")["data"]
    assert data_state[0]["kind"] == "stream" and data_state[0]["samples"] == 12
    resumed = _tiny()
    res = train(resumed, _stream(files, shuffle_buffer=8), cfg(**conf), tmp_path / "cut")
    for k, v in ref_model.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), f"{k} differs after resume"
    ref, cut = read_metrics(tmp_path / "ref" / "metrics.jsonl"), read_metrics(res.metrics)
    assert [r["loss"] for r in cut] == [r["loss"] for r in ref]
    assert res.setup["num_workers"] == 2 and res.setup["data"]["samples"] == 24


def test_trainer_reads_a_map_style_set_with_workers(dual, tmp_path):
    from test_train import cfg

    ds, _ = dual
    res = train(_tiny(), HubPairs(ds, _decoder(), "test"), cfg(steps=2, batch_size=8, num_workers=2), tmp_path)
    recs = read_metrics(res.metrics)
    assert len(recs) == 2 and res.setup["num_workers"] == 2 and "bad_samples" in recs[0]


def test_load_pairs_gpu_streams_and_maps(dual, monkeypatch):
    from dgtrs_lib.data.pairs import load_pairs

    _, files = dual
    spec = {"source": "parquet", "data_files": files, "long_column": "long_caption", "short_column": "short_caption"}
    monkeypatch.setenv("DGTRS_GPU_DATA", json.dumps(spec))
    train_pairs, val = load_pairs("gpu", "train", 104, 64), load_pairs("gpu", "validation", 104, 64)
    assert isinstance(train_pairs, HubPairs) and len(train_pairs) == N - 4 and len(val) == 4
    assert val.long_tokens.shape[0] == 4  # text-only tokens for the held-out checks
    monkeypatch.setenv("DGTRS_GPU_DATA", json.dumps({**spec, "streaming": True, "shuffle_buffer": 16}))
    stream, val = load_pairs("gpu", "train", 104, 64), load_pairs("gpu", "validation", 104, 64)
    assert isinstance(stream, StreamPairs) and stream.shuffle_buffer == 16 and isinstance(val, HubPairs)
    with pytest.raises(TypeError, match="no known length"):
        len(stream)
    monkeypatch.setenv("DGTRS_GPU_DATA", json.dumps({**spec, "colour": 1}))
    with pytest.raises(ValueError, match="unknown field"):
        load_pairs("gpu", "train", 104, 64)


def test_num_workers_setting():
    from dgtrs_lib.data.loader import resolve_num_workers

    assert resolve_num_workers(3) == 3
    assert 0 <= resolve_num_workers("auto") <= 8
    with pytest.raises(ValueError, match="num_workers"):
        resolve_num_workers(-1)


def test_in_memory_images_decoded_by_workers_equal_the_one_process_tensor():
    """A large embedded split is pre-processed by DataLoader workers: the same tensor, in order."""
    from dgtrs_lib.data.pairs import _images_tensor
    from dgtrs_lib.data.syndg import generate_split
    from dgtrs_lib.model.transforms import make_preprocess

    ds = generate_split(40, "test", seed=2)
    pre = make_preprocess(64)
    one = _images_tensor(ds, pre, workers=0)
    assert one.shape == (40, 3, 64, 64)
    assert torch.equal(_images_tensor(ds, pre, workers=2), one)
