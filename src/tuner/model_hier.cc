// Models of the topology-aware algorithms (src/algos/hier.cc and the hier / topo_ring / rail files
// of each collective). Their structure (nodes, slots, slices, proxies, node order) comes from the
// algorithms' own code, algos::makeHierarchy, run on a cluster view made from the shape, so the
// model and the algorithm cannot disagree about who talks to whom.
#include <map>

#include "core/status.h"
#include "topo/cluster_view.h"
#include "tuner/model_internal.h"

namespace trellis::tuner::model {

namespace {

using algos::Hierarchy;

topo::ClusterView viewOf(const Shape& s) {
  topo::ClusterView v;
  const int n = s.nranks();
  v.nodes.resize(s.nodes());
  v.ranks.resize(n);
  for (int r = 0; r < n; ++r) {
    const int node = s.nodeOfRank[r];
    topo::RankPlace& p = v.ranks[r];
    p.node = node;
    p.localRank = static_cast<int>(v.nodes[node].ranks.size());
    p.rail = s.railOfRank[r];
    p.rails = {p.rail};
    v.nodes[node].ranks.push_back(r);
  }
  for (size_t i = 0; i < v.nodes.size(); ++i) {
    v.nodes[i].hostId = i + 1;
    v.nodes[i].topo.known = true;
    if (i < s.groupOfNode.size()) v.nodes[i].topo.leafGroup = formatString("g%06d", s.groupOfNode[i]);
  }
  return v;
}

// Just enough of an Exec for algos::makeHierarchy: the rank count and the cluster view.
class ViewExec final : public algos::Exec {
 public:
  explicit ViewExec(const topo::ClusterView& v) : v_(v) {}
  int rank() const override { return 0; }
  int nranks() const override { return v_.nranks(); }
  Status isend(int, const void*, size_t, algos::Request*) override { return internalError("model only"); }
  Status irecv(int, void*, size_t, algos::Request*) override { return internalError("model only"); }
  Status waitAll(algos::Request* const*, size_t) override { return internalError("model only"); }
  void* scratch(int, size_t) override { return nullptr; }
  size_t chunkBytes() const override { return 0; }
  const topo::ClusterView* cluster() const override { return &v_; }

