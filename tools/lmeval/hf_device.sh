#!/bin/sh
# lm-eval's hf backend against `lmscore serve`, per request within 1e-4, on
# the GPU machine (torch and transformers; lm-eval need not be there).
#
# 1. Here, on the CPU: `make test-lmeval`. It leaves in .cache/lmeval/ the
#    token requests of lm-eval's hf-backend rules (hf_requests.jsonl, made by
#    lm-eval's own task code: hfrules.py requests), lm-eval's answers through
#    `lmscore serve` with default flags (out/, --log_samples) and
#    stories260K's llama2.c file (stories260K.bin).
# 2. One device call, from the repository root:
#      run(command="sh tools/lmeval/hf_device.sh", carry=[".cache/lmeval"])
#    hf_torch.py builds stories260K as a transformers LlamaForCausalLM and
#    scores every request as lm-eval's HFLM._loglikelihood_tokens does (on
#    cuda where there is one); hfrules.py compare checks each of lm-eval's
#    serve-path log-likelihoods (rolling windows summed) and is_greedy
#    against those numbers within 1e-4.
# Where lm-eval and a runnable bin/lmscore are on the device too (carry
# "bin/lmscore" as well), the requests are first made again there and must
# equal the carried ones.
# TOLERANCE overrides 1e-4; PYTHON the interpreter.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
work=.cache/lmeval
py=${PYTHON:-python3}
tol=${TOLERANCE:-1e-4}

for f in hf_requests.jsonl hf_requests.jsonl.keys stories260K.bin out; do
    [ -e "$work/$f" ] || { echo "tools/lmeval: $work/$f is missing: run make test-lmeval on the CPU machine first and carry $work"; exit 1; }
done
"$py" -c 'import torch, transformers' || { echo "tools/lmeval: $py lacks torch or transformers"; exit 1; }

if "$py" -c 'import lm_eval' 2>/dev/null && [ -x bin/lmscore ] && [ -f "$work/stories260K.gguf" ] && bin/lmscore version >/dev/null 2>&1; then
    echo "tools/lmeval: lm-eval is here: making the hf-rules requests again"
    "$py" tools/lmeval/hfrules.py requests --lmscore bin/lmscore --model "$work/stories260K.gguf" \
        --tasks lmscore_mc,lmscore_ppl,lmscore_edge --include_path tools/lmeval/tasks --out "$work/hf_requests.device.jsonl"
    cmp "$work/hf_requests.jsonl" "$work/hf_requests.device.jsonl" && cmp "$work/hf_requests.jsonl.keys" "$work/hf_requests.device.jsonl.keys" || { echo "tools/lmeval: the requests differ from the CPU machine's"; exit 1; }
else
    echo "tools/lmeval: no lm-eval (or no bin/lmscore) here: using the carried hf-rules requests"
fi

"$py" tools/lmeval/hf_torch.py --llama2c "$work/stories260K.bin" --requests "$work/hf_requests.jsonl" --out "$work/hf_torch_results.jsonl"
"$py" tools/lmeval/hfrules.py compare --out "$work/out" --requests "$work/hf_requests.jsonl" \
    --results "$work/hf_torch_results.jsonl" --tolerance "$tol" --label "lm-eval's hf backend (transformers)"
