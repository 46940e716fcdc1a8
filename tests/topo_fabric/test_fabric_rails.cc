// Rail structure of the real SuperPOD fabric, counted from the file by hand: leaves are named
// <row>-P1-IBLEAF-<RR>-<SU> and serve one HCA index each (RR 01 -> HCA-1/mlx5_0, 02 -> HCA-2/
// mlx5_1, 03 -> HCA-5/mlx5_4, 04 -> HCA-6/mlx5_5); hosts are <row>-p1-dgx-<SU>-c<NN>. The
// analysis works from the link graph only, so the names are an independent check.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "fabric_test_util.h"
#include "topo/fabric/fabric.h"

namespace trellis::topo::fabric {
namespace {

using testing::superpod;
using testing::superpodAnalysis;

// "A09-P1-IBLEAF-03-02" -> {3, 2}
std::pair<int, int> leafNameParts(const std::string& name) {
  size_t p = name.find("IBLEAF-");
  return {std::stoi(name.substr(p + 7, 2)), std::stoi(name.substr(p + 10, 2))};
}

TEST(FabricRails, LeavesServeOneHcaIndexEach) {
  const Fabric& f = superpod();
  const Analysis& a = superpodAnalysis();
  EXPECT_TRUE(a.railOptimized);
  EXPECT_EQ(a.rails, (std::vector<int>{0, 1, 4, 5}));
  ASSERT_EQ(a.leaves.size(), 31u);
  const std::map<int, int> railOfNamePart = {{1, 0}, {2, 1}, {3, 4}, {4, 5}};
  std::map<int, int> leavesPerRail;
  for (const LeafInfo& l : a.leaves) {
    const std::string& name = f.switches[l.switchIndex].name;
    EXPECT_EQ(l.rail, railOfNamePart.at(leafNameParts(name).first)) << name;
    ++leavesPerRail[l.rail];
  }
  // Leaf IBLEAF-03-01 (rail 4 of SU 1) is absent from the dump.
  EXPECT_EQ(leavesPerRail, (std::map<int, int>{{0, 8}, {1, 8}, {4, 7}, {5, 8}}));
  // Only the two SU 8 leaves where c01's HCA-5/HCA-6 and the UFM/ubuntu mlx5_0/1 cross over
  // have off-rail HCAs.
  for (const LeafInfo& l : a.leaves) {
    const std::string& name = f.switches[l.switchIndex].name;
    bool crossed = name == "B09-P1-IBLEAF-03-08" || name == "B09-P1-IBLEAF-04-08";
    EXPECT_EQ(l.offRailHcas, crossed ? 3u : 0u) << name;
  }
}

TEST(FabricRails, LeafGroupsAreTheScalableUnits) {
  const Fabric& f = superpod();
  const Analysis& a = superpodAnalysis();
  ASSERT_EQ(a.leafGroups.size(), 8u);
  const size_t named[] = {10, 11, 18, 17, 18, 15, 16, 15};  // SU 8 includes B11-P1-CUFM-02
  const uint32_t unnamedAtLeast[] = {8, 5, 0, 0, 0, 3, 1, 4};
  for (size_t g = 0; g < 8; ++g) {
    const LeafGroup& group = a.leafGroups[g];
    EXPECT_EQ(group.name, formatString("su%02zu", g + 1));
    EXPECT_EQ(group.leaves.size(), g == 0 ? 3u : 4u) << group.name;
    for (uint32_t li : group.leaves)
      EXPECT_EQ(leafNameParts(f.switches[a.leaves[li].switchIndex].name).second, int(g + 1));
    EXPECT_EQ(group.hosts.size(), named[g]) << group.name;
    EXPECT_EQ(group.unnamedHostsAtLeast, unnamedAtLeast[g]) << group.name;
    EXPECT_EQ(group.spineGroup, 0);
    for (const std::string& h : group.hosts) {
      if (h == "B11-P1-CUFM-02") continue;
      EXPECT_EQ(std::stoi(h.substr(h.find("-dgx-") + 5, 2)), int(g + 1)) << h;
    }
  }
  EXPECT_EQ(a.hosts.size(), 120u);
  EXPECT_EQ(a.unnamedHcas.size(), 74u);
  EXPECT_EQ(a.aggregationNodes, 40u);
  // Every DGX has one HCA per leaf of its group: 4, or 3 in SU 1.
  for (const HostInfo& h : a.hosts) {
    size_t want = h.name == "B11-P1-CUFM-02" ? 2 : a.leafGroups[h.leafGroup].leaves.size();
    EXPECT_EQ(h.hcas.size(), want) << h.name;
  }
}

TEST(FabricRails, SpinesAboveAllLeaves) {
  const Fabric& f = superpod();
  const Analysis& a = superpodAnalysis();
  ASSERT_EQ(a.spines.size(), 9u);
  EXPECT_TRUE(a.cores.empty());
  ASSERT_EQ(a.spineGroups.size(), 1u);
  EXPECT_EQ(a.spineGroups[0].name, "spines01");
  EXPECT_EQ(a.spineGroups[0].spines.size(), 9u);
  EXPECT_EQ(a.spineGroups[0].leafGroups.size(), 8u);
  EXPECT_EQ(f.switches[a.spines.front()].name, "A10-P1-IBSPINE-01");
  EXPECT_EQ(f.switches[a.spines.back()].name, "B10-P1-IBSPINE-09");
  std::map<size_t, int> leavesBySpineCount;
  uint32_t cables = 0;
  for (const LeafInfo& l : a.leaves) {
    ++leavesBySpineCount[l.spines.size()];
    cables += l.uplinkCables;
  }
  EXPECT_EQ(leavesBySpineCount, (std::map<size_t, int>{{7, 1}, {8, 8}, {9, 22}}));
  EXPECT_EQ(cables, 532u);
}

TEST(FabricRails, RailViolationsNameTheNode) {
  const Fabric& f = superpod();
  const Analysis& a = superpodAnalysis();
  ASSERT_EQ(a.railViolations.size(), 6u);
  std::multiset<std::string> hosts;
  for (const RailViolation& v : a.railViolations) hosts.insert(v.host);
  EXPECT_EQ(hosts, (std::multiset<std::string>{"", "", "B11-P1-CUFM-02", "B11-P1-CUFM-02",
                                               "b08-p1-dgx-08-c01", "b08-p1-dgx-08-c01"}));
  bool sawC01 = false;
  for (const RailViolation& v : a.railViolations) {
    if (v.host != "b08-p1-dgx-08-c01" || v.hcaIndex != 5) continue;
    sawC01 = true;
    EXPECT_EQ(v.leafRail, 4);
    EXPECT_EQ(f.switches[v.leaf].name, "B09-P1-IBLEAF-03-08");
    EXPECT_EQ(v.message,
              "b08-p1-dgx-08-c01: NIC 5 (HCA-6) is cabled to B09-P1-IBLEAF-03-08 port 1, a leaf of rail 4");
  }
  EXPECT_TRUE(sawC01);
  ASSERT_EQ(a.warnings.size(), 1u);
  EXPECT_EQ(a.warnings[0], "leaf group su01 has no leaf for rail 4 (switch absent or unreachable in this dump)");
}

TEST(FabricRails, PlaceHost) {
  const Fabric& f = superpod();
  Result<HostPlacement> p = placeHost(f, superpodAnalysis(), "a08-p1-dgx-04-c01");
  ASSERT_TRUE(p.isOk()) << p.status().toString();
  EXPECT_EQ(p->leafGroup, "su04");
  EXPECT_EQ(p->spineGroup, "spines01");
  ASSERT_EQ(p->hcas.size(), 4u);
  const char* names[] = {"mlx5_0", "mlx5_1", "mlx5_4", "mlx5_5"};
  const char* leaves[] = {"A09-P1-IBLEAF-01-04", "A09-P1-IBLEAF-02-04", "A09-P1-IBLEAF-03-04",
                          "A09-P1-IBLEAF-04-04"};
  const int rails[] = {0, 1, 4, 5};
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(p->hcas[k].hcaName, names[k]);
    EXPECT_EQ(p->hcas[k].hcaIndex, rails[k]);
    EXPECT_EQ(p->hcas[k].leafSwitch, leaves[k]);
    EXPECT_EQ(p->hcas[k].leafPort, 1u);
    EXPECT_EQ(p->hcas[k].rail, rails[k]);
    EXPECT_TRUE(p->hcas[k].onRail);
  }
  EXPECT_EQ(p->hcas[3].guid, 0xe09d7303007a4bd8u);

