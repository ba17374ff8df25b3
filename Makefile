# Thin wrapper over CMake. `make run` and `make test` install what is
# missing from Debian first (scripts/install-deps).
BUILD ?= build
JOBS  ?= $(shell nproc)
PY    := /usr/bin/python3

FUZZ_SECONDS ?= 1800

.PHONY: all deps build run test test-cluster test-venv test-asan test-valgrind fuzz-build fuzz fuzz-short fuzz-chunked fuzz-ws bench bench-ws bench-longpoll install deb check-api check-layers clean

all: build

deps:
	@sh scripts/install-deps

$(BUILD)/CMakeCache.txt: CMakeLists.txt | deps
	cmake -S . -B $(BUILD) -DSRV_PYTHON=$(PY)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/srv --app hello:app --chdir examples --bind :8080

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) fuzz-short

# Three srv hosts in network namespaces behind nginx (needs root); prints
# the per-host counts of each phase.
test-cluster: build
	SRV_BIN=$(CURDIR)/$(BUILD)/srv $(PY) -m pytest -q -s -rA -p no:cacheprovider tests/test_cluster.py

# srv as Python users install it: a fresh virtualenv, `pip install .` plus
# gevent, greenlet and the test tools from PyPI (no Debian Python packages
# visible), then the gevent-mode, WebSocket, long-polling, framework,
# concurrency and virtualenv tests against the venv's srv and pytest.
VENV ?= build-venv
VENV_PKGS := gevent greenlet flask django requests pytest gevent-websocket websocket-client
VENV_TESTS := test_gevent_mode.py test_websocket.py test_longpoll.py test_frameworks.py \
              test_concurrency.py test_venv.py test_accept.py

test-venv: deps
	rm -rf $(VENV)
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q . $(VENV_PKGS)
	$(VENV)/bin/python -c "import gevent, sys; assert gevent.__file__.startswith(sys.prefix), gevent.__file__"
	SRV_BIN=$(abspath $(VENV))/bin/srv PYTHONDONTWRITEBYTECODE=1 \
	    $(VENV)/bin/python -m pytest -q -p no:cacheprovider $(addprefix tests/,$(VENV_TESTS))

# libFuzzer over the whole request path (clang; ASan and UBSan).
fuzz-build: deps
	CC=clang cmake -S . -B build-fuzz -DSRV_PYTHON=$(PY) -DSRV_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS) --target fuzz_request fuzz_chunked fuzz_ws_frame

fuzz: fuzz-build
	mkdir -p build-fuzz/corpus
	ASAN_OPTIONS=detect_leaks=0 build-fuzz/fuzz_request -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 build-fuzz/corpus tests/fuzz/corpus

fuzz-short:
	$(MAKE) fuzz FUZZ_SECONDS=30

# libFuzzer over the chunked decoder alone (whole vs split must agree).
fuzz-chunked: fuzz-build
	mkdir -p build-fuzz/corpus_chunked
	build-fuzz/fuzz_chunked -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -print_final_stats=1 build-fuzz/corpus_chunked tests/fuzz/corpus_chunked

# libFuzzer over the WebSocket frame codec alone (prefixes must agree).
fuzz-ws: fuzz-build
	mkdir -p build-fuzz/corpus_ws
	build-fuzz/fuzz_ws_frame -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -print_final_stats=1 build-fuzz/corpus_ws

# Public CPython API only (scripts/check-private-api), and a build that
# treats every warning as an error.
check-api: deps
	sh scripts/check-private-api
	cmake -S . -B build-werror -DSRV_PYTHON=$(PY) -DCMAKE_C_FLAGS=-Werror
	cmake --build build-werror -j $(JOBS) --target srv

# The layers of docs/ARCHITECTURE.md: no cycle among the modules, and the
# layers below the request layer compile without Python.
check-layers: build
	sh scripts/check-layers $(BUILD)

test-asan: deps
	cmake -S . -B build-asan -DSRV_PYTHON=$(PY) -DSRV_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	# CPython frees little at exit, so leak detection is off; one test whose
	# point is a wall-clock bound under 32 MiB writes is too slow under ASan.
	cd build-asan && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 SRV_SANITIZED=1 \
	    PYTEST_ADDOPTS="-k 'not test_stalled_readers_do_not_block_others'" \
	    ctest --output-on-failure -j $(JOBS)

test-valgrind: deps
	cmake -S . -B build-valgrind -DSRV_PYTHON=$(PY) -DSRV_STATIC_PYTHON=OFF
	cmake --build build-valgrind -j $(JOBS) --target srv
	SRV_BIN=$(abspath build-valgrind)/srv sh tests/valgrind/run.sh

bench: build
	sh bench/hello.sh

# WebSocket echo at 1,000 connections: srv (both modes), gevent-websocket, uwsgi.
bench-ws: build
	$(PY) bench/ws_echo.py --rounds 3

# 10,000 long-polls waiting while normal requests are timed; RSS per 1,000.
bench-longpoll: build
	$(PY) bench/longpoll.py --peer

install: build
	cmake --install $(BUILD)

# Debian package: build-deb/srv_<version>_<arch>.deb (packaging/deb.cmake).
deb: deps
	cmake -S . -B build-deb -DSRV_PYTHON=$(PY) -DSRV_DEB=ON -DCMAKE_INSTALL_PREFIX=/usr
	cmake --build build-deb -j $(JOBS)
	cd build-deb && cpack -G DEB

clean:
	rm -rf $(BUILD) build-asan build-deb build-valgrind build-werror $(VENV)
