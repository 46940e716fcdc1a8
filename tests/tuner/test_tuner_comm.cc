// The tuner inside communicators: calibration at creation (TRELLIS_TUNER_CALIBRATE=1) over shared
// memory, TCP and two emulated hosts, with every rank ending with the same constants and so the same
// decisions; per-call chunk sizes from TRELLIS_TUNE keep results exact; a bad TRELLIS_TUNE fails
// communicator creation naming the token.
#include <gtest/gtest.h>

#include <fstream>
#include <mutex>

#include "../support/harness.h"
#include "api/comm.h"
#include "cases.h"
#include "core/params.h"

namespace trellis::test {
namespace {

const int kEnvInit = (setenv("TRELLIS_TIMEOUT_S", "60", 0), setenv("TRELLIS_BOOTSTRAP_TIMEOUT_S", "30", 0), 0);

// The decisions of one communicator for a fixed list of calls, as text.
std::string decisions(trellisComm_t comm) {
  std::string out;
  for (algos::Coll c : {algos::Coll::kAllReduce, algos::Coll::kBroadcast, algos::Coll::kReduce,
                        algos::Coll::kAllGather, algos::Coll::kReduceScatter, algos::Coll::kAlltoAll})
    for (size_t count : {size_t{1}, size_t{1000}, size_t{100000}, size_t{3000000}}) {
      algos::CollArgs a;
      a.coll = c;
      a.count = count;
      tuner::Decision d = comm->tuner().select(a);
      out += formatString("%s:%zu:%s:%zu ", algos::collName(c), count, d.algo ? d.algo->name : "-", d.chunkBytes);
    }
  return out;
}

struct ParamGuard {
  ParamGuard(const char* name, const char* value) : p(findParam(name)) {
    EXPECT_NE(p, nullptr) << name;
    if (p) {
      EXPECT_TRUE(p->setOverride(value).isOk());
    }
  }
  ~ParamGuard() {
    if (p) {
      EXPECT_TRUE(p->setOverride("").isOk());
    }
  }
  ParamBase* p;
};

class CalibrationTest : public ::testing::TestWithParam<Wire> {};

TEST_P(CalibrationTest, EveryRankDecidesAlikeAndResultsAreExact) {
  ParamGuard calibrate("TRELLIS_TUNER_CALIBRATE", "1");
  const int n = 4;
  std::mutex mu;
  std::vector<std::string> seen(n);
  auto cases = crossSection(n, {1023, 100003});
  std::string err = runRanksOver(GetParam(), n, RankMode::kThreads, [&](trellisComm_t c, int r, int nr) {
    {
      std::lock_guard<std::mutex> l(mu);
      seen[r] = decisions(c);
    }
    for (const Case& k : cases) {
      std::string e = runCase(c, r, nr, k);
      if (!e.empty()) return e;
    }
    return std::string();
  });
  EXPECT_EQ(err, "");
  for (int r = 1; r < n; ++r) EXPECT_EQ(seen[r], seen[0]) << "rank " << r;
  EXPECT_FALSE(seen[0].empty());
}

INSTANTIATE_TEST_SUITE_P(Wires, CalibrationTest, ::testing::Values(Wire::kShm, Wire::kTcp, Wire::kMixed),
                         [](const ::testing::TestParamInfo<Wire>& i) { return std::string(wireName(i.param)); });

TEST(TuneInComm, PerCallChunksStayExact) {
  ParamGuard tune("TRELLIS_TUNE",
                  "allreduce:@ring:chunk=64k#allreduce:1M-inf:@rabenseifner:chunk=1M#reducescatter:@ring:chunk=128k#"
                  "broadcast:@binomial:chunk=16k#reduce:@binomial:0-64k:chunk=2M");
  for (Wire w : {Wire::kShm, Wire::kTcp}) {
    const int n = w == Wire::kShm ? 5 : 3;
    auto cases = crossSection(n, {7, (1u << 18) + 3});
    std::string err = runRanksOver(w, n, RankMode::kThreads, [&](trellisComm_t c, int r, int nr) {
      for (const Case& k : cases) {
        std::string e = runCase(c, r, nr, k);
        if (!e.empty()) return e;
      }
      return std::string();
    });
    EXPECT_EQ(err, "") << wireName(w);
  }
}

// Two emulated hosts whose topology gives each of their two rail NICs 400 Mbit/s and whose fabric
// puts 4 hosts under each rail's leaf with one uplink (4:1): the tuner's shape says so on every
// rank, and an AlltoAll goes rail to rail.
TEST(TuneInComm, NetworkFactsFromTopologyAndFabricFiles) {
  const std::string topo = ::testing::TempDir() + "trellis_tuner_topo.json";
  std::ofstream(topo) << R"({"format": "trellis-topology", "version": 1, "hostname": "emu", "nodes": [
    {"id": 0, "kind": "cpu", "parent": -1, "numa": 0},
    {"id": 1, "kind": "pci-switch", "parent": 0, "busid": "0000:10:00.0"},
    {"id": 2, "kind": "gpu", "parent": 1, "busid": "0000:11:00.0", "dev": 0, "sm": 90},
    {"id": 3, "kind": "nic", "parent": 1, "busid": "0000:12:00.0", "ports": [{"name": "mlx5_0", "netdev": "emu_r0", "speed_mbps": 400}]},
    {"id": 4, "kind": "pci-switch", "parent": 0, "busid": "0000:20:00.0"},
    {"id": 5, "kind": "gpu", "parent": 4, "busid": "0000:21:00.0", "dev": 1, "sm": 90},
    {"id": 6, "kind": "nic", "parent": 4, "busid": "0000:22:00.0", "ports": [{"name": "mlx5_1", "netdev": "emu_r1", "speed_mbps": 400}]}]})";
  const std::string fabric = ::testing::TempDir() + "trellis_tuner_fabric.json";
  std::ofstream(fabric) << R"({"format": "trellis-cluster", "version": 1, "link": "4xNDR", "spines": ["spine1"],
    "leaves": [{"name": "rail[0-1]", "uplinks": ["spine1"]}],
    "nodes": [{"name": "emu", "leaves": ["rail[0-1]"]}, {"name": "other[1-3]", "leaves": ["rail[0-1]"]}]})";
  ParamGuard fab("TRELLIS_FABRIC_FILE", fabric.c_str());
  std::mutex mu;
  std::vector<std::string> seen(4);
  auto cases = crossSection(4, {1023});
  std::string err = runRanksOnHosts(
      {0, 0, 1, 1}, RankMode::kThreads,
      [&](trellisComm_t c, int r, int nr) {
        const tuner::Shape& s = c->tuner().shape();
        algos::CollArgs a;
        a.coll = algos::Coll::kAlltoAll;
        a.count = 1 << 20;
        tuner::Decision d = c->tuner().select(a);
        {
          std::lock_guard<std::mutex> l(mu);
          seen[r] = formatString("nic %.4g oversub %g rails %d alltoall %s", s.net.bytesPerS, s.spineOversub,
                                 s.railsPerNode, d.algo ? d.algo->name : "-");
        }
        for (const Case& k : cases) {
          std::string e = runCase(c, r, nr, k);
          if (!e.empty()) return e;
        }
        return std::string();
      },
      {topo, topo, topo, topo});
  EXPECT_EQ(err, "");
  for (int r = 0; r < 4; ++r)
    EXPECT_EQ(seen[r], formatString("nic %.4g oversub 4 rails 2 alltoall rail", 400e6 / 8 * 0.96)) << "rank " << r;
}

TEST(TuneInComm, BadTuneStringFailsCreation) {
  ParamGuard tune("TRELLIS_TUNE", "allreduce:0-64k:@rhdx");
  std::string err = runRanks(2, RankMode::kThreads, [](trellisComm_t, int, int) { return std::string(); });
  EXPECT_NE(err.find("at position 16 ('@rhdx')"), std::string::npos) << err;
}

}  // namespace
}  // namespace trellis::test
