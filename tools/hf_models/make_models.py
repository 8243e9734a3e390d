#!/usr/bin/env python3
"""Writes small random-initialised Hugging Face models for lmscore's tests.

    python tools/hf_models/make_models.py --out DIR [--seed 1234] [--only llama,gpt2]

Needs torch and transformers (tokenizers and regex come with it); runs on the
CPU in a few seconds and reaches no network. Writes, under DIR:

  llama/       LlamaForCausalLM, 2 layers, 64 wide, 4 heads, 2 KV heads,
               n_ff 176, vocab 512; float32 safetensors; a SentencePiece-style
               BPE tokenizer.json with byte fallback (tokenizer.ggml.model
               "llama" after conversion)
  llama_bf16/  the same weights rounded to and saved as bfloat16
  qwen2/       Qwen2ForCausalLM, q/k/v biases, tied output, rope_theta 1e6,
               vocab 544 (the tokenizer has fewer tokens, as Qwen2's does);
               saved in shards with model.safetensors.index.json; a byte-level
               BPE tokenizer.json with Qwen2's pre-tokenizer regex
  gpt2/        GPT2LMHeadModel, 2 layers, 64 wide, vocab 512; GPT-2's
               vocab.json + merges.txt only
  llama31/     LlamaForCausalLM with Llama 3.1's RoPE scaling (rope_type
               llama3: factor 8, low 1, high 4, original context 32, so that
               head_dim 16 has pairs in all three bands and sequences go
               past the original context), tied output as Llama 3.2, weights
               scaled up so that logits are far from uniform; the reference
               is computed in float64, RoPE's angles included (see
               float64_rope), over lengths up to 100
  qwen3/       Qwen3ForCausalLM, 2 layers, 64 wide, 4 heads, 2 KV heads,
               head_dim 32 (so 4 * 32 != 64), q/k head norms, no biases, tied
               output, vocab 512, Qwen2's tokenizer; weights scaled up (logits
               far from uniform, sharper attention); a float64 reference as
               llama31's, plus sequences longer than 64 that share prefixes

and in each folder reference.json: for a few token sequences (random ids of
lengths 1, 2, 5, 17, 37 and 64, and tokenized sentences), transformers'
float32 (llama31: float64) logits at every position (eager attention, CPU, one thread), the
log-probability of each next token, and how the tokenizer splits some texts.
lmscore's CPU engine and llama.cpp are compared against these
(tools/gguf_check/check.py --hf DIR; LMSCORE_HF_MODELS=DIR go test ./...).

Everything is derived from --seed and the fixed text below: the same seed and
versions give the same files. The tokenizers are trained here by a small,
deterministic BPE, not by the tokenizers library's trainer.
"""

import argparse
import collections
import json
import math
import os
import platform

import regex
import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import (GPT2Config, GPT2LMHeadModel, GPT2Tokenizer, LlamaConfig, LlamaForCausalLM,
                          LlamaTokenizerFast, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM)

CORPUS = """\
Once upon a time, there was a little girl named Lily. She loved to play outside in the park.
One day, she saw a big, red ball. She wanted to play with it, but it was too high.
Tom was very hungry, so he asked his mom for some food. His mom gave him a warm bowl of soup.
The cat sat on the mat and looked at the bird in the tree. The bird sang a happy song.
In 1969, two people walked on the moon; they said it was a giant leap for everyone.
Question: What is the capital of France? Answer: Paris is the capital of France.
Question: How many legs does a spider have? Answer: A spider has eight legs.
The quick brown fox jumps over the lazy dog, and the dog does not even notice.
She said, "I can't believe it's already 3:45!" and they're running to the station.
We'll meet at the library at 10 o'clock, then we've got lunch with the team.
Numbers like 42, 3.14159 and 2,718 appear in math; so do words such as sum and product.
The weather was cold and windy, but the children still wanted to build a snowman.
After the storm, the river was high and the bridge was closed for two days.
A good answer explains why, not only what: reasons make the result easy to check.
"""

TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "Question: What is the capital of France? Answer:",
    " The quick brown fox can't stop; it's 12:30 already!",
    "Unseen words: zebra, quixotic, café ☕ and naïve.",
    "line one\nline two\n\n  indented",
]

GPT2_RE = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
QWEN2_RE = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def train_bpe(words, n_merges):
    """Deterministic BPE: merge the most frequent adjacent pair, ties to the
    smallest pair; words is a Counter of symbol tuples."""
    words = dict(words)
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, f in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += f
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = {}
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + f
        words = merged
    return merges


def bytes_to_unicode():
    """GPT-2's map from bytes to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def spm_tokenizer(vocab_size):
    """A Llama-style tokenizer: SentencePiece BPE with byte fallback, as
    transformers converts Llama's tokenizer.model to tokenizer.json."""
    words = collections.Counter()
    for w in CORPUS.split():
        words[tuple("▁" + w)] += 1
    chars = sorted({c for w in words for c in w})
    specials = ["<unk>", "<s>", "</s>"]
    base = specials + [f"<0x{b:02X}>" for b in range(256)] + chars
    merges = train_bpe(words, vocab_size - len(base))
    vocab = {t: i for i, t in enumerate(base)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    assert len(vocab) == vocab_size, len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens(specials)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return LlamaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                              add_bos_token=True, add_eos_token=False)


def byte_level_merges(pattern, n_tokens):
    b2u = bytes_to_unicode()
    words = collections.Counter()
    for piece in regex.findall(pattern, CORPUS):
        words[tuple(b2u[b] for b in piece.encode())] += 1
    alphabet = [b2u[b] for b in sorted(b2u)]
    merges = train_bpe(words, n_tokens - 256)
    vocab = {c: i for i, c in enumerate(sorted(alphabet))}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return vocab, merges


