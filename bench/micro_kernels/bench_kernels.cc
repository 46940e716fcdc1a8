// Reduction kernel bandwidth per SIMD path, against memcpy on the same sizes (Google Benchmark).
//
// Bytes counted are the bytes the kernel's contract touches: reduce2 reads 2 and writes 1 buffer
// (3x), reduceMany with k inputs reads k and writes 1 ((k+1)x), divideInPlace reads and writes 1
// (2x), memcpy reads 1 and writes 1 (2x). At memory sizes a kernel "at memory speed" shows about
// the same bytes/s as memcpy. Sizes: 256 KiB (per-buffer; L2-resident) and 64 MiB (DRAM).
//
//   trellis-micro-kernels --benchmark_filter=f32_sum --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "algos/kernels/reduce.h"

namespace {

namespace ak = trellis::algos;

constexpr int64_t kSizes[] = {62, 256 << 10, 64 << 20};
constexpr int kMaxBuffers = 9;  // reduceMany k=8 inputs + 1 output

// Buffers are allocated and touched once per size and reused by every benchmark, so page faults
// and allocation never land in a timed region, and all kernels see the same memory.
char* buffer(size_t bytes, int index) {
  static std::map<std::pair<size_t, int>, char*> cache;
  char*& p = cache[{bytes, index}];
  if (p == nullptr) {
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    madvise(m, bytes, MADV_HUGEPAGE);
    p = static_cast<char*>(m);
    // Every byte 0x3c: a normal, modest value in every floating type (float16 1.06, bfloat16 and
    // float32 0.0115, float64 1.5e-18), so no kernel runs on subnormals (slow on some CPUs, and
    // slow in the software float16 conversion) and repeated in-place sums stay finite.
    std::memset(p, 0x3c, bytes);
  }
  return p;
}

bool selectIsa(benchmark::State& state, const char* isa) {
  if (ak::detail::setIsaForTesting(isa)) return true;
  state.SkipWithError("this CPU lacks the path");
  return false;
}

void bmMemcpy(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  char* src = buffer(bytes, 0);
  char* dst = buffer(bytes, 1);
  for (auto _ : state) {
    std::memcpy(dst, src, bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 *
                          static_cast<int64_t>(bytes));
}

// dst = a OP b; inPlace: a = a OP b (how ring algorithms call it).
void bmReduce2(benchmark::State& state, const char* isa, trellisDataType_t dt, trellisRedOp_t op,
               bool inPlace) {
  if (!selectIsa(state, isa)) return;
  const size_t bytes = static_cast<size_t>(state.range(0));
  char* a = buffer(bytes, 0);
  char* b = buffer(bytes, 1);
  char* d = inPlace ? a : buffer(bytes, 2);
  const size_t n = bytes / ak::dtypeSize(dt);
  for (auto _ : state) {
    ak::reduce2(d, a, b, n, dt, op);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 3 *
                          static_cast<int64_t>(bytes));
  ak::detail::setIsaForTesting("auto");
}

void bmReduceMany(benchmark::State& state, const char* isa, trellisDataType_t dt, int k) {
  if (!selectIsa(state, isa)) return;
  const size_t bytes = static_cast<size_t>(state.range(0));
  std::vector<const void*> srcs;
  for (int j = 0; j < k; ++j) srcs.push_back(buffer(bytes, j));
  char* d = buffer(bytes, kMaxBuffers - 1);
  const size_t n = bytes / ak::dtypeSize(dt);
  for (auto _ : state) {
    ak::reduceMany(d, srcs.data(), k, n, dt, trellisSum);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * (k + 1) *
                          static_cast<int64_t>(bytes));
  ak::detail::setIsaForTesting("auto");
}

void bmDivide(benchmark::State& state, const char* isa, trellisDataType_t dt) {
  if (!selectIsa(state, isa)) return;
  const size_t bytes = static_cast<size_t>(state.range(0));
  char* d = buffer(bytes, kMaxBuffers - 2);
  const size_t n = bytes / ak::dtypeSize(dt);
  // Dividing the same buffer again and again would drive floats into subnormals and then zero;
  // refill it every 8 calls: 0x78 bytes are 36600 in float16 (5.6 after 3^8), 1e34 in float32.
  // The refill stays in the timed region (Pause/ResumeTiming costs more than a 62-byte divide);
  // it adds one memset per 8 calls, a few percent.
  int sinceRefill = 8;
  for (auto _ : state) {
    if (sinceRefill == 8) {
      std::memset(d, 0x78, bytes);
      sinceRefill = 0;
    }
    ak::divideInPlace(d, n, dt, 3);
    ++sinceRefill;
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 *
                          static_cast<int64_t>(bytes));
  ak::detail::setIsaForTesting("auto");
}

void registerAll() {
  auto sizes = [](benchmark::internal::Benchmark* b) {
    for (int64_t s : kSizes) b->Arg(s);
    b->Unit(benchmark::kMicrosecond);
  };
  sizes(benchmark::RegisterBenchmark("memcpy", bmMemcpy));
  struct Case {
    const char* name;
    trellisDataType_t dt;
    trellisRedOp_t op;
    bool inPlace;
  };
  const Case kCases[] = {
      {"f32_sum", trellisFloat32, trellisSum, false},
      {"f32_sum_inplace", trellisFloat32, trellisSum, true},
      {"f32_max", trellisFloat32, trellisMax, false},
      {"f64_sum", trellisFloat64, trellisSum, false},
      {"f16_sum", trellisFloat16, trellisSum, false},
      {"f16_max", trellisFloat16, trellisMax, false},
      {"bf16_sum", trellisBfloat16, trellisSum, false},
      {"i8_sum", trellisInt8, trellisSum, false},
      {"i32_prod", trellisInt32, trellisProd, false},
      {"i64_sum", trellisInt64, trellisSum, false},
  };
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    for (const Case& c : kCases)
      sizes(benchmark::RegisterBenchmark((std::string("reduce2/") + c.name + "/" + isa).c_str(),
                                         bmReduce2, isa, c.dt, c.op, c.inPlace));
    for (trellisDataType_t dt : {trellisFloat32, trellisFloat16, trellisBfloat16})
      sizes(benchmark::RegisterBenchmark(
          (std::string("reduceMany_k4/") + ak::dtypeName(dt) + "/" + isa).c_str(), bmReduceMany,
          isa, dt, 4));
    for (trellisDataType_t dt : {trellisFloat32, trellisFloat16, trellisInt32})
      sizes(benchmark::RegisterBenchmark(
          (std::string("divide/") + ak::dtypeName(dt) + "/" + isa).c_str(), bmDivide, isa, dt));
  }
}

}  // namespace

int main(int argc, char** argv) {
  registerAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
