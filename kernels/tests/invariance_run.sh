#!/usr/bin/env bash
# One device call for GPU cached-vs-uncached invariance on the benchmark's
# models (issue 7): the GEMM plans swept at every row count, the
# batch-invariance and throughput probes, then lmscore with and without its
# cache on bench's Llama-3.2-1B and gpt2-large workloads (bench/run_gpu.sh's
# steps 4 and 5 only, no peers), and the same Llama runs with a second CUDA
# core for an A/B (e.g. the library the benchmark ran with). Logs and the
# per-token scores go under $OUT; compare them with
# `benchgpu report` (run here too) or bitwise afterwards.
#
# Binaries are built elsewhere and carried (nothing is compiled here):
#   $BIN/{lmscore,benchgpu}                 go build ./cmd/lmscore, ./bench/cmd/benchgpu
#   $CUDA/{liblmscore_cuda.so,gemm_sweep,batch_invariance_tests,throughput}
#   $OLD_LIB (optional)                     a second liblmscore_cuda.so for the A/B
# Usage (repo root, on the GPU machine):
#   BIN=.cache/devcarry CUDA=.cache/devcarry/sweep OLD_LIB=.cache/devcarry/old/liblmscore_cuda.so \
#     bash kernels/tests/invariance_run.sh
set -uo pipefail
out="${OUT:-/tmp/lmscore-invariance}"
bin="${BIN:-.cache/devcarry}"
cuda="${CUDA:-build/cuda}"
old="${OLD_LIB:-}"
work="${WORK:-/tmp/lmscore-invariance-work}"
models="${MODELS:-llama-3.2-1b,gpt2-large}"
mkdir -p "$out" "$work"
. kernels/tests/carried_env.sh

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  ls /usr/local/cuda/lib64/ | grep -E '^libcublasLt\.so\.[0-9.]+$' | head -1
  ldd "$lib" "$cuda/gemm_sweep" | grep "not found"
  for f in "$lib" $old; do
    echo "$f: $(nm -D "$f" | grep -c ' U cublasLt') cuBLASLt imports, $(nm -D "$f" | grep -c ' U cublasGemmEx') cublasGemmEx"
  done

  # 1. The models and workloads, as bench/run_gpu.sh makes them.
  for m in ${models//,/ }; do
    python3 bench/peers/hf_build.py --model "$m" --out "$work/hf-$m" --device cuda >/dev/null &&
      "$bin/lmscore" convert hf --dir "$work/hf-$m" --out "$work/$m.gguf" --type bf16 >/dev/null &&
      "$bin/benchgpu" gen --model "$work/$m.gguf" --name "$m" --size default --out "$work/$m" ||
      log "FAILED: building $m"
    log "$m: built"
    # 2. lmscore cached and uncached, every workload, this CUDA core.
    step 150 "$bin/benchgpu" lmscore --model "$work/$m.gguf" --name "$m" --dir "$work/$m" \
      --out "$work/$m/lmscore.jsonl" --short 2s --gpu-memory=false --cuda-lib "$lib"
    # 3. The A/B: the other core on two workloads of the first model.
    if [[ -n "$old" && "$m" == "${models%%,*}" ]]; then
      step 60 "$bin/benchgpu" lmscore --model "$work/$m.gguf" --name "$m" --dir "$work/$m" \
        --out "$work/$m/lmscore-old.jsonl" --short 2s --gpu-memory=false --cuda-lib "$(realpath "$old")" \
        --workloads metaicl0,hellaswag
    fi
    cp "$work/$m/lmscore.jsonl" "$out/$m-lmscore.jsonl" 2>/dev/null
    cp "$work/$m/lmscore-old.jsonl" "$out/$m-lmscore-old.jsonl" 2>/dev/null
    # The GEMM sweep once, after the first model's runs (they matter more).
    if [[ "$m" == "${models%%,*}" ]]; then
      step 120 "$cuda/gemm_sweep" --heuristic
      step 60 "$cuda/throughput" "$lib"
    fi
  done
  step 60 "$cuda/batch_invariance_tests" "$lib"

  runs=()
  for m in ${models//,/ }; do [[ -f "$work/$m/lmscore.jsonl" ]] && runs+=("$work/$m/lmscore.jsonl"); done
  "$bin/benchgpu" report --work "$work" --models "$models" --runs "$(IFS=,; echo "${runs[*]}")" \
    --out "$out/report" --card "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" >/dev/null &&
    cat "$out/report.md"
  log "done"
} 2>&1 | tee "$out/device.log"
