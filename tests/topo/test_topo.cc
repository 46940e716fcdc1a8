// Topology from real fixtures (NCCL XML of Azure, AWS and IBM machines), round trips, malformed
// input, and synthetic sysfs trees that must reproduce PIX/PXB/PHB/NODE/SYS.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <sstream>
#include <fstream>

#include "topo/emit.h"
#include "topo/nccl_xml.h"
#include "topo/paths.h"
#include "topo/sysfs.h"

namespace fs = std::filesystem;

namespace trellis::topo {
namespace {

std::string fixture(const std::string& name) {
  for (const char* base : {"../shared/fixtures/nccl-topo/", "../../shared/fixtures/nccl-topo/",
                           "/work/shared/fixtures/nccl-topo/", TRELLIS_SOURCE_DIR "/../shared/fixtures/nccl-topo/"})
    if (fs::exists(std::string(base) + name)) return std::string(base) + name;
  return "";
}

System load(const std::string& name) {
  std::string path = fixture(name);
  EXPECT_FALSE(path.empty()) << "fixture " << name << " not found";
  auto s = loadTopologyFile(path);
  EXPECT_TRUE(s.isOk()) << s.status().message();
  return s.isOk() ? s.value() : System{};
}

TEST(Fixtures, AzureNdH100v5IsOneNicPerGpu) {
  System s = load("azure-ndv5-h100.xml");
  auto gpus = s.ofKind(NodeKind::kGpu), nics = s.ofKind(NodeKind::kNic);
  ASSERT_EQ(gpus.size(), 8u);
  ASSERT_EQ(nics.size(), 8u);
  EXPECT_EQ(s.ofKind(NodeKind::kCpu).size(), 2u);
  Rails r = computeRails(s);
  ASSERT_EQ(r.computeNics.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(r.gpuNic[i], nics[i]) << "GPU " << i;
    EXPECT_EQ(pathBetween(s, gpus[i], nics[i]).kind, PathKind::kPix);
    EXPECT_EQ(r.railOfNic(nics[i]), static_cast<int>(i));
  }
  EXPECT_EQ(pathBetween(s, gpus[0], gpus[1]).kind, PathKind::kPhb);
  EXPECT_EQ(pathBetween(s, gpus[0], gpus[4]).kind, PathKind::kSys);
  // 32 GT/s x16 with 128b/130b encoding.
  EXPECT_NEAR(pathBetween(s, gpus[0], nics[0]).gbps, 63.0, 0.1);
}

TEST(Fixtures, AwsP4dSharesEachEfaNicBetweenTwoGpus) {
  System s = load("aws-p4d.24xlarge-a100.xml");
  auto gpus = s.ofKind(NodeKind::kGpu), nics = s.ofKind(NodeKind::kNic);
  ASSERT_EQ(gpus.size(), 8u);
  ASSERT_EQ(nics.size(), 4u);
  EXPECT_EQ(s.nodes[nics[0]].vendor, 0x1d0fu);
  Rails r = computeRails(s);
  for (size_t g = 0; g < 8; ++g) EXPECT_EQ(r.gpuNic[g], nics[g / 2]) << "GPU " << g;
  EXPECT_EQ(r.computeNics.size(), 4u);
}

TEST(Fixtures, AzureNdA100v4HasTwoGpusAndTwoNicsPerSwitch) {
  System s = load("azure-ndv4-a100.xml");
  auto gpus = s.ofKind(NodeKind::kGpu), nics = s.ofKind(NodeKind::kNic);
  ASSERT_EQ(gpus.size(), 8u);
  ASSERT_EQ(nics.size(), 8u);
  EXPECT_EQ(s.ofKind(NodeKind::kCpu).size(), 4u);
  Rails r = computeRails(s);
  std::set<int> used(r.gpuNic.begin(), r.gpuNic.end());
  EXPECT_EQ(used.size(), 8u) << "every GPU gets its own NIC";
  for (size_t g = 0; g < 8; ++g) EXPECT_EQ(pathBetween(s, gpus[g], r.gpuNic[g]).kind, PathKind::kPix);
}

TEST(Fixtures, IbmH100FullDumpHasFourNvSwitchesAndEighteenLinksPerGpu) {
  System s = load("ibm-gx3d-8xh100-full-dump.xml");
  auto gpus = s.ofKind(NodeKind::kGpu);
  ASSERT_EQ(gpus.size(), 8u);
  EXPECT_EQ(s.ofKind(NodeKind::kNvSwitch).size(), 4u);
  for (int g : gpus) {
    int links = 0;
    for (const NvLink& l : s.nvlinks)
      if (l.from == g) links += l.count;
    EXPECT_EQ(links, 18) << s.nodes[g].busId;
    EXPECT_EQ(s.nodes[g].sm, 90);
  }
  Path p = pathBetween(s, gpus[0], gpus[5]);
  EXPECT_EQ(p.kind, PathKind::kNvSwitch);
  EXPECT_DOUBLE_EQ(p.gbps, 18 * 25.0);
  auto nics = s.ofKind(NodeKind::kNic);
  ASSERT_EQ(nics.size(), 8u);
  EXPECT_EQ(s.nodes[nics[0]].ports.at(0).name, "mlx5_7");
  EXPECT_EQ(s.nodes[nics[0]].ports.at(0).speedMbps, 200000);
  Rails r = computeRails(s);
  for (size_t g = 0; g < 8; ++g) EXPECT_EQ(pathBetween(s, gpus[g], r.gpuNic[g]).kind, PathKind::kPix);
}

TEST(Fixtures, PartialFilesAreMarkedDegradedNotDropped) {
  System p5 = load("aws-p5.48xlarge-h100.xml");
  EXPECT_EQ(p5.ofKind(NodeKind::kGpu).size(), 0u);  // the file lists no GPUs
  int degraded = 0, leaves = 0;
  for (const Node& n : p5.nodes) {
    degraded += n.degraded;
    leaves += n.kind == NodeKind::kPciDevice;
  }
  EXPECT_EQ(leaves, 32);  // 8 switches x 4 endpoints whose class the file omits
  EXPECT_GE(degraded, 32);
  System nc = load("azure-ncv4-a100-pcie.xml");
  EXPECT_EQ(nc.ofKind(NodeKind::kGpu).size(), 4u);
  EXPECT_EQ(nc.ofKind(NodeKind::kNic).size(), 1u);
  // Its GPUs list NVLinks to themselves (a known oddity of the file): not an NVLink path.
  auto g = nc.ofKind(NodeKind::kGpu);
  EXPECT_NE(pathBetween(nc, g[0], g[1]).kind, PathKind::kNvLink);
}

TEST(Formats, RoundTripsKeepDevicesAndRails) {
  for (const char* f : {"azure-ndv5-h100.xml", "aws-p4d.24xlarge-a100.xml", "ibm-gx3d-8xh100-full-dump.xml"}) {
    System a = load(f);
    auto j = fromJson(toJson(a), "json");
    ASSERT_TRUE(j.isOk()) << j.status().message();
    EXPECT_EQ(toJson(j.value()), toJson(a)) << f;
    auto x = fromNcclXml(toNcclXml(a), "xml");
    ASSERT_TRUE(x.isOk()) << x.status().message();
    EXPECT_EQ(x->ofKind(NodeKind::kGpu).size(), a.ofKind(NodeKind::kGpu).size()) << f;
    EXPECT_EQ(x->ofKind(NodeKind::kNic).size(), a.ofKind(NodeKind::kNic).size()) << f;
    EXPECT_EQ(x->ofKind(NodeKind::kNvSwitch).size(), a.ofKind(NodeKind::kNvSwitch).size()) << f;
    Rails ra = computeRails(a), rx = computeRails(x.value());
    ASSERT_EQ(ra.gpuNic.size(), rx.gpuNic.size());
    for (size_t i = 0; i < ra.gpuNic.size(); ++i)
      EXPECT_EQ(a.nodes[ra.gpuNic[i]].busId, x->nodes[rx.gpuNic[i]].busId) << f;
  }
}

TEST(Formats, MalformedInputNamesFileAndLine) {
  std::string text = "<system version=\"1\">\n  <cpu numaid=\"0\" arch=\"x86_64\">\n    <pci busid=\"0000:01:00.0\"";
  auto r = fromNcclXml(text, "broken.xml");
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("broken.xml:"), std::string::npos) << r.status().message();
  auto v = fromNcclXml("<system version=\"2\"><cpu numaid=\"0\"/></system>", "v2.xml");
  ASSERT_FALSE(v.isOk());
  EXPECT_NE(v.status().message().find("v2.xml:1: <system version=\"2\">"), std::string::npos) << v.status().message();
  auto nopci = fromNcclXml("<system version=\"1\">\n<cpu numaid=\"0\">\n<pci class=\"0x030200\"/></cpu></system>", "nobus.xml");
  ASSERT_FALSE(nopci.isOk());
  EXPECT_NE(nopci.status().message().find("nobus.xml:3: <pci> without a busid"), std::string::npos) << nopci.status().message();
  EXPECT_FALSE(fromJson("{\"format\": \"trellis-topology\", \"version\": 1, \"nodes\": [{\"kind\": \"gpu\", \"parent\": 5}]}", "j").isOk());
  EXPECT_FALSE(fromJson("[1, 2", "j").isOk());
  EXPECT_FALSE(loadTopologyFile("/nonexistent/topo.xml").isOk());
}

// A synthetic sysfs tree: two NUMA nodes, three host bridges, one PCIe switch with two ports.
class SyntheticSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("trellis-sysfs-" + std::to_string(getpid()));
    fs::remove_all(root_);
    for (int n : {0, 1}) {
      fs::create_directories(root_ / "sys/devices/system/node" / ("node" + std::to_string(n)));
      std::ofstream(root_ / "sys/devices/system/node" / ("node" + std::to_string(n)) / "cpumap") << (n ? "f0\n" : "0f\n");
    }
    fs::create_directories(root_ / "sys/bus/pci/devices");
    // path below sys/devices, class, vendor, numa
    dev("pci0000:00/0000:00:01.0", 0x060400, 0x8086, 0);
    dev("pci0000:00/0000:00:01.0/0000:01:00.0", 0x060400, 0x1000, 0);                        // switch up
    dev("pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0", 0x060400, 0x1000, 0);           // port A
    dev("pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:01.0", 0x060400, 0x1000, 0);           // port B
    dev("pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0", 0x030200, 0x10de, 0);  // GPU A
    dev("pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.1", 0x020700, 0x15b3, 0);  // NIC A
    dev("pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:01.0/0000:04:00.0", 0x030200, 0x10de, 0);  // GPU B
    dev("pci0000:00/0000:00:02.0", 0x060400, 0x8086, 0);
    dev("pci0000:00/0000:00:02.0/0000:05:00.0", 0x030200, 0x10de, 0);  // GPU C: other root port
    dev("pci0000:40/0000:40:01.0", 0x060400, 0x8086, 0);
    dev("pci0000:40/0000:40:01.0/0000:41:00.0", 0x030200, 0x10de, 0);  // GPU D: other host bridge
    dev("pci0000:80/0000:80:01.0", 0x060400, 0x8086, 1);
    dev("pci0000:80/0000:80:01.0/0000:81:00.0", 0x030200, 0x10de, 1);  // GPU E: other socket
    dev("pci0000:00/0000:00:1f.0", 0x060100, 0x8086, 0);               // ISA bridge: pruned
    fs::create_directories(root_ / "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.1/infiniband/mlx5_0/ports/1");
    fs::path port = root_ / "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.1/infiniband/mlx5_0";
    std::ofstream(port / "node_guid") << "0c42:a103:0001:0002\n";
    std::ofstream(port / "ports/1/rate") << "400 Gb/sec (4X NDR)\n";
    std::ofstream(port / "ports/1/link_layer") << "InfiniBand\n";
    std::ofstream(port / "ports/1/state") << "4: ACTIVE\n";
  }
  void TearDown() override { fs::remove_all(root_); }
  void dev(const std::string& rel, uint32_t cls, uint32_t vendor, int numa) {
    fs::path d = root_ / "sys/devices" / rel;
    fs::create_directories(d);
    char b[32];
    snprintf(b, sizeof b, "0x%06x\n", cls);
    std::ofstream(d / "class") << b;
    snprintf(b, sizeof b, "0x%04x\n", vendor);
    std::ofstream(d / "vendor") << b;
    std::ofstream(d / "device") << "0x1234\n";
    std::ofstream(d / "numa_node") << numa << "\n";
    std::ofstream(d / "current_link_speed") << "16.0 GT/s PCIe\n";
    std::ofstream(d / "current_link_width") << "16\n";
    fs::create_directory_symlink(d, root_ / "sys/bus/pci/devices" / d.filename());
  }
  fs::path root_;
};

