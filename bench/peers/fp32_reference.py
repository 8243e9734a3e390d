#!/usr/bin/env python3
"""The float32 reference of `make bench`'s fidelity table (issue 18): the
same Hugging Face folder the transformers peers read, run by transformers
in torch.float32 (the bf16 weights widened, exactly), eager attention, and
true fp32 arithmetic: TF32 off for matmuls and cuDNN, the float32 matmul
precision "highest", checked on the device by a product against float64
(more than 2^-16 of its largest entry off stops the run).

    python bench/peers/fp32_reference.py --models NAME=HF_DIR[,NAME=HF_DIR] --work W \
        [--questions 128] [--tokens 24576] [--budget-s 0] [--device cuda]

For each model (one in memory at a time) and workload of W/NAME/meta.json,
it scores a deterministic subset (fp32_plan.py: the first --questions
questions, none started once --tokens have been computed) and appends one
PeerRun line (bench/gpu_runs.go) with peer "hf-fp32" to W/NAME/fp32.jsonl:
token_logprobs has one entry per request of the workload, null for those
outside the subset. The inputs are the lm-eval harness's, as the nocache
peer's: (ctx + cont)[-(max_len + 1):][:-1].

How: the reference is not timed, so it is built for few device seconds. A
pass runs a prefix (the input less its last len(cont) tokens) on a KV cache
that keeps the previous pass's tokens up to their common prefix
(DynamicCache.crop), then each request's row on that cache alone, cropped
back after each, so no row is ever padded and no token is computed twice
where consecutive questions share their demonstrations or system prompt.
The scores are log_softmax in float64 of the float32 logits.

--budget-s bounds the step: each workload may start questions within an
equal share of the time left when it starts (fp32_plan.share_deadline), so
that a budget too short for all of them still gives every workload its
first questions rather than the first workloads all of theirs.
"""

import argparse
import gc
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
import transformers
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import append_run, model_inputs, peer_run, read_requests  # noqa: E402
from fp32_plan import common_prefix, passes_of, questions_of, share_deadline  # noqa: E402
from hf_peers import max_len_of  # noqa: E402

PEER = "hf-fp32"
# The check's (1024, 4096) x (4096, 1024) product of normal draws misses
# float64 by 4.4e-7 of its largest entry in fp32 on a CPU, and by 2.7e-4
# with its inputs rounded to TF32's 10-bit mantissa: 2^-16 (1.5e-5) lies
# well between the two.
MATMUL_REL_ERR_MAX = 2.0 ** -16


def true_fp32(device):
    """Turns TF32 off and checks a product on the device against float64.
    Returns what the report's note says of it."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(1024, 4096, generator=g).to(device)
    b = torch.randn(4096, 1024, generator=g).to(device)
    exact = a.double() @ b.double()
    err = float((a @ b).double().sub(exact).abs().max() / exact.abs().max())
    if err > MATMUL_REL_ERR_MAX:
        raise SystemExit(f"fp32_reference: a float32 product on {device} misses float64 by {err:.1e} of its "
                         f"largest entry (> {MATMUL_REL_ERR_MAX:.1e}): not true fp32 (TF32 still on?)")
    return {"allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "matmul_rel_err_vs_fp64": err}


class Trunk:
    """A KV cache and the tokens it holds."""

    def __init__(self, model, device):
        self.model, self.device = model, device
        self.tokens, self.cache = [], None
        self.computed = 0

    def forward(self, ids, **kw):
        return self.model(torch.tensor([ids], device=self.device), past_key_values=self.cache, use_cache=True, **kw)

    def extend_to(self, prefix):
        """Makes the cache hold exactly prefix, computing only what it lacks."""
        keep = common_prefix(self.tokens, prefix)
        if keep == 0:
            self.tokens, self.cache = [], None
        elif keep < len(self.tokens):
            # A negative count removes that many tokens from the end (a
            # positive one, the final length, is deprecated in transformers 5).
            self.cache.crop(keep - len(self.tokens))
            self.tokens = self.tokens[:keep]
        if len(prefix) > keep:
            # Only the cache is wanted: one row of logits, not len(prefix).
            out = self.forward(prefix[keep:], logits_to_keep=1)
            self.cache = out.past_key_values
            self.computed += len(prefix) - keep
            self.tokens = list(prefix)

    def score(self, row, cont):
        """The continuation's logprobs on the cache; the cache is left as it was."""
        out = self.forward(row)
        self.computed += len(row)
        if self.tokens:
            self.cache.crop(-len(row))
        else:
            self.cache = None
        lp = F.log_softmax(out.logits[0].double(), dim=-1)
        return lp.gather(-1, torch.tensor(cont, device=lp.device)[:, None]).squeeze(-1).tolist()


