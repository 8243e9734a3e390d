#!/usr/bin/env bash
# Issue 18's measurement: where the time of metaicl16 and metaicl0 goes on
# the Llama-3.1-8B shape (random bf16 weights), on one GPU, in one go.
#
# On the GPU machine, from the repository root, with benchgpu built
# elsewhere and carried in $BENCH_BIN (.cache/devbin) when there is no Go:
#   bash bench/profile_8b.sh
# Results under $OUT (default bench/results/tmp):
#   h200-8b-profile.md  the summary (benchgpu profile-report): commit it as
#                       bench/results/h200-8b-profile.md
#   profiles.tar.gz     every profile's JSON, both runs' JSONL, the log
#   ncu.txt             Nsight Compute on the first GEMM, attention and
#                       GEMM launches of a step (layer 0's qkv GEMM,
#                       attention and wo GEMM), --clock-control none
#   run.log
#
# Steps (each logs its time; about 4 minutes on an H200):
#   1. benchgpu (go build if go is there) and the CUDA core for sm_90;
#   2. the model (benchgpu random --shape llama-3.1-8b --type bf16) and the
#      two workloads (benchgpu gen --size default);
#   3. benchgpu lmscore with the profiler off: the baseline walls;
#   4. the same with --profile (LMSCORE_PROFILE=1): one profile per
#      workload and peer, of the timed runs only;
#   5. the summary (benchgpu profile-report --baseline: the off walls beside
#      the profiled ones, the profiler's own cost);
#   6. ncu on three launches of one step, if ncu is there (H200.md: it
#      reads the counters on the Firecracker machines); PROFILE_NCU=0 skips it.
#
# PROFILE_BACKEND=cpu PROFILE_TINY=1 checks the script on a machine without
# a GPU (the shape's 2-layer version, the CPU core; no CUDA build, no ncu).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

out="${OUT:-bench/results/tmp}"
work="${BENCH_WORK:-.cache/profile8b}"
bin="${BENCH_BIN:-.cache/devbin}"
py="${PYTHON:-python3}"
shape="${PROFILE_SHAPE:-llama-3.1-8b}"
workloads="${PROFILE_WORKLOADS:-metaicl16,metaicl0}"
name="$shape"
backend="${PROFILE_BACKEND:-cuda}"
tiny=()
[[ "${PROFILE_TINY:-0}" == 1 ]] && tiny=(--tiny)
t0=$(date +%s)
mkdir -p "$out" "$work" "$bin"
rm -f "$work"/*.jsonl "$work/$name"/*.profile.json "$work/$name"/lmscore*.jsonl
exec > >(tee "$work/run.log") 2>&1
log() { echo "[$(($(date +%s) - t0)) s] $*"; }
pack() {
  tar czf "$out/profiles.tar.gz" -C "$work" run.log $(cd "$work" && ls "$name"/*.profile.json "$name"/lmscore*.jsonl "$name"/meta.json cmake.log 2>/dev/null)
  cp "$work/run.log" "$out/run.log"
}
die() {
  log "FAILED: $*"
  pack
  exit 1
}

log "profile: $shape bf16, workloads $workloads"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader 2>/dev/null

# 1. benchgpu and the CUDA core.
if command -v go >/dev/null 2>&1; then
  go build -o "$bin/benchgpu" ./bench/cmd/benchgpu || die "go build"
fi
[[ -x "$bin/benchgpu" ]] || die "no benchgpu in $bin (build it with go and carry it)"
if [[ "$backend" == cuda ]]; then
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
# cuBLAS: the toolkit's, or the one PyTorch's wheels brought (as run_gpu.sh).
nv="$($py -c 'import nvidia, os; print(":".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p) if os.path.isdir(os.path.join(p, d, "lib"))))' 2>/dev/null)"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${nv:+:$nv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Always built from this tree: a carried library may be another tree's core.
# PROFILE_CUDA_BUILD names a build folder of this tree that is configured
# already (device_run.sh's build/cuda-device, say): only the core's target is
# brought up to date there, which saves a second full compile in one call.
cbuild="${PROFILE_CUDA_BUILD:-build/cuda-profile}"
{ [[ -f "$cbuild/CMakeCache.txt" ]] ||
  cmake -S . -B "$cbuild" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90-real \
    -DLMSCORE_CUDA_TESTS=OFF >"$work/cmake.log" 2>&1; } &&
  cmake --build "$cbuild" -j "$(nproc)" --target lmscore_cuda >>"$work/cmake.log" 2>&1 ||
  { tail -20 "$work/cmake.log"; die "CUDA core build"; }
export LMSCORE_CUDA_LIB="$(realpath "$cbuild/liblmscore_cuda.so")"
log "CUDA core: $LMSCORE_CUDA_LIB"
fi

# 2. Model and workloads.
"$bin/benchgpu" random --shape "$shape" --type bf16 "${tiny[@]}" --out "$work/$name.gguf" || die "writing the model"
"$bin/benchgpu" gen --model "$work/$name.gguf" --name "$name" --type bf16 --size default --workloads "$workloads" \
  --out "$work/$name" || die "workloads"
log "model and workloads written"

# 3. and 4. The same runs with the profiler off, then on.
run() {
  "$bin/benchgpu" lmscore --model "$work/$name.gguf" --name "$name" --dir "$work/$name" --backend "$backend" \
    --workloads "$workloads" --short 2s --gpu-memory=false "$@"
}
run --out "$work/$name/lmscore-off.jsonl" || die "lmscore, profiler off"
log "profiler off: done"
run --out "$work/$name/lmscore.jsonl" --profile || die "lmscore, profiler on"
log "profiler on: done"

# 5. The summary.
card="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
"$bin/benchgpu" profile-report --out "$out/h200-8b-profile.md" --baseline "$work/$name/lmscore-off.jsonl" \
  --title "Where the time goes: $shape, bf16, ${card:-unknown card}" \
  --note "$(date -u +%Y-%m-%d), bench/profile_8b.sh; random bf16 weights (benchgpu random), workloads of size default (bench/gpu_suite.go)" \
  --note "lmscore: the prefix cache on, cold at each run; lmscore-nocache: every input token computed" \
  "$work/$name"/*.profile.json || die "profile-report"
log "summary: $out/h200-8b-profile.md"
cat "$out/h200-8b-profile.md" | head -12
pack

# 6. Nsight Compute on layer 0's qkv GEMM, attention and wo GEMM of the
# first step (the first three launches whose names match: the cuBLASLt
# kernels are named nvjet/xmma/gemm, the core's own end in _kernel).
if [[ "$backend" == cuda && "${PROFILE_NCU:-1}" == 1 ]] && command -v ncu >/dev/null 2>&1; then
  log "ncu (--clock-control none) on three launches"
  timeout 200 ncu --clock-control none -k 'regex:nvjet|xmma|gemm|cutlass|attention' -c 3 \
    "$bin/benchgpu" lmscore --model "$work/$name.gguf" --name "$name" --dir "$work/$name" --backend cuda \
    --workloads metaicl0 --repeats 1 --short 1ms --gpu-memory=false --out "$work/ncu-lmscore.jsonl" \
    >"$out/ncu.txt" 2>&1 || log "ncu failed or timed out (see ncu.txt)"
  grep -E '^  [a-zA-Z_].*\(|Duration|Memory Throughput|Compute \(SM\) Throughput|DRAM Throughput' "$out/ncu.txt" | head -40
else
  log "ncu not run (backend $backend, PROFILE_NCU=${PROFILE_NCU:-1}, or no ncu on the PATH)"
fi
log "done"
pack
