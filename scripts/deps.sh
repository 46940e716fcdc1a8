#!/usr/bin/env bash
# Installs the Debian 12 packages Trellis needs to build, test and benchmark (only what is missing).
# Idempotent; needs root (or sudo) and Debian's package repositories.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git python3
  libgtest-dev libgmock-dev libbenchmark-dev          # tests and microbenchmarks
  nlohmann-json3-dev libpugixml-dev libcli11-dev      # JSON, XML, command line
  libhwloc-dev                                        # CPU / NUMA topology
  libibverbs-dev rdma-core ibverbs-providers libucx-dev  # RDMA verbs and UCX transports
  libopenmpi-dev openmpi-bin libgloo-dev              # peers for trellis-bench --impl mpi|gloo
  iproute2 procps                                     # namespaces for the emulated cluster, ps
  python3-jsonschema                                  # validates trellis-topo JSON against the schema in tests
  qemu-system-x86 busybox-static cpio kmod ibverbs-utils perftest  # tests/rdma: Soft-RoCE in a qemu guest
  clang-14 libclang-rt-14-dev llvm-14                 # fuzz/: clang, libFuzzer + sanitizer runtimes, llvm-symbolizer
)
# Optional: PyTorch for the torch.distributed backend (python/) and its tests: 170 packages, ~620 MiB
# installed, 1.5 minutes (measured). A failed install is only a warning (those tests then skip,
# saying why); TRELLIS_NO_TORCH=1 leaves it out.
TORCH_PKGS=(python3-torch libtorch-dev pybind11-dev)

missing_of() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing < <(missing_of "${PKGS[@]}")
torch_missing=()
[ "${TRELLIS_NO_TORCH:-0}" = 1 ] || mapfile -t torch_missing < <(missing_of "${TORCH_PKGS[@]}")
if [ ${#missing[@]} -eq 0 ] && [ ${#torch_missing[@]} -eq 0 ]; then
  echo "deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
APT=($SUDO apt-get -o DPkg::Lock::Timeout=600)
"${APT[@]}" update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ ${#torch_missing[@]} -gt 0 ]; then
  echo "deps: installing ${torch_missing[*]} (optional, for the torch backend)"
  "${APT[@]}" install -y -qq --no-install-recommends "${torch_missing[@]}" ||
    echo "deps: WARNING: could not install ${torch_missing[*]}; the torch backend tests will skip"
fi
