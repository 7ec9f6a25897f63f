"""The habits that keep the layout: layer contracts, lint, notebooks without outputs, torch-free base.

These run the ecosystem's own tools (configured in ``pyproject.toml``): ``lint-imports``
(import-linter), ``ruff check`` and ``nbstripout --verify``. A failure prints the tool's own report,
e.g. the upward import that broke a layer contract.
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*cmd):
    exe = BIN / cmd[0]
    if not exe.exists():
        pytest.fail(f"{cmd[0]} is not installed in {BIN}; it is part of requirements.txt (make venv)")
    return subprocess.run([str(exe), *cmd[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_layer_contracts_hold():
    res = _run("lint-imports", "--no-cache")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_ruff_is_clean():
    res = _run("ruff", "check", "--no-cache", ".")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted(str(p) for p in (ROOT / "notebooks").glob("*.ipynb"))
    res = _run("nbstripout", "--keep-id", "--verify", *notebooks)
    assert res.returncode == 0, "notebooks with outputs or execution counts: " + res.stdout + res.stderr


def test_base_modules_import_without_torch():
    code = "import sys, dgtrs_lib, dgtrs_lib.io, dgtrs_lib.env, dgtrs_lib.errors, dgtrs_lib.profiles, dgtrs_lib.results; " \
           "print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_public_api_reexports():
    import dgtrs_lib

    for name in ("load_model", "tokenize", "create_model", "stretch_positional_embedding", "evaluate",
                 "save_official", "LongCLIP", "get_profile"):
        assert callable(getattr(dgtrs_lib, name)) or isinstance(getattr(dgtrs_lib, name), type)
