// The reduction loops. Each loop is written once as an always-inline template and instantiated
// inside three entry points compiled for different targets (AVX-512, AVX2+F16C, baseline x86-64),
// so the compiler vectorises the same source for each; the entry point is picked once from the CPU
// (TRELLIS_REDUCE_ISA can force one). float16 uses the F16C conversion instructions explicitly.
#include <immintrin.h>

#include <atomic>
#include <bit>
#include <cstring>
#include <type_traits>

#include "algos/kernels/reduce.h"
#include "core/log.h"
#include "core/params.h"

namespace trellis::algos {

static Param<std::string> kIsa("TRELLIS_REDUCE_ISA", "auto",
                               "SIMD path of the CPU reduction kernels: auto, avx512, avx2, scalar");

namespace {

#define TRELLIS_INLINE [[gnu::always_inline]] inline

template <int OP, typename T>
TRELLIS_INLINE T apply(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    if constexpr (OP == trellisProd) return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
    else if constexpr (OP == trellisMax) return a < b ? b : a;
    else if constexpr (OP == trellisMin) return b < a ? b : a;
    else return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    if constexpr (OP == trellisProd) return a * b;
    else if constexpr (OP == trellisMax) return a < b ? b : a;
    else if constexpr (OP == trellisMin) return b < a ? b : a;
    else return a + b;
  }
}

template <typename T, int OP>
TRELLIS_INLINE void loop2(T* d, const T* a, const T* b, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = apply<OP>(a[i], b[i]);
}

TRELLIS_INLINE float bfWiden(uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }
TRELLIS_INLINE uint16_t bfNarrow(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  uint32_t rounded = (u + 0x7fff + ((u >> 16) & 1)) >> 16;
  uint32_t nan = (u >> 16) | 0x40;
  return static_cast<uint16_t>((u & 0x7fffffff) > 0x7f800000 ? nan : rounded);
}

template <int OP>
TRELLIS_INLINE void loopBf16(uint16_t* d, const uint16_t* a, const uint16_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = bfNarrow(apply<OP>(bfWiden(a[i]), bfWiden(b[i])));
}

template <int OP>
TRELLIS_INLINE void loopHalfScalar(uint16_t* d, const uint16_t* a, const uint16_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = floatToHalf(apply<OP>(halfToFloat(a[i]), halfToFloat(b[i])));
}

template <int OP>
__attribute__((target("avx2,fma,f16c"))) void loopHalfAvx2(uint16_t* d, const uint16_t* a, const uint16_t* b,
                                                            size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    __m256 y = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    __m256 r;
    if constexpr (OP == trellisProd) r = _mm256_mul_ps(x, y);
    else if constexpr (OP == trellisMax) r = _mm256_blendv_ps(x, y, _mm256_cmp_ps(x, y, _CMP_LT_OQ));
    else if constexpr (OP == trellisMin) r = _mm256_blendv_ps(x, y, _mm256_cmp_ps(y, x, _CMP_LT_OQ));
    else r = _mm256_add_ps(x, y);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT));
  }
  loopHalfScalar<OP>(d + i, a + i, b + i, n - i);
}

template <int OP>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))) void loopHalfAvx512(
    uint16_t* d, const uint16_t* a, const uint16_t* b, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)));
    __m512 y = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i)));
    __m512 r;
    if constexpr (OP == trellisProd) r = _mm512_mul_ps(x, y);
    else if constexpr (OP == trellisMax) r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, y, _CMP_LT_OQ), x, y);
    else if constexpr (OP == trellisMin) r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, x, _CMP_LT_OQ), x, y);
    else r = _mm512_add_ps(x, y);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), _mm512_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT));
  }
  loopHalfAvx2<OP>(d + i, a + i, b + i, n - i);
}

enum Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

template <typename T, int ISA>
TRELLIS_INLINE void byOp(void* d, const void* a, const void* b, size_t n, trellisRedOp_t op) {
  T* dd = static_cast<T*>(d);
  const T* aa = static_cast<const T*>(a);
  const T* bb = static_cast<const T*>(b);
  switch (op) {
    case trellisProd: loop2<T, trellisProd>(dd, aa, bb, n); break;
    case trellisMax: loop2<T, trellisMax>(dd, aa, bb, n); break;
    case trellisMin: loop2<T, trellisMin>(dd, aa, bb, n); break;
    default: loop2<T, trellisSum>(dd, aa, bb, n); break;
  }
}

