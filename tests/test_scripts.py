"""The benchmark and notebook-builder scripts import and parse their arguments (they are not run
here: benchmarks are measured by hand, not by timed tests)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("script", ["bench_train.py", "bench_input.py", "bench_eval.py", "bench_build.py",
                                    "make_notebook.py"])
def test_script_help(script):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()
