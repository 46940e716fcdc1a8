#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds a C client with pkg-config and another
# with find_package(Trellis), and runs both. FLAGS (optional): compiler flags for both clients (the
# sanitizer of a sanitizer build).
#   test_install.sh BUILD [FLAGS]
set -euo pipefail
build=$(cd "$1" && pwd)
flags=${2:-}
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib/x86_64-linux-gnu/pkgconfig"
cc -std=c11 -Wall -Werror $flags "$src/client.c" -o "$tmp/client" $(pkg-config --cflags --libs trellis)
"$tmp/client"
cmake -S "$src/cmake_client" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_FLAGS="$flags" > "$tmp/cm.log"
cmake --build "$tmp/cm" > "$tmp/cmb.log"
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib/x86_64-linux-gnu" "$tmp/cm/cmake_client"
for tool in trellis-info trellis-run trellis-bench trellis-topo; do
  test -x "$tmp/prefix/bin/$tool" || { echo "missing installed tool $tool"; exit 1; }
done
# The NCCL plugin: the library, the libnccl-net.so link NCCL loads by default, the NCCL symbols.
libdir=$(dirname "$(find "$tmp/prefix" -name libnccl-net-trellis.so | head -1)")
test -f "$libdir/libnccl-net-trellis.so" || { echo "missing installed libnccl-net-trellis.so"; exit 1; }
test "$(readlink "$libdir/libnccl-net.so")" = libnccl-net-trellis.so || { echo "libnccl-net.so does not link to libnccl-net-trellis.so"; exit 1; }
for sym in ncclNetPlugin_v6 ncclNetPlugin_v11 ncclTunerPlugin_v5; do
  nm -D --defined-only "$libdir/libnccl-net-trellis.so" | grep -qw "$sym" || { echo "installed plugin lacks $sym"; exit 1; }
done
echo "install OK"
