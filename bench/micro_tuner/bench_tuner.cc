// What the tuner costs: a cached decision per call (the communicator's path), and a first decision
// (every algorithm and chunk predicted) on a one-host shape and on the 128 x 8 x 8 fat tree; and
// memcpy by size, the machine fact behind the model's cache constants.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "tuner/select.h"

namespace {

using trellis::algos::Coll;
using namespace trellis::tuner;  // NOLINT

Shape shapeOf(bool big) {
  Constants c;
  UniformSpec u;
  if (big) {
    u.nodes = 128;
    u.ranksPerNode = 8;
    u.rails = 8;
    u.nodesPerLeaf = 32;
    u.spineOversub = 2;
    u.gpu = true;
  } else {
    u.ranksPerNode = 4;
    u.coresPerNode = 2;
    u.direct = true;
  }
  return uniformShape(u, c);
}

void BM_SelectCached(benchmark::State& state) {
  Tuner t(shapeOf(state.range(0) != 0), TunerOptions{});
  trellis::algos::CollArgs a;
  a.coll = Coll::kAllReduce;
  a.count = 1 << 18;
  t.select(a);
  for (auto _ : state) benchmark::DoNotOptimize(t.select(a));
}
BENCHMARK(BM_SelectCached)->Arg(0)->Arg(1);

void BM_FirstDecision(benchmark::State& state) {
  const Shape s = shapeOf(state.range(1) != 0);
  const Coll c = static_cast<Coll>(state.range(0));
  for (auto _ : state) {
    Tuner t(s, TunerOptions{});
    benchmark::DoNotOptimize(t.decide(c, 16 << 20));
  }
  state.SetLabel(trellis::algos::collName(c));
}
BENCHMARK(BM_FirstDecision)
    ->ArgsProduct({{static_cast<int>(Coll::kAllReduce), static_cast<int>(Coll::kAlltoAll),
                    static_cast<int>(Coll::kAllGather)},
                   {0, 1}})
    ->Unit(benchmark::kMillisecond);

// memcpy by buffer size: the cache regimes behind host.cache_speedup and host.stream_factor.
void BM_MemcpyFootprint(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::vector<char> a(n, 1), b(n, 2);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}
BENCHMARK(BM_MemcpyFootprint)->RangeMultiplier(4)->Range(128 << 10, 64 << 20);

}  // namespace

BENCHMARK_MAIN();
