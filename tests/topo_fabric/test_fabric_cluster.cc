// Operator cluster files: the described 128-node x 8-rail fat tree, a 3-tier two-pod fabric, and
// errors that name the file and the JSON path (or line, for JSON syntax errors).
#include <gtest/gtest.h>

#include "fabric_test_util.h"
#include "topo/fabric/fabric.h"

namespace trellis::topo::fabric {
namespace {

Fabric loadData(const char* name) {
  Result<Fabric> f = loadClusterFile(std::string(TRELLIS_SOURCE_DIR) + "/tests/topo_fabric/data/" + name);
  EXPECT_TRUE(f.isOk()) << f.status().toString();
  return f.isOk() ? std::move(f).value() : Fabric{};
}

TEST(FabricCluster, FatTree128x8) {
  Fabric f = loadData("fat_tree_128x8.json");
  EXPECT_EQ(f.sourceKind, SourceKind::kClusterFile);
  EXPECT_EQ(f.switches.size(), 40u);
  EXPECT_EQ(f.hcas.size(), 1024u);
  EXPECT_EQ(f.links.size(), 1024u + 32u * 8u);
  Analysis a = analyze(f);
  EXPECT_TRUE(a.railOptimized);
  EXPECT_EQ(a.rails, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(a.leaves.size(), 32u);
  EXPECT_EQ(a.spines.size(), 8u);
  ASSERT_EQ(a.leafGroups.size(), 4u);
  for (const LeafGroup& g : a.leafGroups) {
    EXPECT_EQ(g.hosts.size(), 32u);
    EXPECT_EQ(g.leaves.size(), 8u);
  }
  EXPECT_TRUE(a.railViolations.empty());
  EXPECT_TRUE(a.warnings.empty());
  for (const LeafInfo& l : a.leaves) EXPECT_EQ(l.spines.size(), 8u);

  Result<HostPlacement> p = placeHost(f, a, "gpu033");
  ASSERT_TRUE(p.isOk());
  EXPECT_EQ(p->leafGroup, "su02");
  EXPECT_EQ(p->spineGroup, "spines01");
  ASSERT_EQ(p->hcas.size(), 8u);
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(p->hcas[k].hcaName, "mlx5_" + std::to_string(k));
    EXPECT_EQ(p->hcas[k].leafSwitch, "su2-r" + std::to_string(k));
    EXPECT_EQ(p->hcas[k].leafPort, 1u);  // first node of its leaves
    EXPECT_EQ(p->hcas[k].rail, k);
    EXPECT_TRUE(p->hcas[k].onRail);
  }
  EXPECT_EQ(placeHost(f, a, "gpu128")->hcas[7].leafPort, 32u);
}

TEST(FabricCluster, ThreeTierPods) {
  Fabric f = loadData("three_tier_small.json");
  Analysis a = analyze(f);
  EXPECT_EQ(a.leaves.size(), 4u);
  EXPECT_EQ(a.spines.size(), 4u);
  EXPECT_EQ(a.cores.size(), 2u);
  ASSERT_EQ(a.spineGroups.size(), 2u);
  EXPECT_EQ(a.spineGroups[0].leafGroups, (std::vector<int>{0, 1}));
  EXPECT_EQ(a.spineGroups[1].leafGroups, (std::vector<int>{2, 3}));
  EXPECT_EQ(placeHost(f, a, "n07")->spineGroup, "spines02");
  EXPECT_EQ(f.links.front().speed, "HDR");
}

// A rail mix-up described on purpose: node b's NICs 0 and 1 swapped.
TEST(FabricCluster, SwappedRailsAreReported) {
  const char* text = R"({"format": "trellis-cluster", "version": 1,
    "leaves": ["r0", "r1"],
    "nodes": [{"name": "a[1-3]", "leaves": ["r0", "r1"]},
              {"name": "b", "leaves": ["r1", "r0"]}]})";
  Result<Fabric> f = parseClusterFile(text, "swap.json");
  ASSERT_TRUE(f.isOk()) << f.status().toString();
  Analysis a = analyze(*f);
  EXPECT_TRUE(a.railOptimized);
  ASSERT_EQ(a.railViolations.size(), 2u);
  EXPECT_EQ(a.railViolations[0].message, "b: NIC 0 (mlx5_0) is cabled to r1 port 4, a leaf of rail 1");
  EXPECT_EQ(a.railViolations[1].message, "b: NIC 1 (mlx5_1) is cabled to r0 port 4, a leaf of rail 0");
}

