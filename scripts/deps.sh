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
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
