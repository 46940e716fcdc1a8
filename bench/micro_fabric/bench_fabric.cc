// Cluster fabric microbenchmarks: parsing the 299 KB SuperPOD ibnetdiscover dump (target < 200 ms),
// the rail analysis, and the emitters. The file is read once; only the in-memory work is timed.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "topo/fabric/fabric.h"
#include "topo/fabric/text_util.h"

namespace fab = trellis::topo::fabric;

namespace {

const std::string& fixtureText() {
  static const std::string text = [] {
    std::string path = std::string(TRELLIS_SOURCE_DIR) +
                       "/../shared/fixtures/real-topo/ibnetdiscover-dgx-h100-superpod.out";
    if (!std::filesystem::exists(path))
      path = "/work/shared/fixtures/real-topo/ibnetdiscover-dgx-h100-superpod.out";
    auto r = fab::readTextFile(path);
    if (!r.isOk()) {
      std::fprintf(stderr, "%s\n", r.status().toString().c_str());
      std::abort();
    }
    return std::move(r).value();
  }();
  return text;
}

const fab::Fabric& fixtureFabric() {
  static const fab::Fabric f = [] {
    auto r = fab::parseIbnetdiscover(fixtureText(), "superpod.out");
    if (!r.isOk()) std::abort();
    return std::move(r).value();
  }();
  return f;
}

void BM_ParseIbnetdiscover(benchmark::State& state) {
  const std::string& text = fixtureText();
  for (auto _ : state) {
    auto r = fab::parseIbnetdiscover(text, "superpod.out");
    if (!r.isOk()) state.SkipWithError(r.status().message().c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_ParseIbnetdiscover)->Unit(benchmark::kMillisecond);

void BM_ParseAndAnalyze(benchmark::State& state) {
  const std::string& text = fixtureText();
  for (auto _ : state) {
    auto r = fab::parseIbnetdiscover(text, "superpod.out");
    fab::Analysis a = fab::analyze(*r);
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_ParseAndAnalyze)->Unit(benchmark::kMillisecond);

void BM_Analyze(benchmark::State& state) {
  const fab::Fabric& f = fixtureFabric();
  for (auto _ : state) {
    fab::Analysis a = fab::analyze(f);
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_Analyze)->Unit(benchmark::kMicrosecond);

void BM_Emit(benchmark::State& state, const char* format) {
  const fab::Fabric& f = fixtureFabric();
  fab::Analysis a = fab::analyze(f);
  for (auto _ : state) {
    auto out = fab::emit(f, a, format);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK_CAPTURE(BM_Emit, slurm_tree, "slurm-tree")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Emit, volcano, "volcano")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Emit, json, "json")->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
