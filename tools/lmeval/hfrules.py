"""The token requests lm-eval-harness's hf backend would score, and a
per-request comparison of lm-eval's answers with `lmscore score`'s.

  hfrules.py requests --lmscore BIN --model M.gguf --tasks T1,T2 --include_path DIR --out REQ.jsonl
      runs lm-eval's own task code (few-shot sampling, target delimiters,
      TemplateLM.loglikelihood and _encode_pair) with a model whose tok_encode,
      prefix_token_id and loglikelihood_rolling are lm-eval 0.4.13's HFLM
      rules (lm_eval/models/huggingface.py), over the model's own tokenizer
      (`lmscore tokenize --special --no-bos`, a Hugging Face tokenizer's
      reading of special-token text), and writes every (context, continuation)
      token pair it would score as a `lmscore score` token request, with
      REQ.jsonl.keys beside it naming the lm-eval request of each.
  hfrules.py compare --out OUT_DIR --requests REQ.jsonl --results RES.jsonl [--tolerance T --label L]
      compares, request by request, lm-eval's log-likelihoods (its
      --log_samples output) with `lmscore score`'s on those token requests
      (or with hf_torch.py's, the hf backend's numbers, within T); exits 1
      on any difference (beyond T; is_greedy must agree either way).

Runs on the CPU without torch: lm-eval's core needs none. The rules, from
lm-eval 0.4.13's source:
  - HFLM.tok_encode: the tokenizer's default add_special_tokens (BOS when its
    add_bos_token says so; here the GGUF's add_bos_token metadata), or the
    add_bos_token model argument when given; add_special_tokens False when
    the text starts with the BOS token's text (has_bos_prefix).
  - HFLM.prefix_token_id: the BOS id (bos_token_id, else eos_token_id).
  - TemplateLM.loglikelihood: an empty context is [prefix_token_id] and the
    continuation encoded with add_special_tokens False; otherwise
    _encode_pair: trailing whitespace of the context moves to the
    continuation, whole = tok_encode(ctx + cont), context = tok_encode(ctx),
    continuation = whole[len(context):].
  - HFLM.loglikelihood_rolling: windows of get_rolling_token_windows(
    tok_encode(text), prefix_token_id, max_length, context_len=1) through
    make_disjoint_window; the first window's context is the prefix token,
    before an encoding that starts with BOS itself.
  - HFLM._loglikelihood_tokens left-truncates to max_length + 1 tokens;
    local-completions to max_length - 1 and its rolling windows are
    max_length - 2 long. Requests here must fit both untruncated, so that
    the two backends score the same tokens: this script refuses others.
"""

import argparse
import glob
import json
import os
import subprocess
import sys

MAX_LENGTH = 512  # the model's context window: lm-eval's max_length


class Tokenizer:
    """The model's tokenizer through `lmscore tokenize`, one long-lived process."""

    def __init__(self, lmscore, model, special=True, bos=False):
        args = [lmscore, "tokenize", "--model", model] + (["--special"] if special else []) + ([] if bos else ["--no-bos"])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def encode(self, text):
        self.proc.stdin.write(json.dumps(text) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def hf_model(lmscore, model, bos_text="<s>", add_bos_token=None):
    from lm_eval import utils
    from lm_eval.api.model import TemplateLM

    tok = Tokenizer(lmscore, model)
    with_bos = Tokenizer(lmscore, model, special=False, bos=True)
    tokenizer_adds_bos = len(with_bos.encode("")) == 1  # the GGUF's add_bos_token
    with_bos.close()
    bos_id = tok.encode(bos_text)
    assert len(bos_id) == 1, f"{bos_text!r} is not one token: {bos_id}"
    bos_id = bos_id[0]

    class HFRules(TemplateLM):
        def __init__(self):
            super().__init__()
            self.add_bos_token = add_bos_token
            self.max_length = MAX_LENGTH
            self.recorded = []  # (key, context tokens, continuation tokens)

        @property
        def eot_token_id(self):
            return bos_id

        @property
        def prefix_token_id(self):
            return bos_id  # tokenizer.bos_token_id

        def tok_encode(self, string, add_special_tokens=None, left_truncate_len=None, **kwargs):
            # HFLM.tok_encode with _add_special_kwargs and has_bos_prefix.
            if add_special_tokens is not None:
                add = add_special_tokens
            elif self.add_bos_token is not None:
                add = self.add_bos_token
            else:
                add = tokenizer_adds_bos
            if add_special_tokens is None and string.startswith(bos_text):
                add = False
            ids = tok.encode(string)
            if add and (tokenizer_adds_bos or self.add_bos_token):
                ids = [bos_id] + ids
            if left_truncate_len:
                ids = ids[-left_truncate_len:]
            return ids

        def _loglikelihood_tokens(self, requests, **kwargs):
            for key, ctx, cont in requests:
                n = len(ctx) + len(cont)
                if n > self.max_length - 1:
                    sys.exit(f"hfrules: a request of {n} tokens would be truncated (max_length {self.max_length}): {key!r}")
                self.recorded.append((key, ctx, cont))
            return [(0.0, False)] * len(requests)

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            out = []
            for (string,) in [req.args for req in requests]:
                tokens = self.tok_encode(string)
                if len(tokens) > self.max_length - 2:
                    sys.exit(f"hfrules: a rolling document of {len(tokens)} tokens takes several windows, whose sizes differ between the hf backend and local-completions: {string[:40]!r}")
                windows = map(utils.make_disjoint_window, utils.get_rolling_token_windows(
                    token_list=tokens, prefix_token=self.prefix_token_id, max_seq_len=self.max_length, context_len=1))
                for ctx, cont in windows:
                    self._loglikelihood_tokens([((string,), ctx, cont)])
                out.append(0.0)
            return out

        def generate_until(self, requests, disable_tqdm=False):
            raise NotImplementedError("hfrules: only log-likelihood tasks")

    return HFRules(), tok


def requests(args):
    from lm_eval import evaluator
    from lm_eval.tasks import TaskManager

    lm, tok = hf_model(args.lmscore, args.model)
    evaluator.simple_evaluate(model=lm, tasks=args.tasks.split(","), task_manager=TaskManager(include_path=args.include_path),
                              log_samples=False, bootstrap_iters=0)
    tok.close()
    # The lm-eval request each token request answers goes beside it, not in
    # it: `lmscore score` refuses fields it does not know.
    with open(args.out, "w") as f, open(keys_path(args.out), "w") as k:
        for i, (key, ctx, cont) in enumerate(lm.recorded):
            f.write(json.dumps({"id": f"r{i}", "context_tokens": ctx, "continuation_tokens": cont}) + "\n")
            k.write(json.dumps({"id": f"r{i}", "key": list(key)}) + "\n")
    print(f"hfrules: {len(lm.recorded)} token requests by the hf backend's rules", file=sys.stderr)


def keys_path(requests_path):
    """The file beside REQ.jsonl naming the lm-eval request of each line."""
    return requests_path + ".keys"


def sample_args(sample):
    """A logged sample's requests' arguments, in order, as lists of strings."""
    args = sample["arguments"]
    if isinstance(args, dict):
        args = [[a[k] for k in sorted(a)] for _, a in sorted(args.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[1]))]
    return [list(a) for a in args]