template <int ISA, int OP>
TRELLIS_INLINE void halfOp(uint16_t* d, const uint16_t* a, const uint16_t* b, size_t n) {
  if constexpr (ISA == kAvx512) loopHalfAvx512<OP>(d, a, b, n);
  else if constexpr (ISA == kAvx2) loopHalfAvx2<OP>(d, a, b, n);
  else loopHalfScalar<OP>(d, a, b, n);
}

template <int ISA>
TRELLIS_INLINE void dispatch2(void* d, const void* a, const void* b, size_t n, trellisDataType_t dt,
                              trellisRedOp_t op) {
  switch (dt) {
    case trellisInt8: byOp<int8_t, ISA>(d, a, b, n, op); break;
    case trellisUint8: byOp<uint8_t, ISA>(d, a, b, n, op); break;
    case trellisInt32: byOp<int32_t, ISA>(d, a, b, n, op); break;
    case trellisUint32: byOp<uint32_t, ISA>(d, a, b, n, op); break;
    case trellisInt64: byOp<int64_t, ISA>(d, a, b, n, op); break;
    case trellisUint64: byOp<uint64_t, ISA>(d, a, b, n, op); break;
    case trellisFloat32: byOp<float, ISA>(d, a, b, n, op); break;
    case trellisFloat64: byOp<double, ISA>(d, a, b, n, op); break;
    case trellisBfloat16: {
      auto* dd = static_cast<uint16_t*>(d);
      auto* aa = static_cast<const uint16_t*>(a);
      auto* bb = static_cast<const uint16_t*>(b);
      switch (op) {
        case trellisProd: loopBf16<trellisProd>(dd, aa, bb, n); break;
        case trellisMax: loopBf16<trellisMax>(dd, aa, bb, n); break;
        case trellisMin: loopBf16<trellisMin>(dd, aa, bb, n); break;
        default: loopBf16<trellisSum>(dd, aa, bb, n); break;
      }
      break;
    }
    case trellisFloat16: {
      auto* dd = static_cast<uint16_t*>(d);
      auto* aa = static_cast<const uint16_t*>(a);
      auto* bb = static_cast<const uint16_t*>(b);
      switch (op) {
        case trellisProd: halfOp<ISA, trellisProd>(dd, aa, bb, n); break;
        case trellisMax: halfOp<ISA, trellisMax>(dd, aa, bb, n); break;
        case trellisMin: halfOp<ISA, trellisMin>(dd, aa, bb, n); break;
        default: halfOp<ISA, trellisSum>(dd, aa, bb, n); break;
      }
      break;
    }
    default: break;
  }
}

using Reduce2Fn = void (*)(void*, const void*, const void*, size_t, trellisDataType_t, trellisRedOp_t);

void reduce2Scalar(void* d, const void* a, const void* b, size_t n, trellisDataType_t dt, trellisRedOp_t op) {
  dispatch2<kScalar>(d, a, b, n, dt, op);
}
__attribute__((target("avx2,fma,f16c"))) void reduce2Avx2(void* d, const void* a, const void* b, size_t n,
                                                           trellisDataType_t dt, trellisRedOp_t op) {
  dispatch2<kAvx2>(d, a, b, n, dt, op);
}
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,prefer-vector-width=512"))) void
reduce2Avx512(void* d, const void* a, const void* b, size_t n, trellisDataType_t dt, trellisRedOp_t op) {
  dispatch2<kAvx512>(d, a, b, n, dt, op);
}

struct IsaChoice {
  Reduce2Fn fn;
  const char* name;
};

bool cpuHas(int isa) {
  __builtin_cpu_init();
  if (isa == kAvx512)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && cpuHas(kAvx2);
  if (isa == kAvx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return true;
}

const IsaChoice kChoices[] = {{reduce2Scalar, "scalar"}, {reduce2Avx2, "avx2"}, {reduce2Avx512, "avx512"}};

int bestIsa() { return cpuHas(kAvx512) ? kAvx512 : cpuHas(kAvx2) ? kAvx2 : kScalar; }

int isaByName(const std::string& name) {
  for (int i = 0; i < 3; ++i)
    if (name == kChoices[i].name) return i;
  return -1;
}

std::atomic<int>& currentIsa() {
  static std::atomic<int> isa{[] {
    std::string want = kIsa.get();
    int best = bestIsa();
    if (want == "auto") return best;
    int w = isaByName(want);
    if (w < 0) {
      TRELLIS_WARN(kColl, "TRELLIS_REDUCE_ISA='%s' is not auto, avx512, avx2 or scalar; using %s", want.c_str(),
                   kChoices[best].name);
      return best;
    }
    if (!cpuHas(w)) {
      TRELLIS_WARN(kColl, "TRELLIS_REDUCE_ISA=%s: this CPU lacks it; using %s", want.c_str(), kChoices[best].name);
      return best;
    }
    return w;
  }()};
  return isa;
}

}  // namespace

