"""Execute the book's notebooks with papermill, one profile at a time, and record what each cost.

Each notebook listed in ``_toc.yml`` (``dgtrs_lib.publishing.toc``) runs with papermill
(nteract/papermill, papermill.readthedocs.io: ``execute_notebook``, the ``parameters`` cell tag
into which ``PROFILE`` is injected, ``PapermillExecutionError``), with ``DGTRS_PROFILE`` set, the
working directory at the repository root, Hugging Face offline unless ``DGTRS_ONLINE=1``, and live
widgets off (``DGTRS_WIDGETS=0``) unless set. The executed copy goes to
``_build/executed/<profile>/``; a thread polls the kernel's process tree with psutil to record the
peak resident memory. Wall time and peak RSS go to ``notebook_times.csv`` (rewritten atomically
after each notebook and copied to ``results/<profile>/``), with the machine in the wording of
``dgtrs_lib.io.hardware``. A failure names the notebook and the cell (index, execution count,
exception), keeps the executed copy for inspection and raises ``RunnerError``.

While a notebook runs, the terminal shows each cell as it starts and the library's progress bars
(``dgtrs_lib.publishing.progress``; ``quiet=True`` keeps only one line per notebook), and the
kernel talks over IPC sockets rather than TCP (``dgtrs_lib.publishing.kernel``).

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dgtrs_lib.env import repo_root, results_dir, set_offline
from dgtrs_lib.io import atomic_write_text, hardware, now
from dgtrs_lib.profiles import get_profile, resolve_profile
from dgtrs_lib.publishing.kernel import ipc_kernel_manager_class
from dgtrs_lib.publishing.progress import PROGRESS_ENV, CellProgress, fmt_duration, previous_durations
from dgtrs_lib.publishing.toc import RunnerError, select, toc_notebooks

TIMES_CSV = "notebook_times.csv"
CSV_FIELDS = ("notebook", "profile", "status", "wall_s", "peak_rss_mb", "failed_cell",
              "error", "started_utc", "hardware")


# --------------------------------------------------------------------------------------------
# Peak memory of the kernel process tree
# --------------------------------------------------------------------------------------------

class PeakMemory:
    """Poll the RSS of this process's children (the kernel and anything it starts) in a thread.

    ``peak_mb`` is the largest sum of RSS over the child process tree seen while running; the
    runner's own memory is not counted."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        try:
            children = psutil.Process(os.getpid()).children(recursive=True)
        except psutil.Error:
            return 0
        for child in children:
            try:
                total += child.memory_info().rss
            except psutil.Error:  # exited between listing and reading
                pass
        return total

    def _poll(self):
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


# --------------------------------------------------------------------------------------------
# Executing notebooks
# --------------------------------------------------------------------------------------------

@dataclass
class NotebookRun:
    notebook: str
    profile: str
    status: str  # "ok" | "failed"
    wall_s: float
    peak_rss_mb: float
    failed_cell: str = ""
    error: str = ""
    started_utc: str = ""
    hardware: str = field(default_factory=lambda: hardware_string())
    output: str = ""


def hardware_string() -> str:
    """What ran the notebooks, in the one wording of ``dgtrs_lib.io.hardware`` (that of the results
    files): the GPU when CUDA is available, else the CPU."""
    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - torch missing or broken: still report the CPU
        device = "cpu"
    return hardware(device)


