#include "tuner/calibrate.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"
#include "core/log.h"

namespace trellis::tuner {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// What one rank measured (0: not measured by this rank).
enum Field { kCopy, kReduce, kMem, kIntraLat, kIntraBw, kNetLat, kNetBw, kFields };

constexpr size_t kCopyBytes = 8u << 20;
constexpr size_t kReduceBytes = 4u << 20;
constexpr size_t kBigBytes = 4u << 20;
constexpr int kPingIters = 200;
constexpr int kBigIters = 4;

void measureCompute(algos::Exec& exec, double* out) {
  char* a = static_cast<char*>(exec.scratch(algos::kScratchAlgo, kCopyBytes));
  char* b = static_cast<char*>(exec.scratch(algos::kScratchAlgo + 1, kCopyBytes));
  std::memset(a, 1, kCopyBytes);
  std::memset(b, 0, kCopyBytes);
  double best = 1e30;
  for (int i = 0; i < 4; ++i) {
    auto t0 = Clock::now();
    std::memcpy(b, a, kCopyBytes);
    best = std::min(best, since(t0));
  }
  out[kCopy] = kCopyBytes / best;
  const size_t n = kReduceBytes / sizeof(float);
  best = 1e30;
  for (int i = 0; i < 4; ++i) {
    auto t0 = Clock::now();
    algos::reduce2(b, a, b, n, trellisFloat32, trellisSum);
    best = std::min(best, since(t0));
  }
  out[kReduce] = kReduceBytes / best;
}

// Ping-pong between this rank and `peer`; the lower rank leads and records the results.
Status pingPong(algos::Exec& exec, int peer, double* lat, double* bw) {
  const bool lead = exec.rank() < peer;
  char small[8] = {};
  algos::Request req;
  auto one = [&](bool send, void* buf, size_t bytes) -> Status {
    if (send) TRELLIS_TRY(exec.isend(peer, buf, bytes, &req));
    else TRELLIS_TRY(exec.irecv(peer, buf, bytes, &req));
    return exec.wait(&req);
  };
  auto round = [&](void* buf, size_t bytes) -> Status {
    TRELLIS_TRY(one(lead, buf, bytes));
    return one(!lead, buf, bytes);
  };
  for (int i = 0; i < 20; ++i) TRELLIS_TRY(round(small, sizeof small));
  // The median of 8 batches of round trips: robust to a preempted batch.
  std::vector<double> batches;
  for (int b = 0; b < 8; ++b) {
    auto t0 = Clock::now();
    for (int i = 0; i < kPingIters / 8; ++i) TRELLIS_TRY(round(small, sizeof small));
    batches.push_back(since(t0) / (kPingIters / 8) / 2);
  }
  std::sort(batches.begin(), batches.end());
  const double oneWay = batches[batches.size() / 2];
  char* big = static_cast<char*>(exec.scratch(algos::kScratchAlgo, kBigBytes));
  std::memset(big, 2, kBigBytes);
  TRELLIS_TRY(one(lead, big, kBigBytes));  // warm: registration, page faults
  TRELLIS_TRY(one(!lead, small, 0));
  double best = 1e30;
  for (int i = 0; i < kBigIters; ++i) {
    auto t0 = Clock::now();
    TRELLIS_TRY(one(lead, big, kBigBytes));
    TRELLIS_TRY(one(!lead, small, 0));  // the receiver's acknowledgement
    best = std::min(best, since(t0) - oneWay);
  }
  if (lead) {
    *lat = oneWay;
    *bw = best > 0 ? kBigBytes / best : 0;
  }
  return Status::ok();
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !(x > 0); }), v.end());
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

