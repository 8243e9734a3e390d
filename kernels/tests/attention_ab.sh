#!/usr/bin/env bash
# attention_perf A/B in one device call: kernel_tests built from this tree
# (B) and from the same tree with kernels/attention_tc.cu replaced by
# another version of it (A: a file carried beside the tree, e.g.
# `git show main:kernels/attention_tc.cu > .cache/devbin/attention_tc_A.cu`),
# then `kernel_tests --perf-only --kernel attention` of each in turn,
# ROUNDS rounds, so that both see the card in the same state. The A build
# runs beside B's, niced; B is the build folder device_run.sh makes, so
# run it after that (or let this build it). Output: $OUT/attn_ab.log.
#
# Usage (repo root, GPU machine):
#   A=.cache/devbin/attention_tc_A.cu [ROUNDS=2] [BUILD=build/cuda-device] bash kernels/tests/attention_ab.sh
set -uo pipefail
out="${OUT:-/tmp/lmscore-attn-ab}"
a="${A:?A: the attention_tc.cu of variant A}"
b_build="${BUILD:-build/cuda-device}"
rounds="${ROUNDS:-2}"
a_tree="${A_TREE:-/tmp/lmscore-attn-a}"
mkdir -p "$out"
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
rm -rf "$a_tree" && mkdir -p "$a_tree"
tar --exclude=./build --exclude=./.cache --exclude=./.git -cf - . | tar -xf - -C "$a_tree"
cp "$a" "$a_tree/kernels/attention_tc.cu"
( cd "$a_tree" && nice cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90-real >/dev/null &&
  nice cmake --build build -j 8 --target kernel_tests ) > "$out/build_a.log" 2>&1 &
a_pid=$!
if [[ ! -x "$b_build/kernels/tests/kernel_tests" ]]; then
  { cmake -S . -B "$b_build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90-real &&
    cmake --build "$b_build" -j 8 --target kernel_tests; } > "$out/build_b.log" 2>&1 || { echo "attention_ab: B did not build"; exit 1; }
fi
wait "$a_pid" || { echo "attention_ab: A did not build (see build_a.log)"; exit 1; }
for i in $(seq 1 "$rounds"); do
  for v in A B; do
    bin="$b_build/kernels/tests/kernel_tests"
    [[ $v == A ]] && bin="$a_tree/build/kernels/tests/kernel_tests"
    echo "--- variant $v round $i"
    timeout 120 "$bin" --perf-only --kernel attention 2>&1 |
      awk '/perf attention/ && !/simt/ { sub(/INFO perf attention /, ""); print }'
  done
done | tee "$out/attn_ab.log"
