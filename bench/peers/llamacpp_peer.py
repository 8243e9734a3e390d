#!/usr/bin/env python3
"""Peer (e) of `make bench`: llama.cpp, scoring the way its
`llama-perplexity --multiple-choice` mode does (multiple_choice_score in
tools/perplexity/perplexity.cpp), through llama-cpp-python's ctypes binding
of libllama:

  - one task per question (group); a request without a group is a task of
    its own;
  - the tokens common to all of a task's endings go into the batch once,
    tagged with every ending's sequence id; each ending's own tail has its
    own id; logits only where a scored token is predicted;
  - up to 32 tasks per batch, as many as fit n_batch and the sequence ids;
  - the KV cache is cleared before every batch: nothing is reused across
    batches;
  - the score of an ending is its tokens' log-softmax, in fp64 on the host.

    python bench/peers/llamacpp_peer.py --model NAME=M.gguf --work W [--n-ctx 16384] [--gpu-layers 999]

reads W/NAME/meta.json and the workloads, appends PeerRun lines to
W/NAME/llamacpp.jsonl. llama_cpp comes from PYTHONPATH; with
LLAMA_CPP_LIB_PATH it loads a libllama built elsewhere (bench/run_gpu.sh
builds one with CUDA from the llama-cpp-python source distribution).

torch is never imported here: with it imported first, llama.cpp's model
load segfaulted on the GPU machine (in its first std::stringstream), so the
host-side log-softmax uses numpy on threads.
"""

import argparse
import concurrent.futures
import ctypes
import importlib
import json
import os
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Timing, append_run, peer_run, read_requests  # noqa: E402


def import_llama_cpp():
    """Imports llama_cpp's ctypes layer. Its package __init__ also imports
    the high-level API, whose optional dependencies (diskcache, jinja2) the
    GPU machine may lack; the low-level calls need none of them, so a
    missing one is replaced by an empty module."""
    for _ in range(8):
        try:
            return importlib.import_module("llama_cpp.llama_cpp")
        except ModuleNotFoundError as e:
            if not e.name or e.name.startswith("llama_cpp"):
                raise
            sys.modules[e.name] = types.ModuleType(e.name)
    raise ImportError("llama_cpp: too many missing optional modules")


def tasks_of(reqs):
    """Groups request indices into tasks in order of first appearance."""
    tasks, where = [], {}
    for i, r in enumerate(reqs):
        g = r["group"]
        if g is None:
            tasks.append([i])
        elif g in where:
            tasks[where[g]].append(i)
        else:
            where[g] = len(tasks)
            tasks.append([i])
    return tasks


def plan_task(reqs, idxs):
    """The common prefix of a task's endings and each ending's tail.
    Returns (common tokens, [(request index, full sequence, context length)])."""
    seqs = [reqs[i]["ctx"] + reqs[i]["cont"] for i in idxs]
    n = min(len(s) for s in seqs) - 1  # every ending keeps at least one token of its own
    common = 0
    while common < n and all(s[common] == seqs[0][common] for s in seqs):
        common += 1
    if len(seqs) == 1:
        common = len(reqs[idxs[0]]["ctx"])  # a lone request: its context is the shared part
    return seqs[0][:common], [(i, s, len(reqs[i]["ctx"])) for i, s in zip(idxs, seqs)]


def score_rows(logits, idx, tgt, threads=1):
    """log p(tgt[k]) under row idx[k] of logits (n_rows x n_vocab, float32)
    and whether tgt[k] is that row's argmax: exponentials of float32 logits
    summed in float64, as llama-perplexity's log_softmax does, and spread
    over `threads` as it spreads its own (numpy releases the GIL)."""
    import numpy as np

    out_lp, out_top = np.empty(len(idx)), np.empty(len(idx), dtype=bool)

    def chunk(k):
        x = logits[idx[k:k + 64]]
        m = x.max(axis=1)
        lse = m.astype(np.float64) + np.log(np.exp(x - m[:, None]).sum(axis=1, dtype=np.float64))
        picked = x[np.arange(len(x)), tgt[k:k + 64]]
        out_lp[k:k + 64], out_top[k:k + 64] = picked - lse, picked == m

    with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(chunk, range(0, len(idx), 64)))
    return out_lp, out_top


