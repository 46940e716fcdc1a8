#include "tuner/tuner_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "topo/paths.h"
#include "tuner/constants.h"
#include "tuner/cost_model.h"
#include "tuner/shape.h"
#include "tuner/shape_topo.h"

namespace trellis::ncclnet::tuner {

using namespace nccl_abi;
namespace tt = ::trellis::tuner;

namespace {

// NCCL's protocols (our round numbers, in the spirit of NCCL's published behaviour):
//  - LL sends 8 bytes of data with every 8-byte flag: half the bandwidth, no fences, the lowest
//    per-step latency.
//  - LL128 puts a flag in every 128-byte line: 120/128 of the bandwidth, a bit more latency.
//  - Simple moves whole chunks with a fence and a flag handshake per step: full bandwidth, about
//    three times LL's per-step cost.
constexpr double kProtoBaseUs[kNumProtocols] = {4.0, 5.0, 8.0};  // kernel launch + first step
constexpr double kProtoStep[kNumProtocols] = {1.0, 1.5, 3.0};    // x the path latency per step
constexpr double kProtoEff[kNumProtocols] = {0.5, 120.0 / 128.0, 1.0};
constexpr double kTreeEff = 0.9;  // stand-in trees pipeline less well than rings
constexpr double kPatEff = 0.75;  // PAT's aggregation costs a quarter of the bandwidth

double log2ceil(int n) { return n <= 1 ? 0.0 : std::ceil(std::log2(static_cast<double>(n))); }
double usFor(double bytes, double gbps) { return bytes / (gbps * 1e3); }  // GB/s -> bytes per us

bool anyRdmaPort(const topo::System& s) {
  for (int nic : s.ofKind(topo::NodeKind::kNic))
    for (const topo::NetPort& p : s.nodes[nic].ports)
      if (p.linkLayer == "InfiniBand" || (p.netdev.empty() && !p.guid.empty())) return true;
  return false;
}

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

CommModel::CommModel(const topo::System& node, int nRanks, int nNodes)
    : n_(std::max(1, nRanks)), nodes_(std::max(1, std::min(nNodes, nRanks))) {
  tt::NodeFacts nf = tt::nodeFacts(node);
  tt::Constants c;
  tt::UniformSpec spec;
  spec.nodes = nodes_;
  spec.ranksPerNode = (n_ + nodes_ - 1) / nodes_;
  spec.rails = std::max(1, nf.rails);
  spec.gpu = true;  // NCCL's ranks are GPUs: device copies and reductions, no host CPU in the path
  spec.nicBps = nf.nicBps;
  tt::Shape shape = tt::uniformShape(spec, c);
  if (nf.gpuPathBps > 0) shape.intra.bytesPerS = nf.gpuPathBps;
  f_.rdma = anyRdmaPort(node) || node.ofKind(topo::NodeKind::kNic).empty();
  if (!f_.rdma) {  // Ethernet NICs without RDMA: NCCL's socket net, TCP costs between nodes
    shape.netKind = tt::NetKind::kTcp;
    shape.net = tt::tcpNetPath(c, nf.nicBps);
  }
  f_.gpus = nf.gpus;
  f_.rails = spec.rails;
  f_.nvlink = nf.nvlink;
  f_.nvswitch = !node.ofKind(topo::NodeKind::kNvSwitch).empty();
  f_.intraGBps = shape.intra.bytesPerS / 1e9;
  f_.intraLatUs = shape.intra.latencyS * 1e6;
  f_.netGBps = spec.rails * shape.net.bytesPerS / 1e9;
  f_.netLatUs = shape.net.latencyS * 1e6;
  cm_ = std::make_unique<tt::CostModel>(std::move(shape));
  char buf[320];
  snprintf(buf, sizeof buf,
           "%d rank(s) on %d node(s); node: %d GPU(s), intra %.0f GB/s %.1f us (%s), net %.1f GB/s "
           "%.1f us (%s, %d "
           "rail(s)%s)",
           n_, nodes_, f_.gpus, f_.intraGBps, f_.intraLatUs,
           f_.nvswitch ? "NVSwitch"
           : f_.nvlink ? "NVLink"
                       : "PCIe",
           f_.netGBps, f_.netLatUs, f_.rdma ? "RDMA" : "TCP", f_.rails,
           nf.nicBps > 0 ? "" : ", NIC speed from the constants table");
  describe_ = buf;
}

CommModel::~CommModel() = default;

std::string CommModel::source(Func coll, Algo algo) const {
  bool agrs = coll == kFuncAllGather || coll == kFuncReduceScatter;
  if (algo == kAlgoRing && (coll == kFuncAllReduce || agrs)) return "trellis:ring";
  if (algo == kAlgoTree && coll == kFuncAllReduce) return "trellis:hier";
  if (algo == kAlgoCollNetDirect || algo == kAlgoCollNetChain) return "";
  return "stand-in";
}

// Time of a Trellis algorithm with an NCCL protocol: the model's latency (its time for a tiny
// buffer) scaled by the protocol's step factor, plus the rest of its time at the protocol's
// bandwidth efficiency (the model evaluated on bytes / efficiency).
double CommModel::trellis(Func coll, double bytes, const char* algo, Proto proto) const {
  algos::Coll c = coll == kFuncAllReduce   ? algos::Coll::kAllReduce
                  : coll == kFuncAllGather ? algos::Coll::kAllGather
                                           : algos::Coll::kReduceScatter;
  // NCCL runs at least one ring channel per NIC, all at once: across nodes its Ring is `rails`
  // Trellis rings of bytes / rails (each crossing the nodes on its own NIC). Trellis' hier already
  // spreads its slices over every rank's NIC; inside one node NVLink is per GPU, not per channel.
  if (nodes_ > 1 && std::string(algo) == "ring") bytes /= f_.rails;
  tt::Prediction tiny = cm_->predict(c, algo, 8.0 * n_);
  tt::Prediction full = cm_->predict(c, algo, std::max(bytes, 8.0 * n_) / kProtoEff[proto]);
  if (!tiny.supported || !full.supported) return -1;
  double latUs = tiny.seconds * 1e6, fullUs = full.seconds * 1e6;
  return kProtoBaseUs[proto] + kProtoStep[proto] * latUs + std::max(0.0, fullUs - latUs);
}

double CommModel::standIn(Func coll, double S, Algo algo, Proto proto) const {
  const int n = n_, N = nodes_, ppn = (n + N - 1) / N;
  const double eff = kProtoEff[proto], base = kProtoBaseUs[proto], step = kProtoStep[proto];
  const bool reduceLike = coll == kFuncAllReduce;
  const bool agrs = coll == kFuncAllGather || coll == kFuncReduceScatter;
  const bool rooted = coll == kFuncBroadcast || coll == kFuncReduce;
  const double bwAcross = N > 1 ? std::min(f_.intraGBps, f_.netGBps) : f_.intraGBps;
  switch (algo) {
    case kAlgoRing: {
      if (!rooted) return -1;
      // Broadcast/Reduce: a pipelined chain through every rank, n-1 steps, the buffer once.
      double lapLat = N > 1 ? N * f_.netLatUs + (n - N) * f_.intraLatUs : n * f_.intraLatUs;
      return base + (n - 1) * (lapLat / n) * step + usFor(S, bwAcross * eff);
    }
    case kAlgoPat: {
      if (!agrs) return -1;
      // Log-step exchange with aggregation (NCCL runs it with one GPU per node).
      double lat = log2ceil(n) * (N > 1 ? f_.netLatUs : f_.intraLatUs);
      return base + lat * step +
             usFor(static_cast<double>(n - 1) / n * S, bwAcross * eff * kPatEff);
    }
    case kAlgoNvls: {
      if (rooted) return -1;
      // NVSwitch multicast/reduction inside the node: a GPU sends and receives S once for
      // AllReduce, (ppn-1)/ppn of S for AllGather/ReduceScatter, in two steps; across nodes each
      // GPU's slice takes a ring over the nodes on the node's NICs.
      double intraBytes = reduceLike ? S : static_cast<double>(ppn - 1) / ppn * S;
      double t = usFor(intraBytes, f_.intraGBps * eff);
      double lat = 2.0 * f_.intraLatUs;
      if (N > 1) {
        double netBytes = reduceLike ? 2.0 * (N - 1) / N * S : static_cast<double>(N - 1) / N * S;
        t = std::max(t, usFor(netBytes, f_.netGBps * eff));
        lat += (reduceLike ? 2.0 : 1.0) * (N - 1) * f_.netLatUs;
      }
      return base + lat * step + t;
    }
    case kAlgoNvlsTree: {
      if (!reduceLike || N < 2) return -1;
      double t =
          std::max(usFor(S, f_.intraGBps * eff), usFor(2.0 * S, f_.netGBps * eff * kTreeEff));
      double lat = 2.0 * f_.intraLatUs + 2.0 * log2ceil(N) * f_.netLatUs;
      return base + lat * step + t;
    }
    default:
      return -1;
  }
}

double CommModel::predictUs(Func coll, size_t nBytes, Algo algo, Proto proto) const {
  if (proto < 0 || proto >= kNumProtocols) return -1;
  bool known = coll == kFuncAllReduce || coll == kFuncAllGather || coll == kFuncReduceScatter ||
               coll == kFuncBroadcast || coll == kFuncReduce;
  if (!known) return -1;
  if (n_ == 1) return kProtoBaseUs[proto];
  std::string src = source(coll, algo);
  if (src == "trellis:ring") return trellis(coll, static_cast<double>(nBytes), "ring", proto);
  if (src == "trellis:hier") {
    double t = trellis(coll, static_cast<double>(nBytes), "hier", proto);
    if (t >= 0) return t;
  }
  if (src.empty()) return -1;
  return standIn(coll, static_cast<double>(nBytes), algo, proto);
}

}  // namespace trellis::ncclnet::tuner
