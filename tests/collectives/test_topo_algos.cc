// The topology-aware algorithms (hier, topo_ring, rail) against the double-precision reference on
// emulated hosts with uneven layouts: 3 nodes x 3 ranks (contiguous and interleaved rank numbers),
// nodes with different rank counts, one rank per node, one node, and nodes whose topology file
// pairs local rank i with rail 1-i (slots differ from local ranks). Forced through TRELLIS_ALGO and
// chosen automatically; ranks as threads (and as processes for one layout).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "../support/harness.h"
#include "cases.h"
#include "core/params.h"
#include "trellis/topology.h"

namespace trellis::test {
namespace {

const int kEnvInit =
    (setenv("TRELLIS_TIMEOUT_S", "60", 0), setenv("TRELLIS_BOOTSTRAP_TIMEOUT_S", "30", 0), 0);

// Two GPUs and two NICs, each pair under its own PCIe switch. `crossed`: the first GPU's switch
// holds the second NIC (GPU 0 -> rail 1, GPU 1 -> rail 0).
std::string writeTopology(bool crossed) {
  const char* straight =
      R"({"format": "trellis-topology", "version": 1, "hostname": "emu", "nodes": [
    {"id": 0, "kind": "cpu", "parent": -1, "numa": 0},
    {"id": 1, "kind": "pci-switch", "parent": 0, "busid": "0000:10:00.0"},
    {"id": 2, "kind": "gpu", "parent": 1, "busid": "0000:11:00.0", "dev": 0, "sm": 90},
    {"id": 3, "kind": "nic", "parent": 1, "busid": "0000:12:00.0", "ports": [{"name": "emu_r0", "netdev": "emu_r0"}]},
    {"id": 4, "kind": "pci-switch", "parent": 0, "busid": "0000:20:00.0"},
    {"id": 5, "kind": "gpu", "parent": 4, "busid": "0000:21:00.0", "dev": 1, "sm": 90},
    {"id": 6, "kind": "nic", "parent": 4, "busid": "0000:22:00.0", "ports": [{"name": "emu_r1", "netdev": "emu_r1"}]}]})";
  const char* cross = R"({"format": "trellis-topology", "version": 1, "hostname": "emu", "nodes": [
    {"id": 0, "kind": "cpu", "parent": -1, "numa": 0},
    {"id": 1, "kind": "pci-switch", "parent": 0, "busid": "0000:10:00.0"},
    {"id": 2, "kind": "gpu", "parent": 1, "busid": "0000:11:00.0", "dev": 0, "sm": 90},
    {"id": 3, "kind": "pci-switch", "parent": 0, "busid": "0000:20:00.0"},
    {"id": 4, "kind": "gpu", "parent": 3, "busid": "0000:21:00.0", "dev": 1, "sm": 90},
    {"id": 5, "kind": "nic", "parent": 3, "busid": "0000:22:00.0", "ports": [{"name": "emu_r0", "netdev": "emu_r0"}]},
    {"id": 6, "kind": "nic", "parent": 1, "busid": "0000:12:00.0", "ports": [{"name": "emu_r1", "netdev": "emu_r1"}]}]})";
  // Per process: ctest runs other cases of this file at the same time, and a shared path was
  // truncated by one while another's ranks read it ("empty file").
  std::string path = ::testing::TempDir() + (crossed ? "trellis_topo_crossed." : "trellis_topo_rails.") +
                     std::to_string(getpid()) + ".json";
  std::ofstream(path) << (crossed ? cross : straight);
  return path;
}

// One GPU-less node with two NICs whose interface is the loopback (so both have an address here).
std::string writeLoopbackTopology() {
  const char* text = R"({"format": "trellis-topology", "version": 1, "hostname": "lo2", "nodes": [
    {"id": 0, "kind": "cpu", "parent": -1, "numa": 0},
    {"id": 1, "kind": "nic", "parent": 0, "busid": "0000:12:00.0", "ports": [{"name": "lo_a", "netdev": "lo"}]},
    {"id": 2, "kind": "nic", "parent": 0, "busid": "0000:22:00.0", "ports": [{"name": "lo_b", "netdev": "lo"}]}]})";
  std::string path = ::testing::TempDir() + "trellis_topo_loopback2.json";
  std::ofstream(path) << text;
  return path;
}

struct Layout {
  const char* name;
  std::vector<int> hostOf;
  int topo;  // 0 detection, 1 two rails, 2 two crossed rails
};

