#!/usr/bin/env python3
"""llama.cpp agreement check for lmscore's GGUF files.

Checks, with llama.cpp's own code from PyPI (the `gguf` package and
llama-cpp-python), that:

  1. GGUF files lmscore writes (3 architectures x F32/F16/BF16/Q8_0, random
     weights) are read by the gguf package with the same metadata and tensor
     bytes; that gguf's dequantization equals lmscore's float32 decoding bit
     for bit; that gguf's F16/BF16/Q8_0 quantization of the F32 weights gives
     lmscore's bytes; that gguf's GGUFWriter, fed what GGUFReader read,
     rewrites each file byte for byte; and that llama.cpp loads every file
     and computes logits that agree across the four types.
  2. stories260K converted by `lmscore convert llama2c` runs in llama.cpp:
     greedy text and log-likelihoods as its README gives them.
     The Llama-2 tokenizer.model converted with --vocab-only has
     sentencepiece's pieces, scores and types and tokenizes alike in llama.cpp.
  3. A GGUF written by the gguf package (every value type, nested arrays,
     F32/F16/BF16/Q8_0/Q4_0 tensors, and a whole model) is read by lmscore
     with the same metadata and tensor bytes.
  4. With --hf DIR (folders made by tools/hf_models/make_models.py, or the
     slimmed fixtures of internal/hfcheck/testdata, each with
     reference.json): `lmscore convert hf` output loads in llama.cpp and
     gives its log-probs within llama.cpp's precision of transformers',
     except where llama.cpp reads the file otherwise (Mistral's window,
     Gemma's query_pre_attn_scalar, Phi-3's LongRoPE factors: said by name,
     and compared where they change nothing), and the tokenizer converted
     with --vocab-only tokenizes like transformers. --hf-only skips 1-3.

Run from the repository root:  .venv/bin/python tools/gguf_check/check.py [--hf DIR [--hf-only]]
Exit status 0 when every check passes; each failure is printed.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
import llama_cpp

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)
    return cond


def run(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def sha(b):
    return hashlib.sha256(bytes(b)).hexdigest()


def raw_bytes(reader, t):
    return bytes(reader.data[t.data_offset:t.data_offset + t.n_bytes])


def raw_tensor(reader, t):
    """A tensor's bytes shaped as GGUFWriter.add_tensor wants raw data:
    outer dimensions first, the innermost given in bytes."""
    ne = [int(x) for x in t.shape]
    bs, ts = gguf.GGML_QUANT_SIZES[t.tensor_type]
    shape = list(reversed(ne[1:])) + [ne[0] // bs * ts]
    return np.frombuffer(raw_bytes(reader, t), dtype=np.uint8).reshape(shape)


def ok(msg, failed_before):
    if len(FAILURES) == failed_before:
        print("ok ", msg)


def flatten(v):
    return [y for x in v for y in flatten(x)] if isinstance(v, list) else [v]


def same_field(f, value):
    """Compares a GGUFReader field with the value lmscore dumped. The gguf
    package's contents() flattens an array of arrays, so those compare
    flattened (the nesting itself is checked by lmscore's own tests)."""
    if f.types[0] == gguf.GGUFValueType.ARRAY and f.types[1] == gguf.GGUFValueType.ARRAY:
        return same_value(flatten(f.contents()), flatten(value))
    return same_value(f.contents(), value)


def same_value(a, b):
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, str) or isinstance(b, str):
            return str(float(a)) == str(float(b))
        return np.float64(a) == np.float64(b) or (np.isnan(a) and np.isnan(b))
    return a == b


def type_name(f):
    names = {int(t): t.name.lower() for t in gguf.GGUFValueType}
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        return "array[%s]" % names[int(f.types[1])]
    return names[int(f.types[0])]


def llama_logits(path, tokens, **kw):
    # An F32 KV cache (llama.cpp's default is F16) keeps the comparison with
    # transformers' float32 logits tight.
    m = llama_cpp.Llama(model_path=path, n_ctx=max(64, len(tokens) + 1), logits_all=True, verbose=False,
                        n_threads=1, n_batch=512, type_k=0, type_v=0, **kw)
    m.eval(tokens)
    out = np.array(m.scores[:len(tokens)], dtype=np.float32)
    del m
    return out


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


# ---------------------------------------------------------------- check 1

