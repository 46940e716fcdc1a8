#!/usr/bin/env bash
# libtrellis.so must load where no NVIDIA library exists: it may not need libcuda, libcudart or any
# other CUDA library (the driver is dlopen'ed at run time). Usage: check_no_cuda_link.sh LIB
set -euo pipefail
lib=$1
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
echo "$lib needs: $(echo $needed)"
bad=$(echo "$needed" | grep -Ei 'cuda|nvidia|nvrtc|nccl|cublas' || true)
if [ -n "$bad" ]; then
  echo "FAIL: $lib has a link-time dependency on: $bad"
  exit 1
fi
# And it loads and resolves every symbol without them (LD_BIND_NOW makes unresolved symbols fatal).
# A sanitizer build's library needs its runtime loaded first: python3 is not instrumented, so
# preload it (and do not report python's own leaks at exit).
# ThreadSanitizer's runtime cannot be preloaded into python3 (it crashes there): a TSan build checks
# only its NEEDED list above; the normal and ASan builds also load the library.
if ldd "$lib" | grep -q 'libtsan\.so'; then
  echo "ThreadSanitizer build: not loaded into python3 (TSan's runtime cannot be preloaded there)"
  exit 0
fi
runtime=$(ldd "$lib" | awk '/libasan\.so/ {print $3; exit}')
if [ -n "$runtime" ]; then
  export LD_PRELOAD=$runtime ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
fi
LD_BIND_NOW=1 python3 -c "import ctypes,sys; l=ctypes.CDLL(sys.argv[1]); v=ctypes.c_int(); assert l.trellisGetVersion(ctypes.byref(v))==0; print('loaded, version', v.value)" "$lib"
