// The algorithms as the cost model sees them: for each, the steps its source file runs (see the
// comment at the top of each src/algos/<collective>/<algorithm>.cc), with the flows, copies and
// reductions of each step. A model that does not match its algorithm's code is a bug: the step
// structure here is what tests/tuner checks against measured times (docs/PERFORMANCE.md).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "tuner/model_internal.h"

namespace trellis::tuner {
namespace model {

namespace {

using algos::Coll;

int lowbit(int v) { return v & -v; }

std::vector<int> identity(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

std::vector<Group> all(const Ctx& c, int root = 0) { return {Group{identity(c.n), c.S, root}}; }

// Steps where the active groups stay the same: groups with at least `size` members, for sizes in
// increasing order. `step(active, count)` returns the time of `count` identical steps.
template <typename Step>
double byActiveSet(const std::vector<Group>& gs, int minSize, Step step) {
  std::vector<int> sizes;
  for (const Group& g : gs)
    if (static_cast<int>(g.m.size()) >= minSize) sizes.push_back(static_cast<int>(g.m.size()));
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  double t = 0;
  int done = 0;
  for (int sz : sizes) {
    const int count = sz - 1 - done;
    if (count <= 0) continue;
    std::vector<const Group*> active;
    for (const Group& g : gs)
      if (static_cast<int>(g.m.size()) >= sz) active.push_back(&g);
    t += step(active, count);
    done = sz - 1;
  }
  return t;
}

}  // namespace

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

// ---------------------------------------------------------------- the flat algorithms over groups

double ringAllreduce(Ctx& c, const std::vector<Group>& gs) {
  const double ch = static_cast<double>(c.k.chunkBytes);
  return byActiveSet(gs, 2, [&](const std::vector<const Group*>& active, int count) {
    double blkMax = 0;
    for (const Group* g : active) {
      const int m = static_cast<int>(g->m.size());
      const double blk = g->bytes / m;
      blkMax = std::max(blkMax, blk);
      for (int i = 0; i < m; ++i) {
        c.e.flow(g->m[i], g->m[(i + 1) % m], blk, chunks(blk, ch));
        c.e.reduce(g->m[(i + 1) % m], blk);
      }
    }
    const double rs = pipelined(c.e.take(), ch / std::max(blkMax, 1.0), 1, true);
    for (const Group* g : active) {
      const int m = static_cast<int>(g->m.size());
      for (int i = 0; i < m; ++i) c.e.flow(g->m[i], g->m[(i + 1) % m], g->bytes / m, 1);
    }
    return count * (rs + take(c));
  });
}

double ringAllgather(Ctx& c, const std::vector<Group>& gs) {
  return byActiveSet(gs, 2, [&](const std::vector<const Group*>& active, int count) {
    for (const Group* g : active) {
      const int m = static_cast<int>(g->m.size());
      for (int i = 0; i < m; ++i) c.e.flow(g->m[i], g->m[(i + 1) % m], g->bytes / m, 1);
    }
    return count * take(c);
  });
}

double ringReducescatter(Ctx& c, const std::vector<Group>& gs) {
  const double ch = static_cast<double>(c.k.chunkBytes);
  return byActiveSet(gs, 2, [&](const std::vector<const Group*>& active, int count) {
    double blkMax = 0;
    for (const Group* g : active) {
      const int m = static_cast<int>(g->m.size());
      const double blk = g->bytes / m;
      blkMax = std::max(blkMax, blk);
      for (int i = 0; i < m; ++i) {
        c.e.flow(g->m[i], g->m[(i + 1) % m], blk, chunks(blk, ch));
        c.e.reduce(g->m[(i + 1) % m], blk);
      }
    }
    return count * pipelined(c.e.take(), ch / std::max(blkMax, 1.0), 1, true);
  });
}

// algos::powerOfTwoFold within a group of m.
struct Fold {
  int p = 1, rem = 0;
  int real(int v) const { return v < rem ? v * 2 + 1 : v + rem; }
};
static Fold foldOf(int m) {
  Fold f;
  while (f.p * 2 <= m) f.p *= 2;
  f.rem = m - f.p;
  return f;
}

double rdAllreduce(Ctx& c, const std::vector<Group>& gs) {
  double sum = 0;
  bool any = false;
  for (const Group& g : gs) {  // fold in
    Fold f = foldOf(static_cast<int>(g.m.size()));
    for (int r = 0; r < 2 * f.rem; r += 2) {
      c.e.flow(g.m[r], g.m[r + 1], g.bytes, 1);
      any = true;
    }
  }
  if (any) {
    sum += take(c);
    for (const Group& g : gs) {
      Fold f = foldOf(static_cast<int>(g.m.size()));
      for (int r = 1; r < 2 * f.rem; r += 2) c.e.reduce(g.m[r], g.bytes);
    }
    sum += take(c);
  }
  for (int mask = 1;; mask <<= 1) {
    bool active = false;
    for (const Group& g : gs) {
      Fold f = foldOf(static_cast<int>(g.m.size()));
      if (mask >= f.p) continue;
      active = true;
      for (int v = 0; v < f.p; ++v) c.e.flow(g.m[f.real(v)], g.m[f.real(v ^ mask)], g.bytes, 1);
    }
    if (!active) break;
    sum += take(c);
    for (const Group& g : gs) {
      Fold f = foldOf(static_cast<int>(g.m.size()));
      if (mask >= f.p) continue;
      for (int v = 0; v < f.p; ++v) c.e.reduce(g.m[f.real(v)], g.bytes);
    }
    sum += take(c);
  }
  if (any) {  // fold out
    for (const Group& g : gs) {
      Fold f = foldOf(static_cast<int>(g.m.size()));
      for (int r = 0; r < 2 * f.rem; r += 2) c.e.flow(g.m[r + 1], g.m[r], g.bytes, 1);
    }
    sum += take(c);
  }
  return sum;
}

// algos/allreduce/rabenseifner.cc among each group: fold (chunked), recursive halving (chunked,
// reduced on arrival), recursive doubling, unfold; the groups step in lockstep.
double rabenseifnerAllreduce(Ctx& c, const std::vector<Group>& gs) {
  const double ch = static_cast<double>(c.k.chunkBytes);
  double sum = 0;
  bool folds = false;
  double maxBytes = 0;
  for (const Group& g : gs) {
    Fold f = foldOf(static_cast<int>(g.m.size()));
    for (int r = 0; r < 2 * f.rem; r += 2) {
      c.e.flow(g.m[r], g.m[r + 1], g.bytes, chunks(g.bytes, ch));
      c.e.reduce(g.m[r + 1], g.bytes);
      folds = true;
      maxBytes = std::max(maxBytes, g.bytes);
    }
  }
  if (folds) sum += pipelined(c.e.take(), ch / std::max(maxBytes, 1.0), 1, true);
  int levels = 0;
  for (const Group& g : gs) levels = std::max(levels, ceilLog2(foldOf(static_cast<int>(g.m.size())).p));
  for (int k = 0; k < levels; ++k) {  // halving: the k-th step moves bytes / 2^(k+1)
    maxBytes = 0;
    for (const Group& g : gs) {
      Fold f = foldOf(static_cast<int>(g.m.size()));
      const int mask = f.p >> (k + 1);
      if (mask < 1) continue;
      const double size = g.bytes / (2 << k);
      maxBytes = std::max(maxBytes, size);
      for (int v = 0; v < f.p; ++v) {
        c.e.flow(g.m[f.real(v)], g.m[f.real(v ^ mask)], size, chunks(size, ch));
        c.e.reduce(g.m[f.real(v)], size);
      }
    }
    sum += pipelined(c.e.take(), ch / std::max(maxBytes, 1.0), 1, true);
  }
  for (int k = 0; k < levels; ++k) {  // doubling: the k-th step moves bytes * 2^k / p
    for (const Group& g : gs) {
      Fold f = foldOf(static_cast<int>(g.m.size()));
      const int mask = 1 << k;
      if (mask >= f.p) continue;
      for (int v = 0; v < f.p; ++v) c.e.flow(g.m[f.real(v)], g.m[f.real(v ^ mask)], g.bytes * mask / f.p, 1);
    }
    sum += take(c);
  }
  if (folds) {
    for (const Group& g : gs) {
      Fold f = foldOf(static_cast<int>(g.m.size()));
      for (int r = 0; r < 2 * f.rem; r += 2) c.e.flow(g.m[r + 1], g.m[r], g.bytes, 1);
    }
    sum += take(c);
  }
  return sum;
}

// Pipelined binomial tree (algos/broadcast/binomial.cc): every edge streams the whole message at
// once; the fill is one chunk per level.
double binomialBroadcast(Ctx& c, const std::vector<Group>& gs) {
  int depth = 1;
  double maxBytes = 0;
  for (const Group& g : gs) {
    const int m = static_cast<int>(g.m.size());
    if (m < 2) continue;
    depth = std::max(depth, ceilLog2(m));
    maxBytes = std::max(maxBytes, g.bytes);
    for (int vr = 1; vr < m; ++vr)
      c.e.flow(g.m[(vr - lowbit(vr) + g.root) % m], g.m[(vr + g.root) % m], g.bytes, chunks(g.bytes, c.k.chunkBytes));
  }
  return pipelined(c.e.take(), c.k.chunkBytes / std::max(maxBytes, 1.0), depth, false);
}

double scatterAllgatherBroadcast(Ctx& c, const std::vector<Group>& gs) {
  for (const Group& g : gs) {
    const int m = static_cast<int>(g.m.size());
    for (int v = 1; v < m; ++v) c.e.flow(g.m[g.root], g.m[(v + g.root) % m], g.bytes / m, 1);
  }
  double sum = take(c);
  return sum + ringAllgather(c, gs);
}

// Binomial reduce (algos/reduce/binomial.cc): level j's senders (lowest set bit 2^j) reduce into
// their parents, one level after the other.
double binomialReduce(Ctx& c, const std::vector<Group>& gs) {
  double sum = 0;
  for (int bit = 1;; bit <<= 1) {
    bool active = false;
    double maxBytes = 0;
    for (const Group& g : gs) {
      const int m = static_cast<int>(g.m.size());
      for (int vr = 1; vr < m; ++vr)
        if (lowbit(vr) == bit) {
          active = true;
          maxBytes = std::max(maxBytes, g.bytes);
          c.e.flow(g.m[(vr + g.root) % m], g.m[(vr - bit + g.root) % m], g.bytes, chunks(g.bytes, c.k.chunkBytes));
          c.e.reduce(g.m[(vr - bit + g.root) % m], g.bytes);
        }
    }
    if (!active) break;
    sum += pipelined(c.e.take(), c.k.chunkBytes / std::max(maxBytes, 1.0), 1, true);
  }
  return sum;
}

namespace {

// ---------------------------------------------------------------- AllReduce

bool allreduceRing(Ctx& c, double* t, std::string*) {
  *t = ringAllreduce(c, all(c));
  return true;
}

bool allreduceRd(Ctx& c, double* t, std::string*) {
  *t = (c.k.inPlace ? 0 : copyAll(c, c.S)) + rdAllreduce(c, all(c));
  return true;
}

bool oneHostShm(const Ctx& c, std::string* why) {
  if (c.s.nodes() == 1 && c.s.intraKind == IntraKind::kShm && c.s.cpuDriven) return true;
  *why = "modelled for the ranks of one host over shared memory only";
  return false;
}

// algos/allreduce/oneshot.cc: n-1 sends of S and n-1 receives at once, own input copied into
// scratch, then n-1 reductions of S. Priced for ranks of one host over shared memory only, where
// a message is a few stores into a ring slot: over TCP each of the n-1 messages is a system-call
// pair and, with more ranks than cores, a wake-up of its own, which the step formula (the slowest
// path's latency, once) does not capture. Measured at 4 ranks on 2 cores, 8 B: over shared memory
// 2.5-2.9 us against recursive doubling's 3.1-4.7; over loopback TCP 28-39 us against 21-32.
bool allreduceOneShot(Ctx& c, double* t, std::string* why) {
  if (!oneHostShm(c, why)) return false;
  for (int r = 0; r < c.n; ++r) {
    for (int q = 0; q < c.n; ++q)
      if (q != r) c.e.flow(r, q, c.S, 1);
    c.e.copy(r, c.S);
  }
  double sum = take(c);
  for (int r = 0; r < c.n; ++r) c.e.reduce(r, (c.n - 1) * c.S);
  *t = sum + take(c);
  return true;
}

bool allreduceRabenseifner(Ctx& c, double* t, std::string*) {
  *t = (c.k.inPlace ? 0 : copyAll(c, c.S)) + rabenseifnerAllreduce(c, all(c));
  return true;
}

// The direct algorithms: buffer addresses exchanged, peers' buffers read, barriers.
// algos/allreduce/direct.cc: each rank reduces its block from every peer's input and writes each
// reduced tile into every peer's output, then one barrier.
bool allreduceDirect(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  double sum = allPairs(c, 16);
  for (int r = 0; r < c.n; ++r)
    for (int q = 0; q < c.n; ++q)
      if (q != r) {
        c.e.readPeer(r, q, blk);
        c.e.reduce(r, blk);
        c.e.writePeer(r, q, blk);
      }
  sum += take(c);
  sum += allPairs(c, 0);
  *t = sum;
  return true;
}

// ---------------------------------------------------------------- Broadcast and Reduce (root 0)

bool broadcastBinomial(Ctx& c, double* t, std::string*) {
  const double copy = c.k.inPlace ? 0 : (c.e.copy(0, c.S), take(c));
  *t = copy + binomialBroadcast(c, all(c));
  return true;
}

bool broadcastScatterAllgather(Ctx& c, double* t, std::string*) {
  const double copy = c.k.inPlace ? 0 : (c.e.copy(0, c.S), take(c));
  *t = copy + scatterAllgatherBroadcast(c, all(c));
  return true;
}

// algos/broadcast/oneshot.cc: root copy, the root sends S to each of the n-1 others at once. One
// host over shared memory only, as oneshot AllReduce.
bool broadcastOneShot(Ctx& c, double* t, std::string* why) {
  if (!oneHostShm(c, why)) return false;
  if (!c.k.inPlace) c.e.copy(0, c.S);
  for (int q = 1; q < c.n; ++q) c.e.flow(0, q, c.S, 1);
  *t = take(c);
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

// algos/reduce/direct.cc: every rank reduces its block from every peer's input; the others write
// theirs into the root's output as they go; one barrier.
bool reduceDirect(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  double sum = allPairs(c, 16);
  for (int r = 0; r < c.n; ++r) {
    for (int q = 0; q < c.n; ++q)
      if (q != r) {
        c.e.readPeer(r, q, blk);
        c.e.reduce(r, blk);
      }
    if (r != 0) c.e.writePeer(r, 0, blk);
  }
  sum += take(c);
  *t = sum + allPairs(c, 0);
  return true;
}

bool reduceBinomial(Ctx& c, double* t, std::string*) {
  *t = binomialReduce(c, all(c));
  return true;
}

// ---------------------------------------------------------------- AllGather / ReduceScatter

bool allgatherRing(Ctx& c, double* t, std::string*) {
  *t = (c.k.inPlace ? 0 : copyAll(c, c.S / c.n)) + ringAllgather(c, all(c));
  return true;
}

// algos/allgather/bruck.cc: own block into scratch, ceil(log2 n) exchanges of min(d, n-d) blocks
// with the ranks at distance d, then the n blocks copied to their places.
bool allgatherBruck(Ctx& c, double* t, std::string*) {
  const double blk = c.S / c.n;
  double sum = copyAll(c, blk);
  for (int d = 1; d < c.n; d <<= 1) {
    for (int r = 0; r < c.n; ++r) c.e.flow(r, (r - d + c.n) % c.n, std::min(d, c.n - d) * blk, 1);
    sum += take(c);
  }
  *t = sum + copyAll(c, c.S);
  return true;
}

// algos/allgather/oneshot.cc: n-1 sends and receives of S/n at once, own-block copy. One host
// over shared memory only, as oneshot AllReduce.
bool allgatherOneShot(Ctx& c, double* t, std::string* why) {
  if (!oneHostShm(c, why)) return false;
  const double blk = c.S / c.n;
  for (int r = 0; r < c.n; ++r) {
    for (int q = 0; q < c.n; ++q)
      if (q != r) c.e.flow(r, q, blk, 1);
    if (!c.k.inPlace) c.e.copy(r, blk);
  }
  *t = take(c);
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
  *t = ringReducescatter(c, all(c));
  return true;
}

// algos/reducescatter/rd.cc: the recursive-doubling AllReduce of the whole input (S), then the
// rank's own block copied out.
bool reducescatterRd(Ctx& c, double* t, std::string*) {
  *t = copyAll(c, c.S) + rdAllreduce(c, all(c)) + copyAll(c, c.S / c.n);
  return true;
}

// algos/reducescatter/oneshot.cc: n-1 sends and receives of S/n at once, own-block copy, then
// n-1 reductions of S/n. One host over shared memory only, as oneshot AllReduce.
bool reducescatterOneShot(Ctx& c, double* t, std::string* why) {
  if (!oneHostShm(c, why)) return false;
  const double blk = c.S / c.n;
  for (int r = 0; r < c.n; ++r) {
    for (int q = 0; q < c.n; ++q)
      if (q != r) c.e.flow(r, q, blk, 1);
    c.e.copy(r, blk);
  }
  double sum = take(c);
  for (int r = 0; r < c.n; ++r) c.e.reduce(r, (c.n - 1) * blk);
  *t = sum + take(c);
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

// ---------------------------------------------------------------- the table

using ModelFn = bool (*)(Ctx&, double*, std::string*);
struct AlgoModel {
  Coll coll;
  const char* name;
  ModelFn fn;
  AlgoTraits traits;
};

// {modelled, usesChunk, maxChannels, needsDirect, topologyAware}
const AlgoModel kModels[] = {
    {Coll::kAllReduce, "ring", allreduceRing, {true, true, 1, false, false}},
    {Coll::kAllReduce, "rd", allreduceRd, {true, false, 1, false, false}},
    {Coll::kAllReduce, "oneshot", allreduceOneShot, {true, false, 1, false, false}},
    {Coll::kAllReduce, "rabenseifner", allreduceRabenseifner, {true, true, 1, false, false}},
    {Coll::kAllReduce, "direct", allreduceDirect, {true, false, 1, true, false}},
    {Coll::kAllReduce, "hier", allreduceHier, {true, true, 1, false, true}},
    {Coll::kAllReduce, "topo_ring", allreduceTopoRing, {true, true, 1, false, true}},
    {Coll::kBroadcast, "binomial", broadcastBinomial, {true, true, 1, false, false}},
    {Coll::kBroadcast, "scatter_allgather", broadcastScatterAllgather, {true, false, 1, false, false}},
    {Coll::kBroadcast, "oneshot", broadcastOneShot, {true, false, 1, false, false}},
    {Coll::kBroadcast, "direct", broadcastDirect, {true, false, 1, true, false}},
    {Coll::kBroadcast, "hier", broadcastHier, {true, true, 1, false, true}},
    {Coll::kReduce, "binomial", reduceBinomial, {true, true, 1, false, false}},
    {Coll::kReduce, "direct", reduceDirect, {true, false, 1, true, false}},
    {Coll::kReduce, "hier", reduceHier, {true, true, 1, false, true}},
    {Coll::kAllGather, "ring", allgatherRing, {true, false, 1, false, false}},
    {Coll::kAllGather, "bruck", allgatherBruck, {true, false, 1, false, false}},
    {Coll::kAllGather, "oneshot", allgatherOneShot, {true, false, 1, false, false}},
    {Coll::kAllGather, "direct", allgatherDirect, {true, false, 1, true, false}},
    {Coll::kAllGather, "hier", allgatherHier, {true, false, 1, false, true}},
    {Coll::kAllGather, "topo_ring", allgatherTopoRing, {true, false, 1, false, true}},
    {Coll::kReduceScatter, "ring", reducescatterRing, {true, true, 1, false, false}},
    {Coll::kReduceScatter, "rd", reducescatterRd, {true, false, 1, false, false}},
    {Coll::kReduceScatter, "oneshot", reducescatterOneShot, {true, false, 1, false, false}},
    {Coll::kReduceScatter, "direct", reducescatterDirect, {true, false, 1, true, false}},
    {Coll::kReduceScatter, "hier", reducescatterHier, {true, true, 1, false, true}},
    {Coll::kReduceScatter, "topo_ring", reducescatterTopoRing, {true, true, 1, false, true}},
    {Coll::kAlltoAll, "pairwise", alltoallPairwise, {true, false, 1, false, false}},
    {Coll::kAlltoAll, "direct", alltoallDirect, {true, false, 1, true, false}},
    {Coll::kAlltoAll, "rail", alltoallRail, {true, false, 1, false, true}},
    {Coll::kAlltoAllv, "pairwise", alltoallPairwise, {true, false, 1, false, false}},
};

}  // namespace

const AlgoModel* findModel(Coll coll, std::string_view name) {
  for (const AlgoModel& m : kModels)
    if (m.coll == coll && name == m.name) return &m;
  return nullptr;
}

}  // namespace model

AlgoTraits algoTraits(algos::Coll coll, std::string_view algo) {
  const model::AlgoModel* m = model::findModel(coll, algo);
  return m ? m->traits : AlgoTraits{};
}

const std::vector<algos::Algorithm>& plannedAlgorithms() {
  static const std::vector<algos::Algorithm> k = [] {
    std::vector<algos::Algorithm> v;
    for (const model::AlgoModel& m : model::kModels)
      if (algos::findAlgorithm(m.coll, m.name) == nullptr)
        v.push_back({m.coll, m.name, "modelled, not implemented yet", nullptr, m.traits.needsDirect});
    return v;
  }();
  return k;
}

namespace model {

Prediction predict(const Shape& s, Engine& e, const algos::Hierarchy* h, const std::vector<int>* topo, algos::Coll coll,
                   std::string_view algo, double bytes, const Knobs& knobs) {
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
  Ctx c{s, e, std::max(bytes, 0.0), knobs, n, h, topo};
  e.setChannels(knobs.channels);
  // A rank's buffers (send + receive; the nccl-tests size S is the larger) decide where its bytes
  // come from: its core's cache (calls repeat on the same buffers), or memory shared with others.
  double scale = 1;
  if (s.cpuDriven) {
    const double footprint = c.S * (knobs.inPlace ? 1 : 2);
    if (s.cacheBytes > 0 && footprint <= s.cacheBytes) scale = s.cacheSpeedup;
    else if (s.streamBytes > 0 && footprint > s.streamBytes) scale = s.streamFactor;
  }
  e.setRateScale(scale);
  double t = 0;
  if (!m->fn(c, &t, &p.why)) return p;
  p.supported = true;
  p.seconds = t + s.callS;
  return p;
}

}  // namespace model
}  // namespace trellis::tuner