def check_random(tools, tmp):
    out = os.path.join(tmp, "random")
    run(tools["ggufcheck"], "write-random", out)
    files = json.load(open(os.path.join(out, "manifest.json")))["files"]
    f32_values = {}  # arch -> tensor name -> float32 array
    logits = {}
    tokens = [1, 17, 300, 5, 42, 259, 7, 99]
    for name in files:
        failed_before = len(FAILURES)
        path = os.path.join(out, name)
        arch, typ = name[:-5].split("-")
        dump = json.loads(run(tools["ggufcheck"], "dump", path))
        r = gguf.GGUFReader(path)
        fields = [f for f in r.fields.values() if not f.name.startswith("GGUF.")]
        check([f.name for f in fields] == [kv["key"] for kv in dump["kv"]], f"{name}: key order differs")
        for f, kv in zip(fields, dump["kv"]):
            check(type_name(f) == kv["type"], f"{name}: {f.name}: type {type_name(f)} vs {kv['type']}")
            check(same_field(f, kv["value"]), f"{name}: {f.name}: value differs")
        check(len(r.tensors) == len(dump["tensors"]), f"{name}: tensor count")
        for t, d in zip(r.tensors, dump["tensors"]):
            check(t.name == d["name"] and int(t.tensor_type) == d["type_id"] and list(map(int, t.shape)) == d["dims"],
                  f"{name}: tensor {t.name} info differs")
            raw = raw_bytes(r, t)
            check(sha(raw) == d["sha256"], f"{name}: {t.name}: bytes differ")
            deq = gguf.quants.dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(-1) if t.tensor_type not in
                                         (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16) else t.data,
                                         t.tensor_type).astype(np.float32)
            check(sha(deq.tobytes()) == d["f32_sha256"], f"{name}: {t.name}: gguf dequantization differs from lmscore's")
            if typ == "F32":
                f32_values.setdefault(arch, {})[t.name] = np.array(t.data, dtype=np.float32).reshape(-1)
        # The gguf package's writer, given what its reader read, must
        # reproduce the file byte for byte.
        rewrite = os.path.join(tmp, "rewrite-" + name)
        tools["last_rewrite"] = rewrite
        w = gguf.GGUFWriter(rewrite, arch)
        for f in fields:
            if f.name == "general.architecture":
                continue
            vt = f.types[0]
            sub = f.types[1] if vt == gguf.GGUFValueType.ARRAY else None
            w.add_key_value(f.name, f.contents(), vt, sub_type=sub)
        for t in r.tensors:
            w.add_tensor(t.name, raw_tensor(r, t), raw_dtype=t.tensor_type)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        check(open(rewrite, "rb").read() == open(path, "rb").read(), f"{name}: gguf's GGUFWriter rewrite is not byte-identical")
        logits[(arch, typ)] = llama_logits(path, tokens)
        check(np.isfinite(logits[(arch, typ)]).all(), f"{name}: llama.cpp logits not finite")
        ok(f"{name}: gguf reads it, rewrites it byte for byte; llama.cpp loads it", failed_before)

    # Quantization agreement: lmscore's F16/BF16/Q8_0 bytes are the gguf
    # package's quantization of the same F32 weights.
    failed_before = len(FAILURES)
    for name in files:
        arch, typ = name[:-5].split("-")
        if typ == "F32":
            continue
        r = gguf.GGUFReader(os.path.join(out, name))
        for t in r.tensors:
            x = f32_values[arch][t.name]
            ne = [int(s) for s in t.shape]
            shaped = x.reshape(list(reversed(ne)))
            q = gguf.quants.quantize(shaped, t.tensor_type)
            check(bytes(q.tobytes()) == raw_bytes(r, t), f"{name}: {t.name} ({t.tensor_type.name}): gguf quantization differs")
    ok("F16/BF16/Q8_0 bytes equal the gguf package's quantization of the F32 weights", failed_before)

    # llama.cpp's logits from the four encodings of the same weights agree.
    for arch in ["llama", "qwen2", "gpt2"]:
        ref = logits[(arch, "F32")]
        scale = np.abs(ref).max()
        for typ, tol in [("F16", 0.01), ("BF16", 0.05), ("Q8_0", 0.05)]:
            failed_before = len(FAILURES)
            diff = np.abs(logits[(arch, typ)] - ref).max() / scale
            check(diff < tol, f"{arch}: llama.cpp logits of {typ} differ from F32 by {diff:.4f} of their range")
            ok(f"{arch} {typ}: llama.cpp logits within {diff:.5f} of F32 (relative to max |logit| {scale:.2f})", failed_before)