def executed_dir(profile: str, build_dir: Path | None = None) -> Path:
    """Where the executed copies of one profile go: ``_build/executed/<profile>/``."""
    build_dir = Path(build_dir or repo_root() / "_build")
    path = build_dir / "executed" / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def execute_notebook(nb_path: Path, out_path: Path, profile: str, *, cwd: Path,
                     timeout: int | None = None, log_output: bool = False,
                     echo=print, quiet: bool = False) -> NotebookRun:
    """Run one notebook with papermill; return its timing (status ``failed`` on an error).

    Progress goes to ``echo``: each code cell as it starts and the library's progress bars
    (``dgtrs_lib.publishing.progress``), unless ``quiet``."""
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    started = now()
    t0 = time.perf_counter()
    status, failed_cell, error = "ok", "", ""
    previous = previous_durations(out_path)
    progress_dir = Path(tempfile.mkdtemp(prefix="dgtrs-progress-"))
    progress_file = progress_dir / "progress.jsonl"
    reporter = CellProgress(progress_file=progress_file, previous=previous, echo=echo, quiet=quiet)
    saved = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = str(progress_file)  # the kernel inherits it: start() routes tqdm there
    try:
        nb = nbformat.read(nb_path, as_version=4)
        # papermill inserts its injected-parameters cell after the "parameters" cell: the hooks
        # receive the executed notebook's indices, so label cells from that layout.
        cells = list(nb.cells)
        tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
        if tagged:
            injected = nbformat.v4.new_code_cell("# Parameters")
            injected.metadata["tags"] = ["injected-parameters"]
            cells.insert(tagged[0] + 1, injected)
        with PeakMemory() as mem, reporter.start(cells):
            try:
                pm.execute_notebook(
                    str(nb_path), str(out_path), parameters={"PROFILE": profile},
                    kernel_name="python3", cwd=str(cwd), progress_bar=False,
                    log_output=log_output, execution_timeout=timeout,
                    request_save_on_cell_execute=True,
                    kernel_manager_class=ipc_kernel_manager_class(), **reporter.hooks(),
                )
            except PapermillExecutionError as exc:
                status = "failed"
                first = next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
                failed_cell = f"cell {exc.cell_index} (In [{exc.exec_count}]): {first.strip()[:80]}"
                error = f"{exc.ename}: {exc.evalue}"
            except Exception as exc:  # cell timeout, kernel died...: name the cell that was running
                status = "failed"
                failed_cell = _running_cell(out_path)
                error = f"{type(exc).__name__}: {exc}"
    finally:
        if saved is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = saved
        shutil.rmtree(progress_dir, ignore_errors=True)
    return NotebookRun(notebook=nb_path.stem, profile=profile, status=status,
                       wall_s=round(time.perf_counter() - t0, 1), peak_rss_mb=mem.peak_mb,
                       failed_cell=failed_cell, error=error.strip().splitlines()[0] if error else "",
                       started_utc=started, output=str(out_path))


def _running_cell(out_path: Path) -> str:
    """The cell that was running when execution stopped (a timeout or a dead kernel): the cell
    papermill still marks running, else the last one it started; ``cell N: first line``."""
    import nbformat

    try:
        nb = nbformat.read(out_path, as_version=4)
    except Exception:  # noqa: BLE001 - no copy written: nothing more to say
        return "?"
    started = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
               and c.get("metadata", {}).get("papermill", {}).get("start_time")]
    running = [i for i in started if nb.cells[i].metadata.papermill.get("status") == "running"]
    if not (running or started):
        return "?"
    i = (running or started)[-1]  # after a timeout papermill marks the cell completed: the last one
    first = next((ln for ln in nb.cells[i].source.splitlines() if ln.strip()), "")
    return f"cell {i}: {first.strip()[:80]}"


def _write_times(path: Path, runs: list[NotebookRun]) -> None:
    """Rewrite ``notebook_times.csv`` keeping rows of notebooks not run this time (atomic)."""
    rows: dict[str, dict] = {}
    if path.exists():
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("notebook"):
                    rows[row["notebook"]] = row
    for run in runs:
        rows[run.notebook] = {k: v for k, v in asdict(run).items() if k in CSV_FIELDS}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for name in sorted(rows):
        writer.writerow({k: rows[name].get(k, "") for k in CSV_FIELDS})
    atomic_write_text(path, buf.getvalue())


