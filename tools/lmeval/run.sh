#!/bin/sh
# lm-eval-harness against `lmscore serve`, checked against `lmscore score`.
#
# Runs lm-eval-harness 0.4.13 (from PyPI, no torch: its core needs none, and
# the "api" extra brings the HTTP client) with its local-completions model on
# a small local multiple-choice task (tasks/lmscore_mc.yaml over
# data/mc.jsonl) against `lmscore serve` on ../shared's stories260K, then
# scores the same items with `lmscore score`, and compares: the accuracy must
# be equal, and so must every choice's log-likelihood, to the bit.
#
# lm-eval tokenizes through the server (its "remote" tokenizer backend, which
# it picks on its own when /tokenizer_info and /tokenize answer). The server
# runs with --tokenize-bos so that those token sequences start with BOS, as
# `lmscore score` (and llama.cpp) score them.
#
# Idempotent: the venv (.cache/lmeval-venv), the GGUF and the binary are made
# once. Everything it writes goes under .cache/lmeval/ (git-ignored).
# Usage: tools/lmeval/run.sh   (from anywhere; LMSCORE=path overrides the binary)
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. tools/stories260k_serve.sh
work=.cache/lmeval
venv=.cache/lmeval-venv
shared=../shared/models/stories260K
lmeval_version=0.4.13

if [ ! -f "$shared/stories260K.bin" ]; then
    echo "tools/lmeval: $shared is absent: skipping the lm-eval-harness check"
    exit 0
fi
mkdir -p "$work"

if ! "$venv/bin/python" -c "import lm_eval, aiohttp, tenacity; assert lm_eval.__version__ == '$lmeval_version'" 2>/dev/null; then
    echo "tools/lmeval: installing lm-eval[api]==$lmeval_version into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "lm-eval[api]==$lmeval_version"
fi

stories260k_gguf "$work" "$shared"

# The server, on a free loopback port; its first line says which.
serve_start tools/lmeval "$work/serve.log" --tokenize-bos
echo "tools/lmeval: lmscore serve at $url"

rm -rf "$work/out"
HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
"$venv/bin/lm_eval" --model local-completions \
    --model_args "model=stories260K,base_url=$url/v1/completions,tokenizer_backend=remote,max_length=512,num_concurrent=1" --batch_size 8 \
    --tasks lmscore_mc --include_path tools/lmeval/tasks \
    --output_path "$work/out" --log_samples > "$work/lm_eval.log" 2>&1 \
    || { tail -40 "$work/lm_eval.log"; exit 1; }

curl -sf "$url/metrics" > "$work/metrics.txt" || true

serve_stop

# The same items through `lmscore score`.
"$venv/bin/python" tools/lmeval/compare.py requests tools/lmeval/data/mc.jsonl > "$work/requests.jsonl"
"$lmscore" score --model "$gguf" --in "$work/requests.jsonl" --out "$work/results.jsonl" --summary "$work/summary.json" 2>"$work/score.log"

"$venv/bin/python" tools/lmeval/compare.py compare "$work/out" "$work/results.jsonl" "$work/summary.json" "$work/metrics.txt"
