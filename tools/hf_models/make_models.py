#!/usr/bin/env python3
"""Writes small random-initialised Hugging Face models for lmscore's tests.

    python tools/hf_models/make_models.py --out DIR [--seed 1234] [--only llama,gpt2]

Needs torch and transformers (tokenizers and regex come with it); runs on the
CPU in under a minute and reaches no network. Writes, under DIR:

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
               far from uniform) but q/k head norms near 1 and embeddings
               (its output matrix) of std 0.5, so that fp32 can score it
               within 2e-4 per request; a float64 reference as llama31's,
               plus sequences longer than 64 that share prefixes

  llama31_v4/  llama31 with config.json rewritten in transformers 4's keys
               (rope_theta, rope_scaling); gptneox_v4/ likewise (rotary_pct,
               rotary_emb_base, rope_scaling null). Same weights: both
               styles must convert to identical GGUFs
  mistral/     MistralForCausalLM, sliding_window 8, head_dim 32 (4 * 32 !=
               64), untied; Llama's tokenizer
  gemma2/      Gemma2ForCausalLM, 3 layers (sliding, full, sliding), head_dim
               32, query_pre_attn_scalar 24, attn_logit_softcapping 10,
               final_logit_softcapping 15, sliding_window 8, tied; its norms
               are (1 + weight), so the stored weights are near 0
  gemma3/      Gemma3ForCausalLM (text only), 4 layers with layer_types
               sliding, sliding, full, sliding; head_dim 16,
               query_pre_attn_scalar 24; local RoPE base 1e4, global 1e6
               with linear scaling (factor 8); q/k norms; sliding_window 8
  phi3/        Phi3ForCausalLM: fused qkv_proj and gate_up_proj, 2 KV heads
  phi3_partial/ partial_rotary_factor 0.75 (12 of 16 dims), tied (Phi-4-mini)
  phi3_longrope/ rope_type longrope, max_position_embeddings 512 over an
               original 128: every reference sequence stays within 128, so
               transformers applies short_factor (long_factor is written but
               unused), and cos/sin carry attention_factor sqrt(1 + ln 4 /
               ln 128) = 1.1365
  gptneox/     GPTNeoXForCausalLM, rotary_pct 0.25, parallel residual, exact
               gelu, LayerNorm with biases, fused per-head interleaved qkv;
               gptneox_seq/ the same weights with use_parallel_residual false
  olmo2/       Olmo2ForCausalLM, 2 KV heads (q_norm over 64, k_norm over 32),
               RoPE base 5e5
  mixtral/     MixtralForCausalLM, 4 experts, top-2
  qwen2moe/    Qwen2MoeForCausalLM, 4 experts, top-2, norm_topk_prob false,
               a shared expert behind its sigmoid gate
  qwen3moe/    Qwen3MoeForCausalLM, 4 experts, top-2, norm_topk_prob true,
               head_dim 32
All of the new ones: hidden 64, vocab 512, 2 layers unless said, weights
scaled by 2, float32 safetensors, and a float64 reference.

Tokenizers, as each family's real tokenizer.json and tokenizer_config.json:
Mistral, Mixtral and Phi-3 use Llama's SentencePiece-style BPE (Phi-3-mini's
tokenizer_config has add_bos_token false, so phi3* add no BOS; Mistral and
Mixtral add <s>). Gemma 2/3: SentencePiece BPE with byte fallback, a
normalizer that only replaces " " with "▁" (no dummy prefix), <pad> 0,
<eos> 1, <bos> 2, <unk> 3, add_bos_token true (Gemma 3's file also has a
Split on " " pre-tokenizer). GPT-NeoX: byte-level BPE, NFC normalizer,
ByteLevel pre-tokenizer with GPT-2's regex, <|endoftext|> 0 (bos = eos) and
<|padding|> 1, add_bos_token false (Pythia's tokenizer_config). OLMo 2:
byte-level BPE split by the cl100k regex, <|endoftext|> (bos = eos) and
<|pad|> last, no BOS added (OLMo 2 scores its text without one). Qwen2/3-MoE:
qwen3's tokenizer.

and in each folder reference.json: for a few token sequences (random ids of
lengths 1, 2, 5, 17, 37 and 64, tokenized sentences, and for qwen3 and the
new families shared_prefix_seqs, up to 117 tokens), transformers' logits at
every position (eager attention, CPU, one thread), the log-probability of
each next token, and how the tokenizer splits some texts. The float64
references run transformers' own modules in float64 end to end
(Float64Forward, float64_rope); the script then checks that the folder, as
transformers reloads it, gives the same log-probabilities, and that each
family's feature (sliding window, soft-caps, RoPE variants, routing, shared
expert gate, parallel residual) moves them (check_features). It also
prints how far transformers' own float32 is from each float64 reference per
request: the fixture's conditioning, the order of any fp32 engine's error
on it (keep it well under the Go tests' 2e-4).
lmscore's CPU engine and llama.cpp are compared against these
(tools/gguf_check/check.py --hf DIR; LMSCORE_HF_MODELS=DIR go test ./...).

Everything is derived from --seed and the fixed text below: the same seed and
versions give the same files. The tokenizers are trained here by a small,
deterministic BPE, not by the tokenizers library's trainer.
"""

