"""How long lm-eval-harness's local-completions takes through `lmscore serve`
against `lmscore score` on the same token requests (tools/lmeval/bench.sh).

  bench.py --lmscore BIN --model M.gguf --task T --include_path DIR --batch_sizes 1,32,400

Builds the task's loglikelihood requests with lm-eval's own task code, then,
per batch size, starts a fresh `lmscore serve` (default flags, cold caches)
and times lm-eval 0.4.13's LocalCompletionsAPI.loglikelihood against it (its
two phases: tokenizing through /tokenize, and the echo requests to
/v1/completions), and `lmscore score` (a process of its own, model load
included, cold) on the token requests the hf backend's rules give
(hfrules.py), which are the ones lm-eval sends.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import hfrules  # noqa: E402


def task_instances(task, include_path):
    from lm_eval import evaluator
    from lm_eval.api.model import LM
    from lm_eval.tasks import TaskManager

    class Recorder(LM):
        instances = []

        def loglikelihood(self, requests, disable_tqdm=False):
            Recorder.instances.extend(requests)
            return [(0.0, False)] * len(requests)

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def generate_until(self, requests, disable_tqdm=False):
            raise NotImplementedError

    evaluator.simple_evaluate(model=Recorder(), tasks=[task], task_manager=TaskManager(include_path=include_path),
                              log_samples=False, bootstrap_iters=0)
    return Recorder.instances


def start_server(lmscore, model):
    """lmscore serve on a free loopback port: (process, base URL)."""
    proc = subprocess.Popen([lmscore, "serve", "--model", model, "--addr", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, m.group(1)
    sys.exit("bench: lmscore serve did not start")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--lmscore", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--include_path", required=True)
    p.add_argument("--batch_sizes", default="1,32,400")
    args = p.parse_args()

    from lm_eval.models.openai_completions import LocalCompletionsAPI

    instances = task_instances(args.task, args.include_path)

    # The hf backend's token requests, for lmscore score.
    lm, tok = hfrules.hf_model(args.lmscore, args.model)
    lm.loglikelihood(instances, disable_tqdm=True)
    tok.close()
    n_tokens = sum(len(c) + len(t) for _, c, t in lm.recorded)
    with tempfile.TemporaryDirectory() as d:
        req = os.path.join(d, "req.jsonl")
        with open(req, "w") as f:
            for i, (_, ctx, cont) in enumerate(lm.recorded):
                f.write(json.dumps({"id": f"r{i}", "context_tokens": ctx, "continuation_tokens": cont}) + "\n")
        t0 = time.perf_counter()
        run = subprocess.run([args.lmscore, "score", "--model", args.model, "--in", req, "--out", os.path.join(d, "res.jsonl")],
                       check=True, stderr=subprocess.PIPE, text=True)
        score_wall = time.perf_counter() - t0
        with open(os.path.join(d, "res.jsonl")) as f:
            want = [json.loads(line)["logprob"] for line in f]
    print(f"{args.task}: {len(instances)} loglikelihood requests, {n_tokens} tokens (context + continuation)")
    own = re.search(r"wall time\s+(\S+)", run.stderr)
    print(f"lmscore score (process, model load included):     {score_wall:6.2f} s  (its own wall time: {own.group(1) if own else '?'})")

    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        server, url = start_server(args.lmscore, args.model)
        api = LocalCompletionsAPI(base_url=url + "/v1/completions", model="stories260K", max_length=512,
                                  batch_size=bs, tokenizer_backend="remote")
        phases = {}
        inner = api._loglikelihood_tokens

        def timed(reqs, **kw):
            phases["tokenize"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            out = inner(reqs, **kw)
            phases["requests"] = time.perf_counter() - t1
            return out

        api._loglikelihood_tokens = timed
        t0 = time.perf_counter()
        got = api.loglikelihood(instances, disable_tqdm=True)
        total = time.perf_counter() - t0
        same = sum(g[0] == w for g, w in zip(got, want))
        print(f"lm-eval local-completions batch_size {bs:4d}: {total:6.2f} s  (tokenize via /tokenize {phases['tokenize']:5.2f} s,"
              f" /v1/completions {phases['requests']:5.2f} s = {phases['requests'] / score_wall:4.2f}x score)"
              f"  {same}/{len(want)} identical")
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
