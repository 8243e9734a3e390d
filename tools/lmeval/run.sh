#!/bin/sh
# lm-eval-harness against `lmscore serve` with DEFAULT flags, checked request
# by request against lm-eval's hf backend's rules scored by `lmscore score`.
#
# Runs lm-eval-harness 0.4.13 (from PyPI, no torch: its core needs none, and
# the "api" extra brings the HTTP client) with its local-completions model on
# three local tasks (tools/lmeval/tasks) against `lmscore serve` on
# ../shared's stories260K:
#   lmscore_mc    3-shot multiple choice, 20 questions (acc, acc_norm)
#   lmscore_ppl   perplexity (loglikelihood_rolling), 8 stories, one with
#                 leading/trailing spaces and one with <s> and </s> in it
#   lmscore_edge  loglikelihood edge cases: trailing spaces, tabs, newlines,
#                 empty contexts, <s> </s> <unk> in the text, no delimiter
# lm-eval finds the server's tokenizer endpoints on its own (its "remote"
# tokenizer backend). Then tools/lmeval/hfrules.py runs the same tasks through
# lm-eval's own request code with the hf backend's tokenization rules (HFLM),
# `lmscore score` scores those token requests, and every request's
# log-likelihood (and is_greedy) must equal lm-eval's, to the bit.
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
tasks=lmscore_mc,lmscore_ppl,lmscore_edge

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
export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1

stories260k_gguf "$work" "$shared"
# For tools/lmeval/hf_device.sh, which builds the transformers model from it
# on the GPU machine, where ../shared is not carried.
cp "$shared/stories260K.bin" "$work/stories260K.bin"

# The server, default flags, on a free loopback port; its first line says which.
# LMEVAL_SERVE_FLAGS adds server flags (e.g. --add-bos request, to see the
# check fail as the old default did).
# shellcheck disable=SC2086
serve_start tools/lmeval "$work/serve.log" ${LMEVAL_SERVE_FLAGS:-}
echo "tools/lmeval: lmscore serve at $url"

# The README's command line. max_length: local-completions does not ask
# the server for the context window (its default is 2048).
rm -rf "$work/out"
"$venv/bin/lm_eval" --model local-completions \
    --model_args "model=stories260K,base_url=$url/v1/completions,max_length=512" --batch_size 32 \
    --tasks $tasks --include_path tools/lmeval/tasks \
    --output_path "$work/out" --log_samples > "$work/lm_eval.log" 2>&1 \
    || { tail -40 "$work/lm_eval.log"; exit 1; }
grep -q "Using remote tokenizer" "$work/lm_eval.log" || { echo "tools/lmeval: lm-eval did not pick the remote tokenizer"; exit 1; }

serve_stop

# The same tasks by the hf backend's rules, scored by `lmscore score`.
"$venv/bin/python" tools/lmeval/hfrules.py requests --lmscore "$lmscore" --model "$gguf" --tasks $tasks \
    --include_path tools/lmeval/tasks --out "$work/hf_requests.jsonl" 2>"$work/hfrules.log" \
    || { tail -20 "$work/hfrules.log"; exit 1; }
"$lmscore" score --model "$gguf" --in "$work/hf_requests.jsonl" --out "$work/hf_results.jsonl" 2>"$work/score.log"

"$venv/bin/python" tools/lmeval/hfrules.py compare --out "$work/out" --requests "$work/hf_requests.jsonl" --results "$work/hf_results.jsonl"