import argparse
import collections
import copy
import json
import math
import os
import platform
import shutil

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
# cl100k_base's split, as OLMo 2's tokenizer.json (and Llama 3's) spells it.
CL100K_RE = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


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


def spm_tokenizer(vocab_size, add_bos=True):
    """A Llama-style tokenizer: SentencePiece BPE with byte fallback, as
    transformers converts Llama's tokenizer.model to tokenizer.json.
    add_bos=False is Phi-3's tokenizer_config (add_bos_token false)."""
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
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return LlamaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                              add_bos_token=add_bos, add_eos_token=False)


def gemma_tokenizer(vocab_size, split_on_space):
    """Gemma's tokenizer.json: SentencePiece BPE with byte fallback whose
    normalizer only replaces " " with "▁" (no dummy prefix: a text's first
    word has no "▁"); <pad> 0, <eos> 1, <bos> 2, <unk> 3; the post-processor
    adds <bos>. split_on_space adds Gemma 3's pre-tokenizer, a Split on " "
    (merged with previous) that Gemma 2's file does not have: after the
    normalizer there is no " " left, so both encode alike."""
    words = collections.Counter()
    for line in CORPUS.splitlines():
        for piece in regex.findall(r"▁*[^▁]+|▁+", line.replace(" ", "▁")):
            words[tuple(piece)] += 1
    chars = sorted({c for w in words for c in w})
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    base = specials + [f"<0x{b:02X}>" for b in range(256)] + chars
    merges = train_bpe(words, vocab_size - len(base))
    vocab = {t: i for i, t in enumerate(base)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    assert len(vocab) == vocab_size, len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    if split_on_space:
        tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous", invert=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens(specials)
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B",
                                                       special_tokens=[("<bos>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
                                   pad_token="<pad>")


def byte_level_merges(pattern, n_tokens, first=0):
    """Byte-level BPE over CORPUS split by pattern; ids start at first."""
    b2u = bytes_to_unicode()
    words = collections.Counter()
    for piece in regex.findall(pattern, CORPUS):
        words[tuple(b2u[b] for b in piece.encode())] += 1
    alphabet = [b2u[b] for b in sorted(b2u)]
    merges = train_bpe(words, n_tokens - 256)
    vocab = {c: first + i for i, c in enumerate(sorted(alphabet))}
    for a, b in merges:
        vocab.setdefault(a + b, first + len(vocab))
    return vocab, merges


def neox_tokenizer(vocab_size):
    """GPT-NeoX/Pythia's tokenizer.json: <|endoftext|> 0 and <|padding|> 1
    first, an NFC normalizer, the ByteLevel pre-tokenizer with GPT-2's
    regex built in (use_regex), no prefix space, no BOS added (Pythia's
    tokenizer_config: add_bos_token false; bos = eos = <|endoftext|>)."""
    specials = ["<|endoftext|>", "<|padding|>"]
    vocab, merges = byte_level_merges(GPT2_RE, vocab_size - len(specials), first=len(specials))
    for i, s in enumerate(specials):
        vocab[s] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens(specials)
    assert tok.get_vocab_size() == vocab_size
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", pad_token="<|padding|>")


def olmo2_tokenizer(vocab_size):
    """OLMo 2's tokenizer.json (cl100k-based): a Split on the cl100k regex,
    then ByteLevel without its own regex; no normalizer; <|endoftext|> (bos
    and eos) and <|pad|> after the merges; no BOS added."""
    specials = ["<|endoftext|>", "<|pad|>"]
    vocab, merges = byte_level_merges(CL100K_RE, vocab_size - len(specials))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CL100K_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    assert tok.get_vocab_size() == vocab_size
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|pad|>")


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


def init_weights(model, seed, scale=1.0, norm_offset=0.0, qk_norm_scale=None, embed_std=None):
    """Weights with some spread, so that logits differ by several units:
    N(0, scale²/fan_in) matrices, N(0, embed_std²) embeddings (by default
    0.5·scale), norms near 1 (q/k head norms near qk_norm_scale, by default
    scale), small biases. Parameters are visited in name order from one
    seeded stream, so qk_norm_scale and embed_std change no other weight.
    norm_offset is 1 for Gemma, whose RMSNorm multiplies by (1 + weight):
    the stored weight is the scale minus 1, so that the scales themselves
    are the same as the other families'."""
    if qk_norm_scale is None:
        qk_norm_scale = scale
    if embed_std is None:
        embed_std = 0.5 * scale
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith(("embed_tokens.weight", "wte.weight", "wpe.weight", "embed_in.weight")):
                p.copy_(torch.randn(p.shape, generator=g) * embed_std)
            elif p.ndim == 3:
                # MoE experts fused as (n_expert, out, in).
                p.copy_(torch.randn(p.shape, generator=g) * scale / p.shape[2] ** 0.5)
            elif p.ndim == 2:
                # nn.Linear stores (out, in); GPT-2's Conv1D stores (in, out).
                fan_in = p.shape[0] if ".c_" in name else p.shape[1]
                p.copy_(torch.randn(p.shape, generator=g) * scale / fan_in ** 0.5)
            elif name.endswith(("q_norm.weight", "k_norm.weight")):
                # Every q and k head has RMS 1 after its norm: these weights
                # alone set how sharp attention is.
                p.copy_(qk_norm_scale * (1 + 0.1 * torch.randn(p.shape, generator=g)) - norm_offset)
            elif name.endswith("weight"):  # every 1-D weight is a norm's scale
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g) - norm_offset)
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


