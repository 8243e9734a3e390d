#!/usr/bin/env bash
# compute-sanitizer memcheck on kernel_tests, one process per kernel file
# (kernel_tests --kernel NAME, NAME from kernels/NAME_test.cu), all at once:
# in one process the whole list took longer than device_run.sh's limit.
# Each process draws its inputs from the seed afresh (kernel_tests.cu), so
# the inputs differ from the full list's; the checks are the same.
#
# Usage (repo root, on the GPU machine, after a build):
#   bash kernels/tests/memcheck_kernels.sh [build dir] [log dir]
# MEMCHECK_TIMEOUT (seconds, default 180) limits each process.
set -uo pipefail
build="${1:-build/cuda-device}"
out="${2:-${OUT:-/tmp/lmscore-device}}"
mkdir -p "$out"
rm -f "$out"/memcheck_kernels_*.log # an earlier run's would join the summary
echo "=== compute-sanitizer memcheck kernel_tests, one process per kernel file"
pids=() names=()
for t in kernels/*_test.cu; do
  k=$(basename "$t" _test.cu)
  timeout "${MEMCHECK_TIMEOUT:-180}" compute-sanitizer --tool memcheck --error-exitcode 99 --leak-check full \
    "$build/kernels/tests/kernel_tests" --kernel "$k" > "$out/memcheck_kernels_$k.log" 2>&1 &
  pids+=($!) names+=("$k")
done
status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"; rc=$?
  if [[ $rc != 0 ]]; then echo "memcheck kernel_tests --kernel ${names[$i]} rc=$rc"; status=1; fi
done
echo "memcheck kernel_tests rc=$status"
grep -hE "ERROR SUMMARY|LEAK SUMMARY|Device not supported" "$out"/memcheck_kernels_*.log | sort | uniq -c
grep -hE "passed,|^FAIL" "$out"/memcheck_kernels_*.log
exit $status
