#include "tuner/model_engine.h"

#include <algorithm>

namespace trellis::tuner {

Engine::Engine(const Shape& s) : s_(s) {
  n_ = s.nranks();
  nodes_ = s.nodes();
  rails_ = std::max(1, s.railsPerNode);
  const int npl = s.nodesPerLeaf > 0 ? s.nodesPerLeaf : std::max(1, nodes_);
  group_.assign(nodes_, 0);
  int groups = 0;
  for (int v = 0; v < nodes_; ++v) {
    group_[v] = static_cast<int>(v < static_cast<int>(s.groupOfNode.size()) ? s.groupOfNode[v] : v / npl);
    groups = std::max(groups, group_[v] + 1);
  }
  const int leaves = s.railOptimized ? groups * rails_ : groups;
  // Resource layout: cpu[n] pool[nodes] mem[nodes] tx[n] rx[n] nicTx[nodes*rails] nicRx[...]
  // up[leaves] down[leaves].
  oCpu_ = 0;
  oPool_ = oCpu_ + n_;
  oMem_ = oPool_ + nodes_;
  oTx_ = oMem_ + nodes_;
  oRx_ = oTx_ + n_;
  oNicTx_ = oRx_ + n_;
  oNicRx_ = oNicTx_ + nodes_ * rails_;
  oUp_ = oNicRx_ + nodes_ * rails_;
  oDown_ = oUp_ + leaves;
  const int total = oDown_ + leaves;
  cap_.assign(total, 0);
  load_.assign(total, 0);
  touched_.reserve(256);
  std::vector<int> per = s.ranksPerNode();
  cores_.assign(nodes_, 0);
  for (int v = 0; v < nodes_; ++v) {
    cores_[v] = s.coresPerNode > 0 ? s.coresPerNode : per[v];
    if (s.cpuDriven && s.coresPerNode > 0 && per[v] > s.coresPerNode) {
      wake_ = true;
      wakeRounds_ = std::max(wakeRounds_, (per[v] + s.coresPerNode - 1) / s.coresPerNode);
    }
  }
  if (wake_) fanIn_.assign(n_, 0);
  // Leaf uplink capacity: the leaf's downlink bandwidth over the oversubscription.
  std::vector<int> nodesInGroup(groups, 0);
  for (int v = 0; v < nodes_; ++v) ++nodesInGroup[group_[v]];
  for (int l = 0; l < leaves; ++l) {
    int g = s.railOptimized ? l / rails_ : l;
    double down = nodesInGroup[g] * (s.railOptimized ? 1 : rails_) * s.net.bytesPerS;
    cap_[oUp_ + l] = cap_[oDown_ + l] = down / std::max(1.0, s.spineOversub);
  }
}

int Engine::leafOf(int node, int rail) const {
  const int g = group_[node];
  return s_.railOptimized ? g * rails_ + rail : g;
}

void Engine::add(int res, double seconds) {
  if (seconds <= 0) return;
  if (load_[res] == 0) touched_.push_back(res);
  load_[res] += seconds;
}

void Engine::cpu(int rank, double seconds) {
  if (seconds <= 0) return;
  add(oCpu_ + rank, seconds);
  if (s_.cpuDriven && s_.coresPerNode > 0) add(oPool_ + nodeOf(rank), seconds / cores_[nodeOf(rank)]);
}

void Engine::mem(int node, double bytes) {
  if (s_.cpuDriven && s_.memBps > 0) add(oMem_ + node, bytes / s_.memBps);
}

void Engine::flow(int src, int dst, double bytes, double msgs) {
  if (src == dst) {
    copy(src, bytes);
    return;
  }
  const int a = nodeOf(src), b = nodeOf(dst);
  const PathCost& p = a == b ? s_.intra : s_.net;
  double lat = p.latencyS;
  const double perMsg = msgs > 0 ? bytes / msgs : bytes;
  // Single-copy messages: chunk after chunk, the reader must run, read and tell the sender.
  if (p.rendezvousMinBytes > 0 && perMsg >= p.rendezvousMinBytes) lat += msgs * p.handshakeS;
  double sendCpu = bytes * p.sendCpuPerByte / rate_ + msgs * p.cpuPerMsg;
  double recvCpu = bytes * p.recvCpuPerByte / rate_ + msgs * p.cpuPerMsg;
  double memA = (p.sendCpuPerByte > 0 ? 2 : 0) * bytes, memB = (p.recvCpuPerByte > 0 ? 2 : 0) * bytes;
  if (perMsg < p.eagerMaxBytes && s_.copyBps > 0) {  // through ring slots: the sender copies too
    sendCpu += bytes / s_.copyBps / rate_;
    memA += 2 * bytes;
  }
  cpu(src, sendCpu);
  cpu(dst, recvCpu);
  mem(a, memA);
  mem(b, memB);
  if (a == b) {
    if (p.bytesPerS > 0 && bytes > 0) {
      wire_ = true;
      add(oTx_ + src, bytes / p.bytesPerS);
      add(oRx_ + dst, bytes / p.bytesPerS);
    }
  } else {
    const int ra = s_.railOfRank[src] % rails_, rb = s_.railOfRank[dst] % rails_;
    const int la = leafOf(a, ra), lb = leafOf(b, rb);
    if (la != lb) lat += 2 * s_.switchHopS;
    if (p.bytesPerS > 0 && bytes > 0) {
      wire_ = true;
      add(oNicTx_ + a * rails_ + ra, bytes / p.bytesPerS);
      add(oNicRx_ + b * rails_ + rb, bytes / p.bytesPerS);
      if (la != lb && cap_[oUp_ + la] > 0) {
        add(oUp_ + la, bytes / cap_[oUp_ + la]);
        add(oDown_ + lb, bytes / cap_[oDown_ + lb]);
      }
    }
  }
  if (p.streamBps > 0 && bytes > 0) stream_ = std::max(stream_, bytes / (p.streamBps * channels_));
  lat_ = std::max(lat_, lat);
  if (wake_ && a == b) {
    if (fanIn_[dst] == 0) fanTouched_.push_back(dst);
    maxFanIn_ = std::max(maxFanIn_, ++fanIn_[dst]);
  }
}

void Engine::reduce(int rank, double bytes) {
  if (bytes <= 0 || s_.reduceBps <= 0) return;
  cpu(rank, bytes / s_.reduceBps / rate_);
  mem(nodeOf(rank), 3 * bytes);
}

void Engine::copy(int rank, double bytes) {
  if (bytes <= 0 || s_.copyBps <= 0) return;
  cpu(rank, bytes / s_.copyBps / rate_);
  mem(nodeOf(rank), 2 * bytes);
}

void Engine::readPeer(int reader, int owner, double bytes) {
  (void)owner;
  if (bytes <= 0 || s_.directReadBps <= 0) return;
  cpu(reader, bytes / s_.directReadBps / rate_);
  mem(nodeOf(reader), 2 * bytes);
}

void Engine::writePeer(int writer, int owner, double bytes) {
  (void)owner;
  if (bytes <= 0 || s_.directReadBps <= 0) return;
  cpu(writer, bytes / s_.directReadBps / rate_);
  mem(nodeOf(writer), bytes);  // the source is a tile still in cache: only the destination is memory traffic
}

StepTime Engine::take() {
  StepTime t;
  for (int r : touched_) {
    t.busy = std::max(t.busy, load_[r]);
    load_[r] = 0;
  }
  touched_.clear();
  t.busy = std::max(t.busy, stream_);
  // A rank that waits for messages from k peers on a node with more ranks than cores is woken up
  // to once per peer, at most once per round of the node's ranks over its cores.
  t.latency = lat_ + (wake_ && lat_ > 0 ? s_.wakeS * std::max(1, std::min(maxFanIn_, wakeRounds_)) : 0);
  for (int r : fanTouched_) fanIn_[r] = 0;
  fanTouched_.clear();
  maxFanIn_ = 0;
  t.wire = wire_;
  lat_ = stream_ = 0;
  wire_ = false;
  return t;
}

}  // namespace trellis::tuner