// A leaf whose uplinks run slower than its host ports: 4 hosts at 4xQDR, one uplink at 2xQDR (8:1).
TEST(FabricCluster, UplinkRateOverridesTheFileRate) {
  Result<Fabric> r = parseClusterFile(R"({"format": "trellis-cluster", "version": 1, "link": "4xQDR",
      "spines": ["s"], "leaves": [{"name": "l[0-1]", "uplinks": ["s"], "uplink_link": "2xQDR"}],
      "nodes": [{"name": "n[1-4]", "leaves": ["l[0-1]"]}]})", "c.json");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  const Fabric& f = r.value();
  int hostCables = 0, uplinks = 0;
  for (const Link& l : f.links) {
    if (l.a.isSwitch && l.b.isSwitch) {
      ++uplinks;
      EXPECT_EQ(l.gbps(), 20.0);
    } else {
      ++hostCables;
      EXPECT_EQ(l.gbps(), 40.0);
    }
  }
  EXPECT_EQ(hostCables, 8);
  EXPECT_EQ(uplinks, 2);
}

TEST(FabricCluster, ErrorsNameFileAndPath) {
  const std::pair<const char*, const char*> cases[] = {
      {"{\n  \"format\": \"trellis-cluster\",\n  oops\n}", "c.json:3: not valid JSON"},
      {"[]", "c.json: the document is not a JSON object"},
      {R"({"format": "x"})", "c.json: format: expected \"trellis-cluster\""},
      {R"({"format": ["trellis-cluster"]})", "c.json: format: expected \"trellis-cluster\""},  // found by fuzzing
      {R"({"format": "trellis-cluster", "version": 1E01511})", "c.json: not valid JSON"},  // found by fuzzing
      {R"({"format": "trellis-cluster", "version": 2})", "c.json: version: only version 1"},
      {R"({"format": "trellis-cluster", "version": 1, "leaves": ["l"]})",
       "c.json: nodes: expected a non-empty array"},
      {R"({"format": "trellis-cluster", "version": 1, "leaves": ["l"],
           "nodes": [{"name": "n1", "leaves": ["m"]}]})",
       "c.json: nodes[0].leaves[0]: 'm' is not a switch declared before"},
      {R"({"format": "trellis-cluster", "version": 1, "leaves": [{"name": "l", "uplinks": ["s"]}],
           "nodes": [{"name": "n1", "leaves": ["l"]}]})",
       "c.json: leaves[0].uplinks[0]: 's' is not a switch declared before"},
      {R"({"format": "trellis-cluster", "version": 1, "leaves": ["l", "l"]})",
       "c.json: leaves[1]: switch 'l' is declared twice"},
      {R"({"format": "trellis-cluster", "version": 1, "leaves": ["l"],
           "nodes": [{"name": "n[1-2]", "leaves": ["l"]}, {"name": "n2", "leaves": ["l"]}]})",
       "c.json: nodes[1].name: host 'n2' is listed twice"},
      {R"({"format": "trellis-cluster", "version": 1, "leaves": ["l"],
           "nodes": [{"name": "localhost", "leaves": ["l"]}]})",
       "c.json: nodes[0]: 'localhost mlx5_0' is not a usable"},
      {R"({"format": "trellis-cluster", "version": 1, "leaves": ["l"],
           "nodes": [{"name": "n[5-1]", "leaves": ["l"]}]})",
       "c.json: nodes[0].name: bad range '5-1'"},
      {R"({"format": "trellis-cluster", "version": 1, "link": "4xFAST", "leaves": ["l"]})",
       "c.json: link: '4xFAST' is not"},
      {R"({"format": "trellis-cluster", "version": 1, "spines": ["s"],
           "leaves": [{"name": "l", "uplinks": ["s"], "uplink_link": "2x"}]})",
       "c.json: leaves[0].uplink_link: '2x' is not"},
      {R"({"format": "trellis-cluster", "version": 1, "leaves": ["l"],
           "nodes": [{"name": "n1", "leaves": ["l"], "hcas": []}]})",
       "c.json: nodes[0].hcas: expected one HCA name per leaf"},
      {R"({"format": "trellis-cluster", "version": 1, "leaves": ["l"],
           "nodes": [{"name": "n[1-300]", "leaves": ["l"]}]})",
       "c.json: nodes[0]: switch 'l' has more than 255 cables"},
  };
  for (auto [text, want] : cases) {
    Result<Fabric> r = parseClusterFile(text, "c.json");
    ASSERT_FALSE(r.isOk()) << "accepted: " << text;
    EXPECT_NE(r.status().message().find(want), std::string::npos)
        << "got: " << r.status().message() << "\nwant: " << want;
  }
  Result<Fabric> missing = loadClusterFile("/nonexistent/cluster.json");
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("/nonexistent/cluster.json"), std::string::npos);
}

}  // namespace
}  // namespace trellis::topo::fabric
