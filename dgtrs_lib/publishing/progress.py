"""Progress on the terminal while the runner executes a notebook, and the kernel side of it.

Papermill runs each notebook in a kernel whose output lands in the executed copy, not on the
terminal, so a 20-minute training cell is 20 minutes of silence. Two channels fix that:

* **Cells** -- nbclient's ``on_cell_start`` / ``on_cell_complete`` hooks (nbclient.readthedocs.io,
  "Client hooks"), passed through papermill: the runner prints each code cell as it starts (its
  index, the heading of its section and its first line), with how long it took last time when an
  earlier executed copy says so, and a line when a long cell ends.
* **The library's own progress bars** -- the trainer, the evaluation and the data generator report
  with ``tqdm.auto`` (step / total, loss, rate). When the runner sets ``DGTRS_PROGRESS_FILE``, the
  notebook's ``start()`` (``dgtrs_lib.publishing.notebook``) swaps ``tqdm.auto.tqdm`` for
  ``FileProgress``, a ``tqdm`` that writes one JSON line per refresh to that file instead of a
  widget into the page. The runner tails the file and prints, every few seconds, the bar's
  description, ``n / total``, its postfix (the loss) and what is left at the current rate
  (tqdm's ``format_dict``: ``n``, ``total``, ``elapsed``, ``rate``, ``postfix``).

A cell that reports nothing still gets a "still running" line every ``heartbeat_s``. ``quiet``
keeps only the notebook lines the runner prints itself. The page itself stays clean: no progress
widget is stored in the executed notebook when the runner runs it.

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

PROGRESS_ENV = "DGTRS_PROGRESS_FILE"


# --------------------------------------------------------------------------------------------
# Kernel side: tqdm bars into a JSON-lines file
# --------------------------------------------------------------------------------------------

class _Null:
    """A file that swallows what tqdm would print (the bar goes to the progress file instead)."""

    def write(self, _text):
        return 0

    def flush(self):
        pass


def file_progress_class(path: str | os.PathLike):
    """A ``tqdm`` subclass that appends its state as JSON lines to ``path`` (at most every 2 s
    per bar unless ``mininterval`` says otherwise) and prints nothing."""
    from tqdm.std import tqdm as std_tqdm

    target = str(path)

    class FileProgress(std_tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["file"] = _Null()
            kwargs.setdefault("mininterval", 2.0)
            kwargs.pop("ncols", None)
            super().__init__(*args, **kwargs)

        def display(self, msg=None, pos=None):  # noqa: D401 - tqdm's hook
            if self.disable:
                return True
            d = self.format_dict
            record = {"id": id(self), "desc": (d.get("prefix") or "").rstrip(": "), "n": d.get("n"),
                      "total": d.get("total"), "elapsed": round(d.get("elapsed") or 0.0, 2),
                      "rate": d.get("rate"), "unit": d.get("unit"), "postfix": d.get("postfix"),
                      "closed": bool(getattr(self, "_dgtrs_closing", False)), "t": time.time()}
            try:
                with open(target, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, default=str) + "\n")
            except OSError:
                pass
            return True

        def close(self):
            if not self.disable and not getattr(self, "_dgtrs_closing", False):
                self._dgtrs_closing = True
                self.display()
            super().close()

    return FileProgress


def route_progress_bars(path: str | os.PathLike | None = None) -> bool:
    """In a kernel started by the runner (``DGTRS_PROGRESS_FILE`` set), make ``tqdm.auto`` bars
    write to the runner's progress file instead of the page. Returns whether it did.

    The library imports ``from tqdm.auto import tqdm`` when it starts a bar, so replacing the
    module attribute reaches every bar started afterwards, including the subclasses that
    ``datasets`` defines when it is first imported (after this runs)."""
    path = path or os.environ.get(PROGRESS_ENV)
    if not path:
        return False
    import tqdm.auto
    import tqdm.autonotebook

    cls = file_progress_class(path)
    for module in (tqdm.auto, tqdm.autonotebook):
        module.tqdm = cls

        def trange(*args, _cls=cls, **kwargs):
            return _cls(range(*args), **kwargs)

        module.trange = trange
    return True


# --------------------------------------------------------------------------------------------
# Runner side: cells, bars and heartbeats on the terminal
# --------------------------------------------------------------------------------------------

def fmt_duration(seconds: float | None) -> str:
    """``75 -> '1 min 15 s'``, ``8 -> '8 s'``, ``3900 -> '1 h 05 min'``."""
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def cell_label(cells: list, index: int, width: int = 70) -> str:
    """``'## Section heading | first line of code'`` for the code cell at ``index``."""
    heading = ""
    for cell in reversed(cells[:index]):
        if cell.get("cell_type") == "markdown":
            found = [ln for ln in cell.get("source", "").splitlines() if re.match(r"#{1,4}\s", ln)]
            if found:
                heading = found[-1].lstrip("#").strip()
                break
    src = cells[index].get("source", "")
    first = next((ln.strip() for ln in src.splitlines() if ln.strip()), "")
    text = f"{heading} | {first}" if heading else first
    return text if len(text) <= width else text[: width - 3] + "..."


def previous_durations(path: Path) -> dict[int, float]:
    """Per-cell durations (index -> seconds) from an earlier executed copy, if there is one."""
    if not Path(path).exists():
        return {}
    try:
        nb = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for i, cell in enumerate(nb.get("cells", [])):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if isinstance(duration, (int, float)):
            out[i] = float(duration)
    return out


def describe_bar(record: dict) -> str:
    """One terminal line for a progress record: desc, n/total unit, postfix, time left."""
    n, total = record.get("n"), record.get("total")
    unit = record.get("unit") or "it"
    parts = [record.get("desc") or "progress"]
    parts.append(f"{n}/{total} {unit}" if total else f"{n} {unit}")
    if record.get("postfix"):
        parts.append(str(record["postfix"]))
    rate = record.get("rate")
    if record.get("closed"):
        parts.append(f"done in {fmt_duration(record.get('elapsed'))}")
    elif total and rate and rate > 0 and n is not None:
        parts.append(f"{fmt_duration(record.get('elapsed'))} elapsed, ~{fmt_duration((total - n) / rate)} left")
    return ", ".join(parts)


class CellProgress:
    """Prints what one notebook run is doing; pass ``hooks()`` to papermill.

    ``cells`` are the notebook's cells (papermill's injected-parameters cell shifts indices by
    one; the hooks receive the executed notebook's own indices and cells). ``previous`` maps cell
    index to its duration in the last executed copy. Bars from ``progress_file`` are echoed at
    most every ``interval`` s each; a bar is shown once it has run ``min_bar_s``, and then its
    last state too."""

    def __init__(self, *, progress_file: Path | None = None, previous: dict[int, float] | None = None,
                 echo=print, interval: float = 5.0, heartbeat_s: float = 60.0, long_cell_s: float = 10.0,
                 quiet: bool = False, min_bar_s: float = 2.0):
        self.min_bar_s = min_bar_s
        self.progress_file = Path(progress_file) if progress_file else None
        self.previous = previous or {}
        self.echo = echo
        self.interval = interval
        self.heartbeat_s = heartbeat_s
        self.long_cell_s = long_cell_s
        self.quiet = quiet
        self._cells: list = []
        self._n_code = 0
        self._cell: int | None = None
        self._cell_started = 0.0
        self._last_output = 0.0
        self._last_bar: dict[object, float] = {}
        self._offset = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    # -- papermill / nbclient hooks -------------------------------------------------------
    def hooks(self) -> dict:
        return {"on_cell_start": self.on_cell_start, "on_cell_complete": self.on_cell_complete}

    def on_cell_start(self, cell=None, cell_index=None, **_):
        if cell is None or cell.get("cell_type") != "code":
            return
        with self._lock:
            self._cell, self._cell_started = cell_index, time.time()
            self._last_output = self._cell_started
        tags = cell.get("metadata", {}).get("tags", [])
        if self.quiet or cell_index is None or {"parameters", "injected-parameters"} & set(tags):
            return
        if not self._cells:
            return
        code = [i for i, c in enumerate(self._cells) if c.get("cell_type") == "code"]
        pos = code.index(cell_index) + 1 if cell_index in code else "?"
        before = self.previous.get(cell_index)
        hint = f" (last run: {fmt_duration(before)})" if before and before >= self.long_cell_s else ""
        self._say(f"    cell {cell_index} [{pos}/{len(code)}] {cell_label(self._cells, cell_index)}{hint}")

    def on_cell_complete(self, cell=None, cell_index=None, **_):
        if cell is None or cell.get("cell_type") != "code":
            return
        with self._lock:
            started, self._cell = self._cell_started, None
        took = time.time() - started
        if not self.quiet and took >= self.long_cell_s:
            self._say(f"      cell {cell_index} done in {fmt_duration(took)}")

    # -- the watcher thread ---------------------------------------------------------------
    def start(self, cells: list) -> CellProgress:
        self._cells = list(cells)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._drain(final=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def set_cells(self, cells: list) -> None:
        """The executed notebook's cells (with papermill's injected-parameters cell)."""
        self._cells = list(cells)

    def _say(self, line: str) -> None:
        self._last_output = time.time()
        self.echo(line)

    def _watch(self):
        while not self._stop.wait(0.5):
            self._drain()
            if self.quiet:
                continue
            with self._lock:
                cell, started = self._cell, self._cell_started
            now = time.time()
            if cell is not None and now - self._last_output >= self.heartbeat_s:
                self._say(f"      still running cell {cell} ({fmt_duration(now - started)})")

    def _drain(self, final: bool = False):
        if self.progress_file is None or not self.progress_file.exists():
            return
        try:
            with self.progress_file.open(encoding="utf-8") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
                # keep a partial last line for the next read
                cut = chunk.rfind("\n") + 1
                self._offset += len(chunk[:cut].encode("utf-8"))
                lines = chunk[:cut].splitlines()
        except OSError:
            return
        latest: dict[object, dict] = {}
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            key = rec.get("id")
            shown = key in self._last_bar
            if rec.get("closed"):
                latest.pop(key, None)
                if shown or (rec.get("elapsed") or 0) >= self.min_bar_s:
                    self._emit(rec)
            elif (rec.get("elapsed") or 0) >= self.min_bar_s:
                latest[key] = rec  # bars shorter than min_bar_s are not worth a line
        now = time.time()
        for key, rec in latest.items():
            if now - self._last_bar.get(key, 0.0) >= self.interval:
                self._emit(rec)

    def _emit(self, rec: dict):
        self._last_bar[rec.get("id")] = time.time()
        if not self.quiet:
            self._say(f"      {describe_bar(rec)}")