const Layout kLayouts[] = {
    {"nodes3x3", {0, 0, 0, 1, 1, 1, 2, 2, 2}, 1},
    {"nodes3x3_interleaved", {0, 1, 2, 2, 0, 1, 1, 2, 0}, 1},
    {"uneven_2_3_1", {0, 0, 1, 1, 1, 2}, 1},
    {"uneven_1_4_2", {0, 1, 1, 1, 1, 2, 2}, 2},
    {"one_per_node4", {0, 1, 2, 3}, 1},
    {"nodes4x2_rails", {0, 0, 1, 1, 2, 2, 3, 3}, 1},
    {"nodes2x4_crossed", {0, 0, 0, 0, 1, 1, 1, 1}, 2},
    {"nodes2x3_detected", {0, 0, 0, 1, 1, 1}, 0},
    {"one_node3", {0, 0, 0}, 1},
};

std::vector<Case> topoCases(int nranks, const std::vector<size_t>& counts) {
  std::vector<Case> out;
  const CollKind reductions[] = {CollKind::kAllReduce, CollKind::kReduceScatter, CollKind::kReduce};
  const CollKind movement[] = {CollKind::kAllGather, CollKind::kBroadcast, CollKind::kAlltoAll};
  for (size_t count : counts) {
    for (CollKind k : reductions)
      for (trellisDataType_t dt : {trellisInt32, trellisFloat32, trellisFloat16})
        for (trellisRedOp_t op : {trellisSum, trellisMax, trellisAvg})
          for (bool ip : {false, true})
            out.push_back(
                {k, dt, op, count, ip, static_cast<int>((out.size() * 5 + count) % nranks)});
    for (CollKind k : movement)
      for (trellisDataType_t dt : {trellisUint8, trellisFloat64})
        for (bool ip : {false, true})
          if (!(ip && k == CollKind::kAlltoAll))
            out.push_back({k, dt, trellisSum, count, ip,
                           static_cast<int>((out.size() * 5 + count) % nranks)});
  }
  // Large enough for every inner algorithm of hier AllReduce (slices past 256 KiB and 1 MiB).
  for (size_t count : {size_t{200003}, size_t{600011}})
    for (bool ip : {false, true}) {
      out.push_back({CollKind::kAllReduce, trellisFloat32, trellisSum, count, ip, 0});
      out.push_back({CollKind::kAllReduce, trellisInt32, trellisMax, count, ip, 0});
    }
  return out;
}

std::string runAll(trellisComm_t comm, int rank, int n, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    std::string e = runCase(comm, rank, n, c);
    if (!e.empty()) return e;
  }
  return "";
}

struct Param {
  const Layout* layout;
  const char* spec;  // TRELLIS_ALGO ("" automatic)
  RankMode mode;
};

class TopoAlgoTest : public ::testing::TestWithParam<Param> {};

TEST_P(TopoAlgoTest, MatchesReference) {
  const Param p = GetParam();
  const int n = static_cast<int>(p.layout->hostOf.size());
  std::vector<std::string> files;
  if (p.layout->topo != 0) files.assign(n, writeTopology(p.layout->topo == 2));
  ASSERT_TRUE(findParam("TRELLIS_ALGO")->setOverride(p.spec).isOk());
  auto cases = topoCases(n, {0, 1, 7, 1023, 65539});
  std::string err = runRanksOnHosts(
      p.layout->hostOf, p.mode,
      [&](trellisComm_t c, int r, int nr) { return runAll(c, r, nr, cases); }, files);
  EXPECT_TRUE(findParam("TRELLIS_ALGO")->setOverride("").isOk());
  if (!files.empty()) std::remove(files[0].c_str());
  EXPECT_EQ(err, "") << p.layout->name << " " << p.spec << ": " << cases.size() << " cases";
}

const char* const kHier =
    "allreduce:hier,reducescatter:hier,allgather:hier,broadcast:hier,reduce:hier,alltoall:rail";
const char* const kRing = "allreduce:topo_ring,reducescatter:topo_ring,allgather:topo_ring";

std::vector<Param> params() {
  std::vector<Param> out;
  for (const Layout& l : kLayouts)
    for (const char* spec : {kHier, kRing, ""}) out.push_back({&l, spec, RankMode::kThreads});
  out.push_back({&kLayouts[3], kHier, RankMode::kProcesses});
  return out;
}

