# carried_env.sh — sourced by the device scripts that run binaries built
# elsewhere and carried (invariance_run.sh, stack_run.sh): the CUDA library's
# path, cuBLAS on the loader path, and log/step helpers that time each stage
# and go on after a failure so one call reports everything.
# Needs $cuda (the folder holding liblmscore_cuda.so) set by the caller.
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
lib="$(realpath "$cuda/liblmscore_cuda.so")"
t0=$(date +%s)
log() { echo "[$(($(date +%s) - t0)) s] $*"; }
# step SECONDS CMD...: runs CMD under a time limit and prints its status.
step() {
  local t=$1; shift
  echo "=== $*"
  local s=$(date +%s)
  timeout "$t" "$@"
  echo "=== rc=$? in $(($(date +%s) - s)) s"
}
