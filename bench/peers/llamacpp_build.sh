#!/usr/bin/env bash
# Builds libllama with CUDA (sm_90 only) from the llama-cpp-python source
# distribution, for peer (e) of `make bench`. A second call with the same
# folder rebuilds nothing, so the build can run ahead of the bench (in the
# background of an earlier step on the same machine) and the bench reuse it.
#
#   bash bench/peers/llamacpp_build.sh SRC.tar.gz DIR
#
# DIR gets the sources (DIR/vendor/llama.cpp), the build (DIR/build, the
# libraries in DIR/build/bin) and the log (DIR/build.log). Exit status 0 when
# the libraries are there.
set -uo pipefail
src="${1:?usage: llamacpp_build.sh SRC.tar.gz DIR}"
dir="${2:?usage: llamacpp_build.sh SRC.tar.gz DIR}"
mkdir -p "$dir"
# Unpacked once: unpacking again would touch every source and rebuild all.
if [[ ! -f "$dir/vendor/llama.cpp/CMakeLists.txt" ]]; then
  tar xzf "$src" -C "$dir" --strip-components=1 || exit 1
fi
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
{
  cmake -S "$dir/vendor/llama.cpp" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90-real -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF &&
    cmake --build "$dir/build" -j "$(nproc)" --target llama
} >>"$dir/build.log" 2>&1
rc=$?
((rc == 0)) || tail -20 "$dir/build.log"
exit $rc
