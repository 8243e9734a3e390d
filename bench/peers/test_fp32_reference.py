"""The float32 reference (fp32_reference.py) on tiny random models on the
CPU, against a plain forward pass of each request's whole input: the
cache reuse, the cropping and the harness's truncation must not change a
score beyond float32 rounding. Needs torch and transformers; skipped
without them (bench/peers_test.go runs this directory with python3)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import model_inputs  # noqa: E402
from fp32_plan import plan_cost  # noqa: E402

try:
    import torch
    import transformers
except ImportError:
    torch = None


def tiny_models():
    torch.manual_seed(7)
    llama = transformers.LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                     max_position_embeddings=24)
    gpt2 = transformers.GPT2Config(vocab_size=97, n_positions=24, n_embd=64, n_layer=2, n_head=4)
    out = []
    for cfg in (llama, gpt2):
        cfg._attn_implementation = "eager"
        out.append(transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval())
    return out


def requests():
    """Two 3-choice questions sharing a 12-token demonstration, a lone
    request, and a question whose contexts overflow the 24-token window."""
    demo = list(range(3, 15))
    reqs = []
    for q, tail in (("q0", [20, 21]), ("q1", [22])):
        for c, cont in enumerate(([30], [31, 32], [33, 34, 35])):
            reqs.append({"ctx": demo + tail, "cont": cont, "group": q})
    reqs.append({"ctx": demo[:5], "cont": [40, 41], "group": None})
    long = [5 + (k * 7) % 80 for k in range(30)]
    reqs.append({"ctx": long, "cont": [50, 51], "group": "q3"})
    reqs.append({"ctx": long, "cont": [52], "group": "q3"})
    return reqs


@unittest.skipUnless(torch is not None, "torch and transformers are not installed")
class FP32Reference(unittest.TestCase):
    def direct(self, model, r, max_len):
        inp, n = model_inputs(r["ctx"], r["cont"], max_len)
        with torch.no_grad():
            logits = model(torch.tensor([inp])).logits[0, len(inp) - n:]
        lp = torch.log_softmax(logits.double(), dim=-1)
        return lp.gather(-1, torch.tensor(r["cont"])[:, None]).squeeze(-1).tolist()

    def test_matches_a_plain_forward_pass(self):
        from fp32_reference import score_workload
        from hf_peers import max_len_of
        reqs = requests()
        for model in tiny_models():
            max_len = max_len_of(model)
            self.assertEqual(max_len, 24)
            lps, computed, extra = score_workload(model, reqs, max_len, torch.device("cpu"), 100, 10**6, 0.0)
            self.assertEqual(extra["requests"], len(reqs))
            self.assertEqual(extra["questions"], 4)
            # q0: its 13-token prefix and rows of 1+2+3; q1's prefix is the
            # demo, in the cache: its rows alone; so is the lone request's
            # (the demo's first 4); q3's two choices are truncated
            # differently: two prefixes of 22 and 23, rows of 2 and 1.
            self.assertEqual(computed, 13 + 6 + 6 + 2 + 22 + 2 + 23 + 1)
            self.assertEqual(computed, plan_cost(reqs, max_len, 100, 10**6)[2])
            for i, r in enumerate(reqs):
                want = self.direct(model, r, max_len)
                self.assertEqual(len(lps[i]), len(r["cont"]))
                for got, w in zip(lps[i], want):
                    # Another summation order of the same fp32 sums: a few
                    # ulps of the logits' scale (|logits| < 8 here).
                    self.assertAlmostEqual(got, w, delta=2 ** -16, msg=f"{type(model).__name__} request {i}")

    def test_subset_is_the_first_questions(self):
        from fp32_reference import score_workload
        model = tiny_models()[0]
        reqs = requests()
        lps, _, extra = score_workload(model, reqs, 24, torch.device("cpu"), 2, 10**6, 0.0)
        self.assertEqual([lp is not None for lp in lps], [True] * 6 + [False] * 3)
        self.assertEqual(extra["questions"], 2)
        self.assertEqual(extra["scored_tokens"], 12)
        # No question starts once the token budget is spent: q0 alone.
        lps, computed, extra = score_workload(model, reqs, 24, torch.device("cpu"), 100, 1, 0.0)
        self.assertEqual(extra["questions"], 1)
        self.assertEqual([lp is not None for lp in lps], [True] * 3 + [False] * 6)


if __name__ == "__main__":
    unittest.main()
