// Reduction kernel bandwidth per SIMD path against memcpy on the same buffers (Google Benchmark).
// Bytes counted: two inputs read + one output written, as for memcpy one read + one write.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstring>

#include "algos/kernels/reduce.h"

namespace {

void* bigBuffer(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  madvise(p, bytes, MADV_HUGEPAGE);
  std::memset(p, 1, bytes);
  return p;
}

void BM_Memcpy(benchmark::State& state) {
  size_t bytes = static_cast<size_t>(state.range(0));
  void* a = bigBuffer(bytes);
  void* d = bigBuffer(bytes);
  for (auto _ : state) {
    std::memcpy(d, a, bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * bytes);
  munmap(a, bytes);
  munmap(d, bytes);
}

void BM_Reduce(benchmark::State& state, const char* isa, trellisDataType_t dt) {
  if (!trellis::algos::detail::setIsaForTesting(isa)) {
    state.SkipWithError("this CPU lacks the path");
    return;
  }
  size_t bytes = static_cast<size_t>(state.range(0));
  size_t n = bytes / trellis::algos::dtypeSize(dt);
  void* a = bigBuffer(bytes);
  void* b = bigBuffer(bytes);
  void* d = bigBuffer(bytes);
  for (auto _ : state) {
    trellis::algos::reduce2(d, a, b, n, dt, trellisSum);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 3 * bytes);
  munmap(a, bytes);
  munmap(b, bytes);
  munmap(d, bytes);
  trellis::algos::detail::setIsaForTesting("auto");
}

BENCHMARK(BM_Memcpy)->Arg(256 << 10)->Arg(64 << 20);
BENCHMARK_CAPTURE(BM_Reduce, scalar_f32, "scalar", trellisFloat32)->Arg(256 << 10)->Arg(64 << 20);
BENCHMARK_CAPTURE(BM_Reduce, avx2_f32, "avx2", trellisFloat32)->Arg(256 << 10)->Arg(64 << 20);
BENCHMARK_CAPTURE(BM_Reduce, avx512_f32, "avx512", trellisFloat32)->Arg(256 << 10)->Arg(64 << 20);
BENCHMARK_CAPTURE(BM_Reduce, scalar_f16, "scalar", trellisFloat16)->Arg(256 << 10)->Arg(64 << 20);
BENCHMARK_CAPTURE(BM_Reduce, avx2_f16, "avx2", trellisFloat16)->Arg(256 << 10)->Arg(64 << 20);
BENCHMARK_CAPTURE(BM_Reduce, avx512_f16, "avx512", trellisFloat16)->Arg(256 << 10)->Arg(64 << 20);
BENCHMARK_CAPTURE(BM_Reduce, avx512_bf16, "avx512", trellisBfloat16)->Arg(256 << 10)->Arg(64 << 20);
BENCHMARK_CAPTURE(BM_Reduce, avx512_i8, "avx512", trellisInt8)->Arg(256 << 10)->Arg(64 << 20);

}  // namespace

BENCHMARK_MAIN();
