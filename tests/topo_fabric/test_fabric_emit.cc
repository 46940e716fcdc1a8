// Scheduler outputs. Golden files in golden/ were checked by hand against the format facts in
// shared/notes/topology-sources.md (Slurm topology.conf tree: SwitchName= with Nodes= or
// Switches=, hostlist expressions, every node under a switch; block: BlockName= Nodes= and one
// BlockSizes= whose sizes double from a base no larger than any block; Kueue Topology levels from
// largest to smallest ending in kubernetes.io/hostname; Volcano HyperNode tier + members with one
// exactMatch selector each). The structural tests below re-derive the same facts from the fabric.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "fabric_test_util.h"
#include "topo/fabric/fabric.h"
#include "topo/fabric/hostlist.h"

namespace trellis::topo::fabric {
namespace {

using testing::goldenPath;
using testing::readAll;
using testing::superpod;
using testing::superpodAnalysis;

std::string emitOrFail(const Fabric& f, const Analysis& a, const char* format) {
  Result<std::string> r = emit(f, a, format);
  EXPECT_TRUE(r.isOk()) << format << ": " << r.status().toString();
  return r.isOk() ? *r : "";
}

TEST(FabricEmit, SuperpodGoldenFiles) {
  const std::pair<const char*, const char*> cases[] = {
      {"slurm-tree", "superpod.slurm-tree.conf"}, {"slurm-block", "superpod.slurm-block.conf"},
      {"kueue", "superpod.kueue.yaml"},           {"volcano", "superpod.volcano.yaml"},
      {"k8s-labels", "superpod.k8s-labels.txt"},  {"summary", "superpod.summary.txt"}};
  for (auto [format, file] : cases)
    EXPECT_EQ(emitOrFail(superpod(), superpodAnalysis(), format), readAll(goldenPath(file))) << format;
}

TEST(FabricEmit, ClusterFileGoldenFiles) {
  const std::tuple<const char*, const char*, const char*> cases[] = {
      {"three_tier_small.json", "slurm-tree", "three_tier.slurm-tree.conf"},
      {"three_tier_small.json", "volcano", "three_tier.volcano.yaml"},
      {"three_tier_small.json", "kueue", "three_tier.kueue.yaml"},
      {"fat_tree_128x8.json", "slurm-tree", "fat_tree.slurm-tree.conf"},
      {"fat_tree_128x8.json", "slurm-block", "fat_tree.slurm-block.conf"}};
  for (auto [input, format, file] : cases) {
    std::string text = readAll(std::string(TRELLIS_SOURCE_DIR) + "/tests/topo_fabric/data/" + input);
    Result<Fabric> f = parseClusterFile(text, input);
    ASSERT_TRUE(f.isOk()) << f.status().toString();
    EXPECT_EQ(emitOrFail(*f, analyze(*f), format), readAll(goldenPath(file))) << input << " " << format;
  }
}

// key=value pairs of topology.conf lines, comments skipped.
std::vector<std::map<std::string, std::string>> confLines(const std::string& text) {
  std::vector<std::map<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::map<std::string, std::string> kv;
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      size_t eq = w.find('=');
      EXPECT_NE(eq, std::string::npos) << line;
      kv[w.substr(0, eq)] = w.substr(eq + 1);
    }
    out.push_back(kv);
  }
  return out;
}

TEST(FabricEmit, SlurmTreeHasEveryNamedHostOnce) {
  const Analysis& a = superpodAnalysis();
  std::multiset<std::string> listed;
  std::set<std::string> switchNames, referenced;
  for (auto& kv : confLines(emitOrFail(superpod(), a, "slurm-tree"))) {
    ASSERT_TRUE(kv.count("SwitchName"));
    EXPECT_LE(kv["SwitchName"].size(), 64u);
    EXPECT_TRUE(switchNames.insert(kv["SwitchName"]).second);
    EXPECT_NE(kv.count("Nodes") + kv.count("Switches"), 0u);
    if (kv.count("Nodes")) {
      Result<std::vector<std::string>> hosts = expandHostlist(kv["Nodes"]);
      ASSERT_TRUE(hosts.isOk());
      listed.insert(hosts->begin(), hosts->end());
    }
    if (kv.count("Switches")) {
      Result<std::vector<std::string>> children = expandHostlist(kv["Switches"]);
      ASSERT_TRUE(children.isOk());
      referenced.insert(children->begin(), children->end());
    }
  }
  EXPECT_EQ(listed.size(), 120u);
  for (const HostInfo& h : a.hosts) EXPECT_EQ(listed.count(h.name), 1u) << h.name;
  for (const std::string& s : referenced) EXPECT_TRUE(switchNames.count(s)) << s;
  EXPECT_EQ(referenced.size(), 8u);
}

TEST(FabricEmit, SlurmBlockSizes) {
  auto lines = confLines(emitOrFail(superpod(), superpodAnalysis(), "slurm-block"));
  ASSERT_EQ(lines.size(), 9u);
  EXPECT_EQ(lines.back().at("BlockSizes"), "10,20,40,80");  // smallest SU has 10 named nodes; 8 blocks
  EmitOptions o;
  o.blockSizes = {18, 36};
  Result<std::string> custom = emit(superpod(), superpodAnalysis(), "slurm-block", o);
  ASSERT_TRUE(custom.isOk());
  EXPECT_NE(custom->find("# su01 has 10 nodes, fewer than the base block size 18\n"), std::string::npos);
  EXPECT_NE(custom->find("BlockSizes=18,36\n"), std::string::npos);
  o.blockSizes = {18, 30};
  Result<std::string> bad = emit(superpod(), superpodAnalysis(), "slurm-block", o);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("block size 30 is not a power-of-two multiple of 18"),
            std::string::npos);
}