Result<Constants> calibrate(algos::Exec& exec, const Shape& shape, const Constants& base, std::string* report) {
  const int n = exec.nranks(), r = exec.rank();
  const int nodes = shape.nodes();
  std::vector<std::vector<int>> local(nodes);
  for (int q = 0; q < n; ++q) local[shape.nodeOfRank[q]].push_back(q);
  const int me = shape.nodeOfRank[r];
  std::vector<double> mine(kFields, 0.0);
  const auto t0 = Clock::now();

  if (local[me][0] == r) measureCompute(exec, mine.data());
  TRELLIS_TRY_CTX(algos::barrier(exec), "tuner calibration");
  // Memory traffic of a node: every rank of it copying at once (one rank per core at most).
  const int copiers = shape.coresPerNode > 0 ? std::min<int>(shape.coresPerNode, local[me].size()) : 1;
  const bool copier = std::find(local[me].begin(), local[me].begin() + copiers, r) != local[me].begin() + copiers;
  double memTime = 0;
  if (copier && copiers >= 2) {
    char* a = static_cast<char*>(exec.scratch(algos::kScratchAlgo, kCopyBytes));
    char* b = static_cast<char*>(exec.scratch(algos::kScratchAlgo + 1, kCopyBytes));
    std::memcpy(b, a, kCopyBytes);
    auto t0 = Clock::now();
    for (int i = 0; i < 4; ++i) std::memcpy(i % 2 ? a : b, i % 2 ? b : a, kCopyBytes);
    memTime = since(t0);
  }
  TRELLIS_TRY_CTX(algos::barrier(exec), "tuner calibration");
  // The slowest copier of the node paces it: the leader gathers their times.
  if (copiers >= 2 && copier) {
    if (r == local[me][0]) {
      double slowest = memTime;
      for (int i = 1; i < copiers; ++i) {
        double t = 0;
        algos::Request q;
        TRELLIS_TRY(exec.irecv(local[me][i], &t, sizeof t, &q));
        TRELLIS_TRY(exec.wait(&q));
        slowest = std::max(slowest, t);
      }
      if (slowest > 0) mine[kMem] = copiers * 4.0 * kCopyBytes * 2 / slowest;  // read + write
    } else {
      algos::Request q;
      TRELLIS_TRY(exec.isend(local[me][0], &memTime, sizeof memTime, &q));
      TRELLIS_TRY(exec.wait(&q));
    }
  }
  if (local[me].size() >= 2 && (r == local[me][0] || r == local[me][1]))
    TRELLIS_TRY_CTX(pingPong(exec, r == local[me][0] ? local[me][1] : local[me][0], &mine[kIntraLat], &mine[kIntraBw]),
                    "tuner calibration inside a node");
  TRELLIS_TRY_CTX(algos::barrier(exec), "tuner calibration");
  if (nodes >= 2 && local[me][0] == r) {
    const int partner = me % 2 == 0 ? me + 1 : me - 1;
    if (partner < nodes)
      TRELLIS_TRY_CTX(pingPong(exec, local[partner][0], &mine[kNetLat], &mine[kNetBw]), "tuner calibration across nodes");
  }
  // Everyone's results, in rank order.
  std::vector<double> all(static_cast<size_t>(n) * kFields, 0.0);
  algos::CollArgs g;
  g.coll = algos::Coll::kAllGather;
  g.send = mine.data();
  g.recv = all.data();
  g.count = kFields;
  g.dtype = trellisFloat64;
  TRELLIS_TRY_CTX(algos::allgatherRing(exec, g), "tuner calibration: combining results");
  double v[kFields];
  for (int f = 0; f < kFields; ++f) {
    std::vector<double> col;
    for (int q = 0; q < n; ++q) col.push_back(all[static_cast<size_t>(q) * kFields + f]);
    v[f] = median(col);
  }

  Constants c = base;
  auto put = [&](K id, double value, const char* what) {
    if (!(value > 0)) return;
    const ConstantInfo& info = constantInfo(id);
    *report += formatString("%s = %.4g %s (table %.4g; %s)\n", info.name, value, info.unit, base[id], what);
    c.set(id, value, std::string("calibrated: ") + what);
  };
  if (shape.cpuDriven) {
    put(K::kCopyBps, v[kCopy], "memcpy 8 MiB, first rank of each node");
    put(K::kReduceBps, v[kReduce], "float32 sum 4 MiB, first rank of each node");
    // Copies on several cores at once move at least what one core moves alone; less means a copier
    // lost its core to something else (a loaded machine): that is not the memory's limit.
    const double oneCore = 2 * (v[kCopy] > 0 ? v[kCopy] : base[K::kCopyBps]);
    if (v[kMem] >= oneCore) put(K::kMemBps, v[kMem], "8 MiB memcpy on as many ranks of a node as it has cores, at once");
    else if (v[kMem] > 0)
      *report += formatString("host.mem_bps: measured %.3g B/s, below one core's copy traffic %.3g B/s (a copier "
                              "lost its core): kept the table's value\n", v[kMem], oneCore);
  }
  const bool over = shape.oversubscribed();
  if (shape.intraKind == IntraKind::kShm) {
    if (over) put(K::kShmYieldLatencyS, v[kIntraLat], "8 B ping-pong, ranks outnumber cores (includes wake-ups)");
    else put(K::kShmLatencyS, v[kIntraLat], "8 B ping-pong");
    put(K::kShmReadBps, v[kIntraBw], "4 MiB one way (single-copy read by the receiver)");
    put(K::kShmHandshakeS, v[kIntraLat], "8 B ping-pong: a single-copy message's handshake costs one such wait");
  } else if (shape.intraKind == IntraKind::kTcp) {
    put(K::kTcpLatencyS, v[kIntraLat], "8 B ping-pong over loopback TCP");
    put(K::kTcpSendBps, v[kIntraBw], "4 MiB one way over loopback TCP");
    put(K::kTcpRecvBps, v[kIntraBw], "4 MiB one way over loopback TCP");
  }
  if (over && v[kIntraLat] > 0) c.set(K::kWakeS, 0, "calibrated: included in the measured latency");
  if (shape.netKind == NetKind::kTcp) {
    put(K::kTcpNetLatencyS, v[kNetLat], "8 B ping-pong between nodes");
    put(K::kTcpNetBps, v[kNetBw], "4 MiB one way between nodes");
  } else if (shape.netKind == NetKind::kRdma) {
    put(K::kNicLatencyS, v[kNetLat], "8 B ping-pong between nodes");
    put(K::kNicBps, v[kNetBw], "4 MiB one way between nodes");
  }
  *report += formatString("calibration took %.1f ms", since(t0) * 1e3);
  return c;
}

}  // namespace trellis::tuner
