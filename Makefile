# mproc — the two commands of the quick start are `make demo` and
# `make check`. Both install missing Debian packages first (tools/deps.sh).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2
CMAKE_ARGS ?=

.PHONY: all deps build demo check asan-check bench format clean

all: build

deps:
	@sh tools/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	@bash examples/run_all.sh $(BUILD)

check: build
	@cd $(BUILD) && ctest --output-on-failure

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
asan-check: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	  -DMPROC_SANITIZE=address,undefined >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure

# Benchmarks: mproc vs Python's multiprocessing vs the raw floor, one run.
# BENCH_QUICK=1 shortens every row; BENCH_ONLY=prefix selects rows.
bench: build
	@sh tools/deps.sh bench
	@cmake -S . -B $(BUILD) >/dev/null && cmake --build $(BUILD) -j$(JOBS)
	@python3 bench/run.py $(BUILD)

format:
	@clang-format -i include/*.h include/mproc/*.h src/*.c src/internal/*.h \
	  tests/*.c tests/*.h examples/*.c bench/*.c bench/*.h tools/*.c

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