def run_notebooks(profile: str = "auto", *, only: list[str] | None = None,
                  root: Path | None = None, build_dir: Path | None = None,
                  notebooks: list[Path] | None = None, timeout: int | None = None,
                  log_output: bool = False, keep_going: bool = False,
                  echo=print, quiet: bool = False) -> list[NotebookRun]:
    """Execute the TOC's notebooks (or ``notebooks``) in order under one profile.

    ``echo`` receives the progress lines (per notebook, and unless ``quiet`` per cell and per
    progress bar, see ``dgtrs_lib.publishing.progress``).

    Returns the runs; raises ``RunnerError`` naming the notebook and cell at the first failure
    (after writing the CSV and keeping the executed copy), or with ``keep_going`` after running
    the rest, naming every failure."""
    root = Path(root or repo_root())
    profile = resolve_profile(profile)
    set_offline()
    # The kernels inherit the runner's environment: the profile, and (no one can move a slider in
    # a headless run, and ipywidgets comms under nbclient hang intermittently -- seen here as an
    # idle kernel with nbclient waiting forever) DGTRS_WIDGETS=0 so notebooks skip live widgets
    # unless it is set. Both are restored when the run ends.
    env = {"DGTRS_PROFILE": profile, "DGTRS_WIDGETS": os.environ.get("DGTRS_WIDGETS", "0")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return _run(profile, notebooks, only, root, build_dir, timeout, log_output, keep_going, echo,
                    quiet)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _last_wall_times(csv_path: Path) -> dict[str, float]:
    """Wall time of each notebook's last successful run, from ``notebook_times.csv``."""
    if not csv_path.exists():
        return {}
    out = {}
    with csv_path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                if row.get("status") == "ok":
                    out[row["notebook"]] = float(row["wall_s"])
            except (KeyError, TypeError, ValueError):
                continue
    return out


def _run(profile, notebooks, only, root, build_dir, timeout, log_output, keep_going, echo, quiet=False):
    """The loop of ``run_notebooks`` (environment already set)."""
    if notebooks is None:
        notebooks = toc_notebooks(root)
        for extra in sorted(set((root / "notebooks").glob("*.ipynb")) - set(notebooks)):
            echo(f"note: {extra.name} is not in _toc.yml, so it is not run (add one line to _toc.yml)")
    nbs = select(notebooks, only)
    if timeout is None:  # per-cell limit of the profile: a hung cell fails, naming itself, instead
        # of hanging the run; gpu has none (training a ViT may take hours). --timeout overrides.
        timeout = get_profile(profile).notebook_timeout_s
    out_dir = executed_dir(profile, build_dir or root / "_build")
    csv_path = out_dir / TIMES_CSV
    runs: list[NotebookRun] = []
    last = _last_wall_times(csv_path)
    for i, nb in enumerate(nbs, 1):
        hint = f", last run {fmt_duration(last[nb.stem])}" if nb.stem in last else ""
        left = [last.get(n.stem) for n in nbs[i - 1:]]
        if all(t is not None for t in left) and len(left) > 1:
            hint += f"; about {fmt_duration(sum(left))} left in all"
        echo(f"[{i}/{len(nbs)}] {nb.name} (profile={profile}{hint}) ...")
        run = execute_notebook(nb, out_dir / nb.name, profile, cwd=root, timeout=timeout,
                               log_output=log_output, echo=echo, quiet=quiet)
        runs.append(run)
        _write_times(csv_path, runs)
        shutil.copyfile(csv_path, results_dir(profile) / TIMES_CSV)
        echo(f"    {run.status}: {run.wall_s:.1f} s, peak RSS {run.peak_rss_mb:.0f} MiB")
        if run.status != "ok" and not keep_going:
            break
    failed = [r for r in runs if r.status != "ok"]
    if failed:
        raise RunnerError("\n".join(
            f"notebook {r.notebook}.ipynb failed at {r.failed_cell}: {r.error}\n"
            f"  executed copy kept for inspection: {r.output}" for r in failed))
    return runs
