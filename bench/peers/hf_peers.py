#!/usr/bin/env python3
"""The transformers peers of `make bench`, on the same GPU, weights and
requests as lmscore:

  hf-nocache  (a) the lm-eval-harness way (HFLM._loglikelihood_tokens):
              inputs (context + continuation)[-(max_len+1):][:-1], sorted
              longest first; requests with the same input share one row
              (the harness's logits cache); batches of a fixed number of
              rows, right-padded, no attention mask; one full forward pass
              with logits at every position; log_softmax over all of them;
              each request's continuation positions gathered.
  hf-catwalk  (b) the catwalk way: the requests that share a context form a
              group; the context minus its last token runs once with
              use_cache; its past_key_values are repeated per choice
              (DynamicCache.batch_repeat_interleave: a copy per row, as
              catwalk stacks them); then the choices, [last context token] +
              continuation[:-1] right-padded, run as one batch on that cache.

    python bench/peers/hf_peers.py --models NAME=HF_DIR[,NAME=HF_DIR] --work W [--peers nocache,catwalk]

reads W/NAME/meta.json and W/NAME/<workload>.jsonl (benchgpu gen) and
appends one JSON line per model, workload and peer to W/NAME/hf.jsonl (the
PeerRun of bench/gpu_runs.go). Workloads run in the outer loop, so that a
run cut short by --deadline still has every model's first workloads.

Scores: both peers compute log_softmax over the whole logits tensor in the
model's dtype, as the harness and catwalk do, and that is what is timed.
The logprobs written are the continuation rows' log_softmax redone in fp32
from the same bf16 logits, so that the comparison with lmscore measures the
models' arithmetic rather than the rounding of the output to bf16 (at -12,
bf16 steps by 0.0625); the largest difference between the two is recorded
as extra.bf16_output_rounding_max.
"""

import argparse
import gc
import json
import os
import sys
import time
from collections import OrderedDict

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Timing, append_run, model_inputs, peer_run, read_requests  # noqa: E402


class OutOfTime(Exception):
    pass


def check_time(stop_at):
    if stop_at and time.time() > stop_at:
        raise OutOfTime()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def score_rows(logits_rows, logsm_rows, conts):
    """Each request's continuation scores. logits_rows[k] and logsm_rows[k]
    are its (len(conts[k]), V) rows of the logits and of the peer's own
    model-dtype log_softmax. Returns the fp32 log_softmax of the logits at
    the targets, the greedy flags, and the largest gap between the fp32
    values and the model-dtype ones the peer itself would have reported."""
    out, greedy, gap = [], [], 0.0
    for rows, logsm, cont in zip(logits_rows, logsm_rows, conts):
        tgt = torch.tensor(cont, device=rows.device)
        lp32 = F.log_softmax(rows.float(), dim=-1).gather(-1, tgt[:, None]).squeeze(-1)
        lp16 = logsm.gather(-1, tgt[:, None]).squeeze(-1).float()
        gap = max(gap, float((lp32 - lp16).abs().max()))
        out.append(lp32.tolist())
        greedy.append(bool((rows.argmax(-1) == tgt).all()))
    return out, greedy, gap


def run_nocache(model, reqs, max_len, batch_rows, device, stop_at=0.0):
    """(a): returns (token logprobs per request, greedy flags, computed tokens, extra)."""
    row_of, row_inp, row_reqs = {}, [], []
    for i, r in enumerate(reqs):
        inp, n = model_inputs(r["ctx"], r["cont"], max_len)
        key = tuple(inp)
        if key not in row_of:
            row_of[key] = len(row_inp)
            row_inp.append(inp)
            row_reqs.append([])
        row_reqs[row_of[key]].append((i, n))
    order = sorted(range(len(row_inp)), key=lambda k: (-len(row_inp[k]), row_inp[k]))
    lps, greedy = [None] * len(reqs), [False] * len(reqs)
    computed, gap = 0, 0.0
    for b0 in range(0, len(order), batch_rows):
        check_time(stop_at)
        batch = order[b0:b0 + batch_rows]
        width = len(row_inp[batch[0]])  # sorted: the first row is the longest
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        for j, k in enumerate(batch):
            ids[j, :len(row_inp[k])] = torch.tensor(row_inp[k])
        with torch.no_grad():
            logits = model(ids.to(device)).logits
            # What the harness does with them: log_softmax everywhere.
            multi_logits = F.log_softmax(logits, dim=-1)
            computed += ids.numel()
            sel, selsm, conts, who = [], [], [], []
            for j, k in enumerate(batch):
                inplen = len(row_inp[k])
                for i, n in row_reqs[k]:
                    sel.append(logits[j, inplen - n:inplen])
                    selsm.append(multi_logits[j, inplen - n:inplen])
                    conts.append(reqs[i]["cont"])
                    who.append(i)
            got, flags, g = score_rows(sel, selsm, conts)
            gap = max(gap, g)
            del multi_logits, logits
        for i, lp, fl in zip(who, got, flags):
            lps[i], greedy[i] = lp, fl
    return lps, greedy, computed, {"batch_rows": batch_rows, "rows": len(row_inp), "bf16_output_rounding_max": gap}


