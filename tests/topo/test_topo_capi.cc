// The topology C API end to end: load a fixture, walk devices, paths, nearest NICs, rails, JSON,
// save and reload; invalid arguments are rejected with a message.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "trellis/topology.h"

namespace {

std::string fixture(const char* name) {
  std::string p = std::string(TRELLIS_SOURCE_DIR) + "/../shared/fixtures/nccl-topo/" + name;
  return std::filesystem::exists(p) ? p : std::string("/work/shared/fixtures/nccl-topo/") + name;
}

TEST(TopologyCApi, FixtureWalkPathsRailsAndSave) {
  trellisTopo_t t = nullptr;
  ASSERT_EQ(trellisTopoLoad(fixture("azure-ndv5-h100.xml").c_str(), &t), trellisSuccess) << trellisGetLastError(nullptr);
  int gpus = 0, nics = 0;
  ASSERT_EQ(trellisTopoDeviceCount(t, trellisTopoGpu, &gpus), trellisSuccess);
  ASSERT_EQ(trellisTopoDeviceCount(t, trellisTopoNic, &nics), trellisSuccess);
  EXPECT_EQ(gpus, 8);
  EXPECT_EQ(nics, 8);
  std::vector<int> g(8), n(8);
  int found = 0;
  ASSERT_EQ(trellisTopoFindDevices(t, trellisTopoGpu, g.data(), 8, &found), trellisSuccess);
  ASSERT_EQ(trellisTopoFindDevices(t, trellisTopoNic, n.data(), 8, &found), trellisSuccess);
  trellisTopoDeviceInfo_t info;
  info.size = sizeof info;
  ASSERT_EQ(trellisTopoGetDevice(t, g[0], &info), trellisSuccess);
  EXPECT_EQ(info.kind, trellisTopoGpu);
  EXPECT_STREQ(info.busId, "0001:00:00.0");
  EXPECT_NEAR(info.linkGBps, 63.0, 0.1);
  trellisTopoPathKind_t kind;
  double gbps = 0;
  ASSERT_EQ(trellisTopoGetPath(t, g[3], n[3], &kind, &gbps), trellisSuccess);
  EXPECT_EQ(kind, trellisTopoPathPix);
  EXPECT_STREQ(trellisTopoPathKindName(kind), "PIX");
  int near[8];
  ASSERT_EQ(trellisTopoNearestNics(t, g[5], near, 8, &found), trellisSuccess);
  EXPECT_EQ(found, 8);
  EXPECT_EQ(near[0], n[5]);
  int rail = -1;
  ASSERT_EQ(trellisTopoRailOfNic(t, n[6], &rail), trellisSuccess);
  EXPECT_EQ(rail, 6);
  EXPECT_EQ(trellisTopoRailOfNic(t, g[0], &rail), trellisInvalidArgument);
  EXPECT_NE(std::string(trellisGetLastError(nullptr)).find("is a gpu, not a NIC"), std::string::npos);
  size_t needed = 0;
  ASSERT_EQ(trellisTopoToJson(t, nullptr, 0, &needed), trellisSuccess);
  std::string json(needed, '\0');
  ASSERT_EQ(trellisTopoToJson(t, json.data(), json.size(), &needed), trellisSuccess);
  EXPECT_NE(json.find("\"trellis-topology\""), std::string::npos);
  std::string path = "/tmp/trellis-topo-capi-" + std::to_string(getpid()) + ".json";
  ASSERT_EQ(trellisTopoSave(t, path.c_str(), trellisTopoFormatJson), trellisSuccess);
  trellisTopo_t back = nullptr;
  ASSERT_EQ(trellisTopoLoad(path.c_str(), &back), trellisSuccess) << trellisGetLastError(nullptr);
  int backGpus = 0;
  trellisTopoDeviceCount(back, trellisTopoGpu, &backGpus);
  EXPECT_EQ(backGpus, 8);
  std::filesystem::remove(path);
  EXPECT_EQ(trellisTopoGetPath(t, 0, 999, &kind, &gbps), trellisInvalidArgument);
  EXPECT_NE(std::string(trellisGetLastError(nullptr)).find("device 999 out of range"), std::string::npos);
  trellisTopoFree(back);
  trellisTopoFree(t);
  EXPECT_EQ(trellisTopoLoad("/nonexistent.xml", &t), trellisInvalidArgument);
  EXPECT_EQ(t, nullptr);
}

TEST(TopologyCApi, DetectsThisMachine) {
  trellisTopo_t t = nullptr;
  ASSERT_EQ(trellisTopoDetect(&t), trellisSuccess) << trellisGetLastError(nullptr);
  int cpus = 0;
  ASSERT_EQ(trellisTopoDeviceCount(t, trellisTopoCpu, &cpus), trellisSuccess);
  EXPECT_GE(cpus, 1);
  trellisTopoFree(t);
}

}  // namespace