TEST_F(SyntheticSysfs, ReproducesEveryPciPathKind) {
  auto r = detectFromSysfs(root_.string());
  ASSERT_TRUE(r.isOk()) << r.status().message();
  const System& s = r.value();
  auto id = [&](const char* bdf) { return s.findBusId(bdf); };
  int gpuA = id("0000:03:00.0"), nicA = id("0000:03:00.1"), gpuB = id("0000:04:00.0"), gpuC = id("0000:05:00.0"),
      gpuD = id("0000:41:00.0"), gpuE = id("0000:81:00.0");
  ASSERT_GE(gpuA, 0);
  ASSERT_GE(nicA, 0);
  EXPECT_EQ(s.ofKind(NodeKind::kGpu).size(), 5u);
  EXPECT_EQ(s.findBusId("0000:00:1f.0"), -1) << "devices leading to no GPU/NIC are pruned";
  EXPECT_EQ(pathBetween(s, gpuA, nicA).kind, PathKind::kPix);
  EXPECT_EQ(pathBetween(s, gpuA, gpuB).kind, PathKind::kPxb);
  EXPECT_EQ(pathBetween(s, gpuA, gpuC).kind, PathKind::kPhb);
  EXPECT_EQ(pathBetween(s, gpuA, gpuD).kind, PathKind::kNode);
  EXPECT_EQ(pathBetween(s, gpuA, gpuE).kind, PathKind::kSys);
  EXPECT_EQ(s.nodes[gpuE].numa, 1);
  ASSERT_EQ(s.nodes[nicA].ports.size(), 1u);
  EXPECT_EQ(s.nodes[nicA].ports[0].name, "mlx5_0");
  EXPECT_EQ(s.nodes[nicA].ports[0].linkLayer, "InfiniBand");
  EXPECT_EQ(s.nodes[nicA].ports[0].speedMbps, 400000);
  EXPECT_EQ(nearestNics(s, gpuB).front(), nicA);
  // Dump to NCCL XML and back: the classification survives.
  auto x = fromNcclXml(toNcclXml(s), "dump");
  ASSERT_TRUE(x.isOk()) << x.status().message();
  EXPECT_EQ(pathBetween(x.value(), x->findBusId("0000:03:00.0"), x->findBusId("0000:04:00.0")).kind, PathKind::kPxb);
}

