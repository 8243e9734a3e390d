#!/usr/bin/env bash
# One device call for attention head stacking (LMSCORE_CUDA_ATTN_STACK):
# the kernel tests (stacked tiles bitwise equal to unstacked ones, and the
# attention timings), the batch-invariance and model tests, the throughput
# probe with stacking off and on, then lmscore on bench's Llama-3.2-1B
# metaicl16 with stacking off and on, twice each, interleaved (median of 3
# per run), and once on the other Llama workloads with stacking on. Logs and
# per-token scores under $OUT.
#
# Carried binaries, as for invariance_run.sh:
#   $BIN/{lmscore,benchgpu}, $CUDA/{liblmscore_cuda.so,kernel_tests,batch_invariance_tests,model_tests,throughput}
# Usage (repo root, GPU machine): BIN=.cache/inv CUDA=.cache/inv/sweep bash kernels/tests/stack_run.sh
set -uo pipefail
out="${OUT:-/tmp/lmscore-stack}"
bin="${BIN:-.cache/devcarry}"
cuda="${CUDA:-build/cuda}"
work="${WORK:-/tmp/lmscore-stack-work}"
m=llama-3.2-1b
mkdir -p "$out" "$work"
. kernels/tests/carried_env.sh
lmscore_runs() { # stack-setting output-file workloads
  LMSCORE_CUDA_ATTN_STACK=$1 step 90 "$bin/benchgpu" lmscore --model "$work/$m.gguf" --name "$m" --dir "$work/$m" \
    --out "$work/$2" --short 2s --gpu-memory=false --cuda-lib "$lib" --workloads "$3"
  cp "$work/$2" "$out/$2" 2>/dev/null
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  step 60 "$cuda/kernel_tests" --perf
  step 60 "$cuda/batch_invariance_tests" "$lib"
  step 60 "$cuda/model_tests" "$lib"
  LMSCORE_CUDA_ATTN_STACK=0 step 60 "$cuda/throughput" "$lib"
  LMSCORE_CUDA_ATTN_STACK=1 step 60 "$cuda/throughput" "$lib"

  python3 bench/peers/hf_build.py --model "$m" --out "$work/hf-$m" --device cuda >/dev/null &&
    "$bin/lmscore" convert hf --dir "$work/hf-$m" --out "$work/$m.gguf" --type bf16 >/dev/null &&
    "$bin/benchgpu" gen --model "$work/$m.gguf" --name "$m" --size default --out "$work/$m" ||
    log "FAILED: building $m"
  log "$m: built"
  lmscore_runs 0 off-1.jsonl metaicl16
  lmscore_runs 1 on-1.jsonl metaicl16
  lmscore_runs 0 off-2.jsonl metaicl16
  lmscore_runs 1 on-2.jsonl metaicl16
  lmscore_runs 1 on-rest.jsonl metaicl16-long,metaicl0,hellaswag,sysprompt
  log "done"
} 2>&1 | tee "$out/device.log"