def default_inv_freq(base, dim, rotary_dim=None):
    """RoPE's inverse frequencies without scaling, in float64 Python, over
    the first rotary_dim of dim (partial rotary: GPT-NeoX, Phi-4-mini)."""
    rotary_dim = rotary_dim or dim
    return [1.0 / base ** (i / rotary_dim) for i in range(0, rotary_dim, 2)]


def longrope_inv_freq(base, dim, factors):
    """transformers' _compute_longrope_parameters: each pair's frequency
    divided by its factor (short_factor within the original context)."""
    return [1.0 / (f * base ** (i / dim)) for f, i in zip(factors, range(0, dim, 2))]


def shared_prefix_seqs(vocab_size, g):
    """Sequences longer than 64 that branch off one another: a 100-token
    trunk, branches at its positions 30 and 70, and a branch of a branch."""
    rand = lambda n: torch.randint(0, vocab_size, (n,), generator=g).tolist()
    trunk = rand(100)
    b70 = trunk[:70] + rand(50)
    return [trunk, b70, trunk[:70] + rand(31), trunk[:30] + rand(67), b70[:97] + rand(20)]


class Float64Forward:
    """transformers keeps several steps in float32 even in a float64 model:
    every RMSNorm (hidden_states.to(torch.float32); Gemma's x.float()), the
    eager attention's softmax (dtype=torch.float32), the MoE routers'
    softmax, RoPE's angles. Inside this context a cast to float32 is a cast
    to float64 and new tensors default to float64, so a float64 model runs in
    float64 end to end. (Without it, transformers' float64 differs from a
    float64 forward pass by up to ~1e-5 per token on these models: that was
    the error floor of the first llama31/qwen3 references.)"""

    def __enter__(self):
        self.saved = torch.Tensor.to, torch.Tensor.float, torch.nn.functional.softmax, torch.get_default_dtype()
        to, softmax = self.saved[0], self.saved[2]
        wide = lambda d: torch.float64 if d is torch.float32 else d

        def to64(t, *args, **kw):
            args = tuple(wide(a) if isinstance(a, torch.dtype) else a for a in args)
            if "dtype" in kw:
                kw["dtype"] = wide(kw["dtype"])
            return to(t, *args, **kw)

        def softmax64(x, dim=None, _stacklevel=3, dtype=None):
            return softmax(x, dim=dim, dtype=wide(dtype))

        torch.Tensor.to = to64
        torch.Tensor.float = lambda t, *a, **k: to(t, torch.float64)
        torch.nn.functional.softmax = softmax64
        torch.set_default_dtype(torch.float64)
        self.guard = NoFloat32()
        self.guard.__enter__()
        return self

    def __exit__(self, *exc):
        self.guard.__exit__(*exc)
        torch.Tensor.to, torch.Tensor.float, torch.nn.functional.softmax, dtype = self.saved
        torch.set_default_dtype(dtype)


class NoFloat32(torch.overrides.TorchFunctionMode):
    """Fails on any torch call that returns a float32 tensor, so that a cast
    Float64Forward does not catch (a new family's own .to(torch.float32)
    spelling) cannot narrow the reference unnoticed."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor) and t.dtype in (torch.float32, torch.float16, torch.bfloat16):
                raise AssertionError(f"{func} returned {t.dtype} inside Float64Forward")
        return out


def float64_rope(model, inv_freqs):
    """transformers computes RoPE's inverse frequencies in float32 (and they
    stay float32-rounded after model.to(float64)): set them from inv_freqs,
    {buffer prefix: list}, computed here in float64 Python ("" for one RoPE,
    "sliding_attention_" and "full_attention_" for Gemma 3's two). The
    float32 buffers transformers made must agree to float32 rounding, which
    checks that both read the config the same way. Under Float64Forward the
    angles, cos and sin are then float64 too."""
    rot = next(m for n, m in model.named_modules() if n.endswith("rotary_emb"))
    for prefix, inv_freq in inv_freqs.items():
        inv = torch.tensor(inv_freq, dtype=torch.float64)
        for buf in (prefix + "inv_freq", prefix + "original_inv_freq"):
            theirs = getattr(rot, buf).double()
            assert torch.allclose(theirs, inv, rtol=1e-6, atol=0), (buf, theirs, inv)
            setattr(rot, buf, inv.clone())


def reference_seqs(tokenizer, vocab_size, seed, bos, lengths=(1, 2, 5, 17, 37, 64), shared_prefixes=False):
    g = torch.Generator().manual_seed(seed + 1)
    seqs = [torch.randint(0, vocab_size, (n,), generator=g).tolist() for n in lengths]
    for text in TEXTS[:2]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        seqs.append(([bos] if bos is not None else []) + ids)
    if shared_prefixes:
        seqs += shared_prefix_seqs(vocab_size, g)
    return seqs


def run(model, seqs):
    """(logits, next-token log-probabilities) of each sequence, one at a
    time, in the model's dtype."""
    out = []
    with torch.no_grad():
        for ids in seqs:
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            lp = torch.log_softmax(logits.double(), dim=-1)
            out.append((logits, [lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)]))
    return out


