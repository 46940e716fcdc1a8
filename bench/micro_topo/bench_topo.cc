// Topology micro-benchmarks: detecting this machine (sysfs walk alone, and with hwloc + NVML as
// trellisTopoDetect does), parsing each fixture format, and the all-pairs path matrix.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "topo/hwloc_xml.h"
#include "topo/nccl_xml.h"
#include "topo/paths.h"
#include "topo/smi_matrix.h"
#include "topo/sysfs.h"

namespace fs = std::filesystem;
using namespace trellis::topo;  // NOLINT

namespace {

std::string fixture(const std::string& rel) {
  std::string p = std::string(TRELLIS_SOURCE_DIR) + "/../shared/fixtures/" + rel;
  if (!fs::exists(p)) p = "/work/shared/fixtures/" + rel;
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void BM_DetectSysfs(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(detectFromSysfs(""));
}
BENCHMARK(BM_DetectSysfs)->Unit(benchmark::kMillisecond);

void BM_DetectLocalSystem(benchmark::State& st) {  // sysfs + hwloc CPUs + NVML (absent here)
  for (auto _ : st) benchmark::DoNotOptimize(detectLocalSystem());
}
BENCHMARK(BM_DetectLocalSystem)->Unit(benchmark::kMillisecond);

void BM_ParseNcclXml(benchmark::State& st, const char* name) {
  std::string text = fixture(std::string("nccl-topo/") + name);
  for (auto _ : st) benchmark::DoNotOptimize(fromNcclXml(text, name));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * text.size()));
}
BENCHMARK_CAPTURE(BM_ParseNcclXml, ndv5, "azure-ndv5-h100.xml")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ParseNcclXml, ibm_full, "ibm-gx3d-8xh100-full-dump.xml")->Unit(benchmark::kMicrosecond);

void BM_ParseHwlocDgx2(benchmark::State& st) {
  std::string text = fixture("real-topo/hwloc-nvidia-dgx2.xml");
  for (auto _ : st) benchmark::DoNotOptimize(fromHwlocXml(text, "dgx2"));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * text.size()));
}
BENCHMARK(BM_ParseHwlocDgx2)->Unit(benchmark::kMicrosecond);

void BM_ParseSmiMatrix(benchmark::State& st) {
  std::string text = fixture("real-topo/nvidia-smi-topo-m-8xH100.txt");
  for (auto _ : st) benchmark::DoNotOptimize(fromSmiMatrix(text, "h100"));
}
BENCHMARK(BM_ParseSmiMatrix)->Unit(benchmark::kMicrosecond);

void BM_JsonRoundTrip(benchmark::State& st) {
  System s = fromNcclXml(fixture("nccl-topo/ibm-gx3d-8xh100-full-dump.xml"), "ibm").value();
  for (auto _ : st) benchmark::DoNotOptimize(fromJson(toJson(s), "ibm.json"));
}
BENCHMARK(BM_JsonRoundTrip)->Unit(benchmark::kMicrosecond);

void BM_PathMatrixAndRails(benchmark::State& st) {  // 16 GPUs + 12 NVSwitches: every pair, then rails
  System s = fromHwlocXml(fixture("real-topo/hwloc-nvidia-dgx2.xml"), "dgx2").value();
  for (auto _ : st) {
    for (const Node& a : s.nodes)
      for (const Node& b : s.nodes) benchmark::DoNotOptimize(pathBetween(s, a.id, b.id));
    benchmark::DoNotOptimize(computeRails(s));
  }
}
BENCHMARK(BM_PathMatrixAndRails)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
