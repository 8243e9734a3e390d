#!/bin/bash
# Submits score-shards.sbatch as an array of SHARDS tasks, then the merge
# step, which Slurm starts only when every task has succeeded; it writes
# $OUT/results.jsonl and $OUT/summary.json, byte-identical to one process's.
#
#   MODEL=model.gguf REQUESTS=requests.jsonl SHARDS=8 examples/slurm/submit.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SHARDS=${SHARDS:-8} LMSCORE=${LMSCORE:-lmscore} OUT=${OUT:-out/sharded}
export MODEL=${MODEL:?set MODEL to the GGUF file} REQUESTS=${REQUESTS:?set REQUESTS to the request JSONL}
array=$(sbatch --parsable --export=ALL --array="0-$((SHARDS - 1))" "$here/score-shards.sbatch")
sbatch --parsable --export=ALL --dependency="afterok:$array" --job-name=lmscore-merge \
    "$here/merge.sbatch"
