#!/usr/bin/env bash
# `make bench`: lmscore against its peers on one GPU, in one go.
#
# On the GPU machine, from the repository root:
#   bash bench/run_gpu.sh
# Results: $OUT (default bench/results/tmp) gets <card>-<date>.md and .json
# (the table), .png (the plot, drawn by benchgpu report), raw.tar.gz
# (every run's JSON lines, the workloads' meta and the log) and run.log.
# Copy the first three into bench/results/ to commit them.
#
# What it does, in order (each step logs its time):
#   1. lmscore and benchgpu: built with go if the machine has it, else the
#      binaries in $BENCH_BIN (.cache/devbin) built elsewhere;
#   2. the CUDA core: $LMSCORE_CUDA_LIB if set and it loads, else built here
#      with CMake for sm_90 only (`make cuda` builds sm_80 + PTX as well; not
#      needed here);
#   3. per model and weight type (BENCH_TYPES), random weights and the
#      workloads for its vocabulary (`benchgpu gen --size $BENCH_SIZE`).
#      bf16 with BENCH_HF=1: transformers' initialisation from a config and
#      a seed (bench/peers/hf_build.py), `lmscore convert hf --type bf16`,
#      since the transformers peers read that folder. Otherwise, and for
#      every quantized type, `benchgpu random` writes the GGUF itself
#      (bench/shapes.go: parallel draws; q4_k_m is llama-quantize's Q4_K_M
#      mix of random K-quant blocks), which lmscore and llama.cpp both read;
#   4. the card's bf16 GEMM rate (bench/peers/gemm_rate.py);
#   5. lmscore with and without its cache on every workload (benchgpu lmscore);
#   6. the transformers peers (bench/peers/hf_peers.py), workloads in the
#      outer loop so that a run cut short still has each model's first ones;
#   7. llama.cpp, only with BENCH_LLAMACPP=1: it compiles llama.cpp with CUDA
#      from the llama-cpp-python source distribution (3-5 minutes on 16
#      cores), in the background during step 3 and waited for before step 4,
#      so that no timing runs beside the compiler;
#   8. the size test, only with BENCH_SIZE_TEST=1: a $BENCH_SIZE_SHAPE
#      Q4_K_M model (random weights, ~40 GB for llama-3.1-70b) made in
#      memory by `benchgpu lmscore --shape` (or written to disk first with
#      BENCH_SIZE_FILE=1), loaded on the GPU and scored on metaicl0, within
#      its own budget BENCH_SIZE_BUDGET_S from the step's start;
#   9. the fp32 reference of the fidelity table (bench/peers/fp32_reference.py,
#      issue 18), with the transformers peers, after every timed run: each
#      bf16 model's HF folder in float32 with TF32 off, on each workload's
#      first questions, within its own budget BENCH_FIDELITY_BUDGET_S, cut
#      to what BENCH_END_S leaves (step 9 is the one step cut for it);
#  10. the report (benchgpu report) and the plot.
#
# Settings (environment):
#   BENCH_SIZE      tiny | default | issue (bench/gpu_suite.go)      [default]
#   BENCH_BUDGET_S  seconds after which no new timed run starts; a run in
#                   progress may go on 60 s more, then the report is written [900;
#                   470 fits one 10-minute device-tool call, with fewer models]
#   BENCH_MODELS    comma-separated shapes of bench/shapes.go: llama-3.2-1b,
#                   gpt2-large, llama-3.1-8b, qwen3-8b, gemma-2-9b; "none"
#                   for the size test alone  [llama-3.1-8b,llama-3.2-1b,gpt2-large:
#                   the 8B shape is the headline, so it runs first]
#   BENCH_TYPES     comma-separated weight types: bf16, q4_k_m; a model's
#                   variant is named NAME (bf16) or NAME-q4_k_m   [bf16]
#   BENCH_WORKLOADS comma-separated subset of the suite's workloads [all]
#   BENCH_HF_PEERS  the transformers peers to run: nocache,catwalk  [both]
#   BENCH_SHORT_S   a timed run shorter than this is repeated to 3   [2]
#   BENCH_BACKEND   cuda | cpu (cpu with BENCH_TINY=1 checks the pipeline on
#                   a machine without a GPU)                         [cuda]
#   BENCH_TINY=1    2-layer, 64-wide models with the real vocabularies
#   BENCH_HF=0      skip the transformers peers (a run for llama.cpp alone);
#                   bf16 models are then written by benchgpu random, and
#                   python3 needs no torch (no GEMM rate without it)
#   BENCH_LLAMACPP=1 also build and run llama.cpp; BENCH_LLAMACPP_SRC is the
#                   llama-cpp-python sdist (or a trimmed copy of it, see
#                   bench/peers/llamacpp_src.sh)   [.cache/sdist/llama_cpp_python-0.3.36.tar.gz]
#   BENCH_FIDELITY=0 skip step 9 (on by default with BENCH_HF=1);
#                   BENCH_FIDELITY_QUESTIONS [128] and BENCH_FIDELITY_TOKENS
#                   [24576]: per workload, the reference scores at most that
#                   many questions and starts none once it has computed that
#                   many tokens; BENCH_FIDELITY_BUDGET_S [150]: no question
#                   starts after that many seconds, the fp32 load included
#   BENCH_END_S     seconds from the start by which the report must be
#                   written, 0 for no limit [570: one device call is 600 s,
#                   and a call cut off writes no report]: step 9's budget is
#                   cut to what is left of it less 30 s for the report, and
#                   step 9 is skipped (with a note) when under 60 s are left,
#                   too few to load an 8B model in fp32 and score with it
#   BENCH_SIZE_TEST=1  also run step 8; BENCH_SIZE_SHAPE [llama-3.1-70b],
#                   BENCH_SIZE_BUDGET_S [300], BENCH_SIZE_FILE=1 (through a
#                   GGUF file on disk, deleted after), BENCH_SIZE_KV [16GiB]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