# ---------------------------------------------------------------- check 2

STORIES = os.path.join("..", "shared", "models", "stories260K")


def check_stories(tools, tmp):
    if not os.path.exists(os.path.join(STORIES, "stories260K.bin")):
        print("skip stories260K: ../shared/models/stories260K is absent")
        return
    failed_before = len(FAILURES)
    path = os.path.join(tmp, "stories260K.gguf")
    run(tools["lmscore"], "convert", "llama2c", "--model", os.path.join(STORIES, "stories260K.bin"),
        "--tokenizer", os.path.join(STORIES, "tok512.bin"), "--out", path)
    info = json.loads(run(tools["lmscore"], "inspect", path))
    check((info["architecture"], info["n_layer"], info["n_embd"], info["n_head"], info["n_head_kv"], info["n_ff"],
           info["n_vocab"], info["tokenizer"]["model"], info["tokenizer"]["n_tokens"]) ==
          ("llama", 5, 64, 8, 4, 172, 512, "llama", 512), f"stories260K inspect: {info}")
    m = llama_cpp.Llama(model_path=path, n_ctx=512, logits_all=True, verbose=False, n_threads=1)
    toks = [1]
    for _ in range(60):
        m.reset()
        m.eval(toks)
        toks.append(int(np.argmax(m.scores[len(toks) - 1])))
    text = m.detokenize(toks[1:]).decode()
    want = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
    check(text.strip().startswith(want), f"stories260K greedy text: {text!r}")
    pairs = [("Once upon a time, there was a little girl named Lily. She loved to play outside in the", " park.", -1.66),
             ("Once upon a time, there was a little girl named Lily. She loved to play outside in the", " spoon.", -11.69),
             ("Tom was very hungry, so he asked his mom for", " some food.", -5.83),
             ("Tom was very hungry, so he asked his mom for", " a big rock.", -8.81)]
    for ctx, cont, want_ll in pairs:
        c = m.tokenize(ctx.encode(), add_bos=True)
        whole = m.tokenize((ctx + cont).encode(), add_bos=True)
        m.reset()
        m.eval(whole)
        lp = log_softmax(np.array(m.scores[:len(whole)]))
        ll = sum(lp[i - 1, whole[i]] for i in range(len(c), len(whole)))
        check(abs(ll - want_ll) < 0.01, f"stories260K loglik of {cont!r}: {ll:.3f}, README {want_ll}")
    ok("stories260K: inspect, greedy text and README log-likelihoods in llama.cpp", failed_before)


LLAMA2_SPM = os.path.join("..", "shared", "tokenizers", "llama2", "tokenizer.model")