TEST(Detect, ThisMachineIsFastAndHasACpu) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = detectFromSysfs("");
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_GE(r->ofKind(NodeKind::kCpu).size(), 1u);
  std::printf("detected this machine in %.2f ms\n", ms);
}

}  // namespace
}  // namespace trellis::topo

namespace trellis::topo {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Golden files checked by hand against Slurm's gres.conf(5) and the DRA attribute names:
// Links= counts the 18 NVLinks every H100 has through the 4 NVSwitches; Cores= is the NUMA node's
// CPU mask (0-79 / 80-159 on the IBM box; 0-23,48-71 / 24-47,72-95 on p4d).
TEST(Emitters, MatchGoldenFiles) {
  const std::string golden = std::string(TRELLIS_SOURCE_DIR) + "/tests/topo/golden/";
  EmitOptions ibm;
  ibm.nodeName = "gpu001";
  ibm.gpuType = "h100";
  EXPECT_EQ(toSlurmGres(load("ibm-gx3d-8xh100-full-dump.xml"), ibm), slurp(golden + "ibm-gx3d-gres.conf"));
  EmitOptions p4d;
  p4d.nodeName = "p4d-001";
  EXPECT_EQ(toSlurmGres(load("aws-p4d.24xlarge-a100.xml"), p4d), slurp(golden + "aws-p4d-gres.conf"));
  EXPECT_EQ(toK8sLabels(load("azure-ndv5-h100.xml"), EmitOptions{}), slurp(golden + "azure-ndv5-k8s.yaml"));
  EXPECT_EQ(cpuListFromMask("000000ff,ffff0000,00ffffff"), "0-23,48-71");
  EXPECT_EQ(cpuListFromMask("5"), "0,2");
}

}  // namespace
}  // namespace trellis::topo
