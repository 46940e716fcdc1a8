// The topology facts behind the plugin's device properties: guids shared by the ports and PCI
// functions of one NIC, RDMA node guids, rail groups (the GPUs a NIC is nearest to), RDMA ports.
#include <gtest/gtest.h>

#include "core/topo_view.h"

namespace trellis::ncclnet {
namespace {

using topo::Node;
using topo::NodeKind;

int addNode(topo::System& s, NodeKind kind, int parent, const std::string& busId) {
  Node n;
  n.kind = kind;
  n.parent = parent;
  n.busId = busId;
  n.numa = 0;
  if (kind == NodeKind::kGpu) n.vendor = 0x10de;
  return s.add(n);
}

topo::NetPort netdev(const std::string& name, int64_t mbps) {
  topo::NetPort p;
  p.name = p.netdev = name;
  p.speedMbps = mbps;
  p.linkLayer = "Ethernet";
  return p;
}

// CPU -> switch A (GPU 0, a two-function NIC: eth0 on .0, eth1 on .1, and a second NIC eth2)
//     -> switch B (GPU 1, NIC with eth3 and the RDMA port mlx5_3).
topo::System twoSwitches() {
  topo::System s;
  Node cpu;
  cpu.kind = NodeKind::kCpu;
  cpu.numa = 0;
  int c = s.add(cpu);
  int swA = addNode(s, NodeKind::kPciSwitch, c, "0000:10:00.0");
  int swB = addNode(s, NodeKind::kPciSwitch, c, "0000:20:00.0");
  addNode(s, NodeKind::kGpu, swA, "0000:11:00.0");
  addNode(s, NodeKind::kGpu, swB, "0000:21:00.0");
  int f0 = addNode(s, NodeKind::kNic, swA, "0000:12:00.0");
  int f1 = addNode(s, NodeKind::kNic, swA, "0000:12:00.1");
  int other = addNode(s, NodeKind::kNic, swA, "0000:13:00.0");
  int b = addNode(s, NodeKind::kNic, swB, "0000:22:00.0");
  s.nodes[f0].ports.push_back(netdev("eth0", 100000));
  s.nodes[f1].ports.push_back(netdev("eth1", 100000));
  s.nodes[other].ports.push_back(netdev("eth2", 25000));
  s.nodes[b].ports.push_back(netdev("eth3", 0));
  topo::NetPort rdma;
  rdma.name = "mlx5_3";
  rdma.port = 1;
  rdma.guid = "0002:c903:0031:7b70";
  rdma.linkLayer = "InfiniBand";
  rdma.speedMbps = 200000;
  s.nodes[b].ports.push_back(rdma);
  return s;
}

TEST(TopoView, PortsAndFunctionsOfOneNicShareTheGuid) {
  TopoView v(twoSwitches());
  auto e0 = v.forNetdev("eth0"), e1 = v.forNetdev("eth1"), e2 = v.forNetdev("eth2");
  ASSERT_TRUE(e0 && e1 && e2);
  EXPECT_EQ(e0->guid, e1->guid) << "functions .0 and .1 of one card";
  EXPECT_NE(e0->guid, e2->guid) << "another card";
  EXPECT_NE(e0->guid, 0u);
  EXPECT_EQ(e0->busId, "0000:12:00.0");
  EXPECT_EQ(e0->speedMbps, 100000);
  EXPECT_EQ(e0->pciPath, "") << "no such device in this machine's sysfs";
  EXPECT_FALSE(v.forNetdev("lo")) << "loopback is no NIC port";
}

TEST(TopoView, RdmaPortsUseTheNodeGuid) {
  TopoView v(twoSwitches());
  auto m = v.forRdmaPort("mlx5_3", 1);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->guid, 0x0002c90300317b70ull);
  EXPECT_EQ(m->speedMbps, 200000);
  EXPECT_FALSE(v.forRdmaPort("mlx5_3", 2));
  EXPECT_EQ(v.rdmaPorts(), std::vector<std::string>{"mlx5_3:1"});
  auto e3 = v.forNetdev("eth3");
  ASSERT_TRUE(e3);
  EXPECT_EQ(e3->speedMbps, 200000)
      << "a netdev of unknown speed (IPoIB, some RoCE) takes its RDMA port's rate";
  EXPECT_EQ(v.forNetdev("eth2")->speedMbps, 25000);
}

TEST(TopoView, RailGroupsFollowTheGpusEachNicIsNearestTo) {
  TopoView v(twoSwitches());
  EXPECT_EQ(v.forNetdev("eth0")->railGroup, "gpus:0");
  EXPECT_EQ(v.forNetdev("eth1")->railGroup, "gpus:0");
  EXPECT_EQ(v.forNetdev("eth2")->railGroup, "gpus:0");
  EXPECT_EQ(v.forNetdev("eth3")->railGroup, "gpus:1");
}

TEST(TopoView, WithoutGpusOnlyOneNicsPortsShareARailGroup) {
  topo::System s = twoSwitches();
  for (Node& n : s.nodes)
    if (n.kind == NodeKind::kGpu) n.kind = NodeKind::kPciDevice;
  TopoView v(std::move(s));
  EXPECT_EQ(v.forNetdev("eth0")->railGroup, "nic:0000:12:00");
  EXPECT_EQ(v.forNetdev("eth1")->railGroup, v.forNetdev("eth0")->railGroup);
  EXPECT_NE(v.forNetdev("eth2")->railGroup, v.forNetdev("eth0")->railGroup);
}

}  // namespace
}  // namespace trellis::ncclnet
