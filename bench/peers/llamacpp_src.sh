#!/usr/bin/env bash
# Trims the llama-cpp-python source distribution (76 MB, over the GPU
# tool's 64 MiB carry limit: a git pack, vocabulary GGUFs, docs) to what
# bench/run_gpu.sh needs for peer (e): the llama_cpp Python package and the
# sources of libllama and ggml (CPU and CUDA backends).
#
#   pip download --no-binary :all: --no-deps llama-cpp-python==0.3.36 -d .cache/sdist
#   bash bench/peers/llamacpp_src.sh .cache/sdist/llama_cpp_python-0.3.36.tar.gz .cache/sdist/llamacpp-trimmed.tar.gz
#
# then carry .cache/sdist and run with
#   BENCH_LLAMACPP=1 BENCH_LLAMACPP_SRC=.cache/sdist/llamacpp-trimmed.tar.gz bash bench/run_gpu.sh
set -euo pipefail
src="${1:?usage: llamacpp_src.sh SDIST.tar.gz OUT.tar.gz}"
out="${2:?usage: llamacpp_src.sh SDIST.tar.gz OUT.tar.gz}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tar xzf "$src" -C "$tmp"
top="$(ls "$tmp")"
lc="$tmp/$top/vendor/llama.cpp"
rm -rf "$tmp/$top/.git" "$lc/.git" "$lc/models" "$lc/docs" "$lc/examples" "$lc/tests" "$lc/tools" \
  "$lc/gguf-py" "$lc/media" "$lc/scripts" "$lc/grammars" "$lc/prompts" "$lc/benches"
# Keep the CPU and CUDA backends (and the ggml sources they share).
for d in "$lc"/ggml/src/ggml-*/; do
  case "$(basename "$d")" in ggml-cpu | ggml-cuda) ;; *) rm -rf "$d" ;; esac
done
tar czf "$out" -C "$tmp" "$top"
ls -la "$out"