void reduce2(void* dst, const void* a, const void* b, size_t n, trellisDataType_t dt, trellisRedOp_t op) {
  if (n == 0) return;
  kChoices[currentIsa().load(std::memory_order_relaxed)].fn(dst, a, b, n, dt, op);
}

const char* reduceIsaName() { return kChoices[currentIsa().load()].name; }

namespace detail {
bool setIsaForTesting(const char* name) {
  std::string n = name;
  int isa = n == "auto" ? bestIsa() : isaByName(n);
  if (isa < 0 || !cpuHas(isa)) return false;
  currentIsa() = isa;
  return true;
}
}  // namespace detail

void reduceMany(void* dst, const void* const* srcs, int k, size_t n, trellisDataType_t dt, trellisRedOp_t op) {
  const size_t es = dtypeSize(dt);
  if (k <= 0 || n == 0) return;
  if (k == 1) {
    if (dst != srcs[0]) std::memmove(dst, srcs[0], n * es);
    return;
  }
  if (dt == trellisFloat16 || dt == trellisBfloat16) {
    // Accumulate a tile in float32 across all inputs, round once.
    constexpr size_t kTile = 1024;
    float acc[kTile];
    const bool half = dt == trellisFloat16;
    for (size_t base = 0; base < n; base += kTile) {
      size_t m = std::min(kTile, n - base);
      auto in = [&](int j, size_t i) {
        uint16_t v = static_cast<const uint16_t*>(srcs[j])[base + i];
        return half ? halfToFloat(v) : bf16ToFloat(v);
      };
      for (size_t i = 0; i < m; ++i) acc[i] = in(0, i);
      for (int j = 1; j < k; ++j) {
        for (size_t i = 0; i < m; ++i) {
          float v = in(j, i);
          switch (op) {
            case trellisProd: acc[i] = apply<trellisProd>(acc[i], v); break;
            case trellisMax: acc[i] = apply<trellisMax>(acc[i], v); break;
            case trellisMin: acc[i] = apply<trellisMin>(acc[i], v); break;
            default: acc[i] = apply<trellisSum>(acc[i], v); break;
          }
        }
      }
      uint16_t* out = static_cast<uint16_t*>(dst) + base;
      for (size_t i = 0; i < m; ++i) out[i] = half ? floatToHalf(acc[i]) : floatToBf16(acc[i]);
    }
    return;
  }
  // Other types: pairwise in cache-sized tiles (same result as a single pass: no rounding between).
  constexpr size_t kTileBytes = 32 * 1024;
  const size_t tile = std::max<size_t>(1, kTileBytes / es);
  for (size_t base = 0; base < n; base += tile) {
    size_t m = std::min(tile, n - base);
    char* d = static_cast<char*>(dst) + base * es;
    reduce2(d, static_cast<const char*>(srcs[0]) + base * es, static_cast<const char*>(srcs[1]) + base * es, m, dt, op);
    for (int j = 2; j < k; ++j) reduce2(d, d, static_cast<const char*>(srcs[j]) + base * es, m, dt, op);
  }
}

template <typename T>
static void divideLoop(void* dst, size_t n, int divisor) {
  T* d = static_cast<T*>(dst);
  const T div = static_cast<T>(divisor);
  for (size_t i = 0; i < n; ++i) d[i] = static_cast<T>(d[i] / div);
}

void divideInPlace(void* dst, size_t n, trellisDataType_t dt, int divisor) {
  if (divisor == 1 || n == 0) return;
  switch (dt) {
    case trellisInt8: divideLoop<int8_t>(dst, n, divisor); break;
    case trellisUint8: divideLoop<uint8_t>(dst, n, divisor); break;
    case trellisInt32: divideLoop<int32_t>(dst, n, divisor); break;
    case trellisUint32: divideLoop<uint32_t>(dst, n, divisor); break;
    case trellisInt64: divideLoop<int64_t>(dst, n, divisor); break;
    case trellisUint64: divideLoop<uint64_t>(dst, n, divisor); break;
    case trellisFloat32: divideLoop<float>(dst, n, divisor); break;
    case trellisFloat64: divideLoop<double>(dst, n, divisor); break;
    case trellisFloat16:
    case trellisBfloat16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      const float div = static_cast<float>(divisor);
      for (size_t i = 0; i < n; ++i)
        d[i] = dt == trellisFloat16 ? floatToHalf(halfToFloat(d[i]) / div) : floatToBf16(bf16ToFloat(d[i]) / div);
      break;
    }
    default: break;
  }
}

}  // namespace trellis::algos
