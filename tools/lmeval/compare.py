"""Helpers of tools/lmeval/run.sh (standard library only).

  compare.py requests DATA.jsonl
      writes the task's items as `lmscore score` request lines: one per
      choice, the context and " " + choice (lm-eval's target_delimiter), the
      question as the group, with its label.
  compare.py compare OUT_DIR RESULTS.jsonl SUMMARY.json METRICS.txt
      compares lm-eval's accuracy and per-choice log-likelihoods (from its
      --log_samples output) with `lmscore score`'s; exits 1 on a difference.
"""

import glob
import json
import os
import sys


def requests(data):
    with open(data) as f:
        for line in f:
            doc = json.loads(line)
            for k, choice in enumerate(doc["choices"]):
                print(json.dumps({"id": f"{doc['id']}/{k}", "context": doc["context"], "continuation": " " + choice,
                                  "group": doc["id"], "label": doc["label"], "choice": k}))


def compare(out_dir, results_path, summary_path, metrics_path):
    results_file = sorted(glob.glob(os.path.join(out_dir, "**", "results_*.json"), recursive=True))[-1]
    samples_file = sorted(glob.glob(os.path.join(out_dir, "**", "samples_lmscore_mc_*.jsonl"), recursive=True))[-1]
    with open(results_file) as f:
        lm = json.load(f)
    lm_acc = lm["results"]["lmscore_mc"]["acc,none"]
    lm_acc_norm = lm["results"]["lmscore_mc"]["acc_norm,none"]
    version = lm.get("lm_eval_version") or lm.get("config", {}).get("lm_eval_version", "?")

    ours = {}
    with open(results_path) as f:
        for line in f:
            r = json.loads(line)
            ours[r["id"]] = r
    with open(summary_path) as f:
        summary = json.load(f)
    mc = summary["multiple_choice"]

    n = diffs = 0
    worst = 0.0
    with open(samples_file) as f:
        for line in f:
            s = json.loads(line)
            doc_id = s["doc"]["id"]
            for k, resp in enumerate(s["resps"]):
                # --log_samples writes the (loglikelihood, is_greedy)
                # pair as strings: repr of the float, "True"/"False".
                ll, greedy = float(resp[0][0]), str(resp[0][1]) == "True"
                r = ours[f"{doc_id}/{k}"]
                n += 1
                if ll != r["logprob"] or greedy != r["is_greedy"]:
                    diffs += 1
                    worst = max(worst, abs(ll - r["logprob"]))
                    if diffs <= 5:
                        print(f"  {doc_id}/{k}: lm-eval {ll!r} greedy={greedy}, lmscore score {r['logprob']!r} greedy={r['is_greedy']}")

    hit = ""
    if os.path.exists(metrics_path):
        for line in open(metrics_path):
            if line.startswith(("lmscore_cache_hit_ratio ", "lmscore_tokens_total ", "lmscore_tokens_computed_total ", "lmscore_output_cache_hits_total ")):
                hit += "  " + line
    print(f"lm-eval-harness {version} (local-completions) via lmscore serve: acc {lm_acc:.4f}, acc_norm {lm_acc_norm:.4f}")
    print(f"lmscore score:                                         acc {mc['acc']:.4f}, acc_norm {mc['acc_norm']:.4f} over {mc['groups']} questions")
    print(f"per-choice log-likelihoods: {n - diffs} of {n} identical to the bit" + (f"; largest difference {worst:g}" if diffs else ""))
    if hit:
        print("server metrics after the run:\n" + hit.rstrip())
    if lm_acc != mc["acc"] or diffs:
        print("MISMATCH")
        sys.exit(1)
    print("OK: same accuracy, same log-likelihoods")


if __name__ == "__main__":
    if sys.argv[1] == "requests":
        requests(sys.argv[2])
    elif sys.argv[1] == "compare":
        compare(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