def compare(args):
    ours = {}  # key -> [(logprob, is_greedy), ...] in window order
    with open(keys_path(args.requests)) as f:
        reqs = [json.loads(line) for line in f]
    with open(args.results) as f:
        res = {r["id"]: r for r in map(json.loads, f)}
    for r in reqs:
        ours.setdefault(json.dumps(r["key"]), []).append(res[r["id"]])

    results_file = sorted(glob.glob(os.path.join(args.out, "**", "results_*.json"), recursive=True))[-1]
    with open(results_file) as f:
        lm = json.load(f)
    total = diffs = 0
    worst = 0.0
    match = "identical to the bit" if args.tolerance == 0 else f"within {args.tolerance:g}"
    for task in sorted(lm["results"]):
        samples = sorted(glob.glob(os.path.join(args.out, "**", f"samples_{task}_*.jsonl"), recursive=True))[-1]
        n = d = 0
        kind = lm["configs"][task]["output_type"]
        with open(samples) as f:
            for line in f:
                s = json.loads(line)
                for a, resp in zip(sample_args(s), s["resps"]):
                    mine = ours.get(json.dumps(a))
                    n += 1
                    if mine is None:
                        d += 1
                        print(f"  {task}: no hf-rules request for {a!r}")
                        continue
                    if kind == "loglikelihood_rolling":
                        theirs, want = float(resp[0]), sum(m["logprob"] for m in mine)
                        same = abs(theirs - want) <= args.tolerance
                    else:
                        ll, greedy = float(resp[0][0]), str(resp[0][1]) == "True"
                        theirs, want = ll, mine[0]["logprob"]
                        same = abs(ll - want) <= args.tolerance and greedy == mine[0]["is_greedy"]
                    worst = max(worst, abs(theirs - want))
                    if not same:
                        d += 1
                        if d <= 5:
                            print(f"  {task}: {a!r}: lm-eval {theirs!r}, {args.label} {want!r}")
        metrics = ", ".join(f"{k.split(',')[0]} {v:.4f}" for k, v in sorted(lm["results"][task].items())
                            if isinstance(v, float) and "stderr" not in k)
        print(f"{task} ({kind}): {n - d} of {n} requests {match}; lm-eval: {metrics}")
        total, diffs = total + n, diffs + d
    version = lm.get("lm_eval_version", "?")
    if diffs:
        print(f"MISMATCH: {diffs} of {total} requests differ (lm-eval {version} local-completions via lmscore serve vs {args.label}); largest difference {worst:.3g}")
        sys.exit(1)
    print(f"OK: lm-eval {version} local-completions via lmscore serve (default flags) = {args.label}, {total} requests {match} (largest difference {worst:.3g})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("requests")
    r.add_argument("--lmscore", required=True)
    r.add_argument("--model", required=True)
    r.add_argument("--tasks", required=True)
    r.add_argument("--include_path", required=True)
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--out", required=True)
    c.add_argument("--requests", required=True)
    c.add_argument("--results", required=True)
    c.add_argument("--tolerance", type=float, default=0.0, help="largest |difference| per request (default 0: bitwise)")
    c.add_argument("--label", default="the hf backend's rules + lmscore score", help="what RES.jsonl is, for the messages")
    args = p.parse_args()
    {"requests": requests, "compare": compare}[args.cmd](args)


if __name__ == "__main__":
    main()
