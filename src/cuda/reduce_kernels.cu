// CUDA reduction kernels: the GPU twin of the CPU kernels in src/algos/kernels (same operations, same
// order, same rounding), for reducing chunks that live in device memory. nvcc compiles this file
// alone into a fatbin (sm_80 and sm_90 code plus compute_90 PTX) that libtrellis embeds and loads
// with cuModuleLoadData through the dlopen'ed driver (reduce_launch.cc); no CUDA runtime is involved.
//
// Semantics (src/algos/kernels/reduce.h is the reference):
//  - integers: Sum and Prod wrap modulo 2^bits (computed in the unsigned type);
//  - float16/bfloat16: widened to float32, all k inputs combined in float32, rounded once to
//    nearest even (hardware cvt.rn), as the host's reduceMany;
//  - floating Max/Min propagate NaN: ((a < b) | (b != b)) ? b : a, the host's expression;
//  - Avg's division (divisor > 1): integers truncate as C does, floats divide exactly (IEEE
//    division: never built with fast math), float16/bfloat16 round the sum first, then divide in
//    float32 and round again, as the host's divideInPlace does after reduceMany.
// Values are bit-identical to the host's; the one known difference is NaN payloads: a GPU sum or
// product involving NaN yields the canonical NaN, where x86 keeps an operand's payload.
//
// Shape: grid-stride loops; when dst and every input are 16-byte aligned each thread moves 16 bytes
// per input per iteration (uint4 loads and stores), the tail (and unaligned buffers) one element at
// a time. Each element is read from every input before it is written, so dst may alias src[0].
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include <type_traits>

#include "cuda/reduce_kernels.h"

namespace trellis::cuda {
namespace {

// How an element is stored and in which type it is combined.
template <typename T>
struct Plain {
  using Storage = T;
  using Acc = T;
  __device__ static Acc widen(T v) { return v; }
  __device__ static T narrow(Acc a) { return a; }
};
struct Half {
  using Storage = uint16_t;
  using Acc = float;
  __device__ static float widen(uint16_t v) { return __half2float(__ushort_as_half(v)); }
  __device__ static uint16_t narrow(float a) { return __half_as_ushort(__float2half_rn(a)); }
};
struct Bf16 {
  using Storage = uint16_t;
  using Acc = float;
  __device__ static float widen(uint16_t v) { return __bfloat162float(__ushort_as_bfloat16(v)); }
  __device__ static uint16_t narrow(float a) { return __bfloat16_as_ushort(__float2bfloat16_rn(a)); }
};

template <int OP, typename A>
__device__ __forceinline__ A apply(A a, A b) {
  if constexpr (std::is_integral<A>::value) {
    using U = std::make_unsigned_t<A>;
    if constexpr (OP == trellisProd)
      return static_cast<A>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
    else if constexpr (OP == trellisMax)
      return a < b ? b : a;
    else if constexpr (OP == trellisMin)
      return b < a ? b : a;
    else
      return static_cast<A>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    if constexpr (OP == trellisProd)
      return a * b;
    else if constexpr (OP == trellisMax)
      return ((a < b) | (b != b)) ? b : a;
    else if constexpr (OP == trellisMin)
      return ((b < a) | (b != b)) ? b : a;
    else
      return a + b;
  }
}

// Avg's last step on one combined value (divisor > 1).
template <class E>
__device__ __forceinline__ typename E::Acc divideBy(typename E::Acc acc, int divisor) {
  using A = typename E::Acc;
  if constexpr (std::is_integral<A>::value) {
    if constexpr (sizeof(A) <= 4)  // every 8/32-bit quotient fits; 64-bit division is exact C division
      return static_cast<A>(static_cast<long long>(acc) / static_cast<long long>(divisor));
    else
      return static_cast<A>(acc / static_cast<A>(divisor));
  } else if constexpr (sizeof(typename E::Storage) == 2) {
    return E::widen(E::narrow(acc)) / static_cast<float>(divisor);
  } else {
    return acc / static_cast<A>(divisor);
  }
}

template <typename S>
union Pack {
  static constexpr int kElems = 16 / sizeof(S);
  uint4 raw;
  S e[kElems];
};

template <class E, int OP>
__device__ __forceinline__ void reduceBody(const ReduceParams& p) {
  using S = typename E::Storage;
  using A = typename E::Acc;
  constexpr int kV = Pack<S>::kElems;
  S* dst = static_cast<S*>(p.dst);
  const uint64_t n = p.n;
  const uint64_t first = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  uint64_t scalarFrom = 0;
  if (p.vec16) {
    const uint64_t nv = n / kV;
    for (uint64_t v = first; v < nv; v += stride) {
      Pack<S> in;
      in.raw = static_cast<const uint4*>(p.src[0])[v];
      A acc[kV];
#pragma unroll
      for (int e = 0; e < kV; ++e) acc[e] = E::widen(in.e[e]);
      for (int j = 1; j < p.k; ++j) {
        in.raw = static_cast<const uint4*>(p.src[j])[v];
#pragma unroll
        for (int e = 0; e < kV; ++e) acc[e] = apply<OP>(acc[e], E::widen(in.e[e]));
      }
      if (p.divisor > 1) {
#pragma unroll
        for (int e = 0; e < kV; ++e) acc[e] = divideBy<E>(acc[e], p.divisor);
      }
      Pack<S> out;
#pragma unroll
      for (int e = 0; e < kV; ++e) out.e[e] = E::narrow(acc[e]);
      reinterpret_cast<uint4*>(dst)[v] = out.raw;
    }
    scalarFrom = nv * kV;
  }
  for (uint64_t i = scalarFrom + first; i < n; i += stride) {
    A acc = E::widen(static_cast<const S*>(p.src[0])[i]);
    for (int j = 1; j < p.k; ++j) acc = apply<OP>(acc, E::widen(static_cast<const S*>(p.src[j])[i]));
    if (p.divisor > 1) acc = divideBy<E>(acc, p.divisor);
    dst[i] = E::narrow(acc);
  }
}

}  // namespace
}  // namespace trellis::cuda

