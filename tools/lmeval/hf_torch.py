"""Scores `hfrules.py requests` token requests the way lm-eval 0.4.13's hf
backend does (HFLM._loglikelihood_tokens), with transformers and torch, on
stories260K built as a Hugging Face LlamaForCausalLM from its llama2.c file.

  hf_torch.py --llama2c stories260K.bin --requests REQ.jsonl --out RES.jsonl [--device cuda]

RES.jsonl has one `lmscore score`-style line per request (id, logprob,
is_greedy), for `hfrules.py compare --tolerance`. The rules, from lm-eval's
lm_eval/models/huggingface.py:
  - the input is (context + continuation)[-(max_length + 1):][:-1], max_length
    being the model config's max_position_embeddings (the llama2.c seq_len);
  - log_softmax over the vocabulary of the model's logits, in the model's
    dtype (dtype "auto": the float32 this script builds);
  - the continuation's rows are the last len(continuation) of the input's;
    logprob is the sum of the continuation tokens' entries, is_greedy whether
    every argmax is the continuation's token.
HFLM pads a batch on the right; a causal model's rows before the padding do
not depend on it, so scoring one request at a time gives its numbers.
"""

import argparse
import json
import struct

import torch


def permute(w, n_heads):
    # Meta/llama2.c rotate adjacent pairs; HF's Llama rotates the two halves
    # of each head (transformers' convert_llama_weights_to_hf does the same).
    d1, d2 = w.shape
    return w.view(n_heads, d1 // n_heads // 2, 2, d2).transpose(1, 2).reshape(d1, d2)


def load_llama2c(path):
    from transformers import LlamaConfig, LlamaForCausalLM

    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("7i", data[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    hs = dim // n_heads
    flat = torch.frombuffer(bytearray(data[28:]), dtype=torch.float32)
    off = 0

    def take(*shape):
        nonlocal off
        n = 1
        for s in shape:
            n *= s
        t = flat[off:off + n].view(*shape).clone()
        off += n
        return t

    emb = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, n_heads * hs, dim)
    wk = take(n_layers, n_kv * hs, dim)
    wv = take(n_layers, n_kv * hs, dim)
    wo = take(n_layers, dim, n_heads * hs)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    rms_final = take(dim)
    take(seq_len, hs // 2)  # freq_cis_real: RoPE tables, rebuilt by transformers
    take(seq_len, hs // 2)  # freq_cis_imag
    wcls = emb if shared else take(vocab, dim)

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=n_layers,
                      num_attention_heads=n_heads, num_key_value_heads=n_kv, max_position_embeddings=seq_len,
                      rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=shared, bos_token_id=1, eos_token_id=2,
                      torch_dtype="float32")
    model = LlamaForCausalLM(cfg).to(torch.float32)
    sd = {"model.embed_tokens.weight": emb, "model.norm.weight": rms_final, "lm_head.weight": wcls}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = rms_att[i]
        sd[p + "post_attention_layernorm.weight"] = rms_ffn[i]
        sd[p + "self_attn.q_proj.weight"] = permute(wq[i], n_heads)
        sd[p + "self_attn.k_proj.weight"] = permute(wk[i], n_kv)
        sd[p + "self_attn.v_proj.weight"] = wv[i]
        sd[p + "self_attn.o_proj.weight"] = wo[i]
        sd[p + "mlp.gate_proj.weight"] = w1[i]
        sd[p + "mlp.down_proj.weight"] = w2[i]
        sd[p + "mlp.up_proj.weight"] = w3[i]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("rotary_emb.inv_freq") and not (shared and k == "lm_head.weight")]
    if missing or unexpected:
        raise SystemExit(f"hf_torch: weights missing {missing}, unexpected {unexpected}")
    model.eval()
    return model, seq_len


@torch.no_grad()
def score(model, max_length, ctx, cont, device):
    whole = (ctx + cont)[-(max_length + 1):]
    inp = torch.tensor(whole[:-1], device=device).unsqueeze(0)
    logits = torch.nn.functional.log_softmax(model(inp).logits[0], dim=-1)
    rows = logits[len(whole) - 1 - len(cont):]
    target = torch.tensor(cont, device=device)
    greedy = bool((rows.argmax(dim=-1) == target).all())
    return float(rows.gather(1, target.unsqueeze(1)).sum()), greedy


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--llama2c", required=True)
    p.add_argument("--requests", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    model, max_length = load_llama2c(args.llama2c)
    model.to(args.device)
    n = 0
    with open(args.requests) as f, open(args.out, "w") as out:
        for line in f:
            r = json.loads(line)
            lp, greedy = score(model, max_length, r["context_tokens"], r["continuation_tokens"], args.device)
            out.write(json.dumps({"id": r["id"], "logprob": lp, "is_greedy": greedy}) + "\n")
            n += 1
    import transformers
    print(f"hf_torch: {n} requests scored by transformers {transformers.__version__}, torch {torch.__version__} on {args.device}")


if __name__ == "__main__":
    main()
