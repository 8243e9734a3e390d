#!/usr/bin/env bash
# One call on the GPU machine (the device tool): build everything, run every
# device test, compute-sanitizer memcheck on a small model, the throughput
# probe; logs under $OUT. Each stage goes on after a failure so one call
# reports everything.
#
# Usage (repo root, on the GPU machine): bash kernels/tests/device_run.sh
#
# With $GO_TEST set to a test binary of the root package built elsewhere
# (`go test -c -o X .`; the GPU machine has no Go) it also runs the Go
# end-to-end tests through binding/: TestCUDAAgainstCPU (on stories260K too
# when $STORIES_GGUF names its GGUF, `lmscore convert llama2c`),
# TestCUDAFamiliesAgainstCPU (every family's transformers fixture) and
# TestCUDAQuantized (every quantized type) and TestPoolCUDABitwise (a Pool
# of CUDA members against one model).
set -uo pipefail
out="${OUT:-/tmp/lmscore-device}"
mkdir -p "$out"
build=build/cuda-device
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  nvcc --version | tail -2
  cmake --version | head -1
} 2>&1 | tee "$out/env.log"

# sm_90 only here: the portable list (sm_80 + PTX) is compiled by
# cuda-compile-check; this saves device minutes.
t0=$(date +%s)
{
  cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90-real &&
  cmake --build $build -j 16 &&
  { ! ls csrc/cpu/*.cpp >/dev/null 2>&1 || cmake --build $build -j 16 --target model_tests_cpu || echo "model_tests_cpu: CPU core did not build"; }
} > "$out/build.log" 2>&1
echo "build rc=$? in $(( $(date +%s) - t0 )) s"; tail -3 "$out/build.log"

bash kernels/tests/run_device_tests.sh $build --throughput 2>&1 | tee "$out/tests.log"
echo "tests rc=${PIPESTATUS[0]}"

# Every row count of the benchmark models' GEMM plans (about 20 s on an H100).
echo "=== gemm_sweep" | tee -a "$out/tests.log"
$build/kernels/tests/gemm_sweep 2>&1 | tee -a "$out/tests.log" | grep -E "^(FAIL|gemm_sweep)"

# memcheck on small models end to end, then every kernel on its own.
echo "=== compute-sanitizer memcheck model_tests --quick --no-oom"
timeout "${MEMCHECK_TIMEOUT:-180}" compute-sanitizer --tool memcheck --error-exitcode 99 --leak-check full \
  $build/kernels/tests/model_tests $build/liblmscore_cuda.so --quick --no-oom > "$out/memcheck.log" 2>&1
echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|LEAK SUMMARY|passed,|Device not supported|^FAIL" "$out/memcheck.log" | head -8
bash kernels/tests/memcheck_kernels.sh "$build" "$out"
# The quantized weights' paths: dequantization scratch, the chunked FFN's
# down projection read from its own region (step.cpp).
echo "=== compute-sanitizer memcheck quant_model_tests (FFN in chunks of 7 rows)"
LMSCORE_CUDA_FFN_ROWS=7 timeout "${MEMCHECK_TIMEOUT:-180}" compute-sanitizer --tool memcheck --error-exitcode 99 --leak-check full \
  $build/kernels/tests/quant_model_tests > "$out/memcheck_quant.log" 2>&1
echo "memcheck quant_model_tests rc=$?"
grep -E "ERROR SUMMARY|LEAK SUMMARY|passed,|^FAIL" "$out/memcheck_quant.log" | head -8

if [[ -n "${GO_TEST:-}" ]]; then
  echo "=== go test TestCUDA* (end to end through binding/)"
  LMSCORE_CUDA_LIB="$(realpath $build/liblmscore_cuda.so)" LMSCORE_STORIES_GGUF="${STORIES_GGUF:-}" \
    LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    timeout 300 "$GO_TEST" -test.run 'TestCUDAAgainstCPU|TestCUDAFamiliesAgainstCPU|TestCUDAQuantized|TestPoolCUDA' -test.v > "$out/go-e2e.log" 2>&1
  echo "go e2e rc=$?"
  grep -E "^(--- |PASS|FAIL|ok)|bf16 storage alone|Error:" "$out/go-e2e.log" | head -30
fi

echo "=== summary"
grep -hE "^(FAIL|SKIP)|passed, |INFO (perf|throughput|cuBLAS|device)" "$out/tests.log"