  // The crossed node: HCA-5 (NIC 4) sits on the rail-5 leaf.
  Result<HostPlacement> c01 = placeHost(f, "b08-p1-dgx-08-c01");  // the overload that analyses
  ASSERT_TRUE(c01.isOk());
  EXPECT_EQ(c01->leafGroup, "su08");
  ASSERT_EQ(c01->hcas.size(), 4u);
  EXPECT_EQ(c01->hcas[2].hcaName, "HCA-5");
  EXPECT_EQ(c01->hcas[2].leafSwitch, "B09-P1-IBLEAF-04-08");
  EXPECT_EQ(c01->hcas[2].rail, 5);
  EXPECT_FALSE(c01->hcas[2].onRail);

  Result<HostPlacement> none = placeHost(f, superpodAnalysis(), "dgx-999");
  ASSERT_FALSE(none.isOk());
  EXPECT_NE(none.status().message().find("host 'dgx-999' is not in the fabric read from "
                                         "ibnetdiscover-dgx-h100-superpod.out (120 named hosts)"),
            std::string::npos) << none.status().message();
  EXPECT_FALSE(placeHost(f, superpodAnalysis(), "localhost").isOk());  // a placeholder, not a host
}

// One HCA per host, two leaves: not rail-optimized; each leaf is its own group.
TEST(FabricRails, SingleRailTree) {
  std::string text =
      "Switch\t8 \"S-0000000000000010\"\t\t# \"spine\" lid 1\n"
      "[1]\t\"S-0000000000000001\"[8]\t\t# \"leaf1\" lid 2 4xHDR\n"
      "[2]\t\"S-0000000000000002\"[8]\t\t# \"leaf2\" lid 3 4xHDR\n"
      "Switch\t8 \"S-0000000000000001\"\t\t# \"leaf1\" lid 2\n"
      "[1]\t\"H-0000000000000101\"[1]\t\t# \"n1 mlx5_0\" lid 4 4xHDR\n"
      "[2]\t\"H-0000000000000102\"[1]\t\t# \"n2 mlx5_0\" lid 5 4xHDR\n"
      "Switch\t8 \"S-0000000000000002\"\t\t# \"leaf2\" lid 3\n"
      "[1]\t\"H-0000000000000103\"[1]\t\t# \"n3 mlx5_0\" lid 6 4xHDR\n"
      "[2]\t\"H-0000000000000104\"[1]\t\t# \"MT4123 ConnectX6   Mellanox Technologies\" lid 7 4xHDR\n";
  Result<Fabric> f = parseIbnetdiscover(text, "tree.out");
  ASSERT_TRUE(f.isOk()) << f.status().toString();
  Analysis a = analyze(*f);
  EXPECT_FALSE(a.railOptimized);
  EXPECT_EQ(a.rails, std::vector<int>{0});
  ASSERT_EQ(a.leafGroups.size(), 2u);
  EXPECT_EQ(a.leafGroups[0].hosts, (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(a.leafGroups[1].hosts, (std::vector<std::string>{"n3"}));
  EXPECT_EQ(a.leafGroups[1].unnamedHostsAtLeast, 1u);
  EXPECT_TRUE(a.railViolations.empty());
  Result<std::string> tree = emit(*f, a, "slurm-tree");
  ASSERT_TRUE(tree.isOk());
  EXPECT_NE(tree->find("SwitchName=su01 Nodes=n[1-2]\n"), std::string::npos) << *tree;
  EXPECT_NE(tree->find("SwitchName=su02 Nodes=n3\n"), std::string::npos) << *tree;
  EXPECT_NE(tree->find("SwitchName=spines01 Switches=su[01-02]\n"), std::string::npos) << *tree;
}

}  // namespace
}  // namespace trellis::topo::fabric
