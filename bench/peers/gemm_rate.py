#!/usr/bin/env python3
"""The card's bf16 matrix-product rate, measured in the benchmark's own run:
the denominator of every "wall time / FLOP floor" in the report.

    python bench/peers/gemm_rate.py --out gemm.json [--n 8192] [--runs 10]

Random normal inputs (zeros run faster on Hopper and would flatter the
floor), three warm-up products, then --runs products each timed alone with
CUDA events; the median rate is reported. On a machine without a GPU it
measures the CPU in fp32 at a small size, only to check the script.
"""

import argparse
import json
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    n = args.n if cuda else min(args.n, 512)
    dtype = torch.bfloat16 if cuda else torch.float32
    dev = "cuda" if cuda else "cpu"
    g = torch.Generator(device=dev).manual_seed(0)
    a = torch.randn(n, n, device=dev, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=dev, dtype=dtype, generator=g)
    for _ in range(3):
        torch.matmul(a, b)
    rates = []
    for _ in range(args.runs):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.matmul(a, b)
            end.record()
            end.synchronize()
            secs = start.elapsed_time(end) / 1e3
        else:
            t0 = time.perf_counter()
            torch.matmul(a, b)
            secs = time.perf_counter() - t0
        rates.append(2 * n ** 3 / secs / 1e12)
    out = {"device": torch.cuda.get_device_name(0) if cuda else "cpu (script check only)",
           "tflops": statistics.median(rates), "runs_tflops": rates,
           "shape": f"{'bf16' if cuda else 'fp32'} {n}x{n}x{n} torch.matmul"}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: out[k] for k in ("device", "tflops", "shape")}))


if __name__ == "__main__":
    main()
