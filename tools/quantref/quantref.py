"""gguf-py's quantizers and dequantizers, for lmscore's bit-identity tests.

Usage: quantref.py JOB...  with each JOB "dequant:TYPE:IN:OUT" (IN whole
blocks of TYPE, OUT little-endian float32) or "quant:TYPE:IN:OUT" (IN
little-endian float32, OUT blocks). TYPE is a GGML type name (Q4_K).
model/quant_test.go writes the inputs and compares the outputs bit for bit.
"""
import sys

import numpy as np
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType


def main(jobs):
    for job in jobs:
        op, name, src, dst = job.split(":", 3)
        qtype = GGMLQuantizationType[name]
        block, size = GGML_QUANT_SIZES[qtype]
        if op == "dequant":
            raw = np.fromfile(src, dtype=np.uint8).reshape((-1, size))
            out = quants.dequantize(raw, qtype).astype(np.float32, copy=False)
        elif op == "quant":
            x = np.fromfile(src, dtype="<f4").reshape((-1, block))
            out = quants.quantize(x, qtype)
        else:
            raise SystemExit(f"unknown job {job!r}")
        np.ascontiguousarray(out).tofile(dst)


if __name__ == "__main__":
    main(sys.argv[1:])
