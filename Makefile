# mproc — the two commands of the quick start are `make demo` and
# `make check`. Both install missing Debian packages first (tools/deps.sh).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
FAULT_TRIALS ?= 30
JOBS       ?= 2
CMAKE_ARGS ?=

.PHONY: all deps build demo check asan-check fault fuzz bench format clean

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

# The fault suite (tests/fault) with FAULT_TRIALS trials per scenario and
# start method (thousands in all; make check runs a few hundred).
# FAULT_SCENARIO=glob and FAULT_METHOD=name narrow it, FAULT_SEED repeats a run.
fault: build
	@cd $(BUILD)/tests/fault && FAULT_TRIALS=$(FAULT_TRIALS) ./fault

# The libFuzzer target of the manager's frame + request decoder, built with
# clang (+ ASan, UBSan) in its own directory and run for FUZZ_SECONDS; new
# inputs go to $(FUZZ_BUILD)/corpus, the seeds in tests/fuzz/corpus stay.
fuzz: deps
	@sh tools/deps.sh fuzz
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMPROC_SANITIZE=address,undefined -DMPROC_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_manager_request
	@mkdir -p $(FUZZ_BUILD)/corpus
	@cd $(FUZZ_BUILD) && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ./tests/fuzz/fuzz_manager_request -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	  -max_len=65536 -print_final_stats=1 corpus $(CURDIR)/tests/fuzz/corpus

# Benchmarks: mproc vs Python's multiprocessing vs the raw floor, one run.
# BENCH_QUICK=1 shortens every row; BENCH_ONLY=prefix selects rows. The
# peers' packages (libzmq) are installed before cmake looks for them.
bench: deps
	@sh tools/deps.sh bench
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@python3 bench/run.py $(BUILD)

format:
	@clang-format -i include/*.h include/mproc/*.h src/*.c src/internal/*.h \
	  tests/*.c tests/*.h tests/fuzz/*.c tests/fault/*.c tests/fault/*.h examples/*.c bench/*.c bench/*.h tools/*.c

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