def gpt2_tokenizer(vocab_size, out_dir):
    """GPT-2's original files, vocab.json and merges.txt, and nothing else."""
    vocab, merges = byte_level_merges(GPT2_RE, vocab_size - 1)
    vocab["<|endoftext|>"] = len(vocab)
    assert len(vocab) == vocab_size
    os.makedirs(out_dir, exist_ok=True)
    vf, mf = os.path.join(out_dir, "vocab.json"), os.path.join(out_dir, "merges.txt")
    with open(vf, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(mf, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return GPT2Tokenizer(vf, mf)


def qwen2_tokenizer(n_tokens):
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab, merges = byte_level_merges(QWEN2_RE, n_tokens - len(specials))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def init_weights(model, seed, scale=1.0):
    """Weights with some spread, so that logits differ by several units:
    N(0, scale²/fan_in) matrices, N(0, (0.5·scale)²) embeddings, norms near
    1 (q/k head norms near scale), small biases. Parameters are visited in
    name order from one seeded stream."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith(("embed_tokens.weight", "wte.weight", "wpe.weight")):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 * scale)
            elif p.ndim == 2:
                # nn.Linear stores (out, in); GPT-2's Conv1D stores (in, out).
                fan_in = p.shape[0] if ".c_" in name else p.shape[1]
                p.copy_(torch.randn(p.shape, generator=g) * scale / fan_in ** 0.5)
            elif name.endswith(("q_norm.weight", "k_norm.weight")):
                # Every q and k head has RMS 1 after its norm: these weights
                # alone set how sharp attention is.
                p.copy_(scale * (1 + 0.1 * torch.randn(p.shape, generator=g)))
            elif name.endswith("weight"):  # every 1-D weight is a norm's scale
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def llama3_inv_freq(base, dim, factor, low, high, old_ctx):
    """transformers' _compute_llama3_parameters, in float64 Python."""
    out = []
    for i in range(0, dim, 2):
        inv = 1.0 / base ** (i / dim)
        wavelen = 2 * math.pi / inv
        if wavelen < old_ctx / high:
            out.append(inv)
        elif wavelen > old_ctx / low:
            out.append(inv / factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append((1 - smooth) * inv / factor + smooth * inv)
    return out


def default_inv_freq(base, dim):
    """RoPE's inverse frequencies without scaling, in float64 Python."""
    return [1.0 / base ** (i / dim) for i in range(0, dim, 2)]


def shared_prefix_seqs(vocab_size, g):
    """Sequences longer than 64 that branch off one another: a 100-token
    trunk, branches at its positions 30 and 70, and a branch of a branch."""
    rand = lambda n: torch.randint(0, vocab_size, (n,), generator=g).tolist()
    trunk = rand(100)
    b70 = trunk[:70] + rand(50)
    return [trunk, b70, trunk[:70] + rand(31), trunk[:30] + rand(67), b70[:97] + rand(20)]


def float64_rope(model, inv_freq):
    """transformers computes RoPE's angles in float32 even in a float64
    model (LlamaRotaryEmbedding.forward casts to float): replace its forward
    with the same computation in float64, from inv_freq. The float32 buffer
    transformers made must agree with inv_freq to float32 rounding, which
    checks that both read the config the same way."""
    rot = model.model.rotary_emb
    inv = torch.tensor(inv_freq, dtype=torch.float64)
    theirs = rot.inv_freq.double()
    assert torch.allclose(theirs, inv, rtol=1e-6, atol=0), (theirs, inv)

    def forward(x, position_ids):
        freqs = position_ids[:, :, None].to(torch.float64) * inv[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * rot.attention_scaling).to(x.dtype), (emb.sin() * rot.attention_scaling).to(x.dtype)

    rot.forward = forward


def reference(model, tokenizer, vocab_size, seed, bos, lengths=(1, 2, 5, 17, 37, 64), shared_prefixes=False):
    g = torch.Generator().manual_seed(seed + 1)
    seqs = [torch.randint(0, vocab_size, (n,), generator=g).tolist() for n in lengths]
    for text in TEXTS[:2]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        seqs.append(([bos] if bos is not None else []) + ids)
    if shared_prefixes:
        seqs += shared_prefix_seqs(vocab_size, g)
    out = []
    with torch.no_grad():
        for ids in seqs:
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            lp = torch.log_softmax(logits.double(), dim=-1)
            out.append({"tokens": ids, "logits": logits.float().tolist(),
                        "next_token_logprobs": [lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)]})
    tokenized = [[t, tokenizer(t, add_special_tokens=False)["input_ids"]] for t in TEXTS]
    return out, tokenized


def save(name, model, tokenizer, out, seed, dtype=torch.float32, bos=None, ref64=None, lengths=None,
         shared_prefixes=False, **save_kw):
    """ref64: None for a float32 reference, else the inverse frequencies
    for float64_rope, and the reference is computed in float64 (the float32
    weights widen exactly). shared_prefixes adds shared_prefix_seqs."""
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    model.eval()
    if dtype != torch.float32:
        # The reference is computed in float32 from the rounded weights.
        # Only parameters are rounded: model.to(dtype) would also round
        # buffers such as RoPE's inv_freq, which are not saved.
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(dtype).to(torch.float32))
    ref_dtype = torch.float32
    if ref64 is not None:
        ref_dtype = torch.float64
        model.to(torch.float64)
        float64_rope(model, ref64)
    seqs, tokenized = reference(model, tokenizer, model.config.vocab_size, seed, bos,
                                shared_prefixes=shared_prefixes, **({"lengths": lengths} if lengths else {}))
    model.to(dtype)
    model.save_pretrained(d, safe_serialization=True, **save_kw)
    tokenizer.save_pretrained(d)
    if isinstance(tokenizer, GPT2Tokenizer):
        # Keep the folder to GPT-2's original files: no tokenizer.json.
        for extra in ("tokenizer.json",):
            if os.path.exists(os.path.join(d, extra)):
                os.remove(os.path.join(d, extra))
    ref = {"model": name, "architecture": model.config.architectures[0], "seed": seed, "dtype": str(dtype),
           "reference_dtype": str(ref_dtype),
           "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
           "sequences": seqs, "tokenized": tokenized}
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(f"wrote {d}: {sum(p.numel() for p in model.parameters())} parameters, {len(seqs)} reference sequences")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--only", default="llama,llama_bf16,qwen2,gpt2,llama31,qwen3")
    args = ap.parse_args()
    only = set(args.only.split(","))
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    eager = {"attn_implementation": "eager"}

    if only & {"llama", "llama_bf16"}:
        tok = spm_tokenizer(512)
        cfg = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                          bos_token_id=1, eos_token_id=2, pad_token_id=None)
        for name, dtype in [("llama", torch.float32), ("llama_bf16", torch.bfloat16)]:
            if name in only:
                m = LlamaForCausalLM._from_config(cfg, **eager)
                init_weights(m, args.seed)
                save(name, m, tok, args.out, args.seed, dtype=dtype, bos=1)

    if "qwen2" in only:
        tok = qwen2_tokenizer(515)
        cfg = Qwen2Config(vocab_size=544, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
                          use_sliding_window=False, bos_token_id=None, eos_token_id=512)
        m = Qwen2ForCausalLM._from_config(cfg, **eager)
        init_weights(m, args.seed + 2)
        save("qwen2", m, tok, args.out, args.seed + 2, max_shard_size="60KB")

    if "gpt2" in only:
        d = os.path.join(args.out, "gpt2")
        tok = gpt2_tokenizer(512, d)
        cfg = GPT2Config(vocab_size=512, n_positions=128, n_embd=64, n_layer=2, n_head=4,
                         activation_function="gelu_new", layer_norm_epsilon=1e-5, bos_token_id=511, eos_token_id=511)
        m = GPT2LMHeadModel._from_config(cfg, **eager)
        init_weights(m, args.seed + 3)
        save("gpt2", m, tok, args.out, args.seed + 3)

    if "llama31" in only:
        tok = spm_tokenizer(512)
        rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32}
        if int(transformers.__version__.split(".")[0]) >= 5:
            rope_kw = {"rope_parameters": dict(rope, rope_theta=10000.0)}
        else:
            rope_kw = {"rope_scaling": rope, "rope_theta": 10000.0}
        cfg = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          rms_norm_eps=1e-5, tie_word_embeddings=True,
                          bos_token_id=1, eos_token_id=2, pad_token_id=None, **rope_kw)
        m = LlamaForCausalLM._from_config(cfg, **eager)
        init_weights(m, args.seed + 4, scale=2.0)
        inv = llama3_inv_freq(10000.0, 16, rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"],
                              rope["original_max_position_embeddings"])
        save("llama31", m, tok, args.out, args.seed + 4, bos=1, ref64=inv, lengths=(1, 2, 5, 17, 37, 64, 100))

    if "qwen3" in only:
        # Qwen3's own head_dim (n_head * head_dim != hidden_size) and q/k head
        # norms; tied output, as its small sizes have.
        from transformers import Qwen3Config, Qwen3ForCausalLM
        tok = qwen2_tokenizer(509)
        if int(transformers.__version__.split(".")[0]) >= 5:
            rope_kw = {"rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}
        else:
            rope_kw = {"rope_theta": 1000000.0}
        cfg = Qwen3Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
                          rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=False,
                          use_sliding_window=False, bos_token_id=None, eos_token_id=506, **rope_kw)
        m = Qwen3ForCausalLM._from_config(cfg, **eager)
        assert m.model.layers[0].self_attn.q_norm.weight.shape == (32,)
        assert m.model.layers[0].self_attn.o_proj.weight.shape == (64, 128)
        init_weights(m, args.seed + 5, scale=2.0)
        save("qwen3", m, tok, args.out, args.seed + 5, ref64=default_inv_freq(1000000.0, 32), shared_prefixes=True)


if __name__ == "__main__":
    main()
