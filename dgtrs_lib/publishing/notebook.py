"""Helpers every notebook uses: its start (profile, device, seed, figure style), the model it
studies (``resolve_model``), how it shows a path (``display_path``) and its closing run manifest.

The manifest records what a reader needs to trust a number: profile, device, wall time, and the
provenance record that results files carry too (``dgtrs_lib.io.provenance``: hardware, date,
library versions, Python), so a manifest and a results file of the same run describe the machine
in the same words. Notebooks print it as their last cell. The practice follows the ML
Reproducibility Checklist (``book/references.bib`` key ``pineau2021mlrc``): report the computing
infrastructure and the software versions beside the numbers. The manifest is shown as a collapsed
note (an HTML ``<details>``, the JSON as the plain-text fallback), so it is there for a reader who
wants it and out of the way of one who does not.

``start`` also sets the figure style of the book (``BOOK_STYLE``: fonts of at least 10 pt at the
width of the page's content column, figures no wider than it) and, in a kernel started by the
runner, routes the library's progress bars to the runner's terminal instead of the page
(``dgtrs_lib.publishing.progress``). ``display_path`` prints a path relative to the repository
root (or to the artifacts/results/cache folders, which tests and CI move), never the absolute
path of the machine that built the book.

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import html
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dgtrs_lib.env import repo_root, set_offline
from dgtrs_lib.io import provenance
from dgtrs_lib.profiles import resolve_profile
from dgtrs_lib.publishing.progress import route_progress_bars

# The content column of the book is about 676 px wide (sphinx-book-theme 1.x at a 1280 px window):
# a figure 6.7 in wide at 100 dpi is shown at its natural size, so a 10 pt font stays 10 pt.
CONTENT_WIDTH_IN = 6.7
BOOK_STYLE = {
    "figure.figsize": (CONTENT_WIDTH_IN, 3.4), "figure.dpi": 100, "savefig.dpi": 100,
    "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10,
    "ytick.labelsize": 10, "legend.fontsize": 10, "figure.titlesize": 12,
    "legend.title_fontsize": 10,
}


@dataclass
class NotebookRun:
    profile: str
    device: str
    started: float = field(default_factory=time.time)

    def manifest(self, **extra) -> dict:
        return run_manifest(self.profile, self.device, self.started, **extra)


def start(profile: str | None = None, seed: int = 0) -> NotebookRun:
    """Resolve the profile (parameter, then ``DGTRS_PROFILE``, then auto), go offline unless
    ``DGTRS_ONLINE=1``, seed everything and pick the device."""
    import torch

    set_offline()
    route_progress_bars()  # only when the runner asked for it (DGTRS_PROGRESS_FILE)
    apply_book_style()
    prof = resolve_profile(profile)
    torch.manual_seed(seed)
    device = "cuda" if (prof == "gpu" and torch.cuda.is_available()) else "cpu"
    return NotebookRun(profile=prof, device=device)


def apply_book_style() -> None:
    """Matplotlib defaults of the book's figures (``BOOK_STYLE``)."""
    import matplotlib

    matplotlib.rcParams.update(BOOK_STYLE)


def display_path(path) -> str:
    """``path`` as a page shows it: relative to the repository root; under the artifacts, results
    or cache folders (which ``DGTRS_ARTIFACTS`` / ``DGTRS_RESULTS`` / ``DGTRS_CACHE`` may move) as
    ``artifacts/...``, ``results/...``, ``.cache/...``; in the temporary folder as
    ``$TMPDIR/...``; in the home folder as ``~/...``. Anything else keeps only its name."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    p = Path(os.path.abspath(p))
    roots = [(os.environ.get("DGTRS_ARTIFACTS"), "artifacts"), (os.environ.get("DGTRS_RESULTS"), "results"),
             (os.environ.get("DGTRS_CACHE"), ".cache"), (str(repo_root()), ""),
             (tempfile.gettempdir(), "$TMPDIR"), (os.path.expanduser("~"), "~")]
    for root, label in roots:
        if not root:
            continue
        try:
            rel = p.relative_to(Path(os.path.abspath(root)))
        except ValueError:
            continue
        return (Path(label) / rel).as_posix() if label else rel.as_posix()
    return p.name


def display_paths(obj):
    """``obj`` (a dict, list or string, e.g. a model's ``info``) with every absolute path string
    replaced by its ``display_path``."""
    if isinstance(obj, dict):
        return {k: display_paths(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(display_paths(v) for v in obj)
    if isinstance(obj, str) and os.path.isabs(obj):
        return display_path(obj)
    if isinstance(obj, str) and ":" in obj and os.path.isabs(obj.split(":", 1)[1]):
        kind, rest = obj.split(":", 1)  # e.g. "file:/abs/path.pt"
        return f"{kind}:{display_path(rest)}"
    return obj


def resolve_model(profile, source: str | None = None):
    """``(model, preprocess, info)`` for a notebook, on ``profile.device()``: ``source``, else the
    ``DGTRS_MODEL`` environment variable (any source of ``dgtrs_lib.model.sources``), else our
    pipeline's checkpoint -- ``dgtrs_lib.experiments.pipeline.get_or_train``, which trains every
    missing stage first. (The evaluation layer itself never trains: this choice is the notebooks'.)"""
    from dgtrs_lib.model.sources import resolve_source
    from dgtrs_lib.profiles import get_profile

    prof = get_profile(profile)
    source = source or os.environ.get("DGTRS_MODEL")
    if not source:
        from dgtrs_lib.experiments.pipeline import get_or_train

        source = get_or_train(prof).source
    return resolve_source(source, prof.device())


def run_manifest(profile: str, device: str, started: float, **extra) -> dict:
    """``{profile, device, hardware, date, versions, python, wall_time_s}`` plus ``extra``;
    ``hardware`` names the GPU on a CUDA device, else the CPU with its cores and torch threads,
    and ``date`` is when the manifest was made (the notebook's end, UTC)."""
    wall = round(time.time() - started, 2)
    manifest = {"profile": profile, "device": device, **provenance(device), "wall_time_s": wall}
    manifest.update(extra)
    return manifest


class Manifest:
    """A run manifest as a notebook shows it: a collapsed note in HTML (Jupyter, Colab, the book),
    the JSON itself as plain text (terminals, and the executed notebook's text/plain output)."""

    def __init__(self, manifest: dict):
        self.manifest = manifest

    def summary(self) -> str:
        m = self.manifest
        wall = m.get("wall_time_s")
        wall = f"{wall:.0f} s" if isinstance(wall, (int, float)) else "?"
        return f"Run manifest: profile {m.get('profile')}, {m.get('device')}, {m.get('hardware')}, {wall}"

    def __repr__(self) -> str:
        return json.dumps(self.manifest, indent=2)

    def _repr_html_(self) -> str:
        body = html.escape(json.dumps(self.manifest, indent=2))
        return (f'<details class="dgtrs-manifest"><summary>{html.escape(self.summary())}</summary>'
                f"<pre>{body}</pre></details>")


def print_manifest(manifest: dict) -> None:
    """Show the manifest: collapsed in a notebook, printed as JSON elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Manifest(manifest))
    else:
        print(json.dumps(manifest, indent=2))
