"""Tests of the peers' logic that needs neither torch nor a GPU: the
harness's truncation, the timing policy, llama-perplexity's task
packing, and the fp32 reference's subset and passes. Run: python3 -m unittest discover -s bench/peers -p 'test_*.py'
(bench/peers_test.go runs it with go test where python3 exists)."""

import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Timing, model_inputs, read_requests  # noqa: E402
from fp32_plan import common_prefix, passes_of, plan_cost, questions_of, share_deadline  # noqa: E402
from llamacpp_peer import plan_task, score_rows, tasks_of  # noqa: E402

try:
    import numpy
except ImportError:
    numpy = None


class ModelInputs(unittest.TestCase):
    def test_fits(self):
        self.assertEqual(model_inputs([1, 2, 3], [4, 5], 10), ([1, 2, 3, 4], 2))

    def test_left_truncation_keeps_max_len_inputs(self):
        inp, n = model_inputs(list(range(10)), [10, 11], 5)
        # (ctx + cont)[-6:][:-1]: the window's 5 inputs end at the last scored position.
        self.assertEqual(inp, [6, 7, 8, 9, 10])
        self.assertEqual(n, 2)

    def test_continuation_longer_than_window(self):
        with self.assertRaises(ValueError):
            model_inputs([1], [2, 3, 4], 2)


class TimingPolicy(unittest.TestCase):
    def test_short_runs_repeat_to_three(self):
        t = Timing(repeats=3, short=2.0)
        self.assertTrue(t.more([]))
        self.assertTrue(t.more([0.5]))
        self.assertTrue(t.more([0.5, 0.6]))
        self.assertFalse(t.more([0.5, 0.6, 0.4]))

    def test_long_run_counts_alone(self):
        self.assertFalse(Timing(repeats=3, short=2.0).more([2.5]))

    def test_no_repeat_past_deadline(self):
        t = Timing(repeats=3, short=2.0, deadline=time.time() + 0.1)
        self.assertFalse(t.more([1.0]))
        self.assertTrue(t.more([]))  # a first run always starts; the caller checks out_of_time


class LlamaCppTasks(unittest.TestCase):
    def reqs(self):
        return [{"ctx": [1, 2, 3], "cont": [7, 8], "group": "q0"},
                {"ctx": [1, 2, 3], "cont": [7, 9], "group": "q0"},
                {"ctx": [4, 5], "cont": [6], "group": None},
                {"ctx": [1, 2, 3], "cont": [5], "group": "q0"}]

    def test_groups_in_order_of_appearance(self):
        self.assertEqual(tasks_of(self.reqs()), [[0, 1, 3], [2]])

    def test_common_prefix_stops_before_every_endings_last_token(self):
        common, endings = plan_task(self.reqs(), [0, 1, 3])
        # [1,2,3,5] is the shortest: the common part keeps 1 token of it free.
        self.assertEqual(common, [1, 2, 3])
        self.assertEqual([(i, c) for i, _, c in endings], [(0, 3), (1, 3), (3, 3)])
        common, _ = plan_task(self.reqs(), [0, 1])
        self.assertEqual(common, [1, 2, 3, 7])  # the shared first ending token is computed once

    def test_lone_request_shares_its_context(self):
        common, endings = plan_task(self.reqs(), [2])
        self.assertEqual(common, [4, 5])
        self.assertEqual(endings[0][1], [4, 5, 6])


