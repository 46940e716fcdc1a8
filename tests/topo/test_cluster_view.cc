// ClusterView: grouping by host, rail assignment, slot and ring orders, digests on the wire, and
// the rail-consistency warnings, all without a communicator.
#include <gtest/gtest.h>

#include <cstring>

#include "topo/cluster_view.h"
#include "topo/fabric/fabric.h"
#include "topo/sysfs.h"

namespace trellis::topo {
namespace {

std::string fixture(const std::string& name) {
  for (const char* base :
       {"/work/shared/fixtures/nccl-topo/", TRELLIS_SOURCE_DIR "/../shared/fixtures/nccl-topo/"}) {
    std::string p = std::string(base) + name;
    if (FILE* f = std::fopen(p.c_str(), "r")) {
      std::fclose(f);
      return p;
    }
  }
  return std::string(TRELLIS_SOURCE_DIR) + "/../shared/fixtures/nccl-topo/" + name;
}

LocalTopology twoRails(const std::string& host, const std::string& nic0 = "mlx5_0",
                       const std::string& nic1 = "mlx5_1") {
  LocalTopology t;
  t.known = true;
  t.host = host;
  t.nics = {nic0, nic1};
  t.netdevs = {"", ""};
  t.leaves = {"", ""};
  t.leafRail = {-1, -1};
  return t;
}

TEST(ClusterView, SyntheticUniformLayout) {
  ClusterView v = ClusterView::synthetic({2, 2, 2, 2}, 2);
  ASSERT_EQ(v.nranks(), 8);
  ASSERT_EQ(v.nnodes(), 4);
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ(v.nodeOf(r), r / 2) << r;
    EXPECT_EQ(v.ranks[r].localRank, r % 2) << r;
    EXPECT_EQ(v.railOf(r), r % 2) << r;
    EXPECT_EQ(v.ranks[r].nic, "nic" + std::to_string(r % 2));
  }
  EXPECT_TRUE(v.warnings.empty()) << v.describe();
  EXPECT_EQ(v.maxLocal(), 2);
  EXPECT_EQ(v.minLocal(), 2);
  // Every other node reversed: each hop between nodes stays on one rail.
  EXPECT_EQ(v.ringOrder(), (std::vector<int>{0, 1, 3, 2, 4, 5, 7, 6}));
  std::vector<int> ring = v.ringOrder();
  for (size_t i = 0; i < ring.size(); ++i) {
    int a = ring[i], b = ring[(i + 1) % ring.size()];
    if (v.nodeOf(a) != v.nodeOf(b)) {
      EXPECT_EQ(v.railOf(a), v.railOf(b)) << a << "->" << b;
    }
  }
}

TEST(ClusterView, UnevenNodesAndStriping) {
  // Ranks 0,1,2 on host A; 3,4 on B; 5 alone on C; interleaved host ids keep first-rank order.
  std::vector<uint64_t> hosts = {7, 7, 9, 7, 9, 3};
  std::vector<LocalTopology> locals(6, twoRails("x"));
  ClusterView v = ClusterView::build(hosts, locals);
  ASSERT_EQ(v.nnodes(), 3);
  EXPECT_EQ(v.nodes[0].ranks, (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(v.nodes[1].ranks, (std::vector<int>{2, 4}));
  EXPECT_EQ(v.nodes[2].ranks, (std::vector<int>{5}));
  EXPECT_EQ(v.ranks[3].localRank, 2);
  EXPECT_EQ(v.ranks[3].rail, 0);  // 3 ranks on 2 rails: local rank 2 shares rail 0
  EXPECT_EQ(v.ranks[1].rail, 1);
  // A node with fewer ranks than rails stripes its only rank over both.
  EXPECT_EQ(v.ranks[5].rails, (std::vector<int>{0, 1}));
  EXPECT_EQ(v.slots(0), (std::vector<int>{0, 3, 1}));
  EXPECT_EQ(v.maxLocal(), 3);
  EXPECT_EQ(v.minLocal(), 1);
  std::vector<int> ring = v.ringOrder();
  std::vector<int> sorted = ring;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

TEST(ClusterView, AssignRailsFollowsGpus) {
  EXPECT_EQ(assignRails(0, 2, 2, {1, 0}), (std::vector<int>{1}));
  EXPECT_EQ(assignRails(1, 2, 2, {1, 0}), (std::vector<int>{0}));
  EXPECT_EQ(assignRails(5, 8, 4, {0, 0, 1, 1, 2, 2, 3, 3}),
            (std::vector<int>{2}));  // p4d: 2 GPUs per NIC
  EXPECT_EQ(assignRails(1, 3, 8, {}), (std::vector<int>{1, 4, 7}));
  EXPECT_TRUE(assignRails(0, 4, 0, {}).empty());
  EXPECT_EQ(assignRails(3, 4, 2, {-1, -1, -1, -1}), (std::vector<int>{1}));
}

TEST(ClusterView, DigestRoundTripAndValidation) {
  LocalTopology t = twoRails("dgx-001");
  t.gpuRail = {0, 1, 0, 1};
  t.leaves = {"leaf-r0-su1", "leaf-r1-su1"};
  t.leafRail = {0, 1};
  t.leafGroup = "su01";
  RankDigest d = toDigest(42, t);
  uint64_t host = 0;
  Result<LocalTopology> back = fromDigest(d, 3, &host);
  ASSERT_TRUE(back.isOk()) << back.status().message();
  EXPECT_EQ(host, 42u);
  EXPECT_TRUE(back->known);
  EXPECT_EQ(back->host, "dgx-001");
  EXPECT_EQ(back->nics, t.nics);
  EXPECT_EQ(back->gpuRail, t.gpuRail);
  EXPECT_EQ(back->leaves, t.leaves);
  EXPECT_EQ(back->leafRail, t.leafRail);
  EXPECT_EQ(back->leafGroup, "su01");
  // Names longer than their field are truncated, not overflowed.
  t.host = std::string(200, 'h');
  RankDigest d2 = toDigest(1, t);
  EXPECT_EQ(fromDigest(d2, 0, &host)->host.size(), sizeof(d2.host) - 1);
  RankDigest bad = d;
  bad.magic = 0;
  Result<LocalTopology> r = fromDigest(bad, 5, &host);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("rank 5"), std::string::npos) << r.status().message();
  bad = d;
  bad.nrails = 99;
  r = fromDigest(bad, 6, &host);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("99 rails"), std::string::npos) << r.status().message();
}

TEST(ClusterView, RailConsistencyWarningsNameTheNode) {
  std::vector<uint64_t> hosts = {1, 2, 3, 4};
  std::vector<LocalTopology> locals = {twoRails("n1"), twoRails("n2"),
                                       twoRails("n3", "mlx5_0", "mlx5_7"), twoRails("n4")};
  locals[3].nics.pop_back();
  locals[3].netdevs.pop_back();
  locals[3].leaves.pop_back();
  locals[3].leafRail.pop_back();
  locals[1].leaves = {"leafA", "leafB"};
  locals[1].leafRail = {1, 1};  // NIC 0 cabled to the rail-1 leaf
  ClusterView v = ClusterView::build(hosts, locals);
  std::string all;
  for (const auto& w : v.warnings) all += w + "\n";
  EXPECT_EQ(v.warnings.size(), 3u) << all;
  EXPECT_NE(all.find("node 3 (n4, rank 3) has 1 rail NIC(s) [mlx5_0] but 3 of 4 nodes have 2"),
            std::string::npos)
      << all;
  EXPECT_NE(
      all.find("node 2 (n3, rank 2): NIC 1 is 'mlx5_7' but 2 node(s) have 'mlx5_1' on rail 1"),
      std::string::npos)
      << all;
  EXPECT_NE(all.find("node 1 (n2, rank 1): NIC 0 (mlx5_0) is cabled to leaf leafA, which serves "
                     "rail 1, not rail 0"),
            std::string::npos)
      << all;
  EXPECT_NE(v.describe().find("warning: "), std::string::npos);
  std::string j = v.toJson();
  EXPECT_NE(j.find("\"format\": \"trellis-cluster-view\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"mlx5_7\""), std::string::npos) << j;
  EXPECT_NE(j.find("is cabled to leaf leafA"), std::string::npos) << j;
}

TEST(ClusterView, UnknownTopologyOnSomeNodes) {
  LocalTopology unknown;
  ClusterView v = ClusterView::build({1, 2}, {twoRails("a"), unknown});
  ASSERT_EQ(v.warnings.size(), 1u);
  EXPECT_NE(v.warnings[0].find("node 1 (?, rank 1): topology unknown"), std::string::npos)
      << v.warnings[0];
  EXPECT_EQ(v.railOf(1), -1);
  EXPECT_TRUE(v.railsKnown());
  ClusterView none = ClusterView::build({1, 2}, {unknown, unknown});
  EXPECT_TRUE(none.warnings.empty());
  EXPECT_FALSE(none.railsKnown());
  EXPECT_EQ(none.ringOrder(), (std::vector<int>{0, 1}));
}

TEST(ClusterView, SummarizeRealMachine) {
  Result<System> s = loadTopologyFile(fixture("azure-ndv5-h100.xml"));
  ASSERT_TRUE(s.isOk()) << s.status().message();
  LocalTopology t = summarize(*s);
  ASSERT_EQ(t.nics.size(), 8u);
  ASSERT_EQ(t.gpuRail.size(), 8u);
  for (int g = 0; g < 8; ++g) EXPECT_EQ(t.gpuRail[g], g);  // GPU i paired with NIC i
  // Eight ranks per node: rank i on rail i; one rank per node: every rail.
  std::vector<uint64_t> hosts(8, 1);
  ClusterView v = ClusterView::build(hosts, std::vector<LocalTopology>(8, t));
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ(v.railOf(r), r);
    EXPECT_EQ(v.ranks[r].gpu, r);
    EXPECT_EQ(v.ranks[r].numa, r < 4 ? 0 : 1) << r;  // ND H100 v5: GPUs 0-3 on NUMA 0, 4-7 on 1
  }
  ClusterView one = ClusterView::build({1, 2}, {t, t});
  EXPECT_EQ(one.ranks[0].rails.size(), 8u);
  // p4d: 8 GPUs share 4 EFA NICs, two GPUs per NIC.
  Result<System> p4d = loadTopologyFile(fixture("aws-p4d.24xlarge-a100.xml"));
  ASSERT_TRUE(p4d.isOk()) << p4d.status().message();
  LocalTopology tp = summarize(*p4d);
  ASSERT_EQ(tp.nics.size(), 4u);
  std::vector<int> perRail(4, 0);
  for (int g : tp.gpuRail) {
    ASSERT_GE(g, 0);
    ++perRail[g];
  }
  EXPECT_EQ(perRail, (std::vector<int>{2, 2, 2, 2}));
}

TEST(ClusterView, LeavesFromAClusterFile) {
  // Two scalable units; a4's cables are swapped between its unit's rail-0 and rail-1 leaves.
  const char* text = R"({
    "format": "trellis-cluster", "version": 1,
    "spines": [{"name": "spine1"}],
    "leaves": [{"name": "suA-r[0-1]", "uplinks": ["spine1"]}, {"name": "suB-r[0-1]", "uplinks": ["spine1"]}],
    "nodes": [{"name": "a[1-3]", "leaves": ["suA-r[0-1]"]},
              {"name": "a4", "leaves": ["suA-r1", "suA-r0"]},
              {"name": "b[1-3]", "leaves": ["suB-r[0-1]"]}]
  })";
  Result<fabric::Fabric> f = fabric::parseClusterFile(text, "test.json");
  ASSERT_TRUE(f.isOk()) << f.status().message();
  fabric::Analysis a = fabric::analyze(*f);
  std::vector<LocalTopology> locals;
  for (const char* host : {"b2", "a4"}) {
    LocalTopology t = twoRails(host);
    Result<fabric::HostPlacement> p = fabric::placeHost(*f, a, host);
    ASSERT_TRUE(p.isOk()) << p.status().message();
    addPlacement(&t, *p);
    locals.push_back(t);
  }
  ClusterView v = ClusterView::build({10, 20}, locals);
  EXPECT_EQ(v.ranks[0].leaf, "suB-r0");
  EXPECT_EQ(v.nodes[0].topo.leaves[1], "suB-r1");
  EXPECT_EQ(v.nodes[0].topo.leafRail, (std::vector<int>{0, 1}));
  EXPECT_FALSE(v.nodes[0].topo.leafGroup.empty());
  EXPECT_NE(v.nodes[0].topo.leafGroup, v.nodes[1].topo.leafGroup);
  // Nodes ordered by leaf group name.
  std::vector<int> order = v.nodeOrder();
  EXPECT_EQ(order[0], v.nodes[0].topo.leafGroup < v.nodes[1].topo.leafGroup ? 0 : 1);
  std::string all;
  for (const auto& w : v.warnings) all += w + "\n";
  EXPECT_NE(all.find("node 1 (a4, rank 1): NIC 0 (mlx5_0) is cabled to leaf suA-r1, which serves "
                     "rail 1, not rail 0"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("node 1 (a4, rank 1): NIC 1 (mlx5_1) is cabled to leaf suA-r0"),
            std::string::npos)
      << all;
  // A host the fabric does not know about is not placed (the communicator warns).
  EXPECT_FALSE(fabric::placeHost(*f, a, "zz9").isOk());
}

}  // namespace
}  // namespace trellis::topo
