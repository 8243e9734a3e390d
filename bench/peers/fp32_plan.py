"""Which requests the float32 reference (fp32_reference.py) scores, and in
what passes. Standard library only, so that test_peers.py checks it without
torch.

The subset is deterministic: the workload's first questions in file order
(a question is the requests of one group, its choices; a request without a
group is a question alone), at most `questions` of them, and no new one
once `tokens` tokens have been computed. Every request of a chosen question
is scored, so each question's choices are compared whole.
"""

from collections import OrderedDict

from common import model_inputs


def questions_of(reqs):
    """The workload's questions in file order: lists of request indices."""
    by = OrderedDict()
    for i, r in enumerate(reqs):
        key = ("group", r["group"]) if r.get("group") else ("request", i)
        by.setdefault(key, []).append(i)
    return list(by.values())


def passes_of(reqs, idxs, max_len):
    """One question's passes: [(prefix, [(request index, row)])]. The
    harness's input of a request, (ctx + cont)[-(max_len + 1):][:-1], is
    split into prefix + row, row being its last len(cont) tokens: the
    logits at row's positions are exactly the continuation's scores. The
    requests whose prefixes are equal (a question's choices, usually) share
    one pass; cutting the input the harness's way keeps the reference's
    inputs those of the nocache peer and of lmscore when a context is
    truncated."""
    by = OrderedDict()
    for i in idxs:
        inp, n = model_inputs(reqs[i]["ctx"], reqs[i]["cont"], max_len)
        by.setdefault(tuple(inp[:len(inp) - n]), []).append((i, inp[len(inp) - n:]))
    return [(list(p), rows) for p, rows in by.items()]


def common_prefix(a, b):
    """The length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    for k in range(n):
        if a[k] != b[k]:
            return k
    return n


def plan_cost(reqs, max_len, questions, tokens):
    """What the reference would compute on a workload, without a model:
    (chosen questions, requests, computed tokens), with the trunk reused
    across passes as fp32_reference.py reuses its cache (a pass computes
    its prefix beyond the common prefix with the one before, then its
    rows). Used by the tests and to size the defaults."""
    trunk, computed, chosen, nreq = [], 0, 0, 0
    for q in questions_of(reqs):
        if chosen >= questions or computed >= tokens:
            break
        for prefix, rows in passes_of(reqs, q, max_len):
            computed += len(prefix) - common_prefix(trunk, prefix)
            trunk = prefix
            computed += sum(len(r) for _, r in rows)
            nreq += len(rows)
        chosen += 1
    return chosen, nreq, computed


def share_deadline(now, stop_at, left):
    """When the next of `left` workloads must start its last question: an
    equal share of the time left before stop_at (0: no limit), so that a
    budget too short for everything still compares every workload on its
    first questions instead of the first workloads on all of theirs. A
    workload that finishes early leaves its unused time to the others,
    since each share is taken of what is left when that workload starts."""
    if not stop_at:
        return 0.0
    if left <= 1 or now >= stop_at:
        return stop_at
    return now + (stop_at - now) / left
