// hwloc XML fixtures (a DGX-2 with 12 NVSwitches, a POWER8 Minsky with GPU<->CPU NVLink) and
// malformed hwloc input.
#include <gtest/gtest.h>

#include <filesystem>

#include "topo/emit.h"
#include "topo/hwloc_xml.h"
#include "topo/nccl_xml.h"
#include "topo/paths.h"
#include "topo/sysfs.h"

namespace fs = std::filesystem;

namespace trellis::topo {
namespace {

System loadReal(const std::string& name) {
  std::string path = std::string(TRELLIS_SOURCE_DIR) + "/../shared/fixtures/real-topo/" + name;
  if (!fs::exists(path)) path = "/work/shared/fixtures/real-topo/" + name;
  auto s = loadTopologyFile(path);
  EXPECT_TRUE(s.isOk()) << s.status().message();
  return s.isOk() ? s.value() : System{};
}

TEST(Hwloc, Dgx2Has16GpusBehind12NvSwitches) {
  System s = loadReal("hwloc-nvidia-dgx2.xml");
  EXPECT_EQ(s.source, Source::kHwloc);
  auto gpus = s.ofKind(NodeKind::kGpu);
  ASSERT_EQ(gpus.size(), 16u);
  EXPECT_EQ(s.ofKind(NodeKind::kNvSwitch).size(), 12u);
  EXPECT_EQ(s.ofKind(NodeKind::kCpu).size(), 2u);
  for (int g : gpus) {
    int links = 0;
    for (const NvLink& l : s.nvlinks)
      if (l.from == g) {
        EXPECT_EQ(s.nodes[l.to].kind, NodeKind::kNvSwitch);
        EXPECT_DOUBLE_EQ(l.gbpsPerLink, 25.0);
        links += l.count;
      }
    EXPECT_EQ(links, 6) << s.nodes[g].busId << ": a V100 has 6 NVLinks, one per switch of its baseboard";
  }
  Path p = pathBetween(s, gpus[0], gpus[15]);
  EXPECT_EQ(p.kind, PathKind::kNvSwitch);
  EXPECT_EQ(p.nvlinks, 6);
  EXPECT_DOUBLE_EQ(p.gbps, 150.0);
  EXPECT_EQ(s.nodes[gpus[0]].busId, "0000:34:00.0");
  EXPECT_EQ(s.nodes[gpus[0]].gpuDev, 0);
  EXPECT_NEAR(upstreamGBps(s.nodes[gpus[0]]), 15.75, 0.01);
  EXPECT_EQ(cpuListFromMask(s.nodes[s.ofKind(NodeKind::kCpu)[0]].affinity), "0-1");
  // Two GPUs under one PLX switch pair are PXB apart over PCIe (ignoring NVLink): check via the tree.
  EXPECT_EQ(s.nodes[s.nodes[gpus[0]].parent].kind, NodeKind::kPciSwitch);
}

TEST(Hwloc, MinskyLinksGpusToEachOtherAndToTheirCpu) {
  System s = loadReal("hwloc-power8-minsky-p100.xml");
  auto gpus = s.ofKind(NodeKind::kGpu), cpus = s.ofKind(NodeKind::kCpu);
  ASSERT_EQ(gpus.size(), 4u);
  ASSERT_EQ(cpus.size(), 2u);
  Path gg = pathBetween(s, gpus[0], gpus[1]);
  EXPECT_EQ(gg.kind, PathKind::kNvLink);
  EXPECT_EQ(gg.nvlinks, 2);
  EXPECT_DOUBLE_EQ(gg.gbps, 40.0);  // NVLink 1: 20 GB/s per link
  Path gc = pathBetween(s, gpus[0], cpus[0]);
  EXPECT_EQ(gc.kind, PathKind::kNvLink);
  EXPECT_EQ(pathBetween(s, gpus[0], gpus[2]).kind, PathKind::kSys);
  for (const NvLink& l : s.nvlinks) EXPECT_EQ(l.version, 1);
  EXPECT_EQ(cpuListFromHwlocSet("0x00000303,0x03030000,,0x0"), "80-81,88-89,96-97,104-105");
}

TEST(Hwloc, RoundTripToJsonAndNcclXmlKeepsWhatTheyCarry) {
  System s = loadReal("hwloc-nvidia-dgx2.xml");
  auto j = fromJson(toJson(s), "dgx2.json");
  ASSERT_TRUE(j.isOk()) << j.status().message();
  EXPECT_EQ(toJson(j.value()), toJson(s));
  auto x = fromNcclXml(toNcclXml(s), "dgx2.xml");
  ASSERT_TRUE(x.isOk()) << x.status().message();
  EXPECT_EQ(x->ofKind(NodeKind::kGpu).size(), 16u);
  EXPECT_EQ(x->ofKind(NodeKind::kNvSwitch).size(), 12u);
  auto g = x->ofKind(NodeKind::kGpu);
  EXPECT_EQ(pathBetween(x.value(), g[0], g[15]).kind, PathKind::kNvSwitch);
}

TEST(Hwloc, MalformedInputNamesFileAndLine) {
  auto bad = fromHwlocXml("<topology version=\"2.0\">\n<object type=\"Machine\">\n<object type=\"PCIDev\" "
                          "pci_busid=\"0000:01:00.0\" pci_type=\"zz\"/></object></topology>",
                          "bad.xml");
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("bad.xml:3: PCI object 0000:01:00.0"), std::string::npos)
      << bad.status().message();
  auto cut = fromHwlocXml("<topology version=\"2.0\">\n<object type=\"Machine\">\n<object type=\"Pack", "cut.xml");
  ASSERT_FALSE(cut.isOk());
  EXPECT_NE(cut.status().message().find("cut.xml:3: XML error"), std::string::npos) << cut.status().message();
  auto dist = fromHwlocXml("<topology><object type=\"Machine\"/>\n<distances2hetero nbobjs=\"2\" name=\"NVLinkBandwidth\">"
                           "<indexes>OSDev:1 OSDev:2</indexes><u64values>0 1</u64values></distances2hetero></topology>",
                           "d.xml");
  ASSERT_FALSE(dist.isOk());
  EXPECT_NE(dist.status().message().find("d.xml:2: NVLinkBandwidth has 2 objects and 2 values"), std::string::npos)
      << dist.status().message();
}

}  // namespace
}  // namespace trellis::topo