// The kernels, with C names so that the launcher finds them with cuModuleGetFunction.
#define TRELLIS_REDUCE_KERNEL(SUFFIX, ELEM, OPNAME, OP)                                               \
  extern "C" __global__ void __launch_bounds__(trellis::cuda::kReduceBlockThreads)                  \
      trellis_reduce_##SUFFIX##_##OPNAME(trellis::cuda::ReduceParams p) {                           \
    trellis::cuda::reduceBody<ELEM, OP>(p);                                                         \
  }
#define TRELLIS_REDUCE_KERNELS(SUFFIX, ELEM)                 \
  TRELLIS_REDUCE_KERNEL(SUFFIX, ELEM, sum, trellisSum)       \
  TRELLIS_REDUCE_KERNEL(SUFFIX, ELEM, prod, trellisProd)     \
  TRELLIS_REDUCE_KERNEL(SUFFIX, ELEM, max, trellisMax)       \
  TRELLIS_REDUCE_KERNEL(SUFFIX, ELEM, min, trellisMin)

TRELLIS_REDUCE_KERNELS(i8, trellis::cuda::Plain<int8_t>)
TRELLIS_REDUCE_KERNELS(u8, trellis::cuda::Plain<uint8_t>)
TRELLIS_REDUCE_KERNELS(i32, trellis::cuda::Plain<int32_t>)
TRELLIS_REDUCE_KERNELS(u32, trellis::cuda::Plain<uint32_t>)
TRELLIS_REDUCE_KERNELS(i64, trellis::cuda::Plain<int64_t>)
TRELLIS_REDUCE_KERNELS(u64, trellis::cuda::Plain<uint64_t>)
TRELLIS_REDUCE_KERNELS(f16, trellis::cuda::Half)
TRELLIS_REDUCE_KERNELS(f32, trellis::cuda::Plain<float>)
TRELLIS_REDUCE_KERNELS(f64, trellis::cuda::Plain<double>)
TRELLIS_REDUCE_KERNELS(bf16, trellis::cuda::Bf16)
