// The NVIDIA driver paths of detection (NVML NVLink facts, CUDA ordinals) against a stand-in
// library (fake_nvidia_driver.c), and their clean absence.
#include <gtest/gtest.h>

#include "topo/cuda_devices.h"
#include "topo/nvml.h"
#include "topo/paths.h"

namespace trellis::topo {
namespace {

// One CPU with two GPUs under it, as sysfs would give them (bus ids in the model's form).
System twoGpus() {
  System s;
  Node cpu;
  cpu.kind = NodeKind::kCpu;
  cpu.numa = 0;
  int c = s.add(cpu);
  for (const char* bus : {"0000:1a:00.0", "0000:1b:00.0"}) {
    Node g;
    g.kind = NodeKind::kGpu;
    g.parent = c;
    g.busId = bus;
    g.pciClass = 0x030200;
    s.add(g);
  }
  return s;
}

int gpuAt(const System& s, const char* bus) {
  int n = s.findBusId(bus);
  EXPECT_GE(n, 0) << bus;
  return n;
}

TEST(CudaDevices, OrdinalsComeFromTheDriverNotPciOrder) {
  System s = twoGpus();
  ASSERT_TRUE(addCudaDeviceIds(s, TRELLIS_FAKE_DRIVER).isOk());
  EXPECT_EQ(s.nodes[gpuAt(s, "0000:1b:00.0")].gpuDev, 0);
  EXPECT_EQ(s.nodes[gpuAt(s, "0000:1a:00.0")].gpuDev, 1);
}

TEST(CudaDevices, HiddenGpuKeepsNoOrdinalAndSaysWhy) {
  System s = twoGpus();
  Node g;
  g.kind = NodeKind::kGpu;
  g.parent = 0;
  g.busId = "0000:3c:00.0";
  int hidden = s.add(g);
  ASSERT_TRUE(addCudaDeviceIds(s, TRELLIS_FAKE_DRIVER).isOk());
  EXPECT_EQ(s.nodes[hidden].gpuDev, -1);
  EXPECT_NE(s.nodes[hidden].note.find("not visible to CUDA"), std::string::npos) << s.nodes[hidden].note;
}

TEST(CudaDevices, NoDriverChangesNothing) {
  System s = twoGpus();
  ASSERT_TRUE(addCudaDeviceIds(s, "libtrellis-no-such-cuda.so.1").isOk());
  for (int gi : s.ofKind(NodeKind::kGpu)) {
    EXPECT_EQ(s.nodes[gi].gpuDev, -1);
    EXPECT_TRUE(s.nodes[gi].note.empty());
  }
}

TEST(Nvml, LinksPeersSwitchAndVersionFromTheDriver) {
  System s = twoGpus();
  ASSERT_TRUE(addNvmlFacts(s, TRELLIS_FAKE_DRIVER).isOk());
  int a = gpuAt(s, "0000:1a:00.0"), b = gpuAt(s, "0000:1b:00.0");
  EXPECT_EQ(s.nodes[a].sm, 90);
  ASSERT_EQ(s.ofKind(NodeKind::kNvSwitch).size(), 1u) << "the switch seen only as a link target becomes a node";
  int sw = s.ofKind(NodeKind::kNvSwitch)[0];
  int toPeer = 0, toSwitch = 0;
  for (const NvLink& l : s.nvlinks) {
    EXPECT_EQ(l.version, 4);
    EXPECT_GT(l.gbpsPerLink, 0);
    EXPECT_EQ(l.source, Source::kNvml);
    if (l.from == a && l.to == b) toPeer += l.count;
    if (l.from == a && l.to == sw) toSwitch += l.count;
  }
  EXPECT_EQ(toPeer, 2);
  EXPECT_EQ(toSwitch, 4);
  EXPECT_FALSE(s.nodes[a].degraded) << s.nodes[a].note;
  PathKind k = pathBetween(s, a, b).kind;
  EXPECT_TRUE(k == PathKind::kNvLink || k == PathKind::kNvSwitch) << static_cast<int>(k);
}

}  // namespace
}  // namespace trellis::topo
