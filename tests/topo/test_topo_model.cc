// The model's edge list (kinds, PCIe gen x width, NVLink version x count, SMP, network ports) and
// its JSON form, on real fixtures.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "topo/nccl_xml.h"
#include "topo/paths.h"
#include "topo/sysfs.h"

namespace fs = std::filesystem;

namespace trellis::topo {
namespace {

System loadFixture(const std::string& dir, const std::string& name) {
  std::string path = std::string(TRELLIS_SOURCE_DIR) + "/../shared/fixtures/" + dir + "/" + name;
  if (!fs::exists(path)) path = "/work/shared/fixtures/" + dir + "/" + name;
  auto s = loadTopologyFile(path);
  EXPECT_TRUE(s.isOk()) << s.status().message();
  return s.isOk() ? s.value() : System{};
}

int countKind(const std::vector<Link>& ls, LinkKind k) {
  int n = 0;
  for (const Link& l : ls) n += l.kind == k;
  return n;
}

TEST(Model, PcieGenerationFromSpeed) {
  EXPECT_EQ(pcieGen("2.5 GT/s"), 1);
  EXPECT_EQ(pcieGen("5 GT/s"), 2);
  EXPECT_EQ(pcieGen("8 GT/s"), 3);
  EXPECT_EQ(pcieGen("16.0 GT/s PCIe"), 4);
  EXPECT_EQ(pcieGen("32.0 GT/s PCIe"), 5);
  EXPECT_EQ(pcieGen("64.0 GT/s PCIe"), 6);
  EXPECT_EQ(pcieGen("Unknown"), 0);
}

TEST(Model, IbmDumpEdgesCarryVersionCountAndBandwidth) {
  System s = loadFixture("nccl-topo", "ibm-gx3d-8xh100-full-dump.xml");
  std::vector<Link> ls = links(s);
  EXPECT_EQ(countKind(ls, LinkKind::kNvLink), 32);  // 8 GPUs x 4 NVSwitches
  EXPECT_EQ(countKind(ls, LinkKind::kSmp), 1);      // two sockets
  EXPECT_EQ(countKind(ls, LinkKind::kNetwork), 8);
  int nvlinks = 0;
  for (const Link& l : ls) {
    if (l.kind == LinkKind::kNvLink) {
      EXPECT_EQ(l.version, 4);
      EXPECT_EQ(s.nodes[l.to].kind, NodeKind::kNvSwitch);
      EXPECT_DOUBLE_EQ(l.gbps, 25.0 * l.count);
      EXPECT_FALSE(l.degraded);
      nvlinks += l.count;
    }
    if (l.kind == LinkKind::kSmp) {
      EXPECT_TRUE(l.degraded) << "no source reports UPI bandwidth";
    }
    if (l.kind == LinkKind::kNetwork) {
      EXPECT_DOUBLE_EQ(l.gbps, 25.0);  // 200 Gb/s ports
    }
  }
  EXPECT_EQ(nvlinks, 8 * 18);
}

TEST(Model, Ndv5PcieEdgesAreGen5x16) {
  System s = loadFixture("nccl-topo", "azure-ndv5-h100.xml");
  int gen5 = 0;
  for (const Link& l : links(s))
    if (l.kind == LinkKind::kPcie && s.nodes[l.from].kind == NodeKind::kGpu) {
      EXPECT_EQ(l.gen, 5);
      EXPECT_EQ(l.width, 16);
      EXPECT_EQ(l.to, s.nodes[l.from].parent);
      ++gen5;
    }
  EXPECT_EQ(gen5, 8);
}

TEST(Model, JsonKeepsNvLinkVersionAndListsEdges) {
  System s = loadFixture("nccl-topo", "ibm-gx3d-8xh100-full-dump.xml");
  std::string text = toJson(s);
  EXPECT_NE(text.find("\"links\""), std::string::npos);
  auto back = fromJson(text, "ibm.json");
  ASSERT_TRUE(back.isOk()) << back.status().message();
  ASSERT_EQ(back->nvlinks.size(), s.nvlinks.size());
  EXPECT_EQ(back->nvlinks[0].version, 4);
  EXPECT_DOUBLE_EQ(back->nvlinks[0].gbpsPerLink, 25.0);
  EXPECT_EQ(links(back.value()).size(), links(s).size());
}

TEST(Paths, CpuToOwnDeviceIsPhbAndNearestNicsOfACpuStayOnItsSocket) {
  System s = loadFixture("nccl-topo", "azure-ndv5-h100.xml");
  auto cpus = s.ofKind(NodeKind::kCpu);
  ASSERT_EQ(cpus.size(), 2u);
  for (int c : cpus) {
    std::vector<int> order = nearestNics(s, c);
    ASSERT_EQ(order.size(), 8u);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(s.nodes[order[i]].numa, s.nodes[c].numa);
      EXPECT_EQ(pathBetween(s, c, order[i]).kind, PathKind::kPhb);
    }
    EXPECT_EQ(pathBetween(s, c, order[7]).kind, PathKind::kSys);
  }
}

}  // namespace
}  // namespace trellis::topo

#include "topo/hwloc_local.h"
#include "topo/nvml.h"

namespace trellis::topo {
namespace {

TEST(Nvml, AbsentLibraryMarksNvLinkUnknownInsteadOfNone) {
  System s = loadFixture("nccl-topo", "azure-ndv5-h100.xml");
  s.nvlinks.clear();
  ASSERT_TRUE(addNvmlFacts(s, "libtrellis-no-such-nvml.so.1").isOk());
  for (int g : s.ofKind(NodeKind::kGpu)) {
    EXPECT_TRUE(s.nodes[g].degraded);
    EXPECT_NE(s.nodes[g].note.find("NVLink unknown: NVML not available"), std::string::npos) << s.nodes[g].note;
  }
  EXPECT_TRUE(s.nvlinks.empty());
}

TEST(Hwloc, ThisMachineHasCoresAndThreadsOnItsNumaNodes) {
  auto r = detectFromSysfs("");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  System s = r.value();
  ASSERT_TRUE(addHwlocCpuFacts(s).isOk());
  int pus = 0;
  for (int c : s.ofKind(NodeKind::kCpu)) {
    EXPECT_GE(s.nodes[c].pus, s.nodes[c].cores);
    pus += s.nodes[c].pus;
  }
  EXPECT_EQ(pus, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
}

}  // namespace
}  // namespace trellis::topo
