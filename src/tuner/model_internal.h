// Shared pieces of the algorithm models (model_algos.cc: the flat algorithms; model_hier.cc: the
// topology-aware ones). Internal to src/tuner.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "algos/hier.h"
#include "tuner/cost_model.h"
#include "tuner/model_engine.h"

namespace trellis::tuner::model {

/// What one prediction works with.
struct Ctx {
  const Shape& s;
  Engine& e;
  double S;  ///< nccl-tests size
  Knobs k;
  int n;
  const algos::Hierarchy* h;      ///< nodes, slots, proxies as the topology-aware algorithms see them
  const std::vector<int>* topo;  ///< the cluster view's ring order
};

/// Ranks that run one algorithm together (members in the algorithm's rank order) on `bytes`.
struct Group {
  std::vector<int> m;
  double bytes = 0;
  int root = 0;  ///< position of the root in m (rooted collectives)
};

inline double chunks(double bytes, double chunk) {
  return bytes <= 0 ? 1 : std::max(1.0, std::ceil(bytes / chunk));
}

/// A pipelined step: `depth` hops, each chunk `frac` of the bytes; the fill is paid per extra hop
/// and, when transfers overlap compute on a wire, once for the last chunk's reduction.
inline double pipelined(const StepTime& t, double frac, int depth, bool reduces) {
  frac = std::min(1.0, frac);
  double fill = (depth - 1) * (t.latency + t.busy * frac);
  if (reduces && t.wire) fill += t.busy * frac;
  return t.total() + fill;
}

inline double take(Ctx& c) { return c.e.take().total(); }

inline int ceilLog2(int n) {
  int d = 0;
  while ((1 << d) < n) ++d;
  return d;
}

/// Every rank sends a tiny message to every other (exchangeBuffers, barrier).
double allPairs(Ctx& c, double bytes);
/// Every rank copies `bytes` locally.
double copyAll(Ctx& c, double bytes);

// The flat algorithms over groups, all groups at once (the topology-aware ones run them among the
// ranks owning one slice). Each returns the time of its steps.
double ringAllreduce(Ctx& c, const std::vector<Group>& gs);
double rdAllreduce(Ctx& c, const std::vector<Group>& gs);
double rabenseifnerAllreduce(Ctx& c, const std::vector<Group>& gs);
double ringAllgather(Ctx& c, const std::vector<Group>& gs);      // bytes: the whole output
double ringReducescatter(Ctx& c, const std::vector<Group>& gs);  // bytes: the whole input
double binomialBroadcast(Ctx& c, const std::vector<Group>& gs);
double scatterAllgatherBroadcast(Ctx& c, const std::vector<Group>& gs);
double binomialReduce(Ctx& c, const std::vector<Group>& gs);

/// The topology-aware algorithms (model_hier.cc). False with `why` where they do not apply.
bool allreduceHier(Ctx& c, double* t, std::string* why);
bool allreduceTopoRing(Ctx& c, double* t, std::string* why);
bool reducescatterHier(Ctx& c, double* t, std::string* why);
bool reducescatterTopoRing(Ctx& c, double* t, std::string* why);
bool allgatherHier(Ctx& c, double* t, std::string* why);
bool allgatherTopoRing(Ctx& c, double* t, std::string* why);
bool broadcastHier(Ctx& c, double* t, std::string* why);
bool reduceHier(Ctx& c, double* t, std::string* why);
bool alltoallRail(Ctx& c, double* t, std::string* why);

/// The hierarchy (algos/hier.h) the topology-aware algorithms would build on this shape, through
/// the same code (algos::makeHierarchy over a cluster view made from the shape).
algos::Hierarchy hierarchyOf(const Shape& s);
/// The cluster view's ring order for this shape (topo::ClusterView::ringOrder).
std::vector<int> topoRingOrder(const Shape& s);

}  // namespace trellis::tuner::model
