#!/usr/bin/env bash
# Boots Debian's stock kernel under qemu (software emulation, no kvm needed) with two Soft-RoCE
# devices (rxe0 on dummy0 10.77.1.1/24, rxe1 on dummy1 10.77.2.1/24: two rails) and runs a script
# of the host inside the guest. See /work/shared/notes/rdma-in-qemu.md for why this works and the
# pitfalls it avoids.
#
# Usage: tests/rdma/qemu_guest.sh [--out DIR] [--timeout S] [--smp N] SCRIPT [ARGS...]
#   SCRIPT runs in the guest as `chroot /host /bin/bash SCRIPT ARGS...`: the host's / is exported
#   read-only over virtio-9p, so host-built binaries run unchanged; DIR (default: a fresh folder
#   under the cache) is exported writable at the same path. The
#   guest script sees RDMA_OUT=DIR. Everything else of the host is read-only there; /dev/shm is a
#   tmpfs (TMPDIR and HOME point to it). The exit status is the script's (124 if it or qemu timed out).
#   Exit 77 (skipped) with a message on stderr where the guest cannot run: no qemu, no static
#   busybox, no kernel package (not cached and apt-get download fails).
#
# The kernel .deb is downloaded once with `apt-get download` and unpacked under
# TRELLIS_RDMA_CACHE (default /var/cache/trellis-rdma if writable, else ~/.cache/trellis-rdma).
set -euo pipefail

out=""
timeout_s=280
smp=2
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "qemu_guest.sh: unknown option '$1'" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: qemu_guest.sh [--out DIR] [--timeout S] [--smp N] SCRIPT [ARGS...]" >&2; exit 2; }
script=$1; shift

