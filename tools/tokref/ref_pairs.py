#!/usr/bin/env python3
"""Expected (context, continuation) token ids for tokenizer.EncodePair.

Runs lm-evaluation-harness's pair logic (HFLM._encode_pair and the empty
context rule of loglikelihood) in Python, with its real str.rstrip, on top of
reference encoders:

  llama2       sentencepiece, Llama-2 tokenizer.model, BOS added
  stories260K  sentencepiece, ModelProto built from tok512.bin, BOS added
  mistral      Hugging Face tokenizers, Mistral tokenizer.json, BOS added
  gpt2         Hugging Face tokenizers, GPT-2 encoder.json + vocab.bpe
               (ByteLevelBPETokenizer), no BOS; EOS is the prefix token

"BOS added" is lm-evaluation-harness with add_bos_token=True, lmscore's rule
for vocabularies whose add_bos_token is true.

Usage: ref_pairs.py <kind> <source...> <pairs.jsonl> <out.jsonl>
  kinds: llama2 <tokenizer.model> | stories260K <tok512.bin>
         | mistral <tokenizer.json> | gpt2 <encoder.json> <vocab.bpe>
"""
import hashlib
import json
import os
import sys



def encode_pair(enc, add_bos, bos, prefix, context, continuation):
    """lm-evaluation-harness: loglikelihood's empty-context rule, then
    _encode_pair; enc encodes without special tokens."""
    if context == "":
        return [prefix], enc(continuation)
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    special = (lambda s: [bos] + enc(s)) if add_bos else enc
    whole = special(context + continuation)
    ctx = special(context)
    return ctx, whole[len(ctx):]


def main():
    kind = sys.argv[1]
    args = sys.argv[2:]
    if kind in ("llama2", "stories260K"):
        import sentencepiece as spm

        if kind == "llama2":
            sp = spm.SentencePieceProcessor(model_file=args[0])
        else:
            from ref_sentencepiece import tok512_model

            sp = spm.SentencePieceProcessor(model_proto=tok512_model(args[0]))
        enc, bos, eos, add_bos = sp.encode, sp.bos_id(), sp.eos_id(), True
        ref = f"lm-eval _encode_pair over sentencepiece@{spm.__version__}"
        rest = args[1:]
    elif kind == "mistral":
        import tokenizers

        tok = tokenizers.Tokenizer.from_file(args[0])
        enc = lambda s: tok.encode(s, add_special_tokens=False).ids  # noqa: E731
        bos, eos, add_bos = tok.token_to_id("<s>"), tok.token_to_id("</s>"), True
        ref = f"lm-eval _encode_pair over tokenizers@{tokenizers.__version__}"
        rest = args[1:]
    elif kind == "gpt2":
        import tokenizers

        tok = tokenizers.ByteLevelBPETokenizer(args[0], args[1])
        enc = lambda s: tok.encode(s).ids  # noqa: E731
        eot = tok.token_to_id("<|endoftext|>")
        bos, eos, add_bos = eot, eot, False
        ref = f"lm-eval _encode_pair over tokenizers@{tokenizers.__version__} (ByteLevelBPETokenizer)"
        rest = args[2:]
    else:
        sys.exit(__doc__)
    pairs_path, out_path = rest
    with open(pairs_path, "rb") as f:
        raw = f.read()
    pairs = [json.loads(l) for l in raw.decode("utf-8").split("\n") if l]
    prefix = bos if bos is not None and bos >= 0 else eos
    with open(out_path, "w", encoding="utf-8") as f:
        header = {"reference": ref, "strings": os.path.basename(pairs_path), "sha256": hashlib.sha256(raw).hexdigest()}
        f.write(json.dumps(header, separators=(",", ":")) + "\n")
        for c, k in pairs:
            ctx, cont = encode_pair(enc, add_bos, bos, prefix, c, k)
            f.write(json.dumps([list(ctx), list(cont)], separators=(",", ":")) + "\n")
    print(f"{ref}: {len(pairs)} pairs -> {out_path}")


if __name__ == "__main__":
    main()