class LlamaCppScorer:
    def __init__(self, ll, path, n_ctx, gpu_layers, threads):
        self.ll = ll
        ll.llama_backend_init()
        mp = ll.llama_model_default_params()
        mp.n_gpu_layers = gpu_layers
        self.model = ll.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        cp = ll.llama_context_default_params()
        cp.n_ctx = cp.n_batch = n_ctx
        cp.n_seq_max = 128  # 32 tasks x 4 endings, as llama-perplexity allows
        cp.kv_unified = True
        cp.n_threads = cp.n_threads_batch = threads
        self.ctx = ll.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.n_ctx = n_ctx
        self.threads = threads
        self.n_vocab = ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(self.model))
        self.batch = ll.llama_batch_init(n_ctx, 0, 128)

    def log_softmax_at(self, rows, targets):
        """log p(target) and whether it is the argmax, for batch rows `rows`
        of the last decode: float32 logits, exponentials summed in float64
        as llama-perplexity's log_softmax does."""
        import numpy as np

        if not rows:
            return np.empty(0), np.empty(0, dtype=bool)
        ll, width = self.ll, 4 * self.n_vocab
        base = ctypes.cast(ll.llama_get_logits(self.ctx), ctypes.c_void_p).value
        addr = [ctypes.cast(ll.llama_get_logits_ith(self.ctx, r), ctypes.c_void_p).value for r in rows]
        idx = np.array([(a - base) // width for a in addr], dtype=np.int64)
        buf = (ctypes.c_float * (int(idx.max() + 1) * self.n_vocab)).from_address(base)
        logits = np.ctypeslib.as_array(buf).reshape(-1, self.n_vocab)
        return score_rows(logits, idx, np.asarray(targets, dtype=np.int64), self.threads)

    def close(self):
        self.ll.llama_batch_free(self.batch)
        self.ll.llama_free(self.ctx)
        self.ll.llama_model_free(self.model)

    def score(self, reqs, stop_at=0.0):
        ll, b = self.ll, self.batch
        lps, greedy = [None] * len(reqs), [False] * len(reqs)
        plans = [plan_task(reqs, t) for t in tasks_of(reqs)]
        computed, k = 0, 0
        while k < len(plans):
            if stop_at and time.time() > stop_at:
                raise TimeoutError()
            # Pack tasks: at most 32, within n_batch tokens and 128 sequences.
            n_tok, n_seq, batch_plans = 0, 0, []
            while k < len(plans) and len(batch_plans) < 32:
                common, endings = plans[k]
                need = len(common) + sum(len(s) - len(common) - 1 for _, s, _ in endings)
                if batch_plans and (n_tok + need > self.n_ctx or n_seq + len(endings) > 128):
                    break
                if need > self.n_ctx:
                    raise ValueError(f"a task of {need} tokens does not fit n_ctx {self.n_ctx}")
                batch_plans.append((n_seq, common, endings))
                n_tok += need
                n_seq += len(endings)
                k += 1
            ll.llama_memory_clear(ll.llama_get_memory(self.ctx), True)
            b.n_tokens = 0
            rows = []  # per batch_plan: (row of each common position, [row of each tail position per ending])

            def add(tok, pos, seqs, logits):
                i = b.n_tokens
                b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, len(seqs), logits
                for j, s in enumerate(seqs):
                    b.seq_id[i][j] = s
                b.n_tokens = i + 1
                return i

            for seq0, common, endings in batch_plans:
                min_ctx = min(c for _, _, c in endings)
                seqs = list(range(seq0, seq0 + len(endings)))
                crow = [add(t, p, seqs, p >= min_ctx - 1) for p, t in enumerate(common)]
                trows = []
                for e, (_, s, _) in enumerate(endings):
                    trows.append([add(s[p], p, [seq0 + e], True) for p in range(len(common), len(s) - 1)])
                rows.append((crow, trows))
            computed += b.n_tokens
            if ll.llama_decode(self.ctx, b) != 0:
                raise RuntimeError("llama_decode failed")
            # Every scored row at once: llama-perplexity computes its
            # log-softmaxes on the host across all its threads, so a Python
            # loop over 128k-entry rows would make this peer slower than
            # llama.cpp itself. Rows are located by their logits pointers.
            want = []  # (request, row, target)
            for (seq0, common, endings), (crow, trows) in zip(batch_plans, rows):
                for e, (i, s, ctx_len) in enumerate(endings):
                    for p in range(ctx_len, len(s)):  # token s[p] predicted at position p-1
                        r = crow[p - 1] if p - 1 < len(common) else trows[e][p - 1 - len(common)]
                        want.append((i, r, s[p]))
            lp, top = self.log_softmax_at([r for _, r, _ in want], [t for _, _, t in want])
            for (i, _, _), x, g in zip(want, lp, top):
                if lps[i] is None:
                    lps[i], greedy[i] = [], True
                lps[i].append(float(x))
                greedy[i] = greedy[i] and bool(g)
        return lps, greedy, computed


def gpu_memory(pid, baseline):
    """This process's device memory from nvidia-smi (see bench/gpumem.go)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.strip().splitlines():
            p, _, mib = line.partition(",")
            if p.strip() == str(pid):
                return int(mib) << 20, "nvidia-smi, this process"
        used = card_used()
        return used - baseline, "nvidia-smi, card used minus the use before loading"
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        return None, f"not measured: {e}"


def card_used():
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[0]) << 20


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="NAME=M.gguf")
    ap.add_argument("--work", required=True)
    ap.add_argument("--workloads", default="")
    ap.add_argument("--n-ctx", type=int, default=16384)
    ap.add_argument("--gpu-layers", type=int, default=999)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--short", type=float, default=3.0)
    ap.add_argument("--deadline", type=float, default=0.0)
    args = ap.parse_args()
    name, _, path = args.model.partition("=")
    timing = Timing(args.repeats, args.short, args.deadline)
    try:
        baseline = card_used()
    except (OSError, subprocess.CalledProcessError, ValueError):
        baseline = None
    ll = import_llama_cpp()
    scorer = LlamaCppScorer(ll, path, args.n_ctx, args.gpu_layers, args.threads)
    with open(os.path.join(args.work, name, "meta.json")) as f:
        meta = json.load(f)
    want = [w for w in args.workloads.split(",") if w]
    out = os.path.join(args.work, name, "llamacpp.jsonl")
    for w in meta["workloads"]:
        workload = w["workload"]
        if want and workload not in want:
            continue
        reqs = read_requests(os.path.join(args.work, name, workload + ".jsonl"))
        total = sum(len(r["ctx"]) + len(r["cont"]) - 1 for r in reqs)
        if timing.out_of_time():
            append_run(out, peer_run(name, workload, "llamacpp", total_tokens=total,
                                     skipped="the run's time budget was spent before this peer started"))
            continue
        fields = {}
        try:
            warm_tasks = tasks_of(reqs)[:4]
            warm = [reqs[i] for t in warm_tasks for i in t]
            t0 = time.time()
            scorer.score(warm)
            fields.update(warmup_s=time.time() - t0, warmup_note=f"{len(warm)} of {len(reqs)} requests")
            runs, result = [], None
            while timing.more(runs):
                t0 = time.time()
                try:
                    got = scorer.score(reqs, stop_at=timing.deadline + 60 if timing.deadline else 0.0)
                except TimeoutError:
                    break
                runs.append(time.time() - t0)
                result = result or got
            if not runs:
                fields = {"skipped": "ran out of the run's time budget during its first timed run"}
            else:
                lps, greedy, computed = result
                fields.update(runs_s=runs, token_logprobs=lps, is_greedy=greedy, computed_tokens=computed)
                if baseline is not None:
                    n, how = gpu_memory(os.getpid(), baseline)
                    fields.update(peak_gpu_bytes=n, peak_gpu_how=how)
        except (RuntimeError, ValueError) as e:
            fields = {"error": str(e)}
        append_run(out, peer_run(name, workload, "llamacpp", total_tokens=total, **fields))
        msg = fields.get("error") or fields.get("skipped") or f"{sorted(fields['runs_s'])[len(fields['runs_s']) // 2]:.3f} s (runs {[round(x, 3) for x in fields['runs_s']]})"
        print(f"{name}/{workload}/llamacpp: {msg}", flush=True)
    scorer.close()


if __name__ == "__main__":
    main()
