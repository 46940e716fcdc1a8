// The algorithms as the cost model sees them: for each, the steps its source file runs (see the
// comment at the top of each src/algos/<collective>/<algorithm>.cc), with the flows, copies and
// reductions of each step. A model that does not match its algorithm's code is a bug: the step
// structure here is what tests/tuner checks against measured times (docs/PERFORMANCE.md).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "tuner/cost_model.h"
#include "tuner/model_engine.h"

namespace trellis::tuner {

namespace {

using algos::Coll;

struct Ctx {
  const Shape& s;
  Engine& e;
  double S;  // nccl-tests size
  Knobs k;
  int n;
  std::vector<int> order, pos;  // ring order and each rank's place in it
};

int right(const Ctx& c, int r) { return c.order[(c.pos[r] + 1) % c.n]; }

double chunks(double bytes, double chunk) { return bytes <= 0 ? 1 : std::max(1.0, std::ceil(bytes / chunk)); }

// A pipelined step: `depth` hops, each chunk `frac` of the bytes; the fill is paid per extra hop
// and, when transfers overlap compute on a wire, once for the last chunk's reduction.
double pipelined(const StepTime& t, double frac, int depth, bool reduces) {
  frac = std::min(1.0, frac);
  double fill = (depth - 1) * (t.latency + t.busy * frac);
  if (reduces && t.wire) fill += t.busy * frac;
  return t.total() + fill;
}

double take(Ctx& c) { return c.e.take().total(); }

// Every rank sends a tiny message to every other (exchangeBuffers, barrier).
double allPairs(Ctx& c, double bytes) {
  for (int r = 0; r < c.n; ++r)
    for (int q = 0; q < c.n; ++q)
      if (q != r) c.e.flow(r, q, bytes, 1);
  return take(c);
}

double copyAll(Ctx& c, double bytes) {
  for (int r = 0; r < c.n; ++r) c.e.copy(r, bytes);
  return take(c);
}

struct Fold {  // algos::powerOfTwoFold
  int p = 1, rem = 0;
  int vrank(int r) const { return r < 2 * rem ? (r % 2 == 0 ? -1 : r / 2) : r - rem; }
  int real(int v) const { return v < rem ? v * 2 + 1 : v + rem; }
};
Fold fold(int n) {
  Fold f;
  while (f.p * 2 <= n) f.p *= 2;
  f.rem = n - f.p;
  return f;
}

int ceilLog2(int n) {
  int d = 0;
  while ((1 << d) < n) ++d;
  return d;
}

// ---------------------------------------------------------------- AllReduce

bool allreduceRing(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  for (int r = 0; r < c.n; ++r) {
    c.e.flow(r, right(c, r), blk, chunks(blk, c.k.chunkBytes));
    c.e.reduce(right(c, r), blk);
  }
  const double rs = pipelined(c.e.take(), c.k.chunkBytes / std::max(blk, 1.0), 1, true);
  for (int r = 0; r < c.n; ++r) c.e.flow(r, right(c, r), blk, 1);
  const double ag = take(c);
  *t = (c.n - 1) * (rs + ag);
  return true;
}

bool allreduceRd(Ctx& c, double* t, std::string*) {
  const Fold f = fold(c.n);
  double sum = c.k.inPlace ? 0 : copyAll(c, c.S);
  if (f.rem > 0) {
    for (int r = 0; r < 2 * f.rem; r += 2) c.e.flow(r, r + 1, c.S, 1);
    sum += take(c);
    for (int r = 1; r < 2 * f.rem; r += 2) c.e.reduce(r, c.S);
    sum += take(c);
  }
  for (int mask = 1; mask < f.p; mask <<= 1) {
    for (int v = 0; v < f.p; ++v) c.e.flow(f.real(v), f.real(v ^ mask), c.S, 1);
    sum += take(c);
    for (int v = 0; v < f.p; ++v) c.e.reduce(f.real(v), c.S);
    sum += take(c);
  }
  if (f.rem > 0) {
    for (int r = 0; r < 2 * f.rem; r += 2) c.e.flow(r + 1, r, c.S, 1);
    sum += take(c);
  }
  *t = sum;
  return true;
}

bool allreduceRabenseifner(Ctx& c, double* t, std::string*) {
  const Fold f = fold(c.n);
  const double ch = c.k.chunkBytes;
  double sum = c.k.inPlace ? 0 : copyAll(c, c.S);
  if (f.rem > 0) {
    for (int r = 0; r < 2 * f.rem; r += 2) {
      c.e.flow(r, r + 1, c.S, chunks(c.S, ch));
      c.e.reduce(r + 1, c.S);
    }
    sum += pipelined(c.e.take(), ch / c.S, 1, true);
  }
  double size = c.S;
  for (int mask = f.p / 2; mask >= 1; mask /= 2) {
    size /= 2;
    for (int v = 0; v < f.p; ++v) {
      c.e.flow(f.real(v), f.real(v ^ mask), size, chunks(size, ch));
      c.e.reduce(f.real(v), size);
    }
    sum += pipelined(c.e.take(), ch / std::max(size, 1.0), 1, true);
  }
  size = c.S / f.p;
  for (int mask = 1; mask < f.p; mask *= 2) {
    for (int v = 0; v < f.p; ++v) c.e.flow(f.real(v), f.real(v ^ mask), size, 1);
    sum += take(c);
    size *= 2;
  }
  if (f.rem > 0) {
    for (int r = 0; r < 2 * f.rem; r += 2) c.e.flow(r + 1, r, c.S, 1);
    sum += take(c);
  }
  *t = sum;
  return true;
}

// The direct algorithms: buffer addresses exchanged, peers' buffers read, barriers.
bool allreduceDirect(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  double sum = allPairs(c, 16);
  for (int r = 0; r < c.n; ++r)
    for (int q = 0; q < c.n; ++q)
      if (q != r) {
        c.e.readPeer(r, q, blk);
        c.e.reduce(r, blk);
      }
  sum += take(c);
  sum += allPairs(c, 0);
  for (int r = 0; r < c.n; ++r)
    for (int q = 0; q < c.n; ++q)
      if (q != r) c.e.readPeer(r, q, blk);
  sum += take(c);
  sum += allPairs(c, 0);
  *t = sum;
  return true;
}

// Hierarchical AllReduce (issue 5): intra-node reduce-scatter, an AllReduce per local index across
// nodes (each rank's NIC carries 1/L of the data), intra-node all-gather. Rings at both levels.
bool allreduceHier(Ctx& c, double* t, std::string* why) {
  const Shape& s = c.s;
  const int nodes = s.nodes();
  if (nodes < 2) {
    *why = "one node";
    return false;
  }
  std::vector<std::vector<int>> local(nodes);
  for (int r = 0; r < c.n; ++r) local[s.nodeOfRank[r]].push_back(r);
  int lmax = 0;
  for (auto& l : local) lmax = std::max(lmax, static_cast<int>(l.size()));
  const double ch = c.k.chunkBytes;
  double sum = 0;
  // Intra-node ring reduce-scatter: L-1 steps of S/L (all nodes at once; the largest node paces).
  auto intraStep = [&](bool reduceStep) {
    for (auto& l : local) {
      const int L = static_cast<int>(l.size());
      if (L < 2) continue;
      const double blk = c.S / L;
      for (int i = 0; i < L; ++i) {
        c.e.flow(l[i], l[(i + 1) % L], blk, reduceStep ? chunks(blk, ch) : 1);
        if (reduceStep) c.e.reduce(l[(i + 1) % L], blk);
      }
    }
    return reduceStep ? pipelined(c.e.take(), ch / std::max(c.S / lmax, 1.0), 1, true) : take(c);
  };
  if (lmax > 1) sum += (lmax - 1) * intraStep(true);
  // Across nodes: ranks with local index i on every node that has one form a ring over S/L/N.
  int ringMax = 0;
  for (int i = 0; i < lmax; ++i) {
    int m = 0;
    for (auto& l : local) m += static_cast<int>(l.size()) > i;
    ringMax = std::max(ringMax, m);
  }
  auto interStep = [&](bool reduceStep) {
    double blkMax = 0;
    for (int i = 0; i < lmax; ++i) {
      std::vector<int> ring;
      for (auto& l : local)
        if (static_cast<int>(l.size()) > i) ring.push_back(l[i]);
      const int m = static_cast<int>(ring.size());
      if (m < 2) continue;
      const double blk = c.S / static_cast<double>(local[s.nodeOfRank[ring[0]]].size()) / m;
      blkMax = std::max(blkMax, blk);
      for (int j = 0; j < m; ++j) {
        c.e.flow(ring[j], ring[(j + 1) % m], blk, reduceStep ? chunks(blk, ch) : 1);
        if (reduceStep) c.e.reduce(ring[(j + 1) % m], blk);
      }
    }
    return reduceStep ? pipelined(c.e.take(), ch / std::max(blkMax, 1.0), 1, true) : take(c);
  };
  sum += (ringMax - 1) * (interStep(true) + interStep(false));
  if (lmax > 1) sum += (lmax - 1) * intraStep(false);
  *t = sum;
  return true;
}

// ---------------------------------------------------------------- Broadcast (root 0)

int lowbit(int v) { return v & -v; }

bool broadcastBinomial(Ctx& c, double* t, std::string*) {
  double sum = c.k.inPlace ? 0 : (c.e.copy(0, c.S), take(c));
  for (int r = 1; r < c.n; ++r) c.e.flow(r - lowbit(r), r, c.S, chunks(c.S, c.k.chunkBytes));
  *t = sum + pipelined(c.e.take(), c.k.chunkBytes / std::max(c.S, 1.0), ceilLog2(c.n), false);
  return true;
}

bool broadcastScatterAllgather(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  double sum = c.k.inPlace ? 0 : (c.e.copy(0, c.S), take(c));
  for (int v = 1; v < c.n; ++v) c.e.flow(0, v, blk, 1);
  sum += take(c);
  for (int r = 0; r < c.n; ++r) c.e.flow(r, (r + 1) % c.n, blk, 1);
  sum += (c.n - 1) * take(c);
  *t = sum;
  return true;
}

bool broadcastDirect(Ctx& c, double* t, std::string*) {
  double sum = allPairs(c, 16);
  if (!c.k.inPlace) c.e.copy(0, c.S);
  for (int r = 1; r < c.n; ++r) c.e.readPeer(r, 0, c.S);
  sum += take(c);
  *t = sum + allPairs(c, 0);
  return true;
}

// ---------------------------------------------------------------- Reduce (root 0)

bool reduceBinomial(Ctx& c, double* t, std::string*) {
  double sum = 0;
  for (int bit = 1; bit < c.n; bit <<= 1) {
    for (int r = 1; r < c.n; ++r)
      if (lowbit(r) == bit) {
        c.e.flow(r, r - bit, c.S, chunks(c.S, c.k.chunkBytes));
        c.e.reduce(r - bit, c.S);
      }
    sum += pipelined(c.e.take(), c.k.chunkBytes / std::max(c.S, 1.0), 1, true);
  }
  *t = sum;
  return true;
}

// ---------------------------------------------------------------- AllGather / ReduceScatter

bool allgatherRing(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  double sum = c.k.inPlace ? 0 : copyAll(c, blk);
  for (int r = 0; r < c.n; ++r) c.e.flow(r, right(c, r), blk, 1);
  *t = sum + (c.n - 1) * take(c);
  return true;
}

bool allgatherDirect(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  double sum = c.k.inPlace ? 0 : copyAll(c, blk);
  sum += allPairs(c, 16);
  for (int r = 0; r < c.n; ++r)
    for (int q = 0; q < c.n; ++q)
      if (q != r) c.e.readPeer(r, q, blk);
  sum += take(c);
  *t = sum + allPairs(c, 0);
  return true;
}

bool reducescatterRing(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  for (int r = 0; r < c.n; ++r) {
    c.e.flow(r, right(c, r), blk, chunks(blk, c.k.chunkBytes));
    c.e.reduce(right(c, r), blk);
  }
  *t = (c.n - 1) * pipelined(c.e.take(), c.k.chunkBytes / std::max(blk, 1.0), 1, true);
  return true;
}

bool reducescatterDirect(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  double sum = allPairs(c, 16);
  for (int r = 0; r < c.n; ++r)
    for (int q = 0; q < c.n; ++q)
      if (q != r) {
        c.e.readPeer(r, q, blk);
        c.e.reduce(r, blk);
      }
  sum += take(c);
  *t = sum + allPairs(c, 0);
  return true;
}

// ---------------------------------------------------------------- AlltoAll

constexpr int kAlltoallWindow = 8;  // algos/alltoall/pairwise.cc kWindow

bool alltoallPairwise(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  double sum = copyAll(c, blk);
  for (int s = 1; s < c.n; s += kAlltoallWindow) {
    const int end = std::min(c.n, s + kAlltoallWindow);
    for (int step = s; step < end; ++step)
      for (int r = 0; r < c.n; ++r) c.e.flow(r, (r + step) % c.n, blk, 1);
    sum += take(c);
  }
  *t = sum;
  return true;
}

bool alltoallDirect(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  double sum = copyAll(c, blk);
  sum += allPairs(c, 16);
  for (int r = 0; r < c.n; ++r)
    for (int q = 0; q < c.n; ++q)
      if (q != r) c.e.readPeer(r, q, blk);
  sum += take(c);
  *t = sum + allPairs(c, 0);
  return true;
}

// Rail-aligned AlltoAll (issue 5, PXN-style): a block for a rank on another node first moves inside
// the node to the local rank on the destination's rail, then crosses the network rail to rail.
bool alltoallRail(Ctx& c, double* t, std::string* why) {
  const Shape& s = c.s;
  const int nodes = s.nodes();
  if (nodes < 2) {
    *why = "one node";
    return false;
  }
  const double blk = c.S / c.n;
  std::vector<std::vector<int>> local(nodes);
  for (int r = 0; r < c.n; ++r) local[s.nodeOfRank[r]].push_back(r);
  // Ranks per (node, rail) and how many ranks of the whole job sit on each rail.
  const int rails = std::max(1, s.railsPerNode);
  std::vector<int> onRail(rails, 0);
  for (int r = 0; r < c.n; ++r) ++onRail[s.railOfRank[r] % rails];
  // The local rank that forwards to rail j on node v: the first local rank on rail j, else rank 0.
  auto proxy = [&](int v, int j) {
    for (int r : local[v])
      if (s.railOfRank[r] % rails == j) return r;
    return local[v][0];
  };
  double sum = copyAll(c, blk);
  // Phase 1, inside nodes: own blocks for local peers plus everything for remote ranks of rail j.
  for (int v = 0; v < nodes; ++v) {
    std::vector<int> remoteOnRail(rails, 0);
    for (int r = 0; r < c.n; ++r)
      if (s.nodeOfRank[r] != v) ++remoteOnRail[s.railOfRank[r] % rails];
    for (int src : local[v]) {
      std::vector<double> to(c.n, 0);
      for (int dst : local[v])
        if (dst != src) to[dst] += blk;
      for (int j = 0; j < rails; ++j)
        if (remoteOnRail[j] > 0) to[proxy(v, j)] += blk * remoteOnRail[j];
      for (int dst : local[v])
        if (dst != src && to[dst] > 0) c.e.flow(src, dst, to[dst], 1);
    }
  }
  sum += take(c);
  // Phase 2, across nodes, pairwise over node offsets in windows: proxy (v, j) sends to every rank
  // of rail j on node w the blocks of all of v's ranks.
  for (int s0 = 1; s0 < nodes; s0 += kAlltoallWindow) {
    const int end = std::min(nodes, s0 + kAlltoallWindow);
    for (int step = s0; step < end; ++step)
      for (int v = 0; v < nodes; ++v) {
        const int w = (v + step) % nodes;
        for (int dst : local[w]) {
          const int j = s.railOfRank[dst] % rails;
          c.e.flow(proxy(v, j), dst, blk * local[v].size(), 1);
        }
      }
    sum += take(c);
  }
  *t = sum;
  return true;
}

// ---------------------------------------------------------------- the table

using ModelFn = bool (*)(Ctx&, double*, std::string*);
struct AlgoModel {
  Coll coll;
  const char* name;
  ModelFn fn;
  AlgoTraits traits;
};

const AlgoModel kModels[] = {
    {Coll::kAllReduce, "ring", allreduceRing, {true, true, 1, false, false}},
    {Coll::kAllReduce, "rd", allreduceRd, {true, false, 1, false, false}},
    {Coll::kAllReduce, "rabenseifner", allreduceRabenseifner, {true, true, 1, false, false}},
    {Coll::kAllReduce, "direct", allreduceDirect, {true, false, 1, true, false}},
    {Coll::kAllReduce, "hier", allreduceHier, {true, true, 1, false, true}},
    {Coll::kBroadcast, "binomial", broadcastBinomial, {true, true, 1, false, false}},
    {Coll::kBroadcast, "scatter_allgather", broadcastScatterAllgather, {true, false, 1, false, false}},
    {Coll::kBroadcast, "direct", broadcastDirect, {true, false, 1, true, false}},
    {Coll::kReduce, "binomial", reduceBinomial, {true, true, 1, false, false}},
    {Coll::kAllGather, "ring", allgatherRing, {true, false, 1, false, false}},
    {Coll::kAllGather, "direct", allgatherDirect, {true, false, 1, true, false}},
    {Coll::kReduceScatter, "ring", reducescatterRing, {true, true, 1, false, false}},
    {Coll::kReduceScatter, "direct", reducescatterDirect, {true, false, 1, true, false}},
    {Coll::kAlltoAll, "pairwise", alltoallPairwise, {true, false, 1, false, false}},
    {Coll::kAlltoAll, "direct", alltoallDirect, {true, false, 1, true, false}},
    {Coll::kAlltoAll, "rail", alltoallRail, {true, false, 1, false, true}},
    {Coll::kAlltoAllv, "pairwise", alltoallPairwise, {true, false, 1, false, false}},
};

const AlgoModel* findModel(Coll coll, std::string_view name) {
  for (const AlgoModel& m : kModels)
    if (m.coll == coll && name == m.name) return &m;
  return nullptr;
}

}  // namespace

AlgoTraits algoTraits(Coll coll, std::string_view algo) {
  const AlgoModel* m = findModel(coll, algo);
  return m ? m->traits : AlgoTraits{};
}

const std::vector<algos::Algorithm>& plannedAlgorithms() {
  static const std::vector<algos::Algorithm> k = [] {
    std::vector<algos::Algorithm> v;
    for (const AlgoModel& m : kModels)
      if (algos::findAlgorithm(m.coll, m.name) == nullptr)
        v.push_back({m.coll, m.name, "modelled, not implemented yet", nullptr, m.traits.needsDirect});
    return v;
  }();
  return k;
}

// Defined here so the model table stays private to this file.
Prediction predictWith(const Shape& s, Engine& e, Coll coll, std::string_view algo, double bytes,
                       const Knobs& knobs) {
  Prediction p;
  const AlgoModel* m = findModel(coll, algo);
  if (m == nullptr) {
    p.why = "no cost model for this algorithm";
    return p;
  }
  if (m->traits.needsDirect && !s.direct) {
    p.why = "needs ranks that read each other's memory (one host, single copy)";
    return p;
  }
  if (m->traits.maxChannels < knobs.channels) {
    p.why = "does not run channels";
    return p;
  }
  const int n = s.nranks();
  if (n <= 1) {
    p.supported = true;
    p.seconds = 0;
    return p;
  }
  Ctx c{s, e, std::max(bytes, 0.0), knobs, n, {}, {}};
  c.order = s.ringOrder;
  if (static_cast<int>(c.order.size()) != n) {
    c.order.resize(n);
    std::iota(c.order.begin(), c.order.end(), 0);
  }
  c.pos.assign(n, 0);
  for (int i = 0; i < n; ++i) c.pos[c.order[i]] = i;
  e.setChannels(knobs.channels);
  double t = 0;
  if (!m->fn(c, &t, &p.why)) return p;
  p.supported = true;
  p.seconds = t;
  return p;
}

}  // namespace trellis::tuner
