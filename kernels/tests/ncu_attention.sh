#!/usr/bin/env bash
# Nsight Compute on the tensor-core attention kernel, one launch per
# variant of attention_perf (kernels/attention_test.cu: 8 x 1024 causal
# tokens, the few-shot shared-prefix pattern and full metaicl16 and
# sysprompt steps, Llama-3.2-1B and -3.1-8B heads, one head per tile /
# heads stacked / shared-prefix groups), with
# the clocks left alone (H200.md: --clock-control none). Says where the
# kernel stalls: issue slots used, warp states, occupancy, pipe use.
#
# Usage (repo root, on the GPU machine, after device_run.sh built it):
#   bash kernels/tests/ncu_attention.sh [build dir]   [build/cuda-device]
# Output: $OUT/ncu_attention.csv (every metric, one row each) and a
# summary of the chosen metrics per launch on stdout.
set -uo pipefail
build="${1:-build/cuda-device}"
out="${OUT:-/tmp/lmscore-device}"
mkdir -p "$out"
command -v ncu >/dev/null || { echo "SKIP ncu_attention: no ncu on the PATH"; exit 0; }
timeout "${NCU_TIMEOUT:-150}" ncu --clock-control none -k regex:attention_tc_kernel \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
  --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
  --metrics "$(printf 'smsp__average_warps_issue_stalled_%s_per_issue_active.ratio,' long_scoreboard short_scoreboard \
    barrier math_pipe_throttle mio_throttle wait not_selected selected lg_throttle dispatch_stall no_instruction \
    membar imc_miss drain branch_resolving sleeping tex_throttle | sed 's/,$//')" \
  --csv --page details \
  "$build/kernels/tests/kernel_tests" --perf-only --perf-once --kernel attention > "$out/ncu_attention.csv" 2> "$out/ncu_attention.err"
echo "ncu rc=$?"
python3 - "$out/ncu_attention.csv" <<'PY'
import csv, sys
# ncu prints its own log lines before the CSV; the CSV starts at "ID".
lines = open(sys.argv[1], errors="replace").read().splitlines()
start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
if start is None:
    print("no CSV rows (see ncu_attention.err)")
    sys.exit(0)
want = ["Duration", "Compute (SM) Throughput", "Memory Throughput", "Achieved Occupancy",
        "Theoretical Occupancy", "Registers Per Thread", "Issue Slots Busy", "No Eligible",
        "Warp Cycles Per Issued Instruction", "Issued Warp Per Scheduler", "L1/TEX Hit Rate",
        "Executed Ipc Active", "Shared Memory Configuration Size", "Block Limit Registers",
        "Block Limit Shared Mem"]
launches = {}
for row in csv.DictReader(lines[start:]):
    key = (row["ID"], row.get("Grid Size", ""), row["Kernel Name"][:40])
    if row["Metric Name"] in want or "issue_stalled" in row["Metric Name"]:
        launches.setdefault(key, {})[row["Metric Name"]] = row["Metric Value"] + " " + row.get("Metric Unit", "")
for (i, grid, name), m in sorted(launches.items(), key=lambda kv: int(kv[0][0])):
    print(f"launch {i} {name} grid {grid}")
    for k in want:
        if k in m:
            print(f"    {k}: {m[k]}")
    # Stall reasons, largest first: warps stalled per issued instruction.
    stalls = sorted(((float(v.split()[0].replace(",", "") or 0), k) for k, v in m.items() if "issue_stalled" in k),
                    reverse=True)
    for v, k in stalls[:6]:
        print(f"    stall {k.split('issue_stalled_')[1].split('_per_issue')[0]}: {v:.2f}")
PY