def check_spm(tools, tmp):
    """The Llama-2 tokenizer.model, converted with --vocab-only, tokenizes in
    llama.cpp as the sentencepiece package does."""
    if not os.path.exists(LLAMA2_SPM):
        print("skip Llama-2 tokenizer: ../shared/tokenizers/llama2 is absent")
        return
    try:
        import sentencepiece
    except ImportError:
        print("skip Llama-2 tokenizer: no sentencepiece package")
        return
    failed_before = len(FAILURES)
    d = os.path.join(tmp, "spm")
    os.makedirs(d)
    with open(LLAMA2_SPM, "rb") as src, open(os.path.join(d, "tokenizer.model"), "wb") as dst:
        dst.write(src.read())
    out = os.path.join(tmp, "llama2-vocab.gguf")
    run(tools["lmscore"], "convert", "hf", "--dir", d, "--out", out, "--vocab-only")
    sp = sentencepiece.SentencePieceProcessor(model_file=LLAMA2_SPM)
    r = gguf.GGUFReader(out)
    toks = r.fields["tokenizer.ggml.tokens"].contents()
    scores = r.fields["tokenizer.ggml.scores"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    check(len(toks) == sp.vocab_size(), "llama2 tokenizer: token count")
    bad = [i for i in range(sp.vocab_size()) if toks[i] != sp.id_to_piece(i) or np.float32(scores[i]) != np.float32(sp.get_score(i))
           or (types[i] == 6) != sp.is_byte(i) or (types[i] == 3) != sp.is_control(i) or (types[i] == 2) != sp.is_unknown(i)]
    check(not bad, f"llama2 tokenizer: {len(bad)} pieces differ from sentencepiece, first {bad[:5]}")
    m = llama_cpp.Llama(model_path=out, vocab_only=True, verbose=False)
    for text in ["Hello world", "Once upon a time, there was a little girl named Lily.", " leading space",
                 "naïve café, 12345 ☕ 日本語", "tabs\tand\nnewlines  double  spaces"]:
        got = m.tokenize(text.encode(), add_bos=False, special=False)
        want = sp.encode(text)
        check(got == want, f"llama2 tokenizer: llama.cpp tokenizes {text!r} as {got}, sentencepiece as {want}")
    ok("Llama-2 tokenizer.model (vocab-only): same pieces, scores and types as sentencepiece; llama.cpp tokenizes alike",
       failed_before)


# ---------------------------------------------------------------- check 3

def check_gguf_written(tools, tmp):
    failed_before = len(FAILURES)
    path = os.path.join(tmp, "from-gguf-py.gguf")
    w = gguf.GGUFWriter(path, "llama")
    V = gguf.GGUFValueType
    values = [("t.u8", 200, V.UINT8), ("t.i8", -100, V.INT8), ("t.u16", 60000, V.UINT16), ("t.i16", -30000, V.INT16),
              ("t.u32", 4000000000, V.UINT32), ("t.i32", -2000000000, V.INT32), ("t.u64", 2**63 + 5, V.UINT64),
              ("t.i64", -2**62, V.INT64), ("t.f32", 3.25, V.FLOAT32), ("t.f64", 3.141592653589793, V.FLOAT64),
              ("t.bool", True, V.BOOL), ("t.str", "héllo ▁world", V.STRING)]
    for k, v, t in values:
        w.add_key_value(k, v, t)
    arrays = [("t.a.i32", [-5, 5, 7], V.INT32), ("t.a.f32", [0.5, -1.5], V.FLOAT32), ("t.a.str", ["a", "", "<0x0A>"], V.STRING),
              ("t.a.bool", [True, False], V.BOOL), ("t.a.u8", [1, 2, 255], V.UINT8), ("t.a.f64", [1e300], V.FLOAT64)]
    for k, v, t in arrays:
        w.add_key_value(k, v, V.ARRAY, sub_type=t)
    w.add_array("t.a.nested", [[1, 2], [3]])
    w.add_custom_alignment(64)  # sets general.alignment and pads to it
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 64)).astype(np.float32)
    tensors = {"f32": (x, None), "f16": (x.astype(np.float16), None),
               "bf16": (gguf.quants.quantize(x, gguf.GGMLQuantizationType.BF16), gguf.GGMLQuantizationType.BF16),
               "q8_0": (gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0),
               "q4_0": (gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q4_0), gguf.GGMLQuantizationType.Q4_0)}
    for name, (arr, qt) in tensors.items():
        if qt is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=qt)  # arr holds bytes, shaped (rows, row bytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    dump = json.loads(run(tools["ggufcheck"], "dump", path))
    r = gguf.GGUFReader(path)
    fields = [f for f in r.fields.values() if not f.name.startswith("GGUF.")]
    check([f.name for f in fields] == [kv["key"] for kv in dump["kv"]], "gguf-py file: key order differs in lmscore")
    for f, kv in zip(fields, dump["kv"]):
        check(type_name(f) == kv["type"] and same_field(f, kv["value"]),
              f"gguf-py file: {f.name}: lmscore read {kv['type']} {kv['value']!r}, gguf wrote {type_name(f)} {f.contents()!r}")
    check(dump["alignment"] == 64, "gguf-py file: alignment")
    for t, d in zip(r.tensors, dump["tensors"]):
        check(t.name == d["name"] and sha(raw_bytes(r, t)) == d["sha256"] and list(map(int, t.shape)) == d["dims"],
              f"gguf-py file: tensor {t.name} differs in lmscore")
        if d.get("f32_sha256"):
            deq = gguf.quants.dequantize(np.frombuffer(raw_bytes(r, t), dtype=np.uint8), t.tensor_type).astype(np.float32)
            check(sha(deq.tobytes()) == d["f32_sha256"], f"gguf-py file: {t.name}: lmscore decodes differently")
    check(len(dump["tensors"]) == 5, "gguf-py file: tensor count")

    # A whole model written by the gguf package loads in lmscore.
    src = os.path.join(tmp, "random", "qwen2-Q8_0.gguf")
    r = gguf.GGUFReader(src)
    path = os.path.join(tmp, "model-from-gguf-py.gguf")
    w = gguf.GGUFWriter(path, "qwen2")
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture":
            continue
        vt = f.types[0]
        w.add_key_value(f.name, f.contents(), vt, sub_type=f.types[1] if vt == V.ARRAY else None)
    for t in reversed(r.tensors):  # another order than lmscore's
        w.add_tensor(t.name, raw_tensor(r, t), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    dump = json.loads(run(tools["ggufcheck"], "dump", path))
    check(dump.get("loadable") is True, f"model written by gguf-py does not load in lmscore: {dump.get('load_error')}")
    ok("files written by the gguf package: lmscore reads the same metadata and tensors, and loads the model", failed_before)


# ---------------------------------------------------------------- check 4

def numpy_forward(path, tokens):
    """A plain float64 forward pass over a GGUF file read by the gguf
    package, following llama.cpp's semantics for each architecture (RoPE
    NORM pairs (2i, 2i+1) for llama, NEOX pairs (i, i+d/2) for qwen2; GPT-2's
    fused qkv rows q, k, v and tanh GELU). It checks what the converted
    tensors mean, independently of llama.cpp's kernels."""
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    kv = lambda k, d=None: r.fields[f"{arch}.{k}"].contents() if f"{arch}.{k}" in r.fields else d
    W = {}
    for t in r.tensors:
        ne = [int(x) for x in t.shape]
        raw = np.frombuffer(raw_bytes(r, t), dtype=np.uint8)
        W[t.name] = gguf.quants.dequantize(raw, t.tensor_type).astype(np.float64).reshape(list(reversed(ne)))
    n_head, n_kv, n_layer = kv("attention.head_count"), kv("attention.head_count_kv"), kv("block_count")
    T = len(tokens)
    x = W["token_embd.weight"][tokens]
    n_embd = x.shape[1]
    hd = n_embd // n_head
    if arch == "gpt2":
        eps = kv("attention.layer_norm_epsilon")
        x = x + W["position_embd.weight"][:T]
        def norm(x, w, b):
            mu = x.mean(-1, keepdims=True)
            return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b
    else:
        eps = kv("attention.layer_norm_rms_epsilon")
        base = kv("rope.freq_base", 10000.0)
        def norm(x, w, b=0):
            return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + eps) * w
        def rope(q):  # q: (T, heads, hd)
            i = np.arange(hd // 2)
            ang = np.arange(T)[:, None] * base ** (-2.0 * i / hd)[None, :]
            c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
            if arch == "llama":
                a, b = q[..., 0::2], q[..., 1::2]
            else:
                a, b = q[..., :hd // 2], q[..., hd // 2:]
            ra, rb = a * c - b * s, a * s + b * c
            out = np.empty_like(q)
            if arch == "llama":
                out[..., 0::2], out[..., 1::2] = ra, rb
            else:
                out[..., :hd // 2], out[..., hd // 2:] = ra, rb
            return out
    g = lambda n: W.get(n, 0)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(n_layer):
        p = f"blk.{l}."
        h = norm(x, W[p + "attn_norm.weight"], g(p + "attn_norm.bias"))
        if arch == "gpt2":
            qkv = h @ W[p + "attn_qkv.weight"].T + W[p + "attn_qkv.bias"]
            q, k, v = np.split(qkv, 3, axis=-1)
        else:
            q = h @ W[p + "attn_q.weight"].T + g(p + "attn_q.bias")
            k = h @ W[p + "attn_k.weight"].T + g(p + "attn_k.bias")
            v = h @ W[p + "attn_v.weight"].T + g(p + "attn_v.bias")
        q, k, v = q.reshape(T, n_head, hd), k.reshape(T, n_kv, hd), v.reshape(T, n_kv, hd)
        if arch != "gpt2":
            q, k = rope(q), rope(k)
        rep = n_head // n_kv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        att = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", att, v).reshape(T, n_embd)
        x = x + o @ W[p + "attn_output.weight"].T + g(p + "attn_output.bias")
        h = norm(x, W[p + "ffn_norm.weight"], g(p + "ffn_norm.bias"))
        if arch == "gpt2":
            u = h @ W[p + "ffn_up.weight"].T + W[p + "ffn_up.bias"]
            u = 0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u ** 3)))
        else:
            gate = h @ W[p + "ffn_gate.weight"].T
            u = gate / (1 + np.exp(-gate)) * (h @ W[p + "ffn_up.weight"].T)
        x = x + u @ W[p + "ffn_down.weight"].T + g(p + "ffn_down.bias")
    x = norm(x, W["output_norm.weight"], g("output_norm.bias"))
    return x @ W.get("output.weight", W["token_embd.weight"]).T