class FP32Plan(unittest.TestCase):
    def reqs(self):
        return [{"ctx": [1, 2, 3, 4], "cont": [5], "group": "a"},
                {"ctx": [1, 2, 3, 4], "cont": [6, 7], "group": "a"},
                {"ctx": [1, 2, 9], "cont": [8], "group": None},
                {"ctx": [1, 2, 9], "cont": [8], "group": None}]

    def test_questions_are_groups_or_lone_requests_in_file_order(self):
        self.assertEqual(questions_of(self.reqs()), [[0, 1], [2], [3]])

    def test_choices_share_the_prefix_and_rows_end_the_input(self):
        # inputs [1,2,3,4] (1 scored) and [1,2,3,4,6] (2 scored).
        self.assertEqual(passes_of(self.reqs(), [0, 1], 100), [([1, 2, 3], [(0, [4]), (1, [4, 6])])])

    def test_truncation_is_the_harness_s(self):
        # (ctx + cont)[-5:][:-1] = [2,3,4,6]: the prefix loses the first token.
        self.assertEqual(passes_of(self.reqs(), [1], 4), [([2, 3], [(1, [4, 6])])])

    def test_common_prefix(self):
        self.assertEqual(common_prefix([1, 2, 3], [1, 2]), 2)
        self.assertEqual(common_prefix([1, 2], [1, 3]), 1)
        self.assertEqual(common_prefix([], [1]), 0)

    def test_cost_reuses_the_trunk_and_stops_at_the_limits(self):
        # a: prefix [1,2,3] + rows 1 + 2; then [1,2] is in the trunk: rows only.
        self.assertEqual(plan_cost(self.reqs(), 100, 10, 10**6), (3, 4, 8))
        self.assertEqual(plan_cost(self.reqs(), 100, 1, 10**6), (1, 2, 6))
        self.assertEqual(plan_cost(self.reqs(), 100, 10, 6), (1, 2, 6), "no question starts at the token limit")
        self.assertEqual(plan_cost(self.reqs(), 100, 10, 7), (2, 3, 7))


class FP32Budget(unittest.TestCase):
    def test_each_workload_gets_an_equal_share_of_what_is_left(self):
        # 100 s left for 4 workloads: the first may start questions for 25 s.
        self.assertEqual(share_deadline(1000.0, 1100.0, 4), 1025.0)
        # The first took 5 s of its 25: the next gets a third of the 95 left.
        self.assertAlmostEqual(share_deadline(1005.0, 1100.0, 3), 1005.0 + 95.0 / 3)
        # The last workload gets all that is left; past the end, nothing.
        self.assertEqual(share_deadline(1050.0, 1100.0, 1), 1100.0)
        self.assertEqual(share_deadline(1200.0, 1100.0, 3), 1100.0)

    def test_no_budget_no_deadline(self):
        self.assertEqual(share_deadline(1000.0, 0.0, 4), 0.0)


class ReadRequests(unittest.TestCase):
    def test_reads_and_names_bad_lines(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.jsonl")
            with open(path, "w") as f:
                f.write(json.dumps({"id": "a", "context_tokens": [1], "continuation_tokens": [2], "group": "g"}) + "\n\n")
                f.write(json.dumps({"id": "b", "context_tokens": [1], "continuation_tokens": []}) + "\n")
            with self.assertRaisesRegex(ValueError, r"r\.jsonl:3"):
                read_requests(path)
            with open(path, "w") as f:
                f.write(json.dumps({"id": "a", "context_tokens": [1], "continuation_tokens": [2]}) + "\n")
            self.assertEqual(read_requests(path), [{"id": "a", "ctx": [1], "cont": [2], "group": None}])


@unittest.skipUnless(numpy is not None, "numpy is not installed")
class ScoreRows(unittest.TestCase):
    def test_matches_a_direct_log_softmax(self):
        import math
        rng = numpy.random.default_rng(3)
        logits = (rng.standard_normal((5, 300)) * 4).astype(numpy.float32)
        idx = numpy.array([4, 0, 0, 2, 300 % 5] * 60, dtype=numpy.int64)  # repeats, over 256 rows
        tgt = rng.integers(0, 300, len(idx))
        tgt[1] = int(logits[0].argmax())
        lp, top = score_rows(logits, idx, tgt, threads=3)
        for k in range(len(idx)):
            row = [float(v) for v in logits[idx[k]]]
            m = max(row)
            want = row[tgt[k]] - m - math.log(sum(math.exp(v - m) for v in row))
            self.assertAlmostEqual(lp[k], want, delta=1e-5)
            self.assertEqual(bool(top[k]), row[tgt[k]] == m)
        self.assertTrue(top[1])


if __name__ == "__main__":
    unittest.main()