def run_catwalk(model, reqs, max_len, device, stop_at=0.0):
    """(b): returns (token logprobs per request, greedy flags, computed tokens, extra)."""
    groups = OrderedDict()
    for i, r in enumerate(reqs):
        groups.setdefault(tuple(r["ctx"]), []).append(i)
    lps, greedy = [None] * len(reqs), [False] * len(reqs)
    computed, gap, copied = 0, 0.0, 0
    for ctx, idxs in groups.items():
        check_time(stop_at)
        conts = [reqs[i]["cont"] for i in idxs]
        longest = max(len(c) for c in conts)
        cut = max(0, len(ctx) + longest - 1 - max_len)
        ctx = list(ctx[cut:])
        prefix = ctx[:-1]
        rows = [[ctx[-1]] + c[:-1] for c in conts]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        for j, r in enumerate(rows):
            ids[j, :len(r)] = torch.tensor(r)
        with torch.no_grad():
            cache = None
            if prefix:
                out = model(torch.tensor([prefix], device=device), use_cache=True)
                cache = out.past_key_values
                del out
                if len(rows) > 1:
                    cache.batch_repeat_interleave(len(rows))
                    copied += len(prefix) * (len(rows) - 1)
                computed += len(prefix)
            logits = model(ids.to(device), past_key_values=cache, use_cache=cache is not None).logits
            multi_logits = F.log_softmax(logits, dim=-1)
            computed += ids.numel()
            got, flags, g = score_rows([logits[j, :len(c)] for j, c in enumerate(conts)],
                                       [multi_logits[j, :len(c)] for j, c in enumerate(conts)], conts)
            gap = max(gap, g)
            del multi_logits, logits, cache
        for i, lp, fl in zip(idxs, got, flags):
            lps[i], greedy[i] = lp, fl
    return lps, greedy, computed, {"groups": len(groups), "copied_prefix_tokens": copied,
                                   "bf16_output_rounding_max": gap}


def max_len_of(model):
    cfg = model.config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        if getattr(cfg, attr, None):
            return int(getattr(cfg, attr))
    raise ValueError("the model's config names no context length")