TEST(FabricEmit, KueueAndLabelsUseTheConfiguredDomain) {
  EmitOptions o;
  o.labelDomain = "example.com/";
  o.topologyName = "dgx";
  o.kueueApiVersion = "kueue.x-k8s.io/v1beta1";
  Result<std::string> k = emit(superpod(), superpodAnalysis(), "kueue", o);
  ASSERT_TRUE(k.isOk());
  EXPECT_NE(k->find("apiVersion: kueue.x-k8s.io/v1beta1\nkind: Topology\nmetadata:\n  name: dgx\n"
                    "spec:\n  levels:\n  - nodeLabel: example.com/spine-group\n"
                    "  - nodeLabel: example.com/leaf-group\n  - nodeLabel: kubernetes.io/hostname\n"),
            std::string::npos) << *k;
  Result<std::string> labels = emit(superpod(), superpodAnalysis(), "k8s-labels", o);
  ASSERT_TRUE(labels.isOk());
  EXPECT_NE(labels->find("kubectl label node a07-p1-dgx-03-c18 --overwrite example.com/spine-group="
                         "spines01 example.com/leaf-group=su03\n"),
            std::string::npos);
}

TEST(FabricEmit, VolcanoHyperNodes) {
  std::string y = emitOrFail(superpod(), superpodAnalysis(), "volcano");
  size_t docs = 0, tier1 = 0, tier2 = 0, nodes = 0, hyper = 0;
  for (size_t p = 0; (p = y.find("kind: HyperNode\n", p)) != std::string::npos; ++p) ++docs;
  for (size_t p = 0; (p = y.find("  tier: 1\n", p)) != std::string::npos; ++p) ++tier1;
  for (size_t p = 0; (p = y.find("  tier: 2\n", p)) != std::string::npos; ++p) ++tier2;
  for (size_t p = 0; (p = y.find("  - type: Node\n", p)) != std::string::npos; ++p) ++nodes;
  for (size_t p = 0; (p = y.find("  - type: HyperNode\n", p)) != std::string::npos; ++p) ++hyper;
  EXPECT_EQ(docs, 9u);
  EXPECT_EQ(tier1, 8u);
  EXPECT_EQ(tier2, 1u);
  EXPECT_EQ(nodes, 120u);
  EXPECT_EQ(hyper, 8u);
  EXPECT_EQ(y.find("B11"), std::string::npos);  // node names lower-cased as the kubelet does
}

TEST(FabricEmit, TrellisJson) {
  Result<std::string> text = emit(superpod(), superpodAnalysis(), "json");
  ASSERT_TRUE(text.isOk());
  nlohmann::json j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["format"], "trellis-fabric");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["fabric"]["switches"].size(), 40u);
  EXPECT_EQ(j["fabric"]["hcas"].size(), 582u);
  EXPECT_EQ(j["fabric"]["links"].size(), 1114u);
  EXPECT_EQ(j["fabric"]["switches"][0]["origin"]["source"], "ibnetdiscover");
  EXPECT_EQ(j["fabric"]["switches"][0]["origin"]["line"], 10);
  EXPECT_EQ(j["fabric"]["switches"][0]["tier"], "leaf");
  EXPECT_EQ(j["fabric"]["links"][0]["gbps"], 400.0);
  const nlohmann::json& a = j["analysis"];
  EXPECT_EQ(a["rails"], nlohmann::json({0, 1, 4, 5}));
  EXPECT_EQ(a["leafGroups"].size(), 8u);
  EXPECT_EQ(a["hosts"].size(), 120u);
  EXPECT_EQ(a["unnamedHcas"].size(), 74u);
  EXPECT_EQ(a["railViolations"].size(), 6u);
  EXPECT_EQ(a["leafGroups"][2]["hosts"].size(), 18u);
}

TEST(FabricEmit, UnknownFormat) {
  Result<std::string> r = emit(superpod(), superpodAnalysis(), "dot");
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("unknown fabric format 'dot' (known: slurm-tree, slurm-block"),
            std::string::npos);
}

TEST(FabricHostlist, CompressAndExpand) {
  EXPECT_EQ(compressHostlist({"c03", "c01", "c02", "c10", "c05", "c01"}), "c[01-03,05,10]");
  EXPECT_EQ(compressHostlist({"gpu9", "gpu10", "gpu11"}), "gpu9,gpu[10-11]");  // widths differ
  EXPECT_EQ(compressHostlist({"login", "n1"}), "login,n1");
  EXPECT_EQ(compressHostlist({}), "");
  Result<std::vector<std::string>> e = expandHostlist("gpu[001-003,007],login1,x[8]");
  ASSERT_TRUE(e.isOk());
  EXPECT_EQ(*e, (std::vector<std::string>{"gpu001", "gpu002", "gpu003", "gpu007", "login1", "x8"}));
  for (const char* bad : {"gpu[3-1]", "gpu[1-", "gpu]1", "a[1][2]", "n[1-2000000]", "a,,b", "g[x]"})
    EXPECT_FALSE(expandHostlist(bad).isOk()) << bad;
  std::vector<std::string> names;
  for (int i = 1; i <= 200; i += (i % 7 ? 1 : 3)) names.push_back(formatString("node%03d", i));
  Result<std::vector<std::string>> back = expandHostlist(compressHostlist(names));
  ASSERT_TRUE(back.isOk());
  EXPECT_EQ(*back, names);
}

}  // namespace
}  // namespace trellis::topo::fabric
