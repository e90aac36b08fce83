# mproc — the two commands of the quick start are `make demo` and
# `make check`. Both install missing Debian packages first (tools/deps.sh).

BUILD      ?= build
ASAN_BUILD ?= build-asan
INJECT_BUILD ?= build-inject
FUZZ_BUILD ?= build-fuzz
TSAN_BUILD ?= build-tsan
ANALYZE_BUILD ?= build-analyze
O3_BUILD ?= build-o3
RELEASE_BUILD ?= build-release
OMPI_BUILD ?= build-openmpi
FUZZ_SECONDS ?= 30
FAULT_TRIALS ?= 30
# The fuzz targets (tests/fuzz/fuzz_<name>.c); FUZZ_TARGETS=name runs one.
FUZZ_TARGETS ?= manager_request conn_frames value_decode auth_server auth_client
JOBS       ?= 2
CMAKE_ARGS ?=

.PHONY: all deps build demo check release deb docs asan-check tsan-check analyze inject-check fault fuzz bench format clean cluster-openmpi

all: build

deps:
	@sh tools/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	@bash examples/run_all.sh $(BUILD)

check: build
	@cd $(BUILD) && ctest -j$(JOBS) --output-on-failure
	@cat $(BUILD)/python_cpython_suite.md 2>/dev/null || true

