// Algorithm selection. Today: size thresholds per collective (the topology-aware cost model is its
// own piece of work), overridable per collective with TRELLIS_ALGO=<collective>:<algo>,...
#pragma once

#include <array>
#include <string>

#include "algos/coll.h"
#include "topo/cluster_view.h"

namespace trellis::tuner {

/// Forced algorithm per collective (nullptr: automatic).
using AlgoOverrides = std::array<const algos::Algorithm*, static_cast<size_t>(algos::Coll::kCount)>;

/// Parses "allreduce:ring,broadcast:binomial". Errors name the offending token and list the
/// valid choices.
Result<AlgoOverrides> parseAlgoOverrides(const std::string& spec);

class Tuner {
 public:
  /// Reads TRELLIS_ALGO.
  static Result<Tuner> fromParams();
  /// Thresholds are read from the parameters once, here (not on every call).
  explicit Tuner(AlgoOverrides overrides);
  /// The algorithm for this call on `nranks` ranks; `direct` says whether every rank can read
  /// every other's memory (all on one host with single copy allowed); `cluster` is the
  /// communicator's cluster view (null: topology-blind).
  const algos::Algorithm* select(const algos::CollArgs& args, int nranks, bool direct = false,
                                 const topo::ClusterView* cluster = nullptr) const;

 private:
  AlgoOverrides overrides_{};
  size_t rdMax_, rabMax_, bcastTreeMax_, directMin_;
};

}  // namespace trellis::tuner
