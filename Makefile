# One-command set-up: `make demo` and `make test` install any missing Debian
# package, configure, build and run. See README.md.

BUILD     ?= build
ASAN_DIR  ?= build-asan
JOBS      ?= $(shell nproc)
CMAKE_ARGS ?=
PACKAGES  := cmake g++ make pkg-config libcaf-dev libprotobuf-dev protobuf-compiler \
             librocksdb-dev libfmt-dev doctest-dev libcli11-dev nlohmann-json3-dev
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build demo test test-asan bench clean

all: build

deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/bin/dref_demo
	$(BUILD)/bin/dref_durable_demo

# Unit tests run in parallel; distributed and chaos tests (real worker
# processes on two cores) one at a time. Then all again under ASan+UBSan.
test: build
	cd $(BUILD) && ctest --output-on-failure -L unit -j $(JOBS)
	@echo "deterministic protocol tests (orders explored):"
	$(BUILD)/bin/refs_test --source-file='*ref_protocol_test.cpp' --no-version
	cd $(BUILD) && ctest --output-on-failure -L distributed -j 1
	cd $(BUILD) && ctest --output-on-failure -L chaos -j 1
	$(MAKE) test-asan

test-asan: deps
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DDREF_SANITIZE=ON \
	  -DDREF_ENABLE_SAMPLES=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_DIR) -j $(JOBS) --target refs_test store_test actors_unit_test runtime_test chaos_test dref \
	  node_store_unit_test node_store_distributed_test
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ctest --output-on-failure -L unit -j $(JOBS)
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ctest --output-on-failure -L distributed -j 1
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ctest --output-on-failure -L chaos -j 1

bench: build
	$(BUILD)/bin/dref bench --json $(BUILD)/bench.json

clean:
	rm -rf $(BUILD) $(ASAN_DIR)
