# Entry points (README.md "Quick start"). Every target first runs scripts/setup.sh, which installs
# missing Debian packages and (re)builds in $(BUILD_DIR).
BUILD_DIR ?= build
# Seconds per ctest entry.
CTEST_TIMEOUT ?= 900
# `make sanitize`: clang + ASan/UBSan build (and the libFuzzer targets) in its own directory.
SANITIZE_BUILD_DIR ?= build-sanitize

.PHONY: all setup demo test bench sanitize clean

all: setup

setup:
	LEPUS_BUILD_DIR=$(BUILD_DIR) bash scripts/setup.sh

demo: setup
	./$(BUILD_DIR)/cli/lepus demo --outdir $(BUILD_DIR)/demo

test: setup
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2 --timeout $(CTEST_TIMEOUT)

# All benchmark executables (Release, Google Benchmark): likelihood/Hessian/fit, event
# generation, and generation + selection + histogramming of the W-mass producer; then the engine
# suite `lepus bench` against the machine's measured limits (docs/performance.md, "Engine").
bench: setup
	./$(BUILD_DIR)/benchmarks/lepus_bench_likelihood
	./$(BUILD_DIR)/benchmarks/lepus_bench_generator
	./$(BUILD_DIR)/benchmarks/lepus_bench_produce
	./$(BUILD_DIR)/benchmarks/lepus_bench_histfactory
	./$(BUILD_DIR)/cli/lepus bench --suite all --threads 1,2 --csv $(BUILD_DIR)/bench.csv --markdown $(BUILD_DIR)/bench.md

# Not part of `make test`/CI: installs clang and its sanitizer runtimes, builds everything with
# AddressSanitizer + UndefinedBehaviorSanitizer in $(SANITIZE_BUILD_DIR), runs the whole ctest
# suite there, then each fuzz target of tests/fuzz for 100000 inputs (scripts/sanitize.sh;
# docs/reliability.md). Takes one to two hours on 2 cores: the build, ctest, ~40 min of fuzzing.
sanitize:
	LEPUS_SANITIZE=1 LEPUS_BUILD_DIR=$(SANITIZE_BUILD_DIR) bash scripts/setup.sh
	bash scripts/sanitize.sh $(SANITIZE_BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(SANITIZE_BUILD_DIR)
