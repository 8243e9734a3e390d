#!/usr/bin/env python3
"""Builds the benchmark's random-weight Hugging Face models from a config
and a seed, in bf16, and saves them with save_pretrained (safetensors), so
that `lmscore convert hf` and the transformers peers read the same weights.

    python bench/peers/hf_build.py --model llama-3.2-1b --out DIR [--seed 1234] [--device cuda] [--tiny]

Models (shapes only; the weights are transformers' own initialisation). The
same configs are bench/shapes.go's, which `benchgpu random` writes as GGUF
without transformers; bench/shapes_test.go checks that both agree:
  llama-3.2-1b  LlamaForCausalLM: 16 layers, 2048 wide, 32 query heads and 8
                KV heads of 64, FF 8192, vocabulary 128,256, tied
                embeddings, rope_theta 500,000 (plain RoPE: lmscore's
                converter takes no llama3 rope scaling, and the shape and
                cost are the same without it)
  gpt2-large    GPT2LMHeadModel: 36 layers, 1280 wide, 20 heads, vocabulary
                50,257; its position table has 2,304 rows instead of 1,024
                so that sysprompt's requests (2,000 + 300 tokens) fit without
                truncation; nothing else changes, the metaicl contexts fit
                1,024 as the issue asks
  llama-3.1-8b  LlamaForCausalLM: 32 layers, 4096 wide, 32 query heads and 8
                KV heads of 128, FF 14336, vocabulary 128,256, untied,
                rope_theta 500,000 with Llama 3.1's llama3 RoPE scaling
                (factor 8, low/high frequency factors 1/4, original context
                8192), as meta-llama/Llama-3.1-8B's config.json
  qwen3-8b      Qwen3ForCausalLM: 36 layers, 4096 wide, 32/8 heads of 128,
                FF 12288, vocabulary 151,936, untied, rope_theta 1,000,000
  gemma-2-9b    Gemma2ForCausalLM: 42 layers, 3584 wide, 16/8 heads of 256,
                FF 14336, vocabulary 256,000, tied, sliding window 4096 on
                alternate layers, soft-caps 50 (attention) and 30 (logits)
--tiny keeps the vocabularies and makes the layers 2 deep: 64 wide for the
first two, 256 wide for the others (whole K-quant super-blocks, so that a
tiny Q4_K_M model is quantized as the real one), for a check of the
pipeline on a CPU.

The folder gets a stand-in tokenizer: GPT-2's 256 byte tokens as vocab.json
and an empty merges.txt. The workloads are token ids, so no text is ever
tokenized; the converter needs a tokenizer, and pads it to the model's
vocabulary with unused tokens.
"""

import argparse
import json
import os
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, Gemma2Config, GPT2Config, LlamaConfig, Qwen3Config

# The new shapes' tiny versions: 2 layers, 256 wide (see the docstring).
TINY = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            head_dim=64)


def config_for(name, tiny):
    if name == "llama-3.2-1b":
        kw = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                  num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
                  rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001,
                  rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
        if tiny:
            kw.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=16)
        return LlamaConfig(architectures=["LlamaForCausalLM"], **kw)
    if name == "gpt2-large":
        kw = dict(vocab_size=50257, n_positions=2304, n_embd=1280, n_layer=36, n_head=20,
                  activation_function="gelu_new", layer_norm_epsilon=1e-5, bos_token_id=50256, eos_token_id=50256)
        if tiny:
            kw.update(n_embd=64, n_layer=2, n_head=4)
        return GPT2Config(architectures=["GPT2LMHeadModel"], **kw)
    if name == "llama-3.1-8b":
        kw = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=131072,
                  rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001,
                  rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 8192})
        if tiny:
            kw.update(TINY)
        return LlamaConfig(architectures=["LlamaForCausalLM"], **kw)
    if name == "qwen3-8b":
        kw = dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                  num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                  rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=151643, eos_token_id=151645,
                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
        if tiny:
            kw.update(TINY)
        return Qwen3Config(architectures=["Qwen3ForCausalLM"], **kw)
    if name == "gemma-2-9b":
        kw = dict(vocab_size=256000, hidden_size=3584, intermediate_size=14336, num_hidden_layers=42,
                  num_attention_heads=16, num_key_value_heads=8, head_dim=256, max_position_embeddings=8192,
                  rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=256,
                  sliding_window=4096, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                  tie_word_embeddings=True, bos_token_id=2, eos_token_id=1, pad_token_id=0,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
        if tiny:
            # Heads wider than n_embd/n_head, as the real ones; the scalar is
            # the head width, so the attention scale stays the default.
            kw.update(TINY, head_dim=128, query_pre_attn_scalar=128)
        return Gemma2Config(architectures=["Gemma2ForCausalLM"], **kw)
    raise SystemExit(f"hf_build: unknown model {name!r} (want llama-3.2-1b, gpt2-large, llama-3.1-8b, qwen3-8b or gemma-2-9b)")


def bytes_to_unicode():
    """GPT-2's map from bytes to printable characters (vocab.json's alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_stand_in_tokenizer(out):
    chars = bytes_to_unicode()
    vocab = {chars[b]: b for b in range(256)}
    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()

    t0 = time.time()
    cfg = config_for(args.model, args.tiny)
    torch.manual_seed(args.seed)
    # Initialised where it will run: a billion normal draws take seconds on
    # the GPU and much longer on the CPU. The seed fixes the weights for a
    # given device and torch version; the GGUF is converted from the saved
    # files, so every peer reads the same ones whatever they are.
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out)
    write_stand_in_tokenizer(args.out)
    n = sum(p.numel() for p in model.parameters())
    info = {"model": args.model, "seed": args.seed, "device": args.device, "tiny": args.tiny, "parameters": n,
            "torch": torch.__version__, "transformers": transformers.__version__,
            "seconds": round(time.time() - t0, 2)}
    with open(os.path.join(args.out, "build.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
