#!/usr/bin/env bash
# attention_perf A/B in one device call: kernel_tests built from this tree
# (variant B) and from copies of the tree with kernels/attention_tc.cu
# replaced by other versions of it (files carried beside the tree, e.g.
# `git show main:kernels/attention_tc.cu > .cache/devbin/attention_tc_main.cu`),
# then `kernel_tests --perf-only --kernel attention` of each in turn,
# ROUNDS rounds, so that every variant sees the card in the same state.
# The other variants build beside B's, niced; B is the build folder
# device_run.sh makes, so run it after that (or let this build it).
# Output: $OUT/attn_ab.log.
#
# Usage (repo root, GPU machine):
#   VARIANTS="main=.cache/devbin/attention_tc_main.cu c1=FILE ..." [ROUNDS=2] \
#     [BUILD=build/cuda-device] bash kernels/tests/attention_ab.sh
#   A=FILE bash kernels/tests/attention_ab.sh     (one variant, named A)
# PHASE=build only builds the variants (start it in the background beside
# device_run.sh); PHASE=run only times them (their builds already there).
set -uo pipefail
out="${OUT:-/tmp/lmscore-attn-ab}"
variants="${VARIANTS:-${A:+A=$A}}"
[[ -n "$variants" ]] || { echo "attention_ab: set VARIANTS=\"name=file ...\" or A=file"; exit 2; }
b_build="${BUILD:-build/cuda-device}"
rounds="${ROUNDS:-2}"
trees="${TREES:-/tmp/lmscore-attn}" # each variant's tree is $trees-NAME
phase="${PHASE:-all}"
mkdir -p "$out"
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"

names=()
pids=()
for v in $variants; do
  name="${v%%=*}" file="${v#*=}"
  [[ $name != B ]] || { echo "attention_ab: B names this tree's own build; call the variant something else"; exit 2; }
  [[ -f "$file" ]] || { echo "attention_ab: variant $name: no file $file"; exit 2; }
  names+=("$name")
  [[ $phase == run ]] && continue
  tree="$trees-$name"
  rm -rf "$tree" && mkdir -p "$tree"
  tar --exclude=./build --exclude=./.cache --exclude=./.git -cf - . | tar -xf - -C "$tree"
  cp "$file" "$tree/kernels/attention_tc.cu"
  # Each variant's build shares the cores; -j 4 each keeps the machine responsive.
  ( cd "$tree" && nice cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90-real >/dev/null &&
    nice cmake --build build -j 4 --target kernel_tests ) > "$out/build_$name.log" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "attention_ab: ${names[$i]} did not build (see build_${names[$i]}.log)"
    kill "${pids[@]}" 2>/dev/null
    exit 1
  fi
done
[[ $phase == build ]] && exit 0
if [[ ! -x "$b_build/kernels/tests/kernel_tests" ]]; then
  { cmake -S . -B "$b_build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90-real &&
    cmake --build "$b_build" -j 8 --target kernel_tests; } > "$out/build_B.log" 2>&1 || { echo "attention_ab: B did not build"; exit 1; }
fi
for i in $(seq 1 "$rounds"); do
  for name in "${names[@]}" B; do
    bin="$b_build/kernels/tests/kernel_tests"
    [[ $name != B ]] && bin="$trees-$name/build/kernels/tests/kernel_tests"
    echo "--- variant $name round $i"
    timeout 120 "$bin" --perf-only --kernel attention 2>&1 |
      awk '/perf attention/ && !/simt/ { sub(/INFO perf attention /, ""); print }'
  done
done | tee "$out/attn_ab.log"
