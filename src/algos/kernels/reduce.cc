// Public entry points of the reduction kernels: pick the SIMD path once (the CPU's best, or
// TRELLIS_REDUCE_ISA), then forward every call through that path's KernelTable.
#include "algos/kernels/reduce.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <atomic>
#include <cstring>
#include <string>

#include "algos/kernels/isa.h"
#include "core/log.h"
#include "core/params.h"

namespace trellis::algos {

static Param<std::string> kIsa(
    "TRELLIS_REDUCE_ISA", "auto",
    "SIMD path of the CPU reduction kernels: auto, avx512, avx2, scalar (a path "
    "this CPU lacks falls back to the best it has, with a warning)");

namespace {

// Path indices, best last (plain ints: they index the table list and order the choice).
constexpr int kScalar = 0, kAvx2 = 1, kAvx512 = 2, kNumIsas = 3;

const KernelTable& table(int isa) {
  switch (isa) {
    case kAvx512:
      return avx512Kernels();
    case kAvx2:
      return avx2Kernels();
    default:
      return scalarKernels();
  }
}

bool cpuHas(int isa) {
  if (isa == kScalar) return true;
#if defined(__x86_64__)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the YMM/ZMM state. Clang's version does
  // not know "f16c", so read that CPUID bit (leaf 1, ECX bit 29) directly.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  if (isa == kAvx512)
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return avx2;
#else
  return false;
#endif
}

int bestIsa() { return cpuHas(kAvx512) ? kAvx512 : cpuHas(kAvx2) ? kAvx2 : kScalar; }

int isaByName(const std::string& name) {
  for (int i = 0; i < kNumIsas; ++i)
    if (name == table(i).name) return i;
  return -1;
}

int chooseFromParam() {
  const std::string want = kIsa.get();
  const int best = bestIsa();
  if (want == "auto") return best;
  const int w = isaByName(want);
  if (w < 0) {
    TRELLIS_WARN(kColl, "TRELLIS_REDUCE_ISA='%s' is not auto, avx512, avx2 or scalar; using %s",
                 want.c_str(), table(best).name);
    return best;
  }
  if (!cpuHas(w)) {
    TRELLIS_WARN(kColl, "TRELLIS_REDUCE_ISA=%s: this CPU lacks it; using %s", want.c_str(),
                 table(best).name);
    return best;
  }
  return w;
}

// The chosen table. Relaxed loads: the pointer only changes in tests (setIsaForTesting), and every
// table computes identical results.
std::atomic<const KernelTable*>& current() {
  static std::atomic<const KernelTable*> chosen{[] {
    const KernelTable* t = &table(chooseFromParam());
    TRELLIS_INFO(kColl, "reduction kernels: %s path (best on this CPU: %s)", t->name,
                 table(bestIsa()).name);
    return t;
  }()};
  return chosen;
}

const KernelTable& kernels() { return *current().load(std::memory_order_relaxed); }

bool isLowp(trellisDataType_t dt) { return dt == trellisFloat16 || dt == trellisBfloat16; }

}  // namespace

void reduce2(void* dst, const void* a, const void* b, size_t n, trellisDataType_t dt,
             trellisRedOp_t op) {
  if (n == 0) return;
  kernels().reduce2(dst, a, b, n, dt, op);
}

void reduceMany(void* dst, const void* const* srcs, int k, size_t n, trellisDataType_t dt,
                trellisRedOp_t op) {
  if (k <= 0 || n == 0) return;
  if (k == 1) {
    if (dst != srcs[0]) std::memmove(dst, srcs[0], n * dtypeSize(dt));
    return;
  }
  kernels().reduceMany(dst, srcs, k, n, dt, op);
}

void divideInPlace(void* dst, size_t n, trellisDataType_t dt, int divisor) {
  if (n == 0 || divisor == 1) return;
  if (divisor < 1) {
    TRELLIS_WARN(kColl, "divideInPlace: divisor %d < 1 ignored (%zu %s elements left undivided)",
                 divisor, n, dtypeName(dt));
    return;
  }
  kernels().divide(dst, n, dt, divisor);
}

const char* reduceIsaName() { return kernels().name; }

namespace detail {

bool setIsaForTesting(const char* name) {
  const std::string n = name;
  const int isa = n == "auto" ? chooseFromParam() : isaByName(n);
  if (isa < 0 || !cpuHas(isa)) return false;
  current().store(&table(isa), std::memory_order_relaxed);
  return true;
}

void lowpToFloat(float* dst, const uint16_t* src, size_t n, trellisDataType_t dt) {
  if (n > 0 && isLowp(dt)) kernels().widen(dst, src, n, dt);
}

void floatToLowp(uint16_t* dst, const float* src, size_t n, trellisDataType_t dt) {
  if (n > 0 && isLowp(dt)) kernels().narrow(dst, src, n, dt);
}

}  // namespace detail

}  // namespace trellis::algos