# The release library (docs/testing.md): configured with
# -DBUILD_TESTING=OFF, so without the test hooks, which nm must not find
# in libmproc.so or libmproc.a; examples, tools and benchmarks too.
release: deps
	@cmake -S . -B $(RELEASE_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF -DMPROC_TESTING=AUTO \
	  $(CMAKE_ARGS) >/dev/null
	@cmake --build $(RELEASE_BUILD) -j$(JOBS)
	@python3 tools/check_test_hooks.py --absent $(RELEASE_BUILD)/libmproc.so $(RELEASE_BUILD)/libmproc.a

# The Debian packages (docs/install.md): libmproc0, libmproc-dev,
# mproc-tools (and libmproc-cluster-dev with MPI), by CPack from the
# release build configured for /usr, into $(RELEASE_BUILD); then
# tools/test_deb.sh installs them with dpkg into a clean prefix, builds and
# runs a program against them, and runs lintian.
deb: deps
	@sh tools/deps.sh deb
	@cmake -S . -B $(RELEASE_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF -DMPROC_TESTING=AUTO \
	  -DCMAKE_INSTALL_PREFIX=/usr $(CMAKE_ARGS) >/dev/null
	@$(MAKE) --no-print-directory release
	@cd $(RELEASE_BUILD) && cpack -G DEB >cpack.log || { cat cpack.log; exit 1; }
	@sh tools/test_deb.sh $(RELEASE_BUILD) .

# The API reference (docs/Doxyfile): HTML from the public headers into
# $(BUILD)/docs/html; any Doxygen warning (an undocumented public name, a
# broken reference) fails it, the warnings in $(BUILD)/docs/warnings.log.
docs:
	@sh tools/deps.sh docs
	@mkdir -p $(BUILD)/docs
	@MPROC_VERSION=$$(sed -n 's/^#define MPROC_VERSION_STRING *"\(.*\)"/\1/p' include/mproc/base.h) \
	  MPROC_DOCS_OUT=$(BUILD)/docs doxygen docs/Doxyfile || { cat $(BUILD)/docs/warnings.log; exit 1; }
	@echo "docs: $(BUILD)/docs/html/index.html"

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer,
# two programs at a time (the exhaustion test alone).
asan-check: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	  -DMPROC_SANITIZE=address,undefined >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -j$(JOBS) --output-on-failure

# The fault suite (tests/fault) with FAULT_TRIALS trials per scenario and
# start method (thousands in all; make check runs a few hundred).
# FAULT_SCENARIO=glob and FAULT_METHOD=name narrow it, FAULT_SEED repeats a run.
fault: build
	@cd $(BUILD)/tests/fault && FAULT_TRIALS=$(FAULT_TRIALS) ./fault

# The test cases that use threads, under ThreadSanitizer (clang), in their
# own directory: tests/tsan.cmake lists the programs and the cases left
# out, each with its reason.
tsan-check: deps
	@sh tools/deps.sh tsan
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMPROC_SANITIZE=thread >/dev/null
	@cmake --build $(TSAN_BUILD) -j$(JOBS) --target tsan_tests
	@cd $(TSAN_BUILD) && ctest -L tsan -j$(JOBS) --output-on-failure

# The cluster layer's tests with Open MPI instead of MPICH (docs/cluster.md),
# in their own directory: only the cluster library and its test programs.
cluster-openmpi: deps
	@sh tools/deps.sh openmpi
	@cmake -S . -B $(OMPI_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPROC_MPI=openmpi >/dev/null
	@cmake --build $(OMPI_BUILD) -j$(JOBS) --target cluster_tests
	@cd $(OMPI_BUILD) && ctest -R '^cluster_' --output-on-failure

# gcc 12's static analyzer (-fanalyzer) over src/, in its own directory: any
# finding fails the build. False positives are silenced where they occur,
# each with a pragma and the reason. Then the library, the cluster layer
# and the Python module built as CMAKE_BUILD_TYPE=Release (-O3), whose
# warnings (errors under -Werror) differ from those of -O2.
analyze: deps
	@cmake -S . -B $(ANALYZE_BUILD) -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMPROC_ANALYZE=ON -DBUILD_TESTING=OFF -DMPROC_TESTING=ON >/dev/null
	@cmake --build $(ANALYZE_BUILD) -j$(JOBS) --target mproc_obj -- -k
	@if cmake --build $(ANALYZE_BUILD) --target help | grep -w mproc_cluster >/dev/null; then \
	  cmake --build $(ANALYZE_BUILD) -j$(JOBS) --target mproc_cluster -- -k; fi
	@cmake -S . -B $(O3_BUILD) -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(O3_BUILD) -j$(JOBS) --target mproc mproc_static -- -k
	@for t in mproc_cluster mproc_python; do \
	  if cmake --build $(O3_BUILD) --target help | grep -w $$t >/dev/null; then \
	    cmake --build $(O3_BUILD) -j$(JOBS) --target $$t -- -k || exit 1; fi; done

# Failure injection (docs/testing.md): the library built with -DMPROC_INJECT=ON
# and ASan + UBSan in its own directory; each scenario of tests/inject runs
# once per N with its Nth allocation or system call failing, for every N.
inject-check: deps
	@cmake -S . -B $(INJECT_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMPROC_INJECT=ON \
	  -DMPROC_SANITIZE=address,undefined >/dev/null
	@cmake --build $(INJECT_BUILD) -j$(JOBS) --target test_inject
	@cd $(INJECT_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest -R '^inject_' -j$(JOBS) --output-on-failure

# The libFuzzer targets (tests/fuzz), built with clang (+ ASan, UBSan) in
# their own directory, each run for FUZZ_SECONDS on its seeds
# (tests/fuzz/corpus/<name>, which stay as they are); new inputs go to
# $(FUZZ_BUILD)/corpus/<name>, a crashing input to
# $(FUZZ_BUILD)/crash-<name>-*. The corpora are also replayed by `make
# check` (the fuzz_replay_* tests).
fuzz: deps
	@sh tools/deps.sh fuzz
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMPROC_SANITIZE=address,undefined -DMPROC_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@set -e; cd $(FUZZ_BUILD); for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t; echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./tests/fuzz/fuzz_$$t \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix=crash-$$t- corpus/$$t $(CURDIR)/tests/fuzz/corpus/$$t 2>fuzz-$$t.log \
	  || { tail -n 60 fuzz-$$t.log; echo "fuzz: $$t failed (log: $(FUZZ_BUILD)/fuzz-$$t.log)"; exit 1; }; \
	  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' fuzz-$$t.log | tr '\n' ' '; echo; \
	done

# Benchmarks: mproc vs Python's multiprocessing vs the raw floor, one run,
# on the release library (make release: no test hooks), rows also in
# $(BUILD)/bench.json. BENCH_QUICK=1
# shortens every row; BENCH_ONLY=prefix selects rows. The peers' packages
# (libzmq) are installed before cmake looks for them.
bench: deps
	@sh tools/deps.sh bench
	@$(MAKE) --no-print-directory release
	@python3 bench/run.py $(RELEASE_BUILD) $(BUILD)/bench.json

format:
	@clang-format -i include/*.h include/mproc/*.h src/*/*.c src/*/*.h \
	  tests/*.[ch] tests/*/*.[ch] \
	  examples/*.c bench/*.c bench/*.h tools/*.c

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(INJECT_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD) $(ANALYZE_BUILD) $(O3_BUILD) \
	  $(RELEASE_BUILD) $(OMPI_BUILD)
