# The two commands: `make run` (install deps, build Release, 4-rank benchmark of every collective
# with checks, topology summary) and `make test` (install deps, build, run the whole suite).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
RANKS ?= 4

.PHONY: all deps build run test test-asan test-tsan test-rdma test-fuzz install clean torch

all: build

deps:
	bash scripts/deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# The torch.distributed backend alone (build/python/trellis_torch); says why when it is skipped.
torch: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target trellis_torch

run: build
	bash scripts/run.sh $(BUILD) $(RANKS)

test: build
	bash scripts/test.sh $(BUILD)

# The verbs transport inside a qemu Soft-RoCE guest (tests/rdma; not yet in `make test`, see there).
test-rdma: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRELLIS_TEST_RDMA=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	ctest --test-dir $(BUILD) -L rdma --output-on-failure

# Only the libFuzzer targets (clang, ASan+UBSan), each run briefly on its seeds (`make test` runs them
# too: TRELLIS_FUZZ is ON by default); scripts/fuzz.sh runs them long.
test-fuzz: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRELLIS_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	ctest --test-dir $(BUILD) -L fuzz --output-on-failure

test-asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DTRELLIS_SANITIZE=address -DCMAKE_BUILD_TYPE=RelWithDebInfo"

test-tsan:
	$(MAKE) test BUILD=build-tsan CMAKE_FLAGS="-DTRELLIS_SANITIZE=thread -DCMAKE_BUILD_TYPE=RelWithDebInfo"

install: build
	cmake --install $(BUILD) --prefix $(or $(PREFIX),/usr/local)

clean:
	rm -rf $(BUILD) build-asan build-tsan
