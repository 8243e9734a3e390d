#!/usr/bin/env python3
"""llama.cpp's log-probabilities over several sequences, for TestLlamaCppFamilies.

usage: llamacpp_sequences.py MODEL.gguf < REQUEST_JSON
REQUEST_JSON is {"sequences": [[token, ...], ...]}. Prints a JSON object:
  "n_ctx": the context llama.cpp ran with (it rounds the one asked for up,
           to a multiple of 256, which decides Phi-3's LongRoPE factors);
  "logprobs": for each sequence, for each position i, log_softmax(logits[i])
           over the whole vocabulary (natural log, float64 from llama.cpp's
           float32 logits).
Each sequence starts from an empty KV cache, as its own request would. The
settings are llamacpp_logprobs.py's: an F32 KV cache (llama.cpp's default is
F16) so that the comparison measures the engines, not the cache's rounding,
and one thread.
"""
import json
import sys

import numpy as np
import llama_cpp


def main():
    path = sys.argv[1]
    seqs = json.load(sys.stdin)["sequences"]
    longest = max(len(s) for s in seqs)
    m = llama_cpp.Llama(model_path=path, n_ctx=max(64, longest + 1), logits_all=True,
                        verbose=False, n_threads=1, n_batch=512, type_k=0, type_v=0)
    out = []
    for s in seqs:
        m.reset()
        m.eval(s)
        x = np.array(m.scores[:len(s)], dtype=np.float64)
        mx = x.max(axis=-1, keepdims=True)
        out.append((x - mx - np.log(np.exp(x - mx).sum(axis=-1, keepdims=True))).tolist())
    json.dump({"n_ctx": m.n_ctx(), "logprobs": out}, sys.stdout)


if __name__ == "__main__":
    main()
