# Thin wrapper over CMake. `make run` and `make test` install what is
# missing from Debian first (scripts/install-deps).
BUILD ?= build
JOBS  ?= $(shell nproc)
PY    := /usr/bin/python3

.PHONY: all deps build run test test-asan bench install clean

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

test-asan: deps
	cmake -S . -B build-asan -DSRV_PYTHON=$(PY) -DSRV_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j $(JOBS)

bench: build
	sh bench/hello.sh

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
