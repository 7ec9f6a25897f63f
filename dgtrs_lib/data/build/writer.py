"""The output of a build: a dual-granularity dataset in parquet shards, written atomically, resumable.

Layout of a build folder::

    build.json                 what was built and how (input, captioner provenance, filters, shards)
    data/shard-00000.parquet   the kept rows of shard 0, the dual schema of dgtrs_lib.data.schema
    shards/shard-00000.json    shard 0's record: counts per filter, dropped rows with their reason,
                               fact-check totals, timings -- written AFTER the parquet file
    report.json, README.md     the funnel and the data card (dgtrs_lib.data.build.report)

A shard is **finished** when its record exists (the record is the commit marker: it is written
after the parquet file, each through ``dgtrs_lib.io``'s atomic rename, so a kill at any moment
leaves either a finished shard or none -- at worst a stale temporary file, removed on the next
start). A rerun with the same configuration skips the finished shards and rebuilds the one that was
interrupted; the duplicate index is restored from the kept rows of the finished shards, so the
result equals an uninterrupted build. A shard's rows are always the same images (the input's order
is fixed, :mod:`dgtrs_lib.data.build.inputs`).

:func:`load_built` reads a build back as one ``datasets.Dataset`` (or streams it); the parquet
files load anywhere ``datasets`` does: ``load_dataset("parquet", data_files="OUT/data/*.parquet")``,
which is what notebook 03's gpu profile takes through ``DGTRS_GPU_DATA``.

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from __future__ import annotations

import io as _io
import json
from pathlib import Path

from dgtrs_lib.data.common import DataFormatError
from dgtrs_lib.data.schema import DUAL_COLUMNS, dual_dataset, dual_features
from dgtrs_lib.errors import file_not_found
from dgtrs_lib.io import atomic_write_bytes, atomic_write_json, remove_stale_tmp

DATA_DIR, SHARD_DIR = "data", "shards"
CONFIG_FILE, REPORT_FILE, CARD_FILE = "build.json", "report.json", "README.md"


class ShardStore:
    """The shards of one build folder (module doc)."""

    def __init__(self, out):
        self.out = Path(out)
        self.data, self.records_dir = self.out / DATA_DIR, self.out / SHARD_DIR

    def shard_path(self, i: int) -> Path:
        return self.data / f"shard-{i:05d}.parquet"

    def record_path(self, i: int) -> Path:
        return self.records_dir / f"shard-{i:05d}.json"

    def clean_stale(self) -> list[Path]:
        """Remove what an interrupted write left (temporary files, a parquet file without its record)."""
        stale = remove_stale_tmp(self.data) + remove_stale_tmp(self.records_dir)
        for p in sorted(self.data.glob("shard-*.parquet")) if self.data.is_dir() else []:
            if not self.record_path(int(p.stem.split("-")[1])).exists():
                p.unlink()
                stale.append(p)
        return stale

    def done(self, i: int) -> bool:
        return self.record_path(i).is_file() and self.shard_path(i).is_file()

    def write(self, i: int, rows: dict, record: dict) -> None:
        """Shard ``i``: the parquet file of ``rows`` (dual columns), then its record."""
        import pyarrow.parquet as pq

        buf = _io.BytesIO()  # the Arrow table carries the datasets features in its schema metadata
        pq.write_table(dual_dataset({k: rows[k] for k in DUAL_COLUMNS}).data.table, buf)
        atomic_write_bytes(self.shard_path(i), buf.getvalue())
        atomic_write_json(self.record_path(i), record)

    def record(self, i: int) -> dict:
        return json.loads(self.record_path(i).read_text(encoding="utf-8"))

    def records(self) -> list[dict]:
        if not self.records_dir.is_dir():
            return []
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.records_dir.glob("shard-*.json"))]

    def shard_files(self) -> list[Path]:
        return [p for p in sorted(self.data.glob("shard-*.parquet"))
                if self.record_path(int(p.stem.split("-")[1])).exists()] if self.data.is_dir() else []

    def kept_texts(self) -> tuple[list[str], list[str]]:
        """(long descriptions, image ids) of the kept rows of the finished shards."""
        import pyarrow.parquet as pq

        texts, ids = [], []
        for p in self.shard_files():
            t = pq.read_table(p, columns=["image_id", "long_caption"])
            texts += t.column("long_caption").to_pylist()
            ids += t.column("image_id").to_pylist()
        return texts, ids


def load_built(out, *, streaming: bool = False):
    """The kept rows of a build folder as one ``datasets.Dataset`` (dual schema); ``streaming``: an
    ``IterableDataset`` over the parquet shards."""
    import datasets

    store = ShardStore(out)
    files = store.shard_files()
    if not files:
        raise DataFormatError(file_not_found(store.data / "shard-00000.parquet",
                                             "a build folder written by python -m dgtrs_lib.data.build"))
    if streaming:
        return datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train", streaming=True,
                                     features=dual_features())
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.read_table(f) for f in files])
    ds = datasets.Dataset(table)  # features from the schema metadata the shards carry
    if ds.features != dual_features():
        raise DataFormatError(f"{store.data}: shards with columns {dict(ds.features)}; expected the dual schema")
    return ds
