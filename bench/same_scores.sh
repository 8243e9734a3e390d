#!/usr/bin/env bash
# Checks that a change moved no score: the same bench workloads, scored by
# this tree's build and by a base build, must give bitwise identical
# per-token log-probabilities, cached and uncached. For refactors that must
# not change behaviour; it times nothing that matters (use `make bench`).
#
# On the GPU machine, from the repository root:
#   BASE_SRC=DIR BASE_BIN=DIR bash bench/same_scores.sh
# BASE_SRC holds the base commit's CMakeLists.txt, csrc/ and kernels/
# (`git archive BASE CMakeLists.txt csrc kernels | tar -x -C DIR`); BASE_BIN
# its lmscore and benchgpu, built elsewhere (the GPU machine has no Go);
# this tree's binaries come from $BENCH_BIN (.cache/devbin). The model is
# bench/peers/hf_build.py's random bf16 weights ($MODEL, default
# llama-3.2-1b), converted once by this tree's lmscore; the workloads are
# written once by this tree's benchgpu gen, so both builds read the same
# files. NEW_LIB, when set, is this tree's CUDA core already built.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
: "${BASE_SRC:?BASE_SRC: the base commit's sources}" "${BASE_BIN:?BASE_BIN: the base commit's binaries}"
bin="${BENCH_BIN:-.cache/devbin}"
model="${MODEL:-llama-3.2-1b}"
workloads="${WORKLOADS:-metaicl16,metaicl0,hellaswag}"
work="${WORK:-.cache/same-scores}"
py="${PYTHON:-python3}"
mkdir -p "$work"
t0=$(date +%s)
log() { echo "[$(($(date +%s) - t0)) s] $*"; }
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
nv="$($py -c 'import nvidia, os; print(":".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p) if os.path.isdir(os.path.join(p, d, "lib"))))' 2>/dev/null)"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${nv:+:$nv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

build() { # source dir, build dir
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90-real -DLMSCORE_CUDA_TESTS=OFF &&
    cmake --build "$2" -j "$(nproc)" --target lmscore_cuda
}
log "building the base CUDA core${NEW_LIB:+, using $NEW_LIB for this tree}"
build "$BASE_SRC" build/same-scores-base >"$work/build-base.log" 2>&1 &
base_pid=$!
new_lib="${NEW_LIB:-}"
if [[ -z "$new_lib" ]]; then
  build . build/same-scores-new >"$work/build-new.log" 2>&1 || { tail -20 "$work/build-new.log"; exit 1; }
  new_lib=build/same-scores-new/liblmscore_cuda.so
fi
wait "$base_pid" || { tail -20 "$work/build-base.log"; exit 1; }
log "built"

$py bench/peers/hf_build.py --model "$model" --out "$work/hf" --device cuda || exit 1
"$bin/lmscore" convert hf --dir "$work/hf" --out "$work/model.gguf" --type bf16 || exit 1
"$bin/benchgpu" gen --model "$work/model.gguf" --name "$model" --size default --out "$work/w" || exit 1
log "model and workloads written"

rm -f "$work/new.jsonl" "$work/base.jsonl"
LMSCORE_CUDA_LIB="$(realpath "$new_lib")" "$bin/benchgpu" lmscore --model "$work/model.gguf" --name "$model" \
  --dir "$work/w" --workloads "$workloads" --out "$work/new.jsonl" --repeats 1 || exit 1
LMSCORE_CUDA_LIB="$(realpath build/same-scores-base/liblmscore_cuda.so)" "$BASE_BIN/benchgpu" lmscore \
  --model "$work/model.gguf" --name "$model" --dir "$work/w" --workloads "$workloads" --out "$work/base.jsonl" \
  --repeats 1 || exit 1
log "both builds scored $workloads"

$py - "$work/base.jsonl" "$work/new.jsonl" <<'EOF'
import json, sys
def runs(path):
    return {(r["workload"], r["peer"]): r for r in map(json.loads, open(path))}
base, new = runs(sys.argv[1]), runs(sys.argv[2])
bad = 0
for key in sorted(base):
    b, n = base[key], new.get(key)
    if n is None or b.get("error") or n.get("error"):
        print("MISSING or FAILED", key, (n or {}).get("error"), b.get("error")); bad += 1; continue
    tb, tn = b.get("token_logprobs"), n.get("token_logprobs")
    same = tb is not None and tb == tn and b.get("is_greedy") == n.get("is_greedy")
    rows = sum(len(x) for x in tb or [])
    print(f"{'SAME' if same else 'DIFFERENT'} {key[0]} {key[1]}: {len(tb or [])} requests, {rows} token log-probabilities")
    bad += not same
print("same_scores:", "all runs bitwise identical" if bad == 0 and base else f"{bad} runs differ or are missing")
sys.exit(1 if bad or not base else 0)
EOF