def max_delta(a, b):
    return max((abs(x - y) for la, lb in zip(a, b) for x, y in zip(la, lb)), default=0.0)


def max_sum_delta(a, b):
    """The largest difference of two runs' summed log-probabilities of one
    sequence: the per-request quantity the Go tests bound."""
    return max((abs(sum(la) - sum(lb)) for la, lb in zip(a, b)), default=0.0)


def eager_kw(cfg):
    """The reference implementations: eager attention, and for MoE the
    per-expert loop (transformers 5 otherwise picks grouped_mm, which has no
    float64 kernel)."""
    if isinstance(cfg, str):
        cfg = transformers.AutoConfig.from_pretrained(cfg)
    kw = {"attn_implementation": "eager"}
    if getattr(cfg, "num_experts", None) or getattr(cfg, "num_local_experts", None):
        kw["experts_implementation"] = "eager"
    return kw


def reload64(d, inv_freqs):
    """The saved folder as transformers loads it, widened to float64."""
    m = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, **eager_kw(d))
    m.eval().to(torch.float64)
    float64_rope(m, inv_freqs)
    return m


def check_features(model, seqs, want, features):
    """Each feature is (label, config changes, optional state-dict edit):
    the same weights under the changed config must move some next-token
    log-probability by more than 0.05, so a feature that transformers
    silently ignores (a sliding window wider than every sequence, a soft-cap
    that never bites) fails here rather than in a Go test that passes for
    the wrong reason. The variants run in float64 with transformers' own
    RoPE: their differences are far larger than its float32 angles."""
    for label, changes, edit in features:
        cfg = copy.deepcopy(model.config)
        for k, v in changes.items():
            setattr(cfg, k, v)
        m = type(model)._from_config(cfg, dtype=torch.float32, **eager_kw(cfg))
        state = {k: v.clone() for k, v in model.state_dict().items()}
        if edit:
            edit(state)
        m.load_state_dict(state, strict=False)
        m.eval().to(torch.float64)
        with Float64Forward():
            got = [lp for _, lp in run(m, seqs)]
        d = max_delta(got, want)
        print(f"  {label}: max |Δ logprob| = {d:.3g}")
        assert d > 0.05, f"{label} changes nothing (max |Δ| {d:.3g})"