def score_workload(model, reqs, max_len, device, questions, tokens, stop_at):
    """Returns (token logprobs per request, None outside the subset; extra)."""
    lps = [None] * len(reqs)
    trunk = Trunk(model, device)
    chosen, stopped = 0, ""
    with torch.no_grad():
        for q in questions_of(reqs):
            if chosen >= questions or trunk.computed >= tokens:
                break
            if stop_at and time.time() > stop_at:
                stopped = f"its share of the time budget ran out after {chosen} questions"
                break
            for prefix, rows in passes_of(reqs, q, max_len):
                trunk.extend_to(prefix)
                for i, row in rows:
                    lps[i] = trunk.score(row, reqs[i]["cont"])
            chosen += 1
    n = sum(lp is not None for lp in lps)
    extra = {"questions": chosen, "questions_in_workload": len(questions_of(reqs)), "requests": n,
             "scored_tokens": sum(len(lp) for lp in lps if lp is not None), "max_questions": questions,
             "max_tokens": tokens}
    if stopped:
        extra["stopped"] = stopped
    return lps, trunk.computed, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="NAME=HF_DIR[,NAME=HF_DIR...]")
    ap.add_argument("--work", required=True)
    ap.add_argument("--workloads", default="", help="comma-separated subset")
    ap.add_argument("--questions", type=int, default=128, help="per workload: at most this many questions")
    ap.add_argument("--tokens", type=int, default=24576,
                    help="per workload: no question starts once this many tokens have been computed")
    ap.add_argument("--budget-s", type=float, default=0.0,
                    help="no question starts this many seconds after the start, the loads included; each "
                         "workload gets an equal share of what is left when it starts (0: no limit)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    t_start = time.time()
    stop_at = t_start + args.budget_s if args.budget_s > 0 else 0.0
    precision = true_fp32(device)
    print(f"fp32 reference: {json.dumps(precision)}", flush=True)
    want = [w for w in args.workloads.split(",") if w]
    plan = []
    for spec in args.models.split(","):
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"fp32_reference: --models: want NAME=DIR, got {spec!r}")
        with open(os.path.join(args.work, name, "meta.json")) as f:
            meta = json.load(f)
        workloads = [w["workload"] for w in meta["workloads"] if not want or w["workload"] in want]
        workloads = [w for w in workloads if os.path.exists(os.path.join(args.work, name, w + ".jsonl"))]
        plan.append((name, path, workloads))
    # Workloads not yet scored, over every model: each gets its share of
    # the budget (share_deadline), a later model's load included in its
    # workloads' shares.
    left = sum(len(w) for _, _, w in plan)
    for name, path, workloads in plan:
        if stop_at and time.time() > stop_at:
            left -= len(workloads)
            for workload in workloads:
                append_run(os.path.join(args.work, name, "fp32.jsonl"), peer_run(
                    name, workload, PEER, total_tokens=0, skipped="the time budget ran out before this model loaded"))
            print(f"{name}: no fp32 reference, the time budget ran out", flush=True)
            continue
        t0 = time.time()
        # Loaded in bf16 as the peers load it and widened on the device: the
        # same float32 weights as a float32 load (bf16 widens exactly; the
        # RoPE buffers are float32 either way), without a float32 copy of
        # an 8B model made on the host first.
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation="eager")
        model.to(device).to(torch.float32).eval()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(f"{name}: loaded in float32 in {time.time() - t0:.1f} s", flush=True)
        max_len = max_len_of(model)
        note = (f"transformers {transformers.__version__} (torch {torch.__version__}) in float32 on {device.type}, "
                f"eager attention, TF32 off (a product misses float64 by "
                f"{precision['matmul_rel_err_vs_fp64']:.1e} of its largest entry)")
        for workload in workloads:
            reqs = read_requests(os.path.join(args.work, name, workload + ".jsonl"))
            t0 = time.time()
            share = share_deadline(t0, stop_at, left)
            left -= 1
            lps, computed, extra = score_workload(model, reqs, max_len, device, args.questions, args.tokens, share)
            extra.update(precision, seconds=round(time.time() - t0, 3))
            total = sum(len(model_inputs(r["ctx"], r["cont"], max_len)[0]) for r in reqs)
            fields = dict(computed_tokens=computed, token_logprobs=lps, note=note, extra=extra)
            if extra["requests"] == 0:
                fields = dict(skipped=extra.get("stopped", "no request scored"), extra=extra)
            append_run(os.path.join(args.work, name, "fp32.jsonl"),
                       peer_run(name, workload, PEER, total_tokens=total, **fields))
            print(f"{name}/{workload}/{PEER}: {extra['requests']} of {len(reqs)} requests "
                  f"({extra['questions']} questions, {extra['scored_tokens']} scored tokens), {computed} computed "
                  f"tokens in {extra['seconds']:.1f} s{'; ' + extra['stopped'] if 'stopped' in extra else ''}",
                  flush=True)
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
