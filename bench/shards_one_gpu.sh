#!/usr/bin/env bash
# Issue 19 on one GPU: a sharded run's processes may share a card. Two
# `lmscore score --shard i/2` processes run at the same time on one GPU, each
# with half the KV budget of a single process, then `lmscore merge` joins
# them; the merged output must be byte-identical to the single process's,
# on metaicl16 and metaicl0 of the Llama-3.2-1B shape (random bf16 weights).
#
# On the GPU machine, from the repository root, with lmscore and benchgpu
# built elsewhere (the GPU machine has no Go):
#   BIN=.cache/devbin bash bench/shards_one_gpu.sh
# Prints one line per workload and exits non-zero when an output differs.
# BACKEND=cpu TINY=1 checks the script itself on a machine without a GPU.
set -euo pipefail
bin="${BIN:-.cache/devbin}"
work="${WORK:-/tmp/lmscore-shards-1gpu}"
kv="${KV_MEMORY_GIB:-8}"
backend="${BACKEND:-cuda}"
tiny=()
[[ "${TINY:-0}" == 1 ]] && tiny=(--tiny)
mkdir -p "$work"
device=(--backend cpu)
if [[ "$backend" == cuda ]]; then
  build=build/cuda-shards
  command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
  cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90-real >/dev/null
  cmake --build $build -j 16 --target lmscore_cuda >/dev/null
  device=(--backend cuda --cuda-lib "$(realpath $build/liblmscore_cuda.so)")
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi

model="$work/llama-3.2-1b.gguf"
[[ -f "$model" ]] || "$bin/benchgpu" random --shape llama-3.2-1b "${tiny[@]}" --type bf16 --out "$model" >/dev/null
"$bin/benchgpu" gen --model "$model" --out "$work/wl" >/dev/null
score() { "$bin/lmscore" score -m "$model" "${device[@]}" --progress none "$@"; }
status=0
for w in metaicl16 metaicl0; do
  in="$work/wl/$w.jsonl"
  t0=$(date +%s.%N)
  score --kv-memory "${kv}GiB" --in "$in" --out "$work/one-$w.jsonl" --force 2>"$work/one-$w.log"
  t1=$(date +%s.%N)
  half=$((kv / 2))
  score --kv-memory "${half}GiB" --in "$in" --shard 0/2 --out "$work/s0-$w.jsonl" --force 2>"$work/s0-$w.log" &
  p0=$!
  score --kv-memory "${half}GiB" --in "$in" --shard 1/2 --out "$work/s1-$w.jsonl" --force 2>"$work/s1-$w.log" &
  p1=$!
  wait $p0 && wait $p1
  t2=$(date +%s.%N)
  "$bin/lmscore" merge --out "$work/merged-$w.jsonl" "$work/s0-$w.jsonl" "$work/s1-$w.jsonl" >"$work/merge-$w.log" 2>&1
  if cmp -s "$work/one-$w.jsonl" "$work/merged-$w.jsonl"; then verdict="byte-identical"; else verdict="DIFFERENT"; status=1; fi
  printf '%s: one process (%s GiB KV) %.1f s; two processes at once on the same device (%s GiB each) %.1f s; merged output %s (%d lines)\n' \
    "$w" "$kv" "$(awk "BEGIN{print $t1 - $t0}")" "$half" "$(awk "BEGIN{print $t2 - $t1}")" "$verdict" "$(wc -l < "$work/one-$w.jsonl")"
done
exit $status