def save(name, model, tokenizer, out, seed, dtype=torch.float32, bos=None, ref64=None, lengths=None,
         shared_prefixes=False, features=(), tokenizer_config=None, **save_kw):
    """ref64: None for a float32 reference, else {buffer prefix: inverse
    frequencies} for float64_rope, and the reference is computed in float64
    (the float32 weights widen exactly), checked against the folder as
    transformers reloads it and against check_features. shared_prefixes
    adds shared_prefix_seqs; tokenizer_config overrides keys of the
    tokenizer_config.json that transformers writes."""
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
    seqs = reference_seqs(tokenizer, model.config.vocab_size, seed, bos, shared_prefixes=shared_prefixes,
                          **({"lengths": lengths} if lengths else {}))
    ref_dtype = torch.float32
    if ref64 is not None:
        ref_dtype = torch.float64
        # transformers' own float32 against the float64 reference shows how
        # well conditioned the fixture is: lmscore's fp32 CPU core's error
        # is of the same order.
        f32 = [lp for _, lp in run(model, seqs)]
        model.to(torch.float64)
        with torch.no_grad():
            stock = [lp for _, lp in run(model, seqs)]
        float64_rope(model, ref64)
        with Float64Forward():
            result = run(model, seqs)
        want64 = [lp for _, lp in result]
        print(f"  float64 end to end vs transformers' float64 as it is: {max_delta(want64, stock):.3g}")
        print(f"  transformers' float32 vs the float64 reference: {max_delta(f32, want64):.3g} per token, "
              f"{max_sum_delta(f32, want64):.3g} per request")
    else:
        result = run(model, seqs)
    ref_seqs = [{"tokens": ids, "logits": logits.float().tolist(), "next_token_logprobs": lp}
                for ids, (logits, lp) in zip(seqs, result)]
    want = [lp for _, lp in result]
    if ref64 is not None:
        check_features(model, seqs, want, features)
    model.to(dtype)
    model.save_pretrained(d, safe_serialization=True, **save_kw)
    tokenizer.save_pretrained(d)
    if isinstance(tokenizer, GPT2Tokenizer):
        # Keep the folder to GPT-2's original files: no tokenizer.json.
        for extra in ("tokenizer.json",):
            if os.path.exists(os.path.join(d, extra)):
                os.remove(os.path.join(d, extra))
    if tokenizer_config:
        tc_path = os.path.join(d, "tokenizer_config.json")
        with open(tc_path) as f:
            tc = json.load(f)
        tc.update(tokenizer_config)
        with open(tc_path, "w") as f:
            json.dump(tc, f, indent=2, sort_keys=True)
    tokenized = [[t, tokenizer(t, add_special_tokens=False)["input_ids"]] for t in TEXTS]
    check_tokenizer_files(d, tokenized, bos)
    ref = {"model": name, "architecture": model.config.architectures[0], "seed": seed, "dtype": str(dtype),
           "reference_dtype": str(ref_dtype),
           "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
           "sequences": ref_seqs, "tokenized": tokenized}
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    if ref64 is not None:
        reloaded = reload64(d, ref64)
        with Float64Forward():
            again = [lp for _, lp in run(reloaded, seqs)]
        d_reload = max_delta(again, want)
        print(f"  reloaded {name} from its folder: max |Δ logprob| = {d_reload:.3g}")
        assert d_reload < 1e-9, d_reload
    print(f"wrote {d}: {sum(p.numel() for p in model.parameters())} parameters, {len(seqs)} reference sequences")
    return seqs, want


def check_tokenizer_files(d, tokenized, bos):
    """tokenizer.json, through the tokenizers library (the Go tests'
    reference encoder), must tokenize as the tokenizer that wrote it, and
    AutoTokenizer, which reads tokenizer_config.json (its class and
    add_bos_token), must add BOS exactly when the family does (bos is not
    None). AutoTokenizer's own ids are only reported: transformers 5 rebuilds
    a LlamaTokenizer's pipeline from its vocabulary (Metaspace with
    prepend_scheme "first" instead of the file's Prepend + Replace), which
    splits a leading space differently from the file."""
    if not os.path.exists(os.path.join(d, "tokenizer.json")):
        return
    raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    auto = transformers.AutoTokenizer.from_pretrained(d)
    for text, ids in tokenized:
        assert raw.encode(text, add_special_tokens=False).ids == ids, (d, text)
        if auto(text, add_special_tokens=False)["input_ids"] != ids:
            print(f"  note: {type(auto).__name__} from the folder splits {text!r} unlike its tokenizer.json")
    plain = auto(TEXTS[0], add_special_tokens=False)["input_ids"]
    with_special = auto(TEXTS[0])["input_ids"]
    assert with_special == ([bos] if bos is not None else []) + plain, (d, with_special[:3], bos)


def write_v4_style(out, name, v4_name, rewrite, inv_freqs, seqs, want):
    """The same weights and reference with config.json rewritten by rewrite
    into transformers 4's keys; transformers must read it back to the same
    model (every log-probability within 1e-9 of the v5 folder's)."""
    src, dst = os.path.join(out, name), os.path.join(out, v4_name)
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(src):
        shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    rewrite(cfg)
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    with open(os.path.join(dst, "reference.json")) as f:
        ref = json.load(f)
    ref["model"] = v4_name
    with open(os.path.join(dst, "reference.json"), "w") as f:
        json.dump(ref, f)
    reloaded = reload64(dst, inv_freqs)
    with Float64Forward():
        again = [lp for _, lp in run(reloaded, seqs)]
    d = max_delta(again, want)
    print(f"wrote {dst}: transformers 4 config keys, max |Δ logprob| vs {name} = {d:.3g}")
    assert d < 1e-9, d


def llama31_to_v4(cfg):
    rope = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rope.pop("rope_theta")
    cfg["rope_scaling"] = rope


def gptneox_to_v4(cfg):
    rope = cfg.pop("rope_parameters")
    assert rope["rope_type"] == "default", rope
    cfg["rotary_emb_base"] = rope["rope_theta"]
    cfg["rotary_pct"] = rope["partial_rotary_factor"]
    cfg["rope_scaling"] = None


