#include "tuner/shape.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>

#include "core/status.h"

namespace trellis::tuner {

const char* intraKindName(IntraKind k) {
  switch (k) {
    case IntraKind::kShm: return "shm";
    case IntraKind::kTcp: return "tcp";
    case IntraKind::kNvLink: return "nvlink";
  }
  return "?";
}

const char* netKindName(NetKind k) {
  switch (k) {
    case NetKind::kNone: return "none";
    case NetKind::kTcp: return "tcp";
    case NetKind::kRdma: return "rdma";
  }
  return "?";
}

int Shape::nodes() const {
  int m = 0;
  for (int v : nodeOfRank) m = std::max(m, v + 1);
  return m;
}

std::vector<int> Shape::ranksPerNode() const {
  std::vector<int> per(nodes(), 0);
  for (int v : nodeOfRank) ++per[v];
  return per;
}

bool Shape::oversubscribed() const {
  if (!cpuDriven || coresPerNode <= 0) return false;
  for (int k : ranksPerNode())
    if (k > coresPerNode) return true;
  return false;
}

std::string Shape::validate() const {
  const int n = nranks();
  if (n < 1) return "no ranks";
  if (static_cast<int>(railOfRank.size()) != n)
    return formatString("railOfRank has %zu entries for %d ranks", railOfRank.size(), n);
  if (!ringOrder.empty()) {
    if (static_cast<int>(ringOrder.size()) != n)
      return formatString("ringOrder has %zu entries for %d ranks", ringOrder.size(), n);
    std::vector<int> seen(n, 0);
    for (int r : ringOrder) {
      if (r < 0 || r >= n || seen[r]++) return formatString("ringOrder is not a permutation (rank %d)", r);
    }
  }
  if (railsPerNode < 1) return formatString("railsPerNode=%d must be at least 1", railsPerNode);
  for (int r = 0; r < n; ++r) {
    if (nodeOfRank[r] < 0) return formatString("rank %d has node %d", r, nodeOfRank[r]);
    if (railOfRank[r] < 0 || railOfRank[r] >= railsPerNode)
      return formatString("rank %d uses rail %d but nodes have %d rails", r, railOfRank[r], railsPerNode);
  }
  for (int k : ranksPerNode())
    if (k == 0) return "a node index has no ranks (nodes must be numbered 0..nodes-1)";
  if (nodesPerLeaf < 0) return formatString("nodesPerLeaf=%d is negative", nodesPerLeaf);
  if (!groupOfNode.empty() && static_cast<int>(groupOfNode.size()) != nodes())
    return formatString("groupOfNode has %zu entries for %d nodes", groupOfNode.size(), nodes());
  for (int g : groupOfNode)
    if (g < 0 || g >= nodes()) return formatString("leaf group %d out of range", g);
  if (spineOversub < 1) return formatString("spineOversub=%g must be >= 1", spineOversub);
  if (coresPerNode < 0) return formatString("coresPerNode=%d is negative", coresPerNode);
  return "";
}

std::string Shape::describe() const {
  std::vector<int> per = ranksPerNode();
  const bool uniform = std::all_of(per.begin(), per.end(), [&](int k) { return k == per[0]; });
  std::string ranks = uniform ? std::to_string(per[0]) : "mixed";
  if (!uniform) {
    ranks = "";
    for (size_t i = 0; i < per.size() && i < 8; ++i) ranks += (i ? "," : "") + std::to_string(per[i]);
    if (per.size() > 8) ranks += ",...";
    ranks = "(" + ranks + ")";
  }
  std::string s = formatString("%d node%s x %s rank%s, %d rail%s, %s", nodes(), nodes() == 1 ? "" : "s",
                               ranks.c_str(), uniform && per[0] == 1 ? "" : "s", railsPerNode,
                               railsPerNode == 1 ? "" : "s", intraKindName(intraKind));
  if (nodes() > 1) s += std::string(" + ") + netKindName(netKind);
  if (nodes() > 1 && nodesPerLeaf > 0) s += formatString(", %d nodes per leaf", nodesPerLeaf);
  if (nodes() > 1 && nodesPerLeaf <= 0 && !groupOfNode.empty())
    s += formatString(", %d leaf groups", *std::max_element(groupOfNode.begin(), groupOfNode.end()) + 1);
  if (nodes() > 1 && spineOversub > 1) s += formatString(", spine %g:1", spineOversub);
  if (direct) s += ", direct";
  if (oversubscribed()) s += formatString(", %d cores per node (oversubscribed)", coresPerNode);
  return s;
}

void placeNodeMajor(Shape* s, const std::vector<int>& ranksPerNode) {
  s->nodeOfRank.clear();
  s->railOfRank.clear();
  for (size_t v = 0; v < ranksPerNode.size(); ++v)
    for (int k = 0; k < ranksPerNode[v]; ++k) {
      s->nodeOfRank.push_back(static_cast<int>(v));
      s->railOfRank.push_back(static_cast<int>(static_cast<int64_t>(k) * s->railsPerNode / ranksPerNode[v]));
    }
  s->ringOrder.clear();
}

PathCost shmPath(const Constants& c) {
  PathCost p;
  p.latencyS = c[K::kShmLatencyS];
  p.recvCpuPerByte = 1 / c[K::kShmReadBps];  // the receiver pulls large messages in one copy
  p.cpuPerMsg = c[K::kShmMsgCpuS];
  p.eagerMaxBytes = c[K::kShmEagerMax];
  p.rendezvousMinBytes = c[K::kShmEagerMax];  // single-copy reads: the sender waits for the reader
  p.handshakeS = c[K::kShmHandshakeS];
  return p;
}

PathCost tcpLoopbackPath(const Constants& c) {
  PathCost p;
  p.latencyS = c[K::kTcpLatencyS];
  p.sendCpuPerByte = 1 / c[K::kTcpSendBps];
  p.recvCpuPerByte = 1 / c[K::kTcpRecvBps];
  p.cpuPerMsg = c[K::kTcpMsgCpuS];
  p.streamBps = c[K::kTcpStreamBps];
  return p;
}

PathCost tcpNetPath(const Constants& c, double nicBps) {
  PathCost p = tcpLoopbackPath(c);
  p.latencyS = c[K::kTcpNetLatencyS];
  p.bytesPerS = nicBps > 0 ? nicBps : c[K::kTcpNetBps];
  return p;
}

PathCost rdmaPath(const Constants& c) {
  PathCost p;
  p.latencyS = c[K::kNicLatencyS];
  p.bytesPerS = c[K::kNicBps];
  p.cpuPerMsg = c[K::kNicMsgS];
  return p;
}

PathCost nvlinkPath(const Constants& c) {
  PathCost p;
  p.latencyS = c[K::kNvlinkLatencyS];
  p.bytesPerS = c[K::kNvlinkBps];
  p.cpuPerMsg = c[K::kNvlinkMsgS];
  return p;
}

void applyWaitPolicy(Shape* s, const Constants& c) {
  if (s->intraKind != IntraKind::kShm) return;
  s->intra.latencyS = s->oversubscribed() ? c[K::kShmYieldLatencyS] : c[K::kShmLatencyS];
}

namespace {

void hostCompute(Shape* s, const Constants& c) {
  s->cpuDriven = true;
  s->reduceBps = c[K::kReduceBps];
  s->copyBps = c[K::kCopyBps];
  s->memBps = c[K::kMemBps];
  s->wakeS = c[K::kWakeS];
  s->callS = c[K::kCallS];
  s->cacheBytes = c[K::kCacheBytes];
  s->cacheSpeedup = c[K::kCacheSpeedup];
  s->streamBytes = c[K::kStreamBytes];
  s->streamFactor = c[K::kStreamFactor];
  s->directReadBps = c[K::kShmReadBps];
}
}  // namespace

Shape shapeFromHosts(const std::vector<uint64_t>& hostOfRank, const std::vector<int>& coresOfRank, bool intraTcp,
                     bool direct, const Constants& c) {
  Shape s;
  std::map<uint64_t, int> nodeId;  // nodes numbered by first appearance in rank order
  int minCores = 0;
  for (size_t r = 0; r < hostOfRank.size(); ++r) {
    auto it = nodeId.emplace(hostOfRank[r], static_cast<int>(nodeId.size())).first;
    s.nodeOfRank.push_back(it->second);
    s.railOfRank.push_back(0);
    int k = r < coresOfRank.size() ? coresOfRank[r] : 0;
    if (k > 0) minCores = minCores == 0 ? k : std::min(minCores, k);
  }
  s.railsPerNode = 1;
  s.coresPerNode = minCores;
  s.direct = direct;
  s.intraKind = intraTcp ? IntraKind::kTcp : IntraKind::kShm;
  s.intra = intraTcp ? tcpLoopbackPath(c) : shmPath(c);
  s.netKind = NetKind::kTcp;
  s.net = tcpNetPath(c, 0);  // tcp.net_bps: from topology files, calibration or the table
  hostCompute(&s, c);
  applyWaitPolicy(&s, c);
  return s;
}

Shape uniformShape(const UniformSpec& u, const Constants& c) {
  Shape s;
  s.railsPerNode = std::max(1, u.rails);
  placeNodeMajor(&s, std::vector<int>(std::max(1, u.nodes), std::max(1, u.ranksPerNode)));
  s.nodesPerLeaf = u.nodesPerLeaf;
  s.spineOversub = std::max(1.0, u.spineOversub);
  s.railOptimized = u.railOptimized;
  s.coresPerNode = u.coresPerNode;
  s.switchHopS = c[K::kSwitchHopS];
  if (u.gpu) {
    s.intraKind = IntraKind::kNvLink;
    s.intra = nvlinkPath(c);
    s.netKind = NetKind::kRdma;
    s.net = rdmaPath(c);
    if (u.nicBps > 0) s.net.bytesPerS = u.nicBps;
    s.cpuDriven = false;
    s.reduceBps = c[K::kGpuReduceBps];
    s.copyBps = c[K::kGpuCopyBps];
    s.callS = c[K::kGpuCallS];
    s.direct = false;
    s.coresPerNode = 0;
  } else {
    s.intraKind = u.intraTcp ? IntraKind::kTcp : IntraKind::kShm;
    s.intra = u.intraTcp ? tcpLoopbackPath(c) : shmPath(c);
    s.netKind = NetKind::kTcp;
    s.net = tcpNetPath(c, u.nicBps);
    hostCompute(&s, c);
    s.direct = u.direct && !u.intraTcp && u.nodes <= 1;
    applyWaitPolicy(&s, c);
  }
  return s;
}

Shape scrambled(const Shape& s, uint64_t seed) {
  Shape out = s;
  const int n = s.nranks();
  std::vector<int> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int r = 0; r < n; ++r) {
    out.nodeOfRank[r] = s.nodeOfRank[perm[r]];
    out.railOfRank[r] = s.railOfRank[perm[r]];
  }
  out.ringOrder.clear();
  return out;
}

}  // namespace trellis::tuner
