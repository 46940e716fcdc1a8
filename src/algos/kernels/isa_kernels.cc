// Compiles the loops of kernels_impl.inc once per SIMD path. Run-time dispatch needs code for
// instruction sets the build machine's default flags do not enable, and the build must never use
// -march=native, so each copy is compiled inside functions carrying a target attribute rather than
// with per-file flags. Headers are all included before the first copy so that no inline library
// function is ever compiled with a wider target than the baseline (the linker could otherwise keep
// that copy for the whole program).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "algos/kernels/bf16.h"
#include "algos/kernels/isa.h"
#include "algos/kernels/reduce.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define TRELLIS_KERNELS_X86 1
#else  // other architectures get the portable path only (the compiler still vectorises it)
#define TRELLIS_KERNELS_X86 0
#endif

// The dst-may-alias-a-or-b loops have no loop-carried dependence; tell the vectoriser so.
#if defined(__clang__)
#define KERNEL_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define KERNEL_IVDEP _Pragma("GCC ivdep")
#endif

// Runs CALL with the constexpr `kOp` bound to op (Avg reduces as Sum; it divides at the end).
#define KERNEL_BY_OP(op, CALL)         \
  switch (op) {                        \
    case trellisProd: {                \
      constexpr int kOp = trellisProd; \
      CALL;                            \
      break;                           \
    }                                  \
    case trellisMax: {                 \
      constexpr int kOp = trellisMax;  \
      CALL;                            \
      break;                           \
    }                                  \
    case trellisMin: {                 \
      constexpr int kOp = trellisMin;  \
      CALL;                            \
      break;                           \
    }                                  \
    default: {                         \
      constexpr int kOp = trellisSum;  \
      CALL;                            \
      break;                           \
    }                                  \
  }

#define KERNEL_FOR_EACH_PLAIN_TYPE(X) \
  X(trellisInt8, int8_t)              \
  X(trellisUint8, uint8_t)            \
  X(trellisInt32, int32_t)            \
  X(trellisUint32, uint32_t)          \
  X(trellisInt64, int64_t)            \
  X(trellisUint64, uint64_t)          \
  X(trellisFloat32, float)            \
  X(trellisFloat64, double)

namespace trellis::algos {
namespace {

namespace scalar_isa {
#define KERNEL_ISA 0
#define KERNEL_TARGET
#include "algos/kernels/kernels_impl.inc"
#undef KERNEL_ISA
#undef KERNEL_TARGET
}  // namespace scalar_isa

#if TRELLIS_KERNELS_X86
namespace avx2_isa {
#define KERNEL_ISA 1
#define KERNEL_TARGET __attribute__((target("avx2,fma,f16c")))
#include "algos/kernels/kernels_impl.inc"
#undef KERNEL_ISA
#undef KERNEL_TARGET
}  // namespace avx2_isa

namespace avx512_isa {
#define KERNEL_ISA 2
// prefer-vector-width=512: GCC's generic tuning would otherwise vectorise the plain loops with
// 256-bit registers even here (clang has no such option in the attribute and uses 512 already).
#if defined(__clang__)
#define KERNEL_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,avx2,fma")))
#else
#define KERNEL_TARGET \
  __attribute__((     \
      target("avx512f,avx512bw,avx512vl,avx512dq,f16c,avx2,fma,prefer-vector-width=512")))
#endif
#include "algos/kernels/kernels_impl.inc"
#undef KERNEL_ISA
#undef KERNEL_TARGET
}  // namespace avx512_isa
#endif  // TRELLIS_KERNELS_X86

}  // namespace

#define KERNEL_TABLE(NS, NAME) \
  { NAME, NS::reduce2Entry, NS::reduceManyEntry, NS::divideEntry, NS::widenEntry, NS::narrowEntry }

const KernelTable& scalarKernels() {
  static const KernelTable table = KERNEL_TABLE(scalar_isa, "scalar");
  return table;
}
#if TRELLIS_KERNELS_X86
const KernelTable& avx2Kernels() {
  static const KernelTable table = KERNEL_TABLE(avx2_isa, "avx2");
  return table;
}
const KernelTable& avx512Kernels() {
  static const KernelTable table = KERNEL_TABLE(avx512_isa, "avx512");
  return table;
}
#else
// Never selected off x86 (reduce.cc reports the CPU lacks them); the names keep the table valid.
const KernelTable& avx2Kernels() {
  static const KernelTable table = KERNEL_TABLE(scalar_isa, "avx2");
  return table;
}
const KernelTable& avx512Kernels() {
  static const KernelTable table = KERNEL_TABLE(scalar_isa, "avx512");
  return table;
}
#endif

}  // namespace trellis::algos
