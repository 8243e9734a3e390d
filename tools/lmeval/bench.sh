#!/bin/sh
# lm-eval-harness's local-completions through `lmscore serve` against
# `lmscore score` on the same 16-shot multiple-choice requests
# (tasks/lmscore_shots16.yaml: 100 questions x 4 choices), on the CPU, at
# several batch sizes (tools/lmeval/bench.py). Needs the venv and GGUF that
# tools/lmeval/run.sh makes.
# Usage: tools/lmeval/bench.sh [BATCH_SIZES]   (default 1,32,400)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. tools/stories260k_serve.sh  # stories260k_gguf
work=.cache/lmeval
venv=.cache/lmeval-venv
shared=../shared/models/stories260K
if [ ! -f "$shared/stories260K.bin" ]; then
    echo "tools/lmeval: $shared is absent: skipping the lm-eval-harness speed check"
    exit 0
fi
[ -x "$venv/bin/python" ] || { echo "tools/lmeval: run tools/lmeval/run.sh first (it makes $venv)"; exit 1; }
export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
mkdir -p "$work"
stories260k_gguf "$work" "$shared"
"$venv/bin/python" tools/lmeval/bench.py --lmscore "$lmscore" --model "$gguf" \
    --task lmscore_shots16 --include_path tools/lmeval/tasks --batch_sizes "${1:-1,32,400}" 2>"$work/bench.log" \
    || { tail -20 "$work/bench.log"; exit 1; }
