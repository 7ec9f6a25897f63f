"""Every file the project writes goes through here: atomic writes, PNG bytes, JSON Lines, and the
one provenance record (hardware, date, versions) that results files, run manifests and reports share.

All writers take ``(path, payload)`` in that order. A write goes to a temporary file in the target's
folder, is flushed and fsynced, then renamed over the target (``os.replace``), so a crash at any
point leaves the old file or the new one, never a partial one; on error the temporary file is
removed. Files get the usual ``0o666 & ~umask`` mode (``tempfile.mkstemp`` alone would leave 0600).
``remove_stale_tmp`` deletes what a killed writer left behind.

``locked(folder, what)`` is the one folder lock (``filelock``: an OS lock, released when the
process ends, even by ``kill -9``): a training run holds its output folder, a results writer its
results folder. A second holder gets a ``LockedError`` naming the first one: pid, host, since
when, command line (kept in ``.<what>.lock.holder`` beside the lock file, JSON).

Importing this module does not import torch (``atomic_save`` and ``hardware`` import it when called).

Taught in: Reproduction report: the paper's public numbers beside ours (notebooks/09-reproduction-report.ipynb)
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import io as _io
import json
import math
import os
import platform
import re
import socket
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from dgtrs_lib.errors import LockedError

VERSION_PACKAGES = ("dgtrs-lib", "torch", "torchvision", "open_clip_torch", "transformers", "datasets", "numpy",
                    "scipy", "pillow")
TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"expected a file path (str or os.PathLike) as the first argument, got {type(path).__name__}")
    return Path(path)


def _atomic(path, write) -> Path:
    """Run ``write(binary_file)`` into a temporary file beside ``path``, then rename it into place."""
    path = _check_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    return _atomic(path, lambda fh: fh.write(data))


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, *, indent: int | None = 1) -> Path:
    """Write ``obj`` as strict JSON (numpy -> plain types, NaN/inf -> null) atomically."""
    return atomic_write_text(path, json.dumps(clean(obj), indent=indent, allow_nan=False, default=str))


def atomic_save(path, obj) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    return _atomic(path, lambda fh: torch.save(obj, fh))


def remove_stale_tmp(folder) -> list[Path]:
    """Delete the temporary files an interrupted atomic write left in ``folder``; returns them."""
    folder = Path(folder)
    stale = sorted(folder.glob(f".*{TMP_SUFFIX}")) if folder.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# ----------------------------------------------------------------------------- folder locks
def lock_path(folder, what: str) -> Path:
    """The lock file of ``folder`` for one purpose (``training``, ``results``...)."""
    return Path(folder) / f".{re.sub(r'[^A-Za-z0-9]+', '-', what).strip('-') or 'dgtrs'}.lock"


def _holder_path(lock: Path) -> Path:
    return lock.with_name(lock.name + ".holder")


def lock_holder(folder, what: str) -> dict | None:
    """Who holds (or last held) ``folder``'s ``what`` lock: ``{pid, host, since, command, what}``."""
    try:
        return json.loads(_holder_path(lock_path(folder, what)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _describe_holder(holder: dict | None) -> str:
    if not holder:
        return "another process (it has not recorded itself yet)"
    return (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}, "
            f"command: {holder.get('command')}")


@contextlib.contextmanager
def locked(folder, what: str, *, timeout: float = 0.0) -> Iterator[Path]:
    """Hold ``folder``'s lock for ``what`` (created if missing); yields the folder.

    Waits up to ``timeout`` seconds (0: one try) for another holder, then raises ``LockedError``
    naming it. The lock is per process: a second ``locked`` on the same folder and purpose, in
    this process or another, waits or fails the same way."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = lock_path(folder, what)
    lock = FileLock(str(path), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockedError(f"{folder}: in use by another {what} run ({_describe_holder(lock_holder(folder, what))}); "
                          f"expected no other {what} run in this folder: wait for it to finish, stop it, or use "
                          "another folder (the lock is released when that process ends, even if it is killed)") from None
    holder = _holder_path(path)
    try:
        atomic_write_json(holder, {"what": what, "pid": os.getpid(), "host": socket.gethostname(), "since": now(),
                                   "command": " ".join([os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]])})
        yield folder
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


# ----------------------------------------------------------------------------- formats
def png_bytes(image) -> bytes:
    """PNG encoding of a PIL image or a uint8 array (PIL defaults: compress level 6, no optimize)."""
    from PIL import Image

    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buf = _io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def append_jsonl(path, record: dict) -> None:
    """Append one JSON line (used for per-step logs, where a torn last line is tolerated on read)."""
    with open(_check_path(path), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(clean(record)) + "\n")


def write_jsonl(path, records: Iterable[dict]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(clean(r)) + "\n" for r in records))


def read_jsonl(path) -> list[dict]:
    """The records of a JSON Lines file; a torn line (a crash mid-append) is skipped."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def clean(obj):
    """JSON-safe copy: numpy -> lists/floats/ints, NaN/inf -> None, keys -> str, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if hasattr(obj, "tolist") and type(obj).__module__ == "numpy":
        return clean(obj.tolist())
    if isinstance(obj, float) or (type(obj).__module__ == "numpy" and "float" in type(obj).__name__):
        return None if not math.isfinite(float(obj)) else float(obj)
    if type(obj).__module__ == "numpy" and "int" in type(obj).__name__:
        return int(obj)
    return obj


# ----------------------------------------------------------------------------- provenance
def versions(packages: Iterable[str] = VERSION_PACKAGES) -> dict:
    from importlib import metadata

    out = {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def now() -> str:
    """UTC time, ISO 8601, seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def hardware(device: str = "cpu") -> str:
    """One wording for the machine, used by every results file, manifest and report."""
    try:
        import torch

        if str(device).startswith("cuda") and torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} (CUDA)"
        threads = f", torch {torch.get_num_threads()} threads"
    except ImportError:
        threads = ""
    return f"{platform.machine()} CPU, {os.cpu_count()} cores{threads}"


def provenance(device: str = "cpu") -> dict:
    """``{hardware, date, versions, python}``: what a reader needs to trust a number."""
    return {"hardware": hardware(device), "date": now(), "versions": versions(), "python": platform.python_version()}
