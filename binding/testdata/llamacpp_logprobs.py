#!/usr/bin/env python3
"""Log-probabilities of every next token from llama.cpp, for TestLlamaCpp.

usage: llamacpp_logprobs.py MODEL.gguf TOKENS_JSON
Prints a JSON list with, for each position i, log_softmax(logits[i]) over
the whole vocabulary (natural log, computed in float64 from llama.cpp's
float32 logits). llama.cpp runs with an F32 KV cache (its default is F16)
so that the comparison measures the engines, not the cache's rounding.
"""
import json
import sys

import numpy as np
import llama_cpp


def main():
    path, tokens = sys.argv[1], json.loads(sys.argv[2])
    m = llama_cpp.Llama(model_path=path, n_ctx=max(64, len(tokens) + 1), logits_all=True,
                        verbose=False, n_threads=1, n_batch=512, type_k=0, type_v=0)
    m.eval(tokens)
    x = np.array(m.scores[:len(tokens)], dtype=np.float64)
    mx = x.max(axis=-1, keepdims=True)
    lp = x - mx - np.log(np.exp(x - mx).sum(axis=-1, keepdims=True))
    json.dump(lp.tolist(), sys.stdout)


if __name__ == "__main__":
    main()
