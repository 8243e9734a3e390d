#!/usr/bin/env python3
"""Expected ids from Google's `sentencepiece` library.

Two vocabularies:
  tok512  stories260K's 512 pieces (llama2.c format). SentencePiece cannot read
          that format, so this script builds the equivalent ModelProto: BPE,
          the same pieces, scores and types, byte fallback, dummy prefix, and
          the normalizer llama.cpp and llama2.c apply (identity rule, extra
          whitespace kept). The real tok512 training used SentencePiece's
          default remove_extra_whitespaces=true, but neither llama2.c's
          encoder nor a GGUF records or applies it, so the reference does not.
  model   a SentencePiece .model file as is (Llama-2's tokenizer.model).

Ids are without BOS, matching tokenizer.Encode.

A third mode writes a self-contained case file for unknown-character
handling: a small vocabulary without byte fallback, where SentencePiece turns
each run of characters it cannot encode into one <unk>.

Usage: ref_sentencepiece.py tok512 <tok512.bin> <strings.jsonl> <out.jsonl>
       ref_sentencepiece.py model  <tokenizer.model> <strings.jsonl> <out.jsonl>
       ref_sentencepiece.py unk    <out.json>
"""
import json
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

from refcommon import read_corpus, read_tok512, write_expected


def tok512_model(path):
    pieces, scores, types = read_tok512(path)
    m = pb.ModelProto()
    for p, s, t in zip(pieces, scores, types):
        sp = m.pieces.add()
        sp.piece = p
        sp.score = s
        sp.type = t  # SentencePiece's Type enum uses llama.cpp's numbers
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.vocab_size = len(pieces)
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.unk_id = 0
    m.trainer_spec.bos_id = 1
    m.trainer_spec.eos_id = 2
    m.trainer_spec.pad_id = -1
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = True
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    return m.SerializeToString()


UNK_PIECES = [
    ("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3), ("\u2581", -1.0, 1),
    ("a", -2.0, 1), ("b", -3.0, 1), ("\u2581a", -4.0, 1), ("ab", -5.0, 1),
]
UNK_TEXTS = ["ab", "axyb", "a\u4e2d\u6587b", "xy", "ab zz", "a\u00e9", "", " ", "x a y", "b\nb"]


def unk_cases(out_path):
    m = pb.ModelProto()
    for p, sc, t in UNK_PIECES:
        sp = m.pieces.add()
        sp.piece, sp.score, sp.type = p, sc, t
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.vocab_size = len(UNK_PIECES)
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = True
    m.normalizer_spec.remove_extra_whitespaces = False
    sp = spm.SentencePieceProcessor(model_proto=m.SerializeToString())
    out = {
        "reference": f"sentencepiece@{spm.__version__}",
        "pieces": [p for p, _, _ in UNK_PIECES],
        "scores": [s for _, s, _ in UNK_PIECES],
        "types": [t for _, _, t in UNK_PIECES],
        "cases": [{"text": t, "ids": sp.encode(t)} for t in UNK_TEXTS],
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"sentencepiece unknown-character cases -> {out_path}")


def main():
    if sys.argv[1] == "unk":
        unk_cases(sys.argv[2])
        return
    kind, src, corpus_path, out_path = sys.argv[1:5]
    if kind == "tok512":
        sp = spm.SentencePieceProcessor(model_proto=tok512_model(src))
        ref = f"sentencepiece@{spm.__version__} (ModelProto built from tok512.bin)"
    elif kind == "model":
        sp = spm.SentencePieceProcessor(model_file=src)
        ref = f"sentencepiece@{spm.__version__}"
    else:
        sys.exit(f"unknown kind {kind!r}")
    raw, strings = read_corpus(corpus_path)
    rows = [sp.encode(s) for s in strings]
    write_expected(out_path, ref, corpus_path, raw, rows)


if __name__ == "__main__":
    main()
