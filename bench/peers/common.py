"""What the Python peers share: reading the request JSONL that `benchgpu gen`
writes, the timing policy of the Go driver (bench/gpu_lmscore.go), and
writing PeerRun lines (bench/gpu_runs.go) that `benchgpu report` reads.

Standard library only, so that the tests can import it without torch.
"""

import json
import statistics
import time


def read_requests(path):
    """Returns the lines of a request JSONL as dicts with context_tokens,
    continuation_tokens and group (None when absent), in file order."""
    reqs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: {e}") from None
            ctx, cont = d.get("context_tokens"), d.get("continuation_tokens")
            if not ctx or not cont:
                raise ValueError(f"{path}:{n}: want non-empty context_tokens and continuation_tokens")
            reqs.append({"id": d.get("id", str(n)), "ctx": ctx, "cont": cont, "group": d.get("group")})
    return reqs


def model_inputs(ctx, cont, max_len):
    """lm-eval-harness's input of one pair: (context + continuation)
    [-(max_len + 1):][:-1], the context cut on the left when too long.
    Returns (input tokens, number of continuation tokens scored at its end)."""
    whole = ctx + cont
    if len(cont) > max_len:
        raise ValueError(f"a continuation of {len(cont)} tokens does not fit the window of {max_len}")
    return whole[-(max_len + 1):][:-1], len(cont)


class Timing:
    """One warm-up that is not counted, then timed runs: a run shorter than
    `short` seconds is repeated until there are `repeats`, and the median is
    reported; no run starts past `deadline` (a time.time() value, 0: none)
    unless it is the first."""

    def __init__(self, repeats=3, short=3.0, deadline=0.0):
        self.repeats, self.short, self.deadline = repeats, short, deadline

    def out_of_time(self):
        return self.deadline > 0 and time.time() > self.deadline

    def more(self, runs):
        if not runs:
            return True
        if len(runs) >= self.repeats or runs[0] >= self.short:
            return False
        return self.deadline <= 0 or time.time() + runs[0] < self.deadline


def median(xs):
    return statistics.median(xs) if xs else 0.0


def peer_run(model, workload, peer, **fields):
    """A PeerRun as a dict, with the keys bench/gpu_runs.go reads."""
    run = {"model": model, "workload": workload, "peer": peer}
    run.update({k: v for k, v in fields.items() if v is not None})
    return run


def append_run(path, run):
    with open(path, "a") as f:
        f.write(json.dumps(run) + "\n")