std::string paramName(const ::testing::TestParamInfo<Param>& info) {
  const Param& p = info.param;
  std::string spec = p.spec == kHier ? "hier" : p.spec == kRing ? "topo_ring" : "auto";
  return std::string(p.layout->name) + "_" + spec + "_" + modeName(p.mode);
}

INSTANTIATE_TEST_SUITE_P(Layouts, TopoAlgoTest, ::testing::ValuesIn(params()), paramName);

// The cluster view through the C API: 2 nodes x 2 ranks, GPU 0 paired with rail 1 (crossed).
TEST(ClusterViewApi, PlacementAndJson) {
  std::vector<int> hosts = {0, 1, 0, 1};
  std::vector<std::string> files(4, writeTopology(true));
  std::string err = runRanksOnHosts(
      hosts, RankMode::kThreads,
      [&](trellisComm_t c, int rank, int n) -> std::string {
        std::string where = "rank " + std::to_string(rank) + ": ";
        for (int r = 0; r < n; ++r) {
          trellisRankPlacement_t p;
          p.size = sizeof p;
          if (trellisCommGetRankPlacement(c, r, &p) != trellisSuccess)
            return where + trellisGetLastError(c);
          const int wantRail = (r / 2) == 0 ? 1 : 0;  // local rank 0 -> GPU 0 -> rail 1
          if (p.node != r % 2 || p.nnodes != 2 || p.localRank != r / 2 || p.localSize != 2 ||
              p.rail != wantRail || p.nrails != 1 || p.gpu != r / 2 || p.numa != 0 ||
              std::string(p.nic) != "emu_r" + std::to_string(wantRail) ||
              std::string(p.host) != "emu")
            return where + "placement of rank " + std::to_string(r) + ": node " +
                   std::to_string(p.node) + " local " + std::to_string(p.localRank) + " rail " +
                   std::to_string(p.rail) + " nic " + p.nic;
        }
        trellisRankPlacement_t bad;
        bad.size = sizeof bad;
        if (trellisCommGetRankPlacement(c, n, &bad) != trellisInvalidArgument)
          return where + "rank n accepted";
        size_t needed = 0;
        if (trellisCommClusterViewJson(c, nullptr, 0, &needed) != trellisSuccess || needed < 10)
          return where + "JSON size";
        std::string j(needed, '\0');
        if (trellisCommClusterViewJson(c, j.data(), j.size(), &needed) != trellisSuccess)
          return where + "JSON";
        if (j.find("\"trellis-cluster-view\"") == std::string::npos ||
            j.find("\"warnings\": []") == std::string::npos)
          return where + "JSON: " + j;
        return "";
      },
      files);
  EXPECT_EQ(err, "");
}

// One rank per node on nodes with two rail NICs: each rank takes both rails and the TCP transport
// listens on both NICs and stripes over them (one socket per peer asked for, two made).
TEST(MultiNic, StripedOverTwoNics) {
  ASSERT_TRUE(findParam("TRELLIS_SOCKET_IFNAME")->setOverride("=lo").isOk());
  ASSERT_TRUE(findParam("TRELLIS_SOCKETS_PER_PEER")->setOverride("1").isOk());
  std::vector<std::string> files(3, writeLoopbackTopology());
  std::vector<Case> cases;
  for (bool ip : {false, true}) {
    cases.push_back({CollKind::kAllReduce, trellisFloat32, trellisSum, (1u << 20) + 3, ip, 0});
    cases.push_back({CollKind::kBroadcast, trellisInt32, trellisSum, 300007, ip, 2});
  }
  cases.push_back({CollKind::kAlltoAll, trellisFloat64, trellisSum, 100003, false, 0});
  std::string err = runRanksOnHosts(
      {0, 1, 2}, RankMode::kThreads,
      [&](trellisComm_t c, int rank, int n) -> std::string {
        trellisRankPlacement_t p;
        p.size = sizeof p;
        if (trellisCommGetRankPlacement(c, rank, &p) != trellisSuccess || p.nrails != 2 || p.rail != 0)
          return "rank " + std::to_string(rank) + ": expected rails 0 and 1, got " +
                 std::to_string(p.nrails) + " from " + std::to_string(p.rail);
        return runAll(c, rank, n, cases);
      },
      files);
  EXPECT_TRUE(findParam("TRELLIS_SOCKET_IFNAME")->setOverride("").isOk());
  EXPECT_TRUE(findParam("TRELLIS_SOCKETS_PER_PEER")->setOverride("").isOk());
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace trellis::test