out="${OUT:-bench/results/tmp}"
size="${BENCH_SIZE:-default}"
budget="${BENCH_BUDGET_S:-900}"
models="${BENCH_MODELS:-llama-3.1-8b,llama-3.2-1b,gpt2-large}"
[[ "$models" == none ]] && models=""
types="${BENCH_TYPES:-bf16}"
hf="${BENCH_HF:-1}"
sizetest="${BENCH_SIZE_TEST:-0}"
sizeshape="${BENCH_SIZE_SHAPE:-llama-3.1-70b}"
sizename="$sizeshape-q4_k_m"
short="${BENCH_SHORT_S:-2}"
backend="${BENCH_BACKEND:-cuda}"
work="${BENCH_WORK:-.cache/benchgpu}"
bin="${BENCH_BIN:-.cache/devbin}"
py="${PYTHON:-python3}"
t0=$(date +%s)
deadline=$((t0 + budget))
mkdir -p "$out" "$work" "$bin"
rm -f "$work"/*/lmscore.jsonl "$work"/*/hf.jsonl "$work"/*/llamacpp.jsonl "$work"/*/fp32.jsonl "$work/smoke-ok"
exec > >(tee "$work/run.log") 2>&1

join() { local IFS=,; echo "$*"; }
# variant MODEL TYPE: the report's name of a model's weights of one type.
variant() { if [[ "$2" == bf16 ]]; then echo "$1"; else echo "$1-$2"; fi; }
variants=()
for m in ${models//,/ }; do
  for t in ${types//,/ }; do variants+=("$(variant "$m" "$t")"); done
done
reported=("${variants[@]}")
[[ "$sizetest" == 1 ]] && reported+=("$sizename")
log() { echo "[$(($(date +%s) - t0)) s] $*"; }
die() {
  log "FAILED: $*"
  [[ -n "${lcpid:-}" ]] && kill -- "-$lcpid" 2>/dev/null
  finish
  exit 1
}
notes=()

# finish writes the report from whatever ran and packs the raw results.
finish() {
  local card slug date runs=()
  card="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
  [[ -n "$card" ]] || card="cpu"
  slug="$(echo "$card" | tr 'A-Z' 'a-z' | sed -e 's/^nvidia //' -e 's/[^a-z0-9]\+/-/g' -e 's/-$//')"
  date="$(date -u +%Y-%m-%d)"
  for m in "${reported[@]}"; do
    for f in lmscore hf llamacpp fp32; do
      [[ -f "$work/$m/$f.jsonl" ]] && runs+=("$work/$m/$f.jsonl")
    done
  done
  local prefix="$out/$slug-$date"
  if [[ -x "$bin/benchgpu" ]]; then
    local noteargs=()
    for n in "${notes[@]}"; do noteargs+=(--note "$n"); done
    local have=()
    for m in "${reported[@]}"; do [[ -f "$work/$m/meta.json" ]] && have+=("$m"); done
    if ((${#have[@]})); then
      local gemm=()
      [[ -f "$work/gemm.json" ]] && gemm=(--gemm "$work/gemm.json")
      "$bin/benchgpu" report --work "$work" --models "$(join "${have[@]}")" "${gemm[@]}" \
        --runs "$(join "${runs[@]}")" --card "$card" --date "$date" --out "$prefix" "${noteargs[@]}" &&
        log "report: $prefix.md" && cat "$prefix.md"
      [[ -f "$prefix.png" ]] && log "plot: $prefix.png"
    fi
  fi
  tar czf "$out/raw.tar.gz" -C "$work" $(cd "$work" && ls -d gemm.json run.log */meta.json */*.jsonl */build.json 2>/dev/null | grep -v -E '/(metaicl|hellaswag|sysprompt)[^/]*\.jsonl$') 2>/dev/null
  cp "$work/run.log" "$out/run.log" 2>/dev/null
}

log "bench: size $size, models ${models:-none}, types $types, backend $backend, budget ${budget} s, size test $sizetest"
endby="${BENCH_END_S:-570}"
if [[ "$hf" == 1 && "${BENCH_FIDELITY:-1}" == 1 ]] && ((endby > 0 && budget + 60 + 30 + 60 > endby)); then
  log "timed runs that use all of BENCH_BUDGET_S=$budget (and the 60 s a run may go on) would leave step 9 under 60 s of BENCH_END_S=$endby: it is then skipped"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
torch=1
if ! $py -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'; then
  [[ "$hf" == 1 ]] && die "python3 lacks torch or transformers"
  torch=0
fi

# 1. Go binaries.
if command -v go >/dev/null 2>&1; then
  go build -o "$bin/lmscore" ./cmd/lmscore && go build -o "$bin/benchgpu" ./bench/cmd/benchgpu || die "go build"
fi
[[ -x "$bin/lmscore" && -x "$bin/benchgpu" ]] || die "no lmscore/benchgpu in $bin (build them with go and carry them)"

# 2. The CUDA core.
build_cuda() {
  log "building the CUDA core for sm_90"
  command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
  cmake -S . -B build/cuda-bench -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90-real \
    -DLMSCORE_CUDA_TESTS=OFF >"$work/cmake.log" 2>&1 &&
    cmake --build build/cuda-bench -j "$(nproc)" --target lmscore_cuda >>"$work/cmake.log" 2>&1 ||
    { tail -20 "$work/cmake.log"; die "CUDA core build"; }
  export LMSCORE_CUDA_LIB="$(realpath build/cuda-bench/liblmscore_cuda.so)"
  log "CUDA core: $LMSCORE_CUDA_LIB"
}
built_here=0
tiny=()
wl=()
[[ -n "${BENCH_WORKLOADS:-}" ]] && wl=(--workloads "$BENCH_WORKLOADS")
hfdev=(--device cpu)
peerflags=(--device cpu --batch-tokens 2048)
if [[ "${BENCH_TINY:-0}" == 1 ]]; then tiny=(--tiny); fi
if [[ "$backend" == cpu ]]; then
  notes+=("CPU check (BENCH_BACKEND=cpu): no device memory is measured (benchgpu lmscore runs with --gpu-memory=false and the transformers peers read torch.cuda only on a GPU), so the peak GPU mem columns are empty, and so is the by-type table's other (peak less weights and KV); the floor's rate is gemm_rate.py's fp32 512x512x512 product on the CPU, so wall / floor only checks the column's arithmetic")
fi
if [[ "$backend" == cuda ]]; then
  # cuBLAS: the toolkit's, or the one PyTorch's wheels brought.
  nv="$($py -c 'import nvidia, os; print(":".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p) if os.path.isdir(os.path.join(p, d, "lib"))))' 2>/dev/null)"
  export LD_LIBRARY_PATH="/usr/local/cuda/lib64${nv:+:$nv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # Built from this tree unless LMSCORE_CUDA_LIB names one explicitly: a
  # library carried from an earlier build once made a whole run measure a
  # stale core (kernels/README.md, batch invariance).
  lib="${LMSCORE_CUDA_LIB:-}"
  if [[ -n "$lib" && -f "$lib" ]] && ! ldd "$lib" | grep "not found"; then
    export LMSCORE_CUDA_LIB="$(realpath "$lib")"
    log "CUDA core: $LMSCORE_CUDA_LIB (carried; checked on the first model)"
  else
    build_cuda
    built_here=1
  fi
  hfdev=(--device cuda)
  peerflags=(--device cuda)
fi

# The llama.cpp build overlaps step 3 (models and workloads, not timed); it
# runs in its own process group so that a failure can stop all of it.
lc="$work/llamacpp"
lcsrc="${BENCH_LLAMACPP_SRC:-.cache/sdist/llama_cpp_python-0.3.36.tar.gz}"
lcpid=""
if [[ "${BENCH_LLAMACPP:-0}" == 1 && -f "$lcsrc" ]]; then
  log "building llama.cpp with CUDA in the background (a no-op when an earlier call built it in $lc)"
  setsid bash bench/peers/llamacpp_build.sh "$lcsrc" "$lc" >"$work/llamacpp-build.out" 2>&1 &
  lcpid=$!
  lcrc=1
fi

# 3. Models and workloads.
for m in ${models//,/ }; do
  for t in ${types//,/ }; do
    v="$(variant "$m" "$t")"
    if [[ "$t" == bf16 && "$hf" == 1 ]]; then
      $py bench/peers/hf_build.py --model "$m" --out "$work/hf-$m" "${tiny[@]}" "${hfdev[@]}" || die "building $m"
      "$bin/lmscore" convert hf --dir "$work/hf-$m" --out "$work/$v.gguf" --type bf16 || die "converting $m"
    else
      "$bin/benchgpu" random --shape "$m" --type "$t" "${tiny[@]}" --out "$work/$v.gguf" || die "writing $v"
    fi
    "$bin/benchgpu" gen --model "$work/$v.gguf" --name "$v" --type "$t" --size "$size" "${wl[@]}" --out "$work/$v" ||
      die "workloads for $v"
    log "$v: built, workloads written"
    # A carried CUDA core that does not run here (another toolkit, another
    # card) is replaced by one built here, once, before any timing.
    # The results go to a file of the work folder, never /dev/null: score
    # writes a file by renaming a temporary one over it, which as root
    # replaces the device node with a regular file. --force drops the
    # journal an earlier call killed mid-smoke may have left.
    if [[ "$backend" == cuda && ! -f "$work/smoke-ok" ]]; then
      w0="$(ls "$work/$v"/*.jsonl | head -1)"
      head -2 "$w0" >"$work/smoke.jsonl"
      smoke=("$bin/lmscore" score --model "$work/$v.gguf" --backend cuda --kv-memory 256MiB
        --in "$work/smoke.jsonl" --out "$work/smoke-out.jsonl" --force)
      if ! "${smoke[@]}" 2>"$work/smoke.log"; then
        cat "$work/smoke.log"
        ((built_here)) && die "the CUDA core built here does not run"
        build_cuda
        built_here=1
        "${smoke[@]}" || die "the CUDA core does not run"
      fi
      touch "$work/smoke-ok"
      log "CUDA core runs"
    fi
  done
done

# Nothing is timed while llama.cpp compiles: its 16 compiler processes would
# slow the host side of every engine.
if [[ -n "$lcpid" ]]; then
  log "waiting for the llama.cpp build before any timing"
  wait "$lcpid"
  lcrc=$?
  lcpid=""
  cat "$work/llamacpp-build.out"
  log "llama.cpp build finished (status $lcrc)"
fi

# 4. The GEMM rate.
if ((torch)); then
  $py bench/peers/gemm_rate.py --out "$work/gemm.json" || notes+=("the GEMM rate was not measured")
  log "GEMM rate measured"
else
  rm -f "$work/gemm.json"
  notes+=("no GEMM rate, so no floor: python3 has no torch")
fi

# 5. lmscore, every variant.
for m in "${variants[@]}"; do
  lmflags=(--backend "$backend")
  [[ "$backend" == cpu ]] && lmflags+=(--gpu-memory=false)
  "$bin/benchgpu" lmscore --model "$work/$m.gguf" --name "$m" --dir "$work/$m" --out "$work/$m/lmscore.jsonl" \
    --short "${short}s" --deadline "$deadline" "${lmflags[@]}" || notes+=("lmscore failed on $m: see run.log")
  log "$m: lmscore done"
done

# 6. The transformers peers, both models in one process.
# They read the bf16 variants only: the Hugging Face folders.
spec=""
for m in ${models//,/ }; do [[ ",$types," == *,bf16,* ]] && spec+="${spec:+,}$m=$work/hf-$m"; done
if [[ "$hf" == 1 && -n "$spec" ]]; then
  $py bench/peers/hf_peers.py --models "$spec" --work "$work" --peers "${BENCH_HF_PEERS:-nocache,catwalk}" \
    --short "$short" --deadline "$deadline" "${peerflags[@]}" || notes+=("the transformers peers failed: see run.log")
  log "transformers peers done"
else
  notes+=("(a), (b) the transformers peers were not run in this run (BENCH_HF=0)")
fi

# 7. llama.cpp (opt-in).
if [[ "${BENCH_LLAMACPP:-0}" == 1 ]]; then
  if [[ -f "$lcsrc" ]]; then
    if [[ $lcrc -eq 0 ]]; then
      log "llama.cpp built"
      for m in "${variants[@]}"; do
        LLAMA_CPP_LIB_PATH="$(realpath "$lc/build/bin")" PYTHONPATH="$lc${PYTHONPATH:+:$PYTHONPATH}" \
          $py -X faulthandler bench/peers/llamacpp_peer.py --model "$m=$work/$m.gguf" --work "$work" --short "$short" \
          --deadline "$deadline" || notes+=("llama.cpp failed on $m: see run.log")
      done
    else
      notes+=("(e) llama.cpp: the CUDA build failed; see $lc/build.log")
    fi
  else
    notes+=("(e) llama.cpp: no source distribution at $lcsrc")
  fi
else
  notes+=("(e) llama.cpp was not run: its CUDA build from the llama-cpp-python sdist takes minutes of device time this run did not have; BENCH_LLAMACPP=1 runs it (bench/peers/llamacpp_peer.py, checked on the CPU build)")
fi

# 8. The size test (opt-in), with its own budget from here.
if [[ "$sizetest" == 1 ]]; then
  sdeadline=$(($(date +%s) + ${BENCH_SIZE_BUDGET_S:-300}))
  src=(--shape "$sizeshape" --type q4_k_m "${tiny[@]}")
  "$bin/benchgpu" gen "${src[@]}" --name "$sizename" --size "$size" --workloads metaicl0 --out "$work/$sizename" ||
    die "workloads for $sizename"
  if [[ "${BENCH_SIZE_FILE:-0}" == 1 ]]; then
    "$bin/benchgpu" random "${src[@]}" --out "$work/$sizename.gguf" || die "writing $sizename"
    log "$sizename: written to disk"
    src=(--model "$work/$sizename.gguf" --type q4_k_m)
  fi
  lmflags=(--backend "$backend")
  [[ "$backend" == cpu ]] && lmflags+=(--gpu-memory=false)
  "$bin/benchgpu" lmscore "${src[@]}" --name "$sizename" --dir "$work/$sizename" --out "$work/$sizename/lmscore.jsonl" \
    --kv-memory "${BENCH_SIZE_KV:-16GiB}" --short "${short}s" --deadline "$sdeadline" "${lmflags[@]}" ||
    notes+=("the size test failed on $sizename: see run.log")
  rm -f "$work/$sizename.gguf"
  log "$sizename: size test done"
fi

# 9. The fp32 reference (untimed, so after every timed run), for the bf16
# models the transformers peers read.
# It comes last, so it is the step cut short when the run nears BENCH_END_S.
if [[ "$hf" == 1 && -n "$spec" && "${BENCH_FIDELITY:-1}" == 1 ]]; then
  fbudget="${BENCH_FIDELITY_BUDGET_S:-150}"
  if ((endby > 0)); then
    left=$((t0 + endby - 30 - $(date +%s)))
    ((left < fbudget)) && fbudget=$left
  fi
  if ((fbudget < 60)); then
    ((fbudget < 0)) && fbudget=0
    notes+=("no fidelity table: the fp32 reference (step 9) was skipped, ${fbudget} s being left of BENCH_END_S=${endby} s, too few to load the models in fp32")
    log "fp32 reference skipped: ${fbudget} s left"
  else
    $py bench/peers/fp32_reference.py --models "$spec" --work "$work" "${wl[@]}" "${hfdev[@]}" \
      --questions "${BENCH_FIDELITY_QUESTIONS:-128}" --tokens "${BENCH_FIDELITY_TOKENS:-24576}" \
      --budget-s "$fbudget" || notes+=("the fp32 reference failed: see run.log")
    log "fp32 reference done (budget ${fbudget} s)"
  fi
elif [[ "$hf" == 1 && -n "$spec" ]]; then
  notes+=("no fidelity table: the fp32 reference was not run (BENCH_FIDELITY=0)")
fi

log "writing the report"
finish
log "done"