def llama_run(path, seqs):
    """llama.cpp's float32 logits for each sequence, each from an empty
    cache, and the context llama.cpp ran with (it rounds n_ctx up to a
    multiple of 256, which decides Phi-3's LongRoPE factors)."""
    m = llama_cpp.Llama(model_path=path, n_ctx=max(64, max(len(s) for s in seqs) + 1), logits_all=True,
                        verbose=False, n_threads=1, n_batch=512, type_k=0, type_v=0)
    out = []
    for s in seqs:
        m.reset()
        m.eval(s)
        out.append(np.array(m.scores[:len(s)], dtype=np.float32))
    n_ctx = m.n_ctx()
    del m
    return n_ctx, out


def llama_cpp_reading(path, n_ctx):
    """Where llama.cpp's reading of lmscore's GGUF departs from transformers'
    reading of the folder: (what, first position it affects). Position 0
    means every position; None, nowhere. binding/llamacpp_families_test.go
    gives the CPU core the same reading and holds it to llama.cpp."""
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    kv = lambda k, d=None: r.fields[f"{arch}.{k}"].contents() if f"{arch}.{k}" in r.fields else d
    names = {t.name for t in r.tensors}
    window = kv("attention.sliding_window", 0)
    if arch in ("llama", "phi3") and window:
        # llama.cpp's llama graph has no window; its Phi-3 reads the key and
        # turns the window off. Before the first window ends nothing is cut.
        return f"no sliding window (the file's is {window})", window
    if arch in ("gemma2", "gemma3") and kv("attention.scale") is not None:
        # llama.cpp hard-codes the q.k scale (head_dim^-1/2, or
        # (n_embd/n_head)^-1/2 for the 27B models) and reads no key for it.
        n_layer, hd = kv("block_count"), kv("attention.key_length")
        if n_layer == {"gemma2": 46, "gemma3": 62}[arch]:
            hd = kv("embedding_length") // kv("attention.head_count")
        if not np.isclose(kv("attention.scale"), hd ** -0.5, rtol=1e-6):
            return f"attention scale {hd ** -0.5:.4f} for the file's {kv('attention.scale'):.4f}", 0
    orig = kv("rope.scaling.original_context_length")
    if "rope_factors_long.weight" in names and orig and n_ctx > orig:
        # llama.cpp takes the long factors when its context exceeds the
        # original one; lmscore (and transformers within it) the short.
        return f"LongRoPE long factors (llama.cpp's n_ctx {n_ctx} > original context {orig})", 0
    return None, None