skip() { echo "SKIPPED (rdma guest): $*" >&2; exit 77; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (Debian qemu-system-x86; scripts/deps.sh installs it)"
busybox=/bin/busybox
{ [ -x "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1; } || skip "no static /bin/busybox (Debian busybox-static)"
command -v depmod >/dev/null || [ -x /sbin/depmod ] || skip "depmod not installed (Debian kmod)"
command -v cpio >/dev/null || skip "cpio not installed"
script=$(realpath "$script")

cache=${TRELLIS_RDMA_CACHE:-}
if [ -z "$cache" ]; then
  if mkdir -p /var/cache/trellis-rdma 2>/dev/null && [ -w /var/cache/trellis-rdma ]; then cache=/var/cache/trellis-rdma
  else cache=${XDG_CACHE_HOME:-$HOME/.cache}/trellis-rdma; fi
fi
mkdir -p "$cache"

# Kernel: the package linux-image-amd64 points to now (its name changes with security updates).
# One download at a time per cache folder (ctest may start several guests).
exec 9>"$cache/.lock"
timeout 900 flock 9 || skip "timed out waiting for the lock on $cache"
kpkg=$(timeout 60 apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}' || true)
if [ -z "$kpkg" ]; then  # no package lists: use whatever is cached
  kpkg=$(ls -d "$cache"/linux-image-*-amd64 2>/dev/null | tail -1 | xargs -r basename || true)
fi
[ -n "$kpkg" ] || skip "cannot resolve linux-image-amd64 (no apt package lists) and nothing is cached in $cache"
kroot=$cache/$kpkg
if [ ! -e "$kroot/.ready" ]; then
  echo "rdma guest: downloading $kpkg into $cache (once)" >&2
  rm -rf "$kroot" "$cache"/dl && mkdir -p "$cache/dl"
  (cd "$cache/dl" && timeout 600 apt-get -o DPkg::Lock::Timeout=600 download "$kpkg" >/dev/null 2>&1) ||
    skip "apt-get download $kpkg failed (no network or package lists?)"
  mkdir -p "$kroot.tmp" && timeout 300 dpkg -x "$cache"/dl/"$kpkg"_*.deb "$kroot.tmp"
  rm -rf "$cache/dl"
  mv "$kroot.tmp" "$kroot"
  kver=$(ls "$kroot/lib/modules")
  timeout 120 depmod -b "$kroot" "$kver"  # the .deb ships no modules.dep
  touch "$kroot/.ready"
fi
kver=$(ls "$kroot/lib/modules")
vmlinuz=$kroot/boot/vmlinuz-$kver
moddir=$kroot/lib/modules/$kver

# Initramfs: busybox, the modules (dependencies first, from modules.dep) and /init.
# crc32_generic first: rdma_rxe needs it but modules.dep does not say so.
initrd=$cache/initrd-$kver.cpio.gz
want=(crc32_generic virtio_pci 9pnet_virtio 9p dummy rdma_rxe)
if [ ! -e "$initrd" ] || [ "$0" -nt "$initrd" ]; then
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,proc,sys,dev,host,mod}
  cp "$busybox" "$stage/bin/busybox"
  ln -s busybox "$stage/bin/sh"
  order=()
  add() {  # $1: path relative to $moddir; appends its dependencies, then itself, once
    local m=$1 d
    for x in "${order[@]}"; do [ "$x" = "$m" ] && return; done
    for d in $(awk -v m="$m:" '$1==m{for(i=2;i<=NF;i++)print $i}' "$moddir/modules.dep" | tac); do add "$d"; done
    order+=("$m")
  }
  for w in "${want[@]}"; do
    rel=$(awk -F: -v w="/$w.ko" 'index($1,w)>0 && substr($1,length($1)-length(w)+1)==w{print $1; exit}' "$moddir/modules.dep")
    [ -n "$rel" ] || { echo "rdma guest: module $w not found in $kpkg" >&2; exit 1; }
    add "$rel"
  done
  : >"$stage/mod/order"
  for m in "${order[@]}"; do
    cp "$moddir/$m" "$stage/mod/"
    basename "$m" >>"$stage/mod/order"
  done
  cat >"$stage/init" <<'EOF'
#!/bin/sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
arg() { sed -n "s/.*trellis_$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
for m in $(cat /mod/order); do
  case $m in dummy.ko) insmod /mod/$m numdummies=2 ;; *) insmod /mod/$m ;; esac || echo "guest: insmod $m failed"
done
ip link set lo up
ip link set dummy0 mtu 9000; ip addr add 10.77.1.1/24 dev dummy0 && ip link set dummy0 up
ip link set dummy1 mtu 9000; ip addr add 10.77.2.1/24 dev dummy1 && ip link set dummy1 up
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostfs /host || echo "guest: 9p mount failed"
mount -t proc proc /host/proc; mount -t sysfs sys /host/sys; mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/shm; mount -t tmpfs shm /host/dev/shm
out=$(arg out)
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 outfs "/host$out" || echo "guest: out mount failed"
T=/host/usr/bin/timeout
chroot /host timeout 20 rdma link add rxe0 type rxe netdev dummy0 || echo "guest: rdma link add rxe0 failed"
chroot /host timeout 20 rdma link add rxe1 type rxe netdev dummy1 || echo "guest: rdma link add rxe1 failed"
cd /host
chroot /host /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/dev/shm TMPDIR=/dev/shm RDMA_OUT="$out" \
  timeout "$(arg budget)" /bin/bash "$(arg script)" $(arg args | tr ',' ' ')
echo $? >"/host$out/guest.rc"
sync
poweroff -f
EOF
  chmod +x "$stage/init"
  (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  rm -rf "$stage"; trap - EXIT
fi
exec 9>&-

if [ -z "$out" ]; then mkdir -p "$cache/runs" && out=$(mktemp -d "$cache/runs/run.XXXXXX"); fi
mkdir -p "$out"; out=$(realpath "$out")
case "$out" in /dev/*|/proc/*|/sys/*) echo "qemu_guest.sh: --out $out is hidden in the guest (devtmpfs/proc/sysfs there)" >&2; exit 2 ;; esac
rm -f "$out/guest.rc"
for a in "$out" "$script" "$@"; do
  case "$a" in *[[:space:],]*) echo "qemu_guest.sh: '$a': paths and arguments must not contain blanks or commas" >&2; exit 2 ;; esac
done
args=$(IFS=,; echo "$*")
budget=$((timeout_s - 30))
[ "$budget" -gt 10 ] || budget=10
echo "rdma guest: booting $kver (smp $smp) to run $script $*; output folder $out" >&2
rc=0
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$smp" -m 2048 \
  -display none -monitor none -serial stdio -no-reboot -nic none \
  -virtfs local,path=/,mount_tag=hostfs,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$out",mount_tag=outfs,security_model=none,multidevs=remap \
  -kernel "$vmlinuz" -initrd "$initrd" \
  -append "console=ttyS0 rdinit=/init panic=-1 quiet mitigations=off trellis_out=$out trellis_script=$script trellis_budget=$budget trellis_args=$args" \
  </dev/null || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "rdma guest: qemu exited with status $rc$([ "$rc" = 124 ] && echo " (timed out after $timeout_s s)")" >&2
  exit "$rc"
fi
[ -s "$out/guest.rc" ] || { echo "rdma guest: the guest wrote no exit status (crashed before the script ended?)" >&2; exit 1; }
exit "$(cat "$out/guest.rc")"
