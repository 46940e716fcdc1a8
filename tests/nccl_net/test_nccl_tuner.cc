// The tuner exported by libnccl-net-trellis.so, called as NCCL 2.28 calls it: init with the
// communicator's rank/node counts, then getCollInfo with NCCL's cost table, a float[7][3] passed
// as float**, in which NCCL has set disabled entries to -1. Topologies come from NCCL XML files
// written here (TRELLIS_TOPO_FILE); each case runs in its own process because the topology is
// detected once per process.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "abi/nccl_abi.h"
#include "harness.h"
#include "net_api.h"
#include "topo/sysfs.h"
#include "tuner/tuner_model.h"

namespace nccltest {
namespace {

using namespace trellis::nccl_abi;
namespace model = trellis::ncclnet::tuner;

using Table = float[kNumAlgorithms][kNumProtocols];

// An NCCL topology XML: `gpus` GPUs, each under its own PCIe switch with one NIC of `nicMbps`;
// with `nvswitch`, every GPU has 18 NVLinks spread over 4 NVSwitches.
std::string writeTopo(const std::string& name, int gpus, bool nvswitch, long nicMbps) {
  std::string path = "/tmp/trellis-tuner-" + name + "-" + std::to_string(getpid()) + ".xml";
  std::ofstream out(path);
  out << "<system version=\"1\">\n <cpu numaid=\"0\" affinity=\"ffffffff\" arch=\"x86_64\" "
         "vendor=\"GenuineIntel\" "
         "familyid=\"6\" modelid=\"143\">\n";
  for (int g = 0; g < gpus; ++g) {
    char sw[16], nic[16], gpu[16];
    snprintf(sw, sizeof sw, "0000:%02x:00.0", 0x10 + g * 4);
    snprintf(nic, sizeof nic, "0000:%02x:00.0", 0x11 + g * 4);
    snprintf(gpu, sizeof gpu, "0000:%02x:00.0", 0x12 + g * 4);
    out << "  <pci busid=\"" << sw << "\" class=\"0x060400\" vendor=\"0x1000\" device=\"0xc030\" "
        << "link_speed=\"32.0 GT/s PCIe\" link_width=\"16\">\n";
    if (nicMbps > 0)
      out << "   <pci busid=\"" << nic
          << "\" class=\"0x020700\" vendor=\"0x15b3\" device=\"0x1021\" link_speed=\"32.0 "
          << "GT/s PCIe\" link_width=\"16\"><nic><net name=\"mlx5_" << g << "\" dev=\"" << g
          << "\" speed=\"" << nicMbps << "\" port=\"1\" guid=\"0x" << std::hex << (0x1000 + g)
          << std::dec << "\"/></nic></pci>\n";
    out << "   <pci busid=\"" << gpu
        << "\" class=\"0x030200\" vendor=\"0x10de\" device=\"0x2330\" link_speed=\"32.0 "
        << "GT/s PCIe\" link_width=\"16\"><gpu dev=\"" << g << "\" sm=\"90\" rank=\"" << g
        << "\" gdr=\"1\">";
    if (nvswitch)
      for (int s = 0; s < 4; ++s)
        out << "<nvlink target=\"0000:f" << s << ":00.0\" count=\"" << (s < 2 ? 5 : 4)
            << "\" tclass=\"0x068000\"/>";
    out << "</gpu></pci>\n  </pci>\n";
  }
  out << " </cpu>\n</system>\n";
  return path;
}

struct Pick {
  int algo = -1, proto = -1;
};

Pick argmin(const float* t, int numAlgo, int numProto) {
  Pick p;
  float best = 0;
  for (int a = 0; a < numAlgo; ++a)
    for (int q = 0; q < numProto; ++q) {
      float v = t[a * numProto + q];
      if (v < 0) continue;
      if (p.algo < 0 || v < best) {
        best = v;
        p = {a, q};
      }
    }
  return p;
}

// A table as NCCL builds it: every candidate enabled (1 us placeholder), the rest -1.
void enable(Table& t, std::initializer_list<int> algos, std::initializer_list<int> protos) {
  for (auto& row : t)
    for (float& v : row) v = kAlgoProtoIgnore;
  for (int a : algos)
    for (int p : protos) t[a][p] = 1.0f;
}

struct Tuner {
  void* lib = nullptr;
  TunerV5* v5 = nullptr;
  TunerV4* v4 = nullptr;
  void* ctx = nullptr;
  bool open(size_t nRanks, size_t nNodes) {
    lib = openPlugin();
    if (lib == nullptr) return false;
    v5 = static_cast<TunerV5*>(dlsym(lib, "ncclTunerPlugin_v5"));
    v4 = static_cast<TunerV4*>(dlsym(lib, "ncclTunerPlugin_v4"));
    if (v5 == nullptr || v4 == nullptr) {
      ADD_FAILURE() << "tuner symbols missing";
      return false;
    }
    EXPECT_STREQ(v5->name, "Trellis");
    NvlDomainInfoV5 nvl{static_cast<int>(nNodes), static_cast<int>(nRanks / nNodes),
                        static_cast<int>(nRanks / nNodes)};
    TunerConstantsV5 constants{};
    constants.baseLatencies[0][0] = 123.0;
    EXPECT_EQ(v5->init(&ctx, 0xabc, nRanks, nNodes, testLogger, &nvl, &constants), kSuccess);
    EXPECT_EQ(constants.baseLatencies[0][0], 123.0) << "NCCL's constants are left as they are";
    return ctx != nullptr;
  }
  Pick pick(Func coll, size_t bytes, Table& t) {
    int nChannels = 7;
    EXPECT_EQ(v5->getCollInfo(ctx, coll, bytes, 1, reinterpret_cast<float**>(t), kNumAlgorithms,
                              kNumProtocols, 0, &nChannels),
              kSuccess);
    EXPECT_EQ(nChannels, 7) << "the channel count stays NCCL's";
    return argmin(&t[0][0], kNumAlgorithms, kNumProtocols);
  }
  ~Tuner() {
    if (v5 != nullptr && ctx != nullptr) {
      EXPECT_EQ(v5->finalize(ctx), kSuccess);
    }
  }
};

const std::initializer_list<int> kAllProtos = {kProtoLL, kProtoLL128, kProtoSimple};

// ---- Model (linked directly) ------------------------------------------------------------------

trellis::topo::System loadTopo(const std::string& path) {
  auto sys = trellis::topo::loadTopologyFile(path);
  EXPECT_TRUE(sys.isOk()) << sys.status().toString();
  unlink(path.c_str());
  return sys.isOk() ? std::move(sys.value()) : trellis::topo::System{};
}

TEST(TunerModel, FactsFromTopology) {
  model::CommModel m(loadTopo(writeTopo("facts", 8, true, 400000)), 64, 8);
  const model::Facts& f = m.facts();
  EXPECT_EQ(f.gpus, 8);
  EXPECT_TRUE(f.nvswitch);
  EXPECT_TRUE(f.nvlink);
  EXPECT_TRUE(f.rdma) << "NICs with a guid and no kernel interface are RDMA ports";
  EXPECT_EQ(f.rails, 8);
  EXPECT_NEAR(f.intraGBps, 18 * 25.0, 1e-6) << "18 NVLink 4 links of 25 GB/s";
  EXPECT_NEAR(f.netGBps, 8 * 50.0, 1e-6) << "8 x 400 Gb/s";
  EXPECT_GT(f.netLatUs, 0);
  EXPECT_GT(f.intraLatUs, 0);
  EXPECT_NE(m.describe().find("64 rank(s) on 8 node(s)"), std::string::npos) << m.describe();
}

TEST(TunerModel, TimesGrowWithSizeAndLLHalvesTheBandwidth) {
  model::CommModel m(loadTopo(writeTopo("grow", 8, true, 400000)), 32, 4);
  for (int a : {kAlgoTree, kAlgoRing, kAlgoNvls, kAlgoNvlsTree, kAlgoPat})
    for (int p : kAllProtos)
      for (Func c : {kFuncAllReduce, kFuncAllGather, kFuncReduceScatter, kFuncBroadcast}) {
        double prev = -1;
        for (size_t b = 64; b <= (size_t{1} << 30); b *= 8) {
          double t = m.predictUs(c, b, static_cast<Algo>(a), static_cast<Proto>(p));
          if (t < 0) break;  // not a candidate for this collective
          EXPECT_GE(t, prev) << model::algoName(a) << "/" << model::protoName(p) << " coll " << c
                             << " " << b;
          prev = t;
        }
      }
  // Bandwidth-bound: LL (half the bandwidth) takes about twice Simple's time.
  size_t big = size_t{1} << 32;
  for (Algo a : {kAlgoRing, kAlgoTree}) {
    double simple = m.predictUs(kFuncAllReduce, big, a, kProtoSimple);
    double ll = m.predictUs(kFuncAllReduce, big, a, kProtoLL);
    EXPECT_NEAR(ll / simple, 2.0, 0.1) << model::algoName(a);
  }
  // Ring and Tree come from the Trellis cost model, the rest from the stand-in, CollNet from
  // nobody.
  EXPECT_EQ(m.source(kFuncAllReduce, kAlgoRing), "trellis:ring");
  EXPECT_EQ(m.source(kFuncAllGather, kAlgoRing), "trellis:ring");
  EXPECT_EQ(m.source(kFuncAllReduce, kAlgoTree), "trellis:hier");
  EXPECT_EQ(m.source(kFuncAllReduce, kAlgoNvls), "stand-in");
  EXPECT_EQ(m.source(kFuncBroadcast, kAlgoRing), "stand-in");
  EXPECT_EQ(m.source(kFuncAllReduce, kAlgoCollNetDirect), "");
  EXPECT_LT(m.predictUs(kFuncAllReduce, 1024, kAlgoCollNetDirect, kProtoSimple), 0);
  EXPECT_LT(m.predictUs(kFuncSendRecv, 1024, kAlgoRing, kProtoSimple), 0);
  EXPECT_LT(m.predictUs(kFuncAllGather, 1024, kAlgoTree, kProtoSimple), 0);
}

// ---- Through the plugin's C ABI -----------------------------------------------------------------

// One node with 8 NVSwitch-connected H100-like GPUs.
TEST(TunerPlugin, SingleNodeNvswitch) {
  runOne([] {
    std::string topo = writeTopo("nvs", 8, true, 400000);
    setenv("TRELLIS_TOPO_FILE", topo.c_str(), 1);
    Tuner tn;
    ASSERT_TRUE(tn.open(8, 1));
    Table t;
    enable(t, {kAlgoTree, kAlgoRing, kAlgoNvls}, kAllProtos);
    t[kAlgoNvls][kProtoLL] = t[kAlgoNvls][kProtoLL128] = kAlgoProtoIgnore;  // NVLS is Simple-only
    Pick big = tn.pick(kFuncAllReduce, size_t{1} << 30, t);
    EXPECT_EQ(big.algo, kAlgoNvls) << "NVSwitch reduction moves S once instead of 2(n-1)/n S";
    EXPECT_EQ(big.proto, kProtoSimple);
    EXPECT_EQ(t[kAlgoNvls][kProtoLL], kAlgoProtoIgnore) << "disabled entries stay disabled";
    enable(t, {kAlgoTree, kAlgoRing}, kAllProtos);  // NVLS off (as NCCL_NVLS_ENABLE=0 would)
    big = tn.pick(kFuncAllReduce, size_t{1} << 30, t);
    EXPECT_EQ(big.proto, kProtoSimple);
    // On one node NCCL's tree is a chain and Trellis' hier is its ring: the same price.
    EXPECT_EQ(t[kAlgoTree][kProtoSimple], t[kAlgoRing][kProtoSimple]);
    enable(t, {kAlgoTree, kAlgoRing}, kAllProtos);
    Pick small = tn.pick(kFuncAllReduce, 64, t);
    EXPECT_EQ(small.proto, kProtoLL) << "latency-bound: LL";
    // Broadcast: ring only; a Tree entry (were NCCL to leave one) is not re-priced.
    enable(t, {kAlgoRing}, kAllProtos);
    t[kAlgoTree][kProtoSimple] = 0.5f;
    Pick b = tn.pick(kFuncBroadcast, size_t{1} << 30, t);
    EXPECT_EQ(t[kAlgoTree][kProtoSimple], 0.5f);
    EXPECT_EQ(b.algo, kAlgoTree) << "NCCL's own (cheaper) entry stays and wins";
    enable(t, {kAlgoRing}, kAllProtos);
    b = tn.pick(kFuncBroadcast, size_t{1} << 30, t);
    EXPECT_EQ(b.algo, kAlgoRing);
    EXPECT_EQ(b.proto, kProtoSimple) << "bandwidth-bound: Simple";
    unlink(topo.c_str());
  });
}

// 8 nodes of the same machine: small AllReduce wants the log-depth tree, large wants NVLS.
TEST(TunerPlugin, EightNodesNvswitchRdma) {
  runOne([] {
    std::string topo = writeTopo("8n", 8, true, 400000);
    setenv("TRELLIS_TOPO_FILE", topo.c_str(), 1);
    Tuner tn;
    ASSERT_TRUE(tn.open(64, 8));
    Table t;
    enable(t, {kAlgoTree, kAlgoRing, kAlgoNvls, kAlgoNvlsTree}, kAllProtos);
    for (int a : {kAlgoNvls, kAlgoNvlsTree}) t[a][kProtoLL] = t[a][kProtoLL128] = kAlgoProtoIgnore;
    Table t2;
    std::memcpy(t2, t, sizeof t);
    Pick small = tn.pick(kFuncAllReduce, 8, t);
    EXPECT_EQ(small.algo, kAlgoTree);
    EXPECT_EQ(small.proto, kProtoLL);
    Pick big = tn.pick(kFuncAllReduce, size_t{1} << 30, t2);
    EXPECT_EQ(big.algo, kAlgoNvls);
    EXPECT_EQ(big.proto, kProtoSimple);
    // Without NVLS: the tree for small buffers, the rings (one channel per NIC) for large ones.
    enable(t, {kAlgoTree, kAlgoRing}, kAllProtos);
    Pick s2 = tn.pick(kFuncAllReduce, 8, t);
    EXPECT_EQ(s2.algo, kAlgoTree);
    EXPECT_EQ(s2.proto, kProtoLL);
    enable(t, {kAlgoTree, kAlgoRing}, kAllProtos);
    Pick b2 = tn.pick(kFuncAllReduce, size_t{4} << 30, t);
    EXPECT_EQ(b2.algo, kAlgoRing);
    EXPECT_EQ(b2.proto, kProtoSimple);
    // Every re-priced entry equals the model's prediction for this node (same topology file).
    auto sys = trellis::topo::loadTopologyFile(topo);
    ASSERT_TRUE(sys.isOk());
    model::CommModel m(sys.value(), 64, 8);
    for (size_t bytes : {size_t{8}, size_t{4096}, size_t{1} << 20, size_t{256} << 20}) {
      Table tt;
      enable(tt, {kAlgoTree, kAlgoRing, kAlgoNvls, kAlgoNvlsTree}, kAllProtos);
      tn.pick(kFuncAllReduce, bytes, tt);
      for (int a = 0; a < kNumAlgorithms; ++a)
        for (int p = 0; p < kNumProtocols; ++p) {
          if (tt[a][p] < 0) continue;
          double want =
              m.predictUs(kFuncAllReduce, bytes, static_cast<Algo>(a), static_cast<Proto>(p));
          EXPECT_NEAR(tt[a][p], want, 1e-3 * want + 1e-3)
              << bytes << " " << model::algoName(a) << "/" << model::protoName(p);
        }
    }
    unlink(topo.c_str());
  });
}

// One GPU per node on 16 nodes behind 100 GbE: PAT for small AllGather, ring for large.
TEST(TunerPlugin, SixteenNodesOneGpuEach) {
  runOne([] {
    std::string topo = writeTopo("pat", 1, false, 100000);
    setenv("TRELLIS_TOPO_FILE", topo.c_str(), 1);
    Tuner tn;
    ASSERT_TRUE(tn.open(16, 16));
    Table t;
    enable(t, {kAlgoRing}, kAllProtos);
    t[kAlgoPat][kProtoSimple] = 1.0f;
    Pick small = tn.pick(kFuncAllGather, 16 * 64, t);
    EXPECT_EQ(small.algo, kAlgoPat) << "log2(16) = 4 steps against 15";
    enable(t, {kAlgoRing}, kAllProtos);
    t[kAlgoPat][kProtoSimple] = 1.0f;
    Pick big = tn.pick(kFuncAllGather, size_t{1} << 30, t);
    EXPECT_EQ(big.algo, kAlgoRing) << "PAT gives up a quarter of the bandwidth";
    EXPECT_EQ(big.proto, kProtoSimple);
    // The v4 entry point gives the same table.
    void* ctx4 = nullptr;
    ASSERT_EQ(tn.v4->init(16, 16, testLogger, &ctx4), kSuccess);
    Table a, b;
    enable(a, {kAlgoRing, kAlgoPat}, kAllProtos);
    std::memcpy(b, a, sizeof a);
    int ch = 0;
    ASSERT_EQ(tn.v4->getCollInfo(ctx4, kFuncReduceScatter, 1 << 20, 1, reinterpret_cast<float**>(a),
                                 kNumAlgorithms, kNumProtocols, 0, &ch),
              kSuccess);
    tn.pick(kFuncReduceScatter, 1 << 20, b);
    EXPECT_EQ(std::memcmp(a, b, sizeof a), 0);
    EXPECT_EQ(tn.v4->destroy(ctx4), kSuccess);
    unlink(topo.c_str());
  });
}

// The table's dimensions come from the call: a 6 x 3 table (an older NCCL) is indexed as such and
// nothing past it is written.
TEST(TunerPlugin, HonoursTheTableDimensions) {
  runOne([] {
    std::string topo = writeTopo("dims", 4, false, 100000);
    setenv("TRELLIS_TOPO_FILE", topo.c_str(), 1);
    Tuner tn;
    ASSERT_TRUE(tn.open(8, 2));
    float mem[6 * 3 + 4];
    for (float& v : mem) v = 1.0f;
    for (int i = 18; i < 22; ++i) mem[i] = -7.0f;  // sentinel after the table
    mem[kAlgoCollNetDirect * 3 + kProtoSimple] = 2.0f;
    int ch = 0;
    ASSERT_EQ(tn.v5->getCollInfo(tn.ctx, kFuncAllReduce, 1 << 20, 1, reinterpret_cast<float**>(mem),
                                 6, 3, 0, &ch),
              kSuccess);
    for (int i = 18; i < 22; ++i) EXPECT_EQ(mem[i], -7.0f);
    EXPECT_EQ(mem[kAlgoCollNetDirect * 3 + kProtoSimple], 2.0f) << "CollNet keeps NCCL's time";
    EXPECT_NE(mem[kAlgoRing * 3 + kProtoSimple], 1.0f) << "ring was re-priced";
    // A 2 x 2 table: only Tree and Ring with LL and LL128 exist.
    float tiny[4] = {1, 1, 1, 1};
    ASSERT_EQ(tn.v5->getCollInfo(tn.ctx, kFuncAllReduce, 1 << 20, 1,
                                 reinterpret_cast<float**>(tiny), 2, 2, 0, &ch),
              kSuccess);
    for (float v : tiny) EXPECT_NE(v, 1.0f);
    unlink(topo.c_str());
  });
}

TEST(TunerPlugin, DisabledByEnvironment) {
  runOne([] {
    setenv("TRELLIS_NCCL_TUNER", "0", 1);
    Tuner tn;
    ASSERT_TRUE(tn.open(16, 2));
    Table t, before;
    enable(t, {kAlgoTree, kAlgoRing}, kAllProtos);
    t[kAlgoRing][kProtoSimple] = 3.0f;
    std::memcpy(before, t, sizeof t);
    tn.pick(kFuncAllReduce, 1 << 20, t);
    EXPECT_EQ(std::memcmp(before, t, sizeof t), 0)
        << "TRELLIS_NCCL_TUNER=0 leaves NCCL's table alone";
    bool said = false;
    for (const LogLine& l : logLines())
      said = said || l.text.find("TRELLIS_NCCL_TUNER=0") != std::string::npos;
    EXPECT_TRUE(said);
  });
}

TEST(TunerPlugin, RejectsBadArguments) {
  runOne([] {
    Tuner tn;
    ASSERT_TRUE(tn.open(4, 1));
    void* ctx = nullptr;
    EXPECT_EQ(tn.v5->init(&ctx, 1, 2, 3, testLogger, nullptr, nullptr), kInvalidArgument)
        << "3 nodes for 2 ranks";
    EXPECT_EQ(ctx, nullptr);
    int junk = 0;
    Table t;
    enable(t, {kAlgoRing}, kAllProtos);
    int ch = 0;
    EXPECT_EQ(
        tn.v5->getCollInfo(&junk, kFuncAllReduce, 8, 1, reinterpret_cast<float**>(t), 7, 3, 0, &ch),
        kInvalidArgument);
  });
}

}  // namespace
}  // namespace nccltest
