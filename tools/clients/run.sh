#!/bin/sh
# The official openai npm client against `lmscore serve`: its logprobs must
# equal `lmscore score`'s on the same token sequences (run by
# `make test-clients` when node is present).
#
# Idempotent: the pinned openai package is fetched once into .cache/clients/
# (git-ignored), the GGUF converted once; skips with a message when node or
# ../shared is absent. LMSCORE=path overrides the binary (default bin/lmscore).
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. tools/stories260k_serve.sh
work=.cache/clients
shared=../shared/models/stories260K
openai_version=7.57.0

if ! command -v node >/dev/null 2>&1; then
    echo "tools/clients: node not found: skipping the openai client test"
    exit 0
fi
if [ ! -f "$shared/stories260K.bin" ]; then
    echo "tools/clients: $shared is absent: skipping the openai client test"
    exit 0
fi
mkdir -p "$work"

have=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$work/node_modules/openai/package.json" 2>/dev/null | head -n 1)
if [ "$have" != "$openai_version" ]; then
    echo "tools/clients: installing openai@$openai_version into $work"
    (cd "$work" && npm install --no-audit --no-fund --silent "openai@$openai_version")
fi
# The script imports "openai" from next to the installed package.
cp tools/clients/openai_client.mjs "$work/openai_client.mjs"

stories260k_gguf "$work" "$shared"

serve_start tools/clients "$work/serve.log"

node "$work/openai_client.mjs" prepare "$url" tools/lmeval/data/mc.jsonl > "$work/requests.jsonl"
"$lmscore" score --model "$gguf" --in "$work/requests.jsonl" --out "$work/results.jsonl" --token-logprobs 2>"$work/score.log"
node "$work/openai_client.mjs" check "$url" stories260K "$work/requests.jsonl" "$work/results.jsonl"

serve_stop
echo "tools/clients: OK"