ALL = ["llama", "llama_bf16", "qwen2", "gpt2", "llama31", "llama31_v4", "qwen3", "mistral", "gemma2", "gemma3",
       "phi3", "phi3_partial", "phi3_longrope", "gptneox", "gptneox_seq", "gptneox_v4", "olmo2", "mixtral",
       "qwen2moe", "qwen3moe"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--only", default=",".join(ALL))
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

    if only & {"llama31", "llama31_v4"}:
        only.add("llama31")
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
        inv = {"": inv}
        llama31 = save("llama31", m, tok, args.out, args.seed + 4, bos=1, ref64=inv, lengths=(1, 2, 5, 17, 37, 64, 100))
        if "llama31_v4" in only:
            write_v4_style(args.out, "llama31", "llama31_v4", llama31_to_v4, inv, *llama31)

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
        # Conditioned for fp32, whose engines the 2e-4 per request bounds:
        # with q/k head norms near 2 (scale) and embeddings of std 1, as the
        # other families have, attention was very sharp and, the output
        # being tied, the logits had std 8 (0.9 nats of entropy), so that
        # transformers' own float32 was 2.2e-4 per request off its float64.
        # q/k norms near 1 and embeddings of std 0.5 (logits of std 4, 2.2
        # nats of log 512 = 6.2: still far from uniform) bring it to 4.4e-5.
        init_weights(m, args.seed + 5, scale=2.0, qk_norm_scale=1.0, embed_std=0.5)
        save("qwen3", m, tok, args.out, args.seed + 5, ref64={"": default_inv_freq(1000000.0, 32)},
             shared_prefixes=True)

    # The families below: float64 references over shared_prefix_seqs (up to
    # 117 tokens, past every sliding window), and check_features.
    v5 = {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}

    if "mistral" in only:
        from transformers import MistralConfig, MistralForCausalLM
        # head_dim 32: 4 * 32 != 64, as Mistral Nemo's 128 with 5120 wide;
        # a width the CUDA core's attention kernels take (24 is not one).
        cfg = MistralConfig(vocab_size=512, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
                            sliding_window=8, rms_norm_eps=1e-5, tie_word_embeddings=False,
                            bos_token_id=1, eos_token_id=2, pad_token_id=None, **v5)
        m = MistralForCausalLM._from_config(cfg, **eager)
        assert m.model.layers[0].self_attn.o_proj.weight.shape == (64, 128)
        init_weights(m, args.seed + 6, scale=2.0)
        save("mistral", m, spm_tokenizer(512), args.out, args.seed + 6, bos=1,
             ref64={"": default_inv_freq(10000.0, 32)}, shared_prefixes=True,
             features=[("sliding_window 8 -> none", {"sliding_window": None}, None)])

    if "gemma2" in only:
        from transformers import Gemma2Config, Gemma2ForCausalLM
        # 3 layers: sliding, full, sliding (transformers' default alternation).
        # Soft-caps low enough to bite: attention scores reach ~±20 and final
        # logits ~±30 with these weights.
        cfg = Gemma2Config(vocab_size=512, hidden_size=64, intermediate_size=64, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=24,
                           max_position_embeddings=256, sliding_window=8, attn_logit_softcapping=10.0,
                           final_logit_softcapping=15.0, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                           tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=2, **v5)
        m = Gemma2ForCausalLM._from_config(cfg, **eager)
        assert m.config.layer_types == ["sliding_attention", "full_attention", "sliding_attention"], m.config.layer_types
        init_weights(m, args.seed + 7, scale=2.0, norm_offset=1.0)
        save("gemma2", m, gemma_tokenizer(512, split_on_space=False), args.out, args.seed + 7, bos=2,
             ref64={"": default_inv_freq(10000.0, 32)}, shared_prefixes=True,
             tokenizer_config={"tokenizer_class": "GemmaTokenizer", "add_bos_token": True, "add_eos_token": False},
             features=[("sliding_window 8 -> 4096", {"sliding_window": 4096}, None),
                       ("attn_logit_softcapping 10 -> none", {"attn_logit_softcapping": None}, None),
                       ("final_logit_softcapping 15 -> none", {"final_logit_softcapping": None}, None),
                       ("query_pre_attn_scalar 24 -> head_dim 32", {"query_pre_attn_scalar": 32}, None)])

    if "gemma3" in only:
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig
        # layer_types set explicitly: the default 5 local : 1 global needs 6
        # layers. Local RoPE base 10000; global base 1e6 with linear scaling
        # (factor 8, as Gemma 3's 4B-27B), so global and local angles differ.
        rope = {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0}}
        cfg = Gemma3TextConfig(vocab_size=512, hidden_size=64, intermediate_size=64, num_hidden_layers=4,
                               num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24,
                               layer_types=["sliding_attention", "sliding_attention", "full_attention",
                                            "sliding_attention"],
                               max_position_embeddings=256, sliding_window=8, rms_norm_eps=1e-6,
                               hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                               pad_token_id=0, eos_token_id=1, bos_token_id=2, rope_parameters=rope)
        m = Gemma3ForCausalLM._from_config(cfg, **eager)
        init_weights(m, args.seed + 8, scale=2.0, norm_offset=1.0)
        inv = {"sliding_attention_": default_inv_freq(10000.0, 16),
               "full_attention_": [f / 8.0 for f in default_inv_freq(1000000.0, 16)]}
        same_theta = copy.deepcopy(rope)
        same_theta["sliding_attention"]["rope_theta"] = 1000000.0
        unscaled = copy.deepcopy(rope)
        unscaled["full_attention"] = {"rope_type": "default", "rope_theta": 1000000.0}
        save("gemma3", m, gemma_tokenizer(512, split_on_space=True), args.out, args.seed + 8, bos=2,
             ref64=inv, shared_prefixes=True,
             tokenizer_config={"tokenizer_class": "GemmaTokenizer", "add_bos_token": True, "add_eos_token": False},
             features=[("sliding_window 8 -> 4096", {"sliding_window": 4096}, None),
                       ("local rope_theta 1e4 -> 1e6", {"rope_parameters": same_theta}, None),
                       ("global linear factor 8 -> none", {"rope_parameters": unscaled}, None)])

    if only & {"phi3", "phi3_partial", "phi3_longrope"}:
        from transformers import Phi3Config, Phi3ForCausalLM
        # Phi-3's tokenizer is Llama's without BOS (add_bos_token false).
        tok = spm_tokenizer(512, add_bos=False)
        phi3_tc = {"add_bos_token": False, "add_eos_token": False}
        base = dict(vocab_size=512, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, sliding_window=None,
                    bos_token_id=1, eos_token_id=2, pad_token_id=None)
        if "phi3" in only:
            cfg = Phi3Config(max_position_embeddings=256, original_max_position_embeddings=256,
                             tie_word_embeddings=False, **base, **v5)
            m = Phi3ForCausalLM._from_config(cfg, **eager)
            init_weights(m, args.seed + 9, scale=2.0)
            save("phi3", m, tok, args.out, args.seed + 9, ref64={"": default_inv_freq(10000.0, 16)},
                 shared_prefixes=True, tokenizer_config=phi3_tc)
        if "phi3_partial" in only:
            # Phi-4-mini's partial rotary (0.75 of head_dim 16: 12 dims) and
            # tied output.
            rope = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.75}
            cfg = Phi3Config(max_position_embeddings=256, original_max_position_embeddings=256,
                             tie_word_embeddings=True, rope_parameters=rope, **base)
            m = Phi3ForCausalLM._from_config(cfg, **eager)
            init_weights(m, args.seed + 10, scale=2.0)
            save("phi3_partial", m, tok, args.out, args.seed + 10,
                 ref64={"": default_inv_freq(10000.0, 16, rotary_dim=12)}, shared_prefixes=True,
                 tokenizer_config=phi3_tc,
                 features=[("partial_rotary_factor 0.75 -> 1", {"rope_parameters": dict(rope, partial_rotary_factor=1.0)}, None)])
        if "phi3_longrope" in only:
            # LongRoPE as Phi-3-mini-128k: max_position_embeddings 512 over
            # an original 128, so attention_factor = sqrt(1 + ln 4 / ln 128)
            # scales cos and sin; every reference sequence (<= 117 tokens)
            # stays within the original 128, where transformers divides the
            # frequencies by short_factor. long_factor is written but never
            # used by the reference.
            short = [1.0, 1.05, 1.1, 1.3, 1.6, 2.0, 2.6, 3.2]
            long_ = [1.0, 1.2, 1.6, 2.4, 3.6, 5.5, 8.0, 12.0]
            rope = {"rope_type": "longrope", "rope_theta": 10000.0, "short_factor": short, "long_factor": long_}
            cfg = Phi3Config(max_position_embeddings=512, original_max_position_embeddings=128,
                             tie_word_embeddings=False, rope_parameters=rope, **base)
            m = Phi3ForCausalLM._from_config(cfg, **eager)
            att = m.model.rotary_emb.attention_scaling
            assert abs(att - math.sqrt(1 + math.log(4) / math.log(128))) < 1e-12, att
            init_weights(m, args.seed + 11, scale=2.0)
            save("phi3_longrope", m, tok, args.out, args.seed + 11,
                 ref64={"": longrope_inv_freq(10000.0, 16, short)}, shared_prefixes=True, tokenizer_config=phi3_tc,
                 features=[("short_factor -> all 1", {"rope_parameters": dict(rope, short_factor=[1.0] * 8)}, None),
                           ("attention_factor -> 1", {"rope_parameters": dict(rope, attention_factor=1.0)}, None)])

    if only & {"gptneox", "gptneox_seq", "gptneox_v4"}:
        from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
        tok = neox_tokenizer(512)
        neox_tc = {"tokenizer_class": "GPTNeoXTokenizer", "add_bos_token": False, "add_eos_token": False}
        rope = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25}
        for name, parallel in [("gptneox", True), ("gptneox_seq", False)]:
            if name not in only and not (name == "gptneox" and "gptneox_v4" in only):
                continue
            # Pythia's rotary_pct 0.25: 4 of head_dim 16 rotate.
            cfg = GPTNeoXConfig(vocab_size=512, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=4, max_position_embeddings=256, hidden_act="gelu",
                                layer_norm_eps=1e-5, use_parallel_residual=parallel, attention_bias=True,
                                tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, rope_parameters=rope)
            m = GPTNeoXForCausalLM._from_config(cfg, **eager)
            init_weights(m, args.seed + 12, scale=2.0)
            inv = {"": default_inv_freq(10000.0, 16, rotary_dim=4)}
            neox = save(name, m, tok, args.out, args.seed + 12, ref64=inv, shared_prefixes=True,
                        tokenizer_config=neox_tc,
                        features=[(f"use_parallel_residual {parallel} -> {not parallel}",
                                   {"use_parallel_residual": not parallel}, None),
                                  ("rotary_pct 0.25 -> 1", {"rope_parameters": dict(rope, partial_rotary_factor=1.0)}, None)])
            if name == "gptneox" and "gptneox_v4" in only:
                write_v4_style(args.out, "gptneox", "gptneox_v4", gptneox_to_v4, inv, *neox)

    if "olmo2" in only:
        from transformers import Olmo2Config, Olmo2ForCausalLM
        # 2 KV heads, so that q_norm (over all 4 heads, 64) and k_norm (over
        # 2 heads, 32) differ in width; RoPE base 500000 as OLMo 2.
        cfg = Olmo2Config(vocab_size=512, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                          rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=None, eos_token_id=510,
                          pad_token_id=511, rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
        m = Olmo2ForCausalLM._from_config(cfg, **eager)
        assert m.model.layers[0].self_attn.k_norm.weight.shape == (32,)
        init_weights(m, args.seed + 13, scale=2.0)
        save("olmo2", m, olmo2_tokenizer(512), args.out, args.seed + 13,
             ref64={"": default_inv_freq(500000.0, 16)}, shared_prefixes=True,
             tokenizer_config={"tokenizer_class": "GPT2Tokenizer", "add_bos_token": False, "add_eos_token": False})

    moe_eager = dict(eager, experts_implementation="eager")

    if "mixtral" in only:
        from transformers import MixtralConfig, MixtralForCausalLM
        cfg = MixtralConfig(vocab_size=512, hidden_size=64, intermediate_size=32, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                            max_position_embeddings=256, rms_norm_eps=1e-5, sliding_window=None,
                            tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=None,
                            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
        m = MixtralForCausalLM._from_config(cfg, **moe_eager)
        init_weights(m, args.seed + 14, scale=2.0)
        save("mixtral", m, spm_tokenizer(512), args.out, args.seed + 14, bos=1,
             ref64={"": default_inv_freq(1000000.0, 16)}, shared_prefixes=True,
             features=[("top-2 -> top-1", {"num_experts_per_tok": 1}, None),
                       ("top-2 -> all 4", {"num_experts_per_tok": 4}, None)])

    if "qwen2moe" in only:
        from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM
        cfg = Qwen2MoeConfig(vocab_size=512, hidden_size=64, intermediate_size=64, moe_intermediate_size=32,
                             shared_expert_intermediate_size=64, num_experts=4, num_experts_per_tok=2,
                             norm_topk_prob=False, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=256, rms_norm_eps=1e-6, qkv_bias=True, use_sliding_window=False,
                             tie_word_embeddings=False, bos_token_id=None, eos_token_id=506,
                             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
        m = Qwen2MoeForCausalLM._from_config(cfg, **moe_eager)
        init_weights(m, args.seed + 15, scale=2.0)

        def open_shared_gate(state):
            for k in state:
                if k.endswith("shared_expert_gate.weight"):
                    state[k].zero_()

        save("qwen2moe", m, qwen2_tokenizer(509), args.out, args.seed + 15,
             ref64={"": default_inv_freq(1000000.0, 16)}, shared_prefixes=True,
             features=[("norm_topk_prob false -> true", {"norm_topk_prob": True}, None),
                       ("top-2 -> all 4", {"num_experts_per_tok": 4}, None),
                       ("shared_expert_gate -> sigmoid(0)", {}, open_shared_gate)])

    if "qwen3moe" in only:
        from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM
        cfg = Qwen3MoeConfig(vocab_size=512, hidden_size=64, intermediate_size=64, moe_intermediate_size=32,
                             num_experts=4, num_experts_per_tok=2, norm_topk_prob=True, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
                             rms_norm_eps=1e-6, attention_bias=False, use_sliding_window=False,
                             tie_word_embeddings=False, bos_token_id=None, eos_token_id=506,
                             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
        m = Qwen3MoeForCausalLM._from_config(cfg, **moe_eager)
        init_weights(m, args.seed + 16, scale=2.0)
        save("qwen3moe", m, qwen2_tokenizer(509), args.out, args.seed + 16,
             ref64={"": default_inv_freq(1000000.0, 32)}, shared_prefixes=True,
             features=[("norm_topk_prob true -> false", {"norm_topk_prob": False}, None),
                       ("top-2 -> all 4", {"num_experts_per_tok": 4}, None)])

if __name__ == "__main__":
    main()
