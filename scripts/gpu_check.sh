#!/usr/bin/env bash
# GPU check for the training code (issue #4), < 8 minutes on one H100/H200:
#   1. the test suite with CUDA visible (DGTRS_TEST_CUDA=1 keeps it visible in tests/conftest.py;
#      the trainer then runs on cuda:0, bf16 where supported), slow tests excluded;
#   2. scripts/bench_train.py: ViT-B/16 at 248 tokens in bf16 (pairs/s, peak memory, MFU) and the
#      tiny model on the GPU for comparison.
# Outputs go to $OUT (default /tmp/gpu_check): nvidia-smi.txt, pytest.log, pytest.xml,
# bench_vitb16.json/.csv, bench_tiny.json/.csv, bench.log, summary.txt.
# Usage (repository root):  bash scripts/gpu_check.sh      PY=python3 bash scripts/gpu_check.sh
set -uo pipefail
OUT="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT"
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export DGTRS_TEST_CUDA=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export DGTRS_ARTIFACTS="$OUT/artifacts" DGTRS_RESULTS="$OUT/results" DGTRS_CACHE="${DGTRS_CACHE:-$OUT/cache}"
start=$(date +%s)
{ nvidia-smi; "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"; } \
  > "$OUT/nvidia-smi.txt" 2>&1

timeout 270 "$PY" -m pytest tests/test_losses.py tests/test_curriculum.py tests/test_train.py tests/test_train_ddp.py \
  -q -m "not slow" -p no:cacheprovider --junitxml="$OUT/pytest.xml" > "$OUT/pytest.log" 2>&1
test_rc=$?

timeout 150 "$PY" scripts/bench_train.py --device cuda --model ViT-B-16 --batch 128 --long-len 248 --steps 15 \
  --note "gpu_check.sh" --out "$OUT/bench_vitb16.json" > "$OUT/bench.log" 2>&1
bench_rc=$?
timeout 60 "$PY" scripts/bench_train.py --device cuda --model tiny --batch 256 --steps 10 \
  --note "gpu_check.sh" --out "$OUT/bench_tiny.json" >> "$OUT/bench.log" 2>&1
bench_tiny_rc=$?

{
  echo "tests rc=$test_rc  bench ViT-B/16 rc=$bench_rc  bench tiny rc=$bench_tiny_rc  wall=$(( $(date +%s) - start )) s"
  tail -n 3 "$OUT/pytest.log"
  grep '^{' "$OUT/bench.log"
} | tee "$OUT/summary.txt"
[ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ]
