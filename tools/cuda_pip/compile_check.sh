#!/usr/bin/env bash
# Compiles the CUDA core and its device tests with nvcc and the CUDA headers
# from PyPI (tools/cuda_pip/install.sh), on a machine with no GPU and no CUDA
# toolkit: a kernel that no longer compiles fails here, in CI. Nothing runs
# on a GPU. Builds the sm_90 code and the portable fallback (sm_80 + PTX).
#
# Usage: tools/cuda_pip/compile_check.sh [build_dir]   (default build/cuda-check)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"
build="${1:-build/cuda-check}"
nvcc="$(tools/cuda_pip/install.sh | tail -1)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc" >/dev/null
cmake --build "$build" -j "${JOBS:-2}"
# The library must export the ABI and nothing else.
exports="$(nm -D --defined-only "$build/liblmscore_cuda.so" | awk '$2 == "T" {print $3}' | grep -v '^_' | sort)"
want="$(grep -o 'LMSCORE_API [^(]*(' csrc/include/lmscore.h | grep -oE 'lmscore_[a-z_]+\(' | tr -d '(' | sort)"
if [[ "$exports" != "$want" ]]; then
  echo "compile_check: exported symbols differ from lmscore.h:" >&2
  diff <(echo "$want") <(echo "$exports") >&2 || true
  exit 1
fi
# Without a GPU the test programs must skip cleanly, and the library must
# report the missing device as an error rather than crash.
"$build/kernels/tests/kernel_tests"
"$build/kernels/tests/model_tests" "$build/liblmscore_cuda.so"
echo "compile_check: ok ($(echo "$exports" | wc -l) ABI functions exported)"