 private:
  const topo::ClusterView& v_;
};

// Bytes of each slot's slice range on every node (slot j owns slices [sliceBegin(j), sliceBegin(j+1))).
std::vector<std::vector<double>> sliceSets(const Hierarchy& h, double S) {
  std::vector<std::vector<double>> sets(h.nnodes);
  for (int v = 0; v < h.nnodes; ++v)
    for (int j = 0; j < h.local(v); ++j) sets[v].push_back(S * (h.sliceBegin(v, j + 1) - h.sliceBegin(v, j)) / h.K);
  return sets;
}

// algos::ringReduceScatterSegs (reduce) / ringAllGatherSegs inside every node at once over the
// slots: at step s position p sends set p-s-1 (p-s for the all-gather) to p+1.
double intraRing(Ctx& c, const std::vector<std::vector<double>>& sets, bool reduce) {
  const Hierarchy& h = *c.h;
  int lmax = 0;
  for (int v = 0; v < h.nnodes; ++v) lmax = std::max(lmax, h.local(v));
  double sum = 0;
  const double ch = static_cast<double>(c.k.chunkBytes);
  for (int s = 0; s + 1 < lmax; ++s) {
    double maxBytes = 0;
    for (int v = 0; v < h.nnodes; ++v) {
      const int L = h.local(v);
      if (s + 1 >= L) continue;
      for (int p = 0; p < L; ++p) {
        const double b = sets[v][((p - s - (reduce ? 1 : 0)) % L + L) % L];
        const int to = h.slots[v][(p + 1) % L];
        maxBytes = std::max(maxBytes, b);
        c.e.flow(h.slots[v][p], to, b, reduce ? chunks(b, ch) : 1);
        if (reduce) c.e.reduce(to, b);
      }
    }
    sum += reduce ? pipelined(c.e.take(), ch / std::max(maxBytes, 1.0), 1, true) : take(c);
  }
  return sum;
}

// Runs of slices with the same owner group (one rank per node, in node order), with their bytes.
std::vector<Group> sliceRuns(const Hierarchy& h, double S, int rootNode) {
  std::vector<Group> runs;
  int rootPos = 0;
  for (size_t i = 0; i < h.nodeOrder.size(); ++i)
    if (h.nodeOrder[i] == rootNode) rootPos = static_cast<int>(i);
  for (int s = 0; s < h.K;) {
    std::vector<int> g = h.sliceGroup(s);
    int t = s + 1;
    while (t < h.K && h.sliceGroup(t) == g) ++t;
    runs.push_back(Group{std::move(g), S * (t - s) / h.K, rootPos});
    s = t;
  }
  return runs;
}

// For each node, how many remote ranks each local rank is the proxy for.
std::vector<int> proxyLoad(const Hierarchy& h, int n) {
  std::vector<int> load(n, 0);
  for (int v = 0; v < h.nnodes; ++v)
    for (int d = 0; d < n; ++d)
      if (h.nodeOf[d] != v) ++load[h.proxy(v, d)];
  return load;
}

}  // namespace

Hierarchy hierarchyOf(const Shape& s) {
  topo::ClusterView v = viewOf(s);
  ViewExec e(v);
  return algos::makeHierarchy(e);
}

std::vector<int> topoRingOrder(const Shape& s) { return viewOf(s).ringOrder(); }

// ---------------------------------------------------------------- AllReduce

bool allreduceHier(Ctx& c, double* t, std::string*) {
  // algos/allreduce/hier.cc: among the owners of a slice run, recursive doubling up to 64 KiB,
  // Rabenseifner up to 1 MiB (more than 2 owners), the ring above.
  constexpr double kInnerRdMax = 64 * 1024, kInnerRabMax = 1 << 20;
  const Hierarchy& h = *c.h;
  const auto sets = sliceSets(h, c.S);
  double sum = intraRing(c, sets, true);
  if (h.nnodes > 1) {
    std::vector<Group> ring, rd, rab;
    for (Group& g : sliceRuns(h, c.S, 0)) {
      if (g.m.size() < 2 || g.bytes <= 0) continue;
      if (g.bytes <= kInnerRdMax) rd.push_back(std::move(g));
      else if (g.bytes <= kInnerRabMax && g.m.size() > 2) rab.push_back(std::move(g));
      else ring.push_back(std::move(g));
    }
    if (!ring.empty()) sum += ringAllreduce(c, ring);
    if (!rab.empty()) sum += rabenseifnerAllreduce(c, rab);
    if (!rd.empty()) sum += rdAllreduce(c, rd);
  }
  *t = sum + intraRing(c, sets, false);
  return true;
}

bool allreduceTopoRing(Ctx& c, double* t, std::string*) {
  *t = ringAllreduce(c, {Group{*c.topo, c.S, 0}});
  return true;
}

// ---------------------------------------------------------------- ReduceScatter / AllGather

bool reducescatterHier(Ctx& c, double* t, std::string*) {
  const Hierarchy& h = *c.h;
  const double blk = c.S / c.n;
  std::vector<std::vector<double>> sets(h.nnodes);
  for (int v = 0; v < h.nnodes; ++v) {
    sets[v].assign(h.local(v), 0);
    for (int d = 0; d < c.n; ++d) sets[v][h.slotOf[h.proxy(v, d)]] += blk;
  }
  double sum = intraRing(c, sets, true);
  if (h.nnodes == 1) {
    for (int r = 0; r < c.n; ++r) c.e.copy(r, blk);
    *t = sum + take(c);
    return true;
  }
  for (int v = 0; v < h.nnodes; ++v)
    for (int d = 0; d < c.n; ++d)
      if (h.nodeOf[d] != v) {
        c.e.flow(h.proxy(v, d), d, blk, chunks(blk, c.k.chunkBytes));
        c.e.reduce(d, blk);
      }
  *t = sum + pipelined(c.e.take(), c.k.chunkBytes / std::max(blk, 1.0), 1, true);
  return true;
}

bool reducescatterTopoRing(Ctx& c, double* t, std::string*) {
  *t = ringReducescatter(c, {Group{*c.topo, c.S, 0}});
  return true;
}

bool allgatherHier(Ctx& c, double* t, std::string*) {
  const Hierarchy& h = *c.h;
  const double blk = c.S / c.n;
  double sum = c.k.inPlace ? 0 : copyAll(c, blk);
  for (int r = 0; r < c.n; ++r)
    for (int v = 0; v < h.nnodes; ++v)
      if (v != h.nodeOf[r]) c.e.flow(r, h.proxy(v, r), blk, 1);
  sum += take(c);
  std::vector<std::vector<double>> sets(h.nnodes);
  for (int v = 0; v < h.nnodes; ++v) {
    sets[v].assign(h.local(v), 0);
    for (int d = 0; d < c.n; ++d) sets[v][h.slotOf[h.proxy(v, d)]] += blk;
  }
  *t = sum + intraRing(c, sets, false);
  return true;
}

bool allgatherTopoRing(Ctx& c, double* t, std::string*) {
  *t = (c.k.inPlace ? 0 : copyAll(c, c.S / c.n)) + ringAllgather(c, {Group{*c.topo, c.S, 0}});
  return true;
}

// ---------------------------------------------------------------- Broadcast / Reduce (root 0)

bool broadcastHier(Ctx& c, double* t, std::string*) {
  constexpr double kInnerTreeMax = 512 * 1024;  // algos/broadcast/hier.cc kInnerTreeMaxBytes
  const Hierarchy& h = *c.h;
  const int rootNode = h.nodeOf[0];
  const auto sets = sliceSets(h, c.S);
  double sum = c.k.inPlace ? 0 : (c.e.copy(0, c.S), take(c));
  if (h.local(rootNode) > 1) {
    for (int j = 0; j < h.local(rootNode); ++j)
      if (h.slots[rootNode][j] != 0) c.e.flow(0, h.slots[rootNode][j], sets[rootNode][j], 1);
    sum += take(c);
  }
  if (h.nnodes > 1) {
    std::vector<Group> tree, sag;
    for (Group& g : sliceRuns(h, c.S, rootNode))
      if (g.m.size() >= 2 && g.bytes > 0) (g.m.size() <= 3 || g.bytes <= kInnerTreeMax ? tree : sag).push_back(std::move(g));
    if (!tree.empty()) sum += binomialBroadcast(c, tree);
    if (!sag.empty()) sum += scatterAllgatherBroadcast(c, sag);
  }
  *t = sum + intraRing(c, sets, false);
  return true;
}

bool reduceHier(Ctx& c, double* t, std::string*) {
  const Hierarchy& h = *c.h;
  const int rootNode = h.nodeOf[0];
  const auto sets = sliceSets(h, c.S);
  double sum = intraRing(c, sets, true);
  if (h.nnodes > 1) {
    std::vector<Group> runs;
    for (Group& g : sliceRuns(h, c.S, rootNode))
      if (g.m.size() >= 2 && g.bytes > 0) runs.push_back(std::move(g));
    if (!runs.empty()) sum += binomialReduce(c, runs);
  }
  if (h.local(rootNode) > 1) {
    for (int j = 0; j < h.local(rootNode); ++j)
      if (h.slots[rootNode][j] != 0) c.e.flow(h.slots[rootNode][j], 0, sets[rootNode][j], 1);
    sum += take(c);
  }
  *t = sum;
  return true;
}

// ---------------------------------------------------------------- AlltoAll

bool alltoallRail(Ctx& c, double* t, std::string*) {
  const Hierarchy& h = *c.h;
  const double blk = c.S / c.n;
  double sum = copyAll(c, blk);
  const std::vector<int> load = proxyLoad(h, c.n);
  // Inside nodes: each local pair its own block plus what the receiver forwards.
  for (int v = 0; v < h.nnodes; ++v)
    for (int me : h.slots[v])
      for (int q : h.slots[v])
        if (q != me) c.e.flow(me, q, blk * (1 + load[q]), 1 + load[q]);
  sum += take(c);
  // Across nodes, rail to rail: each proxy sends every destination it serves its node's blocks.
  for (int v = 0; v < h.nnodes; ++v)
    for (int d = 0; d < c.n; ++d)
      if (h.nodeOf[d] != v) c.e.flow(h.proxy(v, d), d, blk * h.local(v), h.local(v));
  *t = sum + take(c);
  return true;
}

}  // namespace trellis::tuner::model
