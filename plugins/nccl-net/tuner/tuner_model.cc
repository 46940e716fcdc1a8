#include "tuner/tuner_model.h"

#include <algorithm>
#include <cmath>

#include "topo/paths.h"

namespace trellis::ncclnet::tuner {

using namespace nccl_abi;

namespace {

// Protocol constants (our own round numbers, in the spirit of NCCL's published behaviour):
//  - LL sends 8 bytes of data with every 8-byte flag: half the link bandwidth, no fences, the
//    lowest per-step latency.
//  - LL128 puts a flag in every 128-byte line: 120/128 of the bandwidth, a bit more latency.
//  - Simple moves whole chunks with a fence and a flag handshake per step: full bandwidth, about
//    three times LL's per-step cost.
constexpr double kBaseUs[kNumProtocols] = {4.0, 5.0, 8.0};      // launch + first step
constexpr double kStepFactor[kNumProtocols] = {1.0, 1.5, 3.0};  // x link latency per step
constexpr double kBwEff[kNumProtocols] = {0.5, 120.0 / 128.0, 1.0};
constexpr double kTreeEff = 0.9;  // a tree pipelines less well than a ring
constexpr double kPatEff = 0.75;  // PAT's aggregation costs a quarter of the bandwidth
constexpr double kNvlinkLatUs = 0.6, kPcieLatUs = 1.5, kRdmaLatUs = 2.5, kEthLatUs = 5.0;
constexpr double kDefaultNetGBps = 12.5;  // 100 Gb/s when no NIC speed is known

double log2ceil(int n) { return n <= 1 ? 0.0 : std::ceil(std::log2(static_cast<double>(n))); }

// GB/s -> bytes per microsecond.
double usFor(double bytes, double gbps) { return bytes / (gbps * 1e3); }

}  // namespace

const char* algoName(int algo) {
  static const char* kNames[] = {"Tree",     "Ring", "CollNetDirect", "CollNetChain", "NVLS",
                                 "NVLSTree", "PAT"};
  return algo >= 0 && algo < kNumAlgorithms ? kNames[algo] : "?";
}
const char* protoName(int proto) {
  static const char* kNames[] = {"LL", "LL128", "Simple"};
  return proto >= 0 && proto < kNumProtocols ? kNames[proto] : "?";
}

NodeFacts nodeFactsFrom(const topo::System& s) {
  NodeFacts f;
  std::vector<int> gpus = s.ofKind(topo::NodeKind::kGpu);
  f.gpus = static_cast<int>(gpus.size());
  f.nvswitch = !s.ofKind(topo::NodeKind::kNvSwitch).empty();
  if (gpus.size() >= 2) {
    topo::Path p = topo::pathBetween(s, gpus[0], gpus[1]);
    f.nvlink = p.kind == topo::PathKind::kNvLink || p.kind == topo::PathKind::kNvSwitch;
    f.nvswitch = f.nvswitch || p.kind == topo::PathKind::kNvSwitch;
    if (p.gbps > 0) f.intraGBps = p.gbps;
    f.intraLatUs = f.nvlink ? kNvlinkLatUs : kPcieLatUs;
  }
  topo::Rails rails = topo::computeRails(s);
  double mbps = 0;
  bool ib = false, known = false;
  for (int nic : rails.computeNics) {
    double best = 0;
    for (const topo::NetPort& port : s.nodes[nic].ports) {
      best = std::max(best, static_cast<double>(port.speedMbps));
      // An RDMA port (InfiniBand, or an RDMA device without a kernel interface: RoCE, or a
      // topology file's <net> with a guid) has RDMA latency.
      ib = ib || port.linkLayer == "InfiniBand" || (port.netdev.empty() && !port.guid.empty());
    }
    mbps += best;
  }
  if (mbps > 0) {
    f.netGBps = mbps / 8000.0;
    known = true;
  } else {
    f.netGBps = kDefaultNetGBps;
  }
  f.netLatUs = ib ? kRdmaLatUs : kEthLatUs;
  char buf[256];
  snprintf(buf, sizeof buf, "%d GPU(s), intra %.0f GB/s (%s), net %.1f GB/s%s (%s)", f.gpus,
           f.intraGBps,
           f.nvswitch ? "NVSwitch"
           : f.nvlink ? "NVLink"
                      : "PCIe",
           f.netGBps, known ? "" : " assumed", ib ? "RDMA" : "TCP/unknown");
  f.describe = buf;
  return f;
}

double predictUs(const NodeFacts& node, int nRanks, int nNodes, Func coll, size_t nBytes, Algo algo,
                 Proto proto) {
  if (nRanks < 1 || proto < 0 || proto >= kNumProtocols) return -1;
  const int n = nRanks;
  const int N = std::max(1, std::min(nNodes, nRanks));
  const int ppn = (n + N - 1) / N;
  const double S = static_cast<double>(nBytes);
  const double eff = kBwEff[proto];
  const double base = kBaseUs[proto];
  const double step = kStepFactor[proto];
  // A ring crosses every node boundary once: N network steps and n - N intra-node steps per lap.
  const double lapLat = N > 1 ? N * node.netLatUs + (n - N) * node.intraLatUs : n * node.intraLatUs;
  const double avgStepLat = lapLat / n;
  const double ringBw = N > 1 ? std::min(node.intraGBps, node.netGBps) : node.intraGBps;
  const bool reduceLike = coll == kFuncAllReduce;
  const bool agrs = coll == kFuncAllGather || coll == kFuncReduceScatter;
  const bool rooted = coll == kFuncBroadcast || coll == kFuncReduce;
  if (!reduceLike && !agrs && !rooted) return -1;
  if (n == 1) return base;

  switch (algo) {
    case kAlgoRing: {
      // AllReduce: reduce-scatter + all-gather lap, 2(n-1) steps moving 2(n-1)/n of the data.
      // AllGather/ReduceScatter: one lap. Broadcast/Reduce: a pipelined chain, n-1 steps, S once.
      double steps = reduceLike ? 2.0 * (n - 1) : n - 1;
      double bytes = reduceLike ? 2.0 * (n - 1) / n * S
                     : agrs     ? static_cast<double>(n - 1) / n * S
                                : S;
      return base + steps * avgStepLat * step + usFor(bytes, ringBw * eff);
    }
    case kAlgoTree: {
      if (!reduceLike) return -1;
      // A chain inside each node and a binary tree across nodes, up then down: each rank
      // receives and sends the whole buffer twice.
      double lat = 2.0 * ((ppn - 1) * node.intraLatUs + log2ceil(N) * node.netLatUs);
      double bw = N > 1 ? std::min(node.intraGBps, node.netGBps) : node.intraGBps;
      return base + lat * step + usFor(2.0 * S, bw * eff * kTreeEff);
    }
    case kAlgoPat: {
      if (!agrs) return -1;
      // Log-step exchange with aggregation (NCCL runs it with one GPU per node).
      double lat = log2ceil(n) * (N > 1 ? node.netLatUs : node.intraLatUs);
      return base + lat * step + usFor(static_cast<double>(n - 1) / n * S, ringBw * eff * kPatEff);
    }
    case kAlgoNvls: {
      if (rooted) return -1;
      // NVSwitch multicast/reduction inside the node: a GPU sends and receives S once for
      // AllReduce, (n-1)/n of S for AllGather/ReduceScatter, in two steps. Across nodes, each
      // GPU's 1/ppn slice takes a ring over the N nodes on the node's NICs.
      double intraBytes = reduceLike ? S : static_cast<double>(ppn - 1) / ppn * S;
      double t = usFor(intraBytes, node.intraGBps * eff);
      double lat = 2.0 * node.intraLatUs;
      if (N > 1) {
        double netBytes = reduceLike ? 2.0 * (N - 1) / N * S : static_cast<double>(N - 1) / N * S;
        t = std::max(t, usFor(netBytes, node.netGBps * eff));
        lat += (reduceLike ? 2.0 : 1.0) * (N - 1) * node.netLatUs;
      }
      return base + lat * step + t;
    }
    case kAlgoNvlsTree: {
      if (!reduceLike || N < 2) return -1;
      double t =
          std::max(usFor(S, node.intraGBps * eff), usFor(2.0 * S, node.netGBps * eff * kTreeEff));
      double lat = 2.0 * node.intraLatUs + 2.0 * log2ceil(N) * node.netLatUs;
      return base + lat * step + t;
    }
    default:
      return -1;  // CollNet: SHARP-style in-network reduction is not modelled
  }
}

}  // namespace trellis::ncclnet::tuner