def numpy_supported(path):
    """numpy_forward covers plain llama (no rope_freqs, no window), qwen2 and gpt2."""
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    extra = {"rope_freqs.weight"} & {t.name for t in r.tensors} or f"{arch}.attention.sliding_window" in r.fields
    return arch in ("llama", "qwen2", "gpt2") and not extra


def check_hf(tools, tmp, hf_dir):
    """Each folder of hf_dir with a reference.json: full logits (what
    make_models.py writes) or the next-token log-probs alone (the fixtures
    slim_fixtures.py commits under internal/hfcheck/testdata)."""
    for name in sorted(os.listdir(hf_dir)):
        d = os.path.join(hf_dir, name)
        ref_path = os.path.join(d, "reference.json")
        if not os.path.exists(ref_path):
            continue
        ref = json.load(open(ref_path))
        seqs = [s for s in ref["sequences"] if len(s["tokens"]) >= 2]
        # convert hf names the model after its folder, and llama.cpp's
        # vocabulary loader keys token attributes on that name: for one
        # with "phi3" in it, it looks up "<|endoftext|>", which real Phi-3
        # vocabularies have and the fixtures' do not. A neutral name keeps
        # that lookup out of the way.
        link = os.path.join(tmp, f"hf-{name}", "fixture")
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.exists(link):
            os.symlink(os.path.abspath(d), link)
        for typ in ["f32", "q8_0"]:
            failed_before = len(FAILURES)
            out = os.path.join(tmp, f"hf-{name}-{typ}.gguf")
            run(tools["lmscore"], "convert", "hf", "--dir", link, "--out", out, "--type", typ)
            r = gguf.GGUFReader(out)
            # llama.cpp's CPU GELU reads an fp16 table, which costs the GELU
            # families a few thousandths; the float64 pass has no such excuse.
            gelu = r.fields["general.architecture"].contents() in ("gpt2", "gptneox", "gemma2", "gemma3")
            llama_tol = 1e-2 if gelu else 1e-3
            n_ctx, logits = llama_run(out, [s["tokens"] for s in seqs])
            what, first = llama_cpp_reading(out, n_ctx)
            worst, worst_np = 0.0, 0.0
            for seq, x in zip(seqs, logits):
                lp = log_softmax(x)
                if "logits" in seq:
                    want = log_softmax(np.array(seq["logits"], dtype=np.float64))
                    diff = np.abs(lp - want).max(axis=-1)
                else:
                    toks = seq["tokens"]
                    diff = np.abs(lp[np.arange(len(toks) - 1), toks[1:]] - np.array(seq["next_token_logprobs"]))
                    want = None
                if first is not None:
                    diff = diff[:first]
                worst = max(worst, float(diff.max(initial=0)))
                if typ == "f32" and want is not None and numpy_supported(out):
                    worst_np = max(worst_np, float(np.abs(log_softmax(numpy_forward(out, seq["tokens"])) - want).max()))
            if first == 0:
                agree = f"log-probs not compared with transformers: llama.cpp reads the file differently ({what})"
            else:
                agree = f"log-probs within {worst:.2e} of transformers"
                if first is not None:
                    agree += f" before position {first} (llama.cpp reads the file differently: {what})"
            if typ == "f32":
                if first != 0:
                    check(worst < llama_tol, f"hf {name} {typ}: llama.cpp log-probs differ from transformers by {worst:.2e}")
                check(worst_np < 1e-4, f"hf {name} {typ}: float64 pass over the GGUF differs from transformers by {worst_np:.2e}")
                ok(f"hf {name} {typ}: loads in llama.cpp; {agree}"
                   + (f"; a float64 pass over the GGUF within {worst_np:.2e}" if worst_np else ""), failed_before)
            else:
                ok(f"hf {name} {typ}: converts; llama.cpp {agree}", failed_before)
        failed_before = len(FAILURES)
        vocab = os.path.join(tmp, f"hf-{name}-vocab.gguf")
        run(tools["lmscore"], "convert", "hf", "--dir", link, "--out", vocab, "--vocab-only")
        m = llama_cpp.Llama(model_path=vocab, vocab_only=True, verbose=False)
        for text, ids in ref.get("tokenized", []):
            got = m.tokenize(text.encode(), add_bos=False, special=False)
            check(got == ids, f"hf {name}: llama.cpp tokenizes {text!r} as {got}, transformers as {ids}")
        ok(f"hf {name}: vocab-only GGUF loads in llama.cpp and tokenizes like transformers", failed_before)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hf", help="folder of Hugging Face models made by tools/hf_models/make_models.py")
    ap.add_argument("--hf-only", action="store_true", help="with --hf, run check 4 alone")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tools = {}
        for name, pkg in [("lmscore", "./cmd/lmscore"), ("ggufcheck", "./tools/gguf_check/ggufcheck")]:
            tools[name] = os.path.join(tmp, name)
            run("go", "build", "-o", tools[name], pkg)
        if not (args.hf and args.hf_only):
            check_random(tools, tmp)
            check_stories(tools, tmp)
            check_spm(tools, tmp)
            check_gguf_written(tools, tmp)
        if args.hf:
            check_hf(tools, tmp, args.hf)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