def measure(peer, fn, reqs, warm_reqs, timing, device, weight_bytes):
    """Warm-up on warm_reqs, then timed runs per timing; returns PeerRun fields."""
    fields = {}
    if timing.out_of_time():
        return {"skipped": "the run's time budget was spent before this peer started"}
    try:
        t0 = time.time()
        fn(warm_reqs, stop_at=0.0)
        sync(device)
        fields["warmup_s"] = time.time() - t0
        fields["warmup_note"] = f"{len(warm_reqs)} of {len(reqs)} requests"
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        runs, result = [], None
        while timing.more(runs):
            t0 = time.time()
            try:
                got = fn(reqs, stop_at=timing.deadline + 60 if timing.deadline else 0.0)
            except OutOfTime:
                if not runs:
                    return {"skipped": "ran out of the run's time budget during its first timed run"}
                break
            sync(device)
            runs.append(time.time() - t0)
            if result is None:
                result = got
        lps, greedy, computed, extra = result
        fields.update(runs_s=runs, token_logprobs=lps, is_greedy=greedy, computed_tokens=computed, extra=extra)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) - before + weight_bytes
            fields.update(peak_gpu_bytes=int(peak),
                          peak_gpu_how="torch.cuda.max_memory_allocated during the timed runs, plus this model's weights")
    except torch.cuda.OutOfMemoryError as e:
        fields = {"error": "CUDA out of memory: " + str(e).split("\n")[0]}
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return fields


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="NAME=HF_DIR[,NAME=HF_DIR...]")
    ap.add_argument("--work", required=True)
    ap.add_argument("--peers", default="nocache,catwalk")
    ap.add_argument("--workloads", default="", help="comma-separated subset")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-tokens", type=int, default=16384,
                    help="(a): rows per batch = this // the longest input (the harness's fixed batch size)")
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--short", type=float, default=3.0)
    ap.add_argument("--deadline", type=float, default=0.0, help="unix time after which no run starts")
    args = ap.parse_args()
    device = torch.device(args.device)
    timing = Timing(args.repeats, args.short, args.deadline)

    models = OrderedDict()
    for spec in args.models.split(","):
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"hf_peers: --models: want NAME=DIR, got {spec!r}")
        t0 = time.time()
        m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation=args.attn)
        m.to(device).eval()
        wbytes = sum(p.numel() * p.element_size() for p in m.parameters())
        with open(os.path.join(args.work, name, "meta.json")) as f:
            meta = json.load(f)
        models[name] = (m, wbytes, meta)
        print(f"{name}: loaded in {time.time() - t0:.1f} s, {wbytes / 2**30:.2f} GiB of weights", flush=True)

    want = [w for w in args.workloads.split(",") if w]
    order = []
    for name, (_, _, meta) in models.items():
        for w in meta["workloads"]:
            if (not want or w["workload"] in want) and w["workload"] not in order:
                order.append(w["workload"])
    peers = [p for p in args.peers.split(",") if p]
    for workload in order:
        for name, (model, wbytes, meta) in models.items():
            path = os.path.join(args.work, name, workload + ".jsonl")
            if not os.path.exists(path):
                continue
            reqs = read_requests(path)
            max_len = max_len_of(model)
            out = os.path.join(args.work, name, "hf.jsonl")
            longest = max(len(model_inputs(r["ctx"], r["cont"], max_len)[0]) for r in reqs)
            rows = max(1, args.batch_tokens // longest)
            for peer in peers:
                if peer == "nocache":
                    pname = "hf-nocache"
                    # The warm-up: the two longest batches, the shapes that
                    # size the allocator's pool.
                    by_len = sorted(range(len(reqs)), key=lambda i: -(len(reqs[i]["ctx"]) + len(reqs[i]["cont"])))
                    warm = [reqs[i] for i in by_len[:2 * rows]]

                    def fn(rs, stop_at, model=model, max_len=max_len, rows=rows):
                        return run_nocache(model, rs, max_len, rows, device, stop_at)
                elif peer == "catwalk":
                    pname = "hf-catwalk"
                    firsts = list(OrderedDict.fromkeys(tuple(r["ctx"]) for r in reqs))[:4]
                    keep = set(firsts)
                    warm = [r for r in reqs if tuple(r["ctx"]) in keep]

                    def fn(rs, stop_at, model=model, max_len=max_len):
                        return run_catwalk(model, rs, max_len, device, stop_at)
                else:
                    raise SystemExit(f"hf_peers: unknown peer {peer!r} (want nocache or catwalk)")
                fields = measure(pname, fn, reqs, warm, timing, device, wbytes)
                run = peer_run(name, workload, pname, total_tokens=sum(
                    len(model_inputs(r["ctx"], r["cont"], max_len)[0]) for r in reqs), **fields)
                append_run(out, run)
                msg = fields.get("error") or fields.get("skipped") or (
                    f"{sorted(fields['runs_s'])[len(fields['runs_s']) // 2]:.3f} s (runs "
                    f"{[round(x, 3) for x in fields['runs_s']]}, warm-up {fields['warmup_s']:.2f} s), "
                    f"{fields['computed_tokens']} computed tokens")
                print(f"{name}/{workload}/{pname}: {msg}", flush=True)


if __name__ == "__main__":
    main()
