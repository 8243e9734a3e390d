#!/usr/bin/env bash
# Runs the CUDA core's device tests from a CMake build folder; what
# `make test-cuda` runs after building. Needs a GPU: without one every
# program prints SKIP and exits 0.
#
# Usage: kernels/tests/run_device_tests.sh [build_dir] [--throughput]
#   --throughput  also run the 1B-shaped throughput probe (about a minute)
set -uo pipefail

build="${1:-build/cuda}"
[[ "$build" == --* ]] && build=build/cuda
throughput=0
for a in "$@"; do [[ "$a" == --throughput ]] && throughput=1; done
lib="$build/liblmscore_cuda.so"
bin="$build/kernels/tests"
status=0

run() {
  echo "=== $*"
  "$@" || status=1
}

run "$bin/attention_tiles_test"
run "$bin/copy_levels_test"
run "$bin/kernel_tests" --perf
run "$bin/model_tests" "$lib"
run "$bin/batch_invariance_tests" "$lib"
run "$bin/quant_model_tests"
# Again with the dense FFN in chunks of 7 rows: the quantized down projection
# then comes from its own dequantized region across chunks (step.cpp).
LMSCORE_CUDA_FFN_ROWS=7 run "$bin/quant_model_tests"
if [[ -x "$bin/model_tests_cpu" ]]; then
  run "$bin/model_tests_cpu" "$lib"
else
  echo "=== model_tests_cpu not built (no CPU core sources, or build it with --target model_tests_cpu)"
fi
if [[ $throughput == 1 ]]; then
  run "$bin/throughput" "$lib"
fi
exit $status
