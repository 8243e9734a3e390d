#!/usr/bin/env python3
"""The report's plot: PREFIX.json (benchgpu report) to PREFIX.png.

    python bench/peers/plot.py bench/results/h100-1b-gpt2-large-bench.json

One row per model: tokens/s of every peer per workload (log scale, total
tokens over wall time), and wall time over the FLOP floor (log scale; 1 is
the card's bf16 GEMM rate on the unique work). Needs matplotlib.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PEERS = [("lmscore", "(d) lmscore", "#1b9e77"), ("lmscore-nocache", "(c) lmscore --no-cache", "#66c2a5"),
         ("hf-nocache", "(a) HF no cache (harness)", "#d95f02"), ("hf-catwalk", "(b) HF prefix cache (catwalk)", "#fc8d62"),
         ("llamacpp", "(e) llama.cpp", "#7570b3")]


def main():
    if len(sys.argv) != 2 or not sys.argv[1].endswith(".json"):
        raise SystemExit("usage: plot.py PREFIX.json")
    path = sys.argv[1]
    with open(path) as f:
        rep = json.load(f)
    models = [m["name"] for m in rep["models"]]
    fig, axes = plt.subplots(len(models), 2, figsize=(15, 4.2 * len(models)), squeeze=False)
    for r, model in enumerate(models):
        rows = [x for x in rep["rows"] if x["model"] == model]
        workloads = list(dict.fromkeys(x["workload"] for x in rows))
        peers = [p for p in PEERS if any(x["peer"] == p[0] and x["status"] == "ok" for x in rows)]
        width = 0.8 / max(1, len(peers))
        for c, (key, label) in enumerate([("tokens_per_second", "tokens/s (total tokens / wall)"),
                                           ("wall_over_floor", "wall time / FLOP floor")]):
            ax = axes[r][c]
            for k, (peer, name, color) in enumerate(peers):
                xs, ys = [], []
                for i, w in enumerate(workloads):
                    hit = [x for x in rows if x["workload"] == w and x["peer"] == peer and x["status"] == "ok"]
                    if hit and hit[0].get(key):
                        xs.append(i + (k - (len(peers) - 1) / 2) * width)
                        ys.append(hit[0][key])
                ax.bar(xs, ys, width, label=name, color=color)
            ax.set_yscale("log")
            ax.set_xticks(range(len(workloads)))
            ax.set_xticklabels(workloads)
            ax.set_title(f"{model}: {label}")
            ax.grid(axis="y", which="both", alpha=0.3)
            if c == 0:
                # lmscore's speedup over the harness way, above each group.
                for i, w in enumerate(workloads):
                    hit = [x for x in rows if x["workload"] == w and x["peer"] == "hf-nocache" and x["status"] == "ok"]
                    top = max([x.get("tokens_per_second", 0) for x in rows if x["workload"] == w] + [1])
                    if hit and hit[0].get("lmscore_speedup"):
                        ax.annotate(f"{hit[0]['lmscore_speedup']:.0f}x vs (a)", (i, top), ha="center",
                                    va="bottom", fontsize=9, xytext=(0, 3), textcoords="offset points")
            else:
                ax.axhline(1, color="black", lw=0.8)
    fig.suptitle(f"lmscore and its peers, {rep['card']}, {rep['date']} "
                 f"(bf16 GEMM {rep['gemm']['tflops']:.0f} TFLOP/s)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    out = path[:-len(".json")] + ".png"
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
