#!/usr/bin/env bash
# Installs a CUDA 13.0 compiler and headers from PyPI into a git-ignored
# folder, so that a machine with no GPU and no CUDA toolkit (CI) can still
# compile kernels/ and catch a kernel that no longer builds. The versions are
# pinned to 13.0, the nvcc of the GPU machines, so that what compiles here
# compiles there. Idempotent: a second run with the same versions only
# prints the nvcc path. Prints the path of nvcc as its last line.
#
# Usage: tools/cuda_pip/install.sh [dest]   (default: .cache/cuda-pip under the repo root)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${1:-$repo_root/.cache/cuda-pip}"
python="${PYTHON:-python3}"

# nvcc's front end needs crt (host headers), nvvm (cicc, libdevice) and cccl
# (libcu++/CUB headers); runtime and cublas give the headers and link stubs.
packages=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-runtime==13.0.96
  nvidia-cublas==13.0.2.14
)
stamp="$dest/.installed"
want="$(printf '%s\n' "${packages[@]}")"

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  rm -rf "$dest"
  mkdir -p "$dest"
  "$python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    --target "$dest" "${packages[@]}" >&2
  printf '%s\n' "$want" >"$stamp"
fi

# The wheels lay everything under nvidia/cu13: bin/nvcc, include/, lib/.
cuda_home="$dest/nvidia/cu13"
nvcc="$cuda_home/bin/nvcc"
if [[ ! -x "$nvcc" ]]; then
  echo "cuda_pip: $nvcc missing after install; the wheel layout changed?" >&2
  exit 1
fi
# nvcc.profile looks for libraries in lib64 and the linker for unversioned
# names; the wheels ship lib/ with .so.13 only.
ln -sfn lib "$cuda_home/lib64"
for so in cudart cublas cublasLt; do
  ln -sf "lib$so.so.13" "$cuda_home/lib/lib$so.so"
done
echo "$nvcc"
