#!/usr/bin/env bash
# GPU check for the training code (issues #4 and #15), < 8 minutes on one H100/H200:
#   1. the plan: the precision, sub-batch and contrastive batch dgtrs_lib.training.plan picks for this GPU;
#   2. the training tests with CUDA visible (DGTRS_TEST_CUDA=1 keeps it visible in tests/conftest.py;
#      the trainer runs on cuda:0 in the precision the device supports; tests/test_cuda.py checks the
#      CUDA paths: precision from compute capability, fused AdamW, fp16 loss scaling, gradient caching);
#   3. scripts/bench_input.py: the input pipeline alone (512 px JPEGs -> 224, 0/4/8/12 workers) beside the
#      ViT-B/16 training step alone (248 tokens, batch 128): the loader-vs-step ratio;
#   4. scripts/bench_train.py: ViT-B/16 pairs/s, peak memory, MFU per step kind;
#   5. scripts/bench_train.py --gradcache --max-sub-batch: gradient caching vs the plain step at a
#      contrastive batch of 256 (time, memory), and the largest sub-batch of ViT-B/16 at 248 tokens
#      that fits, beside the memory model's prediction;
#   6. scripts/bench_build.py --vlm: captions per second of the dataset builder's VLM captioner on CUDA
#      (issue #17): the tiny random LLaVA (the code path: batching, bf16, generate; no download -- this
#      machine is offline), and a real checkpoint when VLM_MODEL names a local transformers folder.
# Outputs go to $OUT (default /tmp/gpu_check): nvidia-smi.txt, plan.txt, pytest.log, pytest.xml,
# bench_input.json/.csv, bench_vitb16.json/.csv, bench_gradcache.json/.csv, bench_tiny.json/.csv,
# bench_build_vlm.json/.csv, bench.log, summary.txt.
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
"$PY" -c "from dgtrs_lib.training.plan import plan_training; p = plan_training('gpu'); print(p.summary())" \
  > "$OUT/plan.txt" 2>&1

timeout 170 "$PY" -m pytest tests/test_cuda.py tests/test_precision.py tests/test_gradcache.py tests/test_losses.py \
  tests/test_train.py tests/test_train_ddp.py tests/test_loader.py \
  -q -m "not slow" -p no:cacheprovider --junitxml="$OUT/pytest.xml" > "$OUT/pytest.log" 2>&1
test_rc=$?

timeout 80 "$PY" scripts/bench_input.py --device cuda --n 512 --workers 0 4 8 12 --batch 128 \
  --note "gpu_check.sh" --out "$OUT/bench_input.json" > "$OUT/bench.log" 2>&1
input_rc=$?
timeout 100 "$PY" scripts/bench_train.py --device cuda --model ViT-B-16 --batch 128 --long-len 248 --steps 10 \
  --note "gpu_check.sh" --out "$OUT/bench_vitb16.json" >> "$OUT/bench.log" 2>&1
bench_rc=$?
timeout 90 "$PY" scripts/bench_train.py --device cuda --model ViT-B-16 --long-len 248 --steps 5 --gradcache \
  --contrastive 256 --max-sub-batch --only-extra --note "gpu_check.sh" --out "$OUT/bench_gradcache.json" >> "$OUT/bench.log" 2>&1
gc_rc=$?
timeout 30 "$PY" scripts/bench_train.py --device cuda --model tiny --batch 256 --steps 10 \
  --note "gpu_check.sh" --out "$OUT/bench_tiny.json" >> "$OUT/bench.log" 2>&1
bench_tiny_rc=$?
vlm_args=(--vlm tiny)
if [ -n "${VLM_MODEL:-}" ] && [ -d "$VLM_MODEL" ]; then vlm_args=(--vlm "$VLM_MODEL"); fi
timeout 90 "$PY" scripts/bench_build.py --skip-filters --device cuda "${vlm_args[@]}" --vlm-n 64 --batch-size 32 \
  --note "gpu_check.sh" --out "$OUT/bench_build_vlm.json" >> "$OUT/bench.log" 2>&1
vlm_rc=$?

{
  echo "tests rc=$test_rc  input rc=$input_rc  bench ViT-B/16 rc=$bench_rc  gradcache/max-sub-batch rc=$gc_rc" \
       "bench tiny rc=$bench_tiny_rc  vlm captions rc=$vlm_rc  wall=$(( $(date +%s) - start )) s"
  cat "$OUT/plan.txt"
  tail -n 3 "$OUT/pytest.log"
  grep -E '^(\{|workers=|VLM )' "$OUT/bench.log"
} | tee "$OUT/summary.txt"
[ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ] && [ "$input_rc" = 0 ] && [ "$gc_rc" = 0 ]
