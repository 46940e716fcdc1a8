// Algorithm selection: the cheapest algorithm + chunk size + channels by the cost model, among the
// algorithms registered for the collective that support the communicator's shape.
//   TRELLIS_ALGO=<collective>:<algo>,...  forces an algorithm per collective (always wins);
//   TRELLIS_TUNE=<UCC-style string>       forces / excludes / sets knobs per size range and team
//                                         size (tune_string.h, docs/TUNER.md);
//   otherwise the model decides. Decisions are cached per (collective, size bucket of a quarter
//   octave, in place, matching tune entries), so a call costs a hash lookup. Every decision is
//   logged under TRELLIS_DEBUG_SUBSYS=tuner (new ones at info, every call at debug).
// Every rank must make the same decision: the shape, the constants (calibration combines them
// across ranks) and the parameters must be equal on all ranks.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <map>
#include <utility>
#include <vector>

#include "algos/coll.h"
#include "tuner/cost_model.h"
#include "tuner/tune_string.h"

namespace trellis::tuner {

/// Forced algorithm per collective (nullptr: automatic).
using AlgoOverrides = std::array<const algos::Algorithm*, static_cast<size_t>(algos::Coll::kCount)>;

/// Parses "allreduce:ring,broadcast:binomial". Errors name the offending token and list the
/// valid choices.
Result<AlgoOverrides> parseAlgoOverrides(const std::string& spec);

/// What to run for one call.
struct Decision {
  const algos::Algorithm* algo = nullptr;
  size_t chunkBytes = 0;  ///< 0: the communicator's default
  int channels = 1;
  double predictedS = -1;  ///< the model's time at the bucket's size (< 0: not predicted)
  const algos::Algorithm* runnerUp = nullptr;
  size_t runnerUpChunk = 0;
  double runnerUpS = -1;
  const char* how = "model";  ///< "TRELLIS_ALGO", "TRELLIS_TUNE", "model", "fallback"
};

struct TunerOptions {
  AlgoOverrides overrides{};
  std::vector<TuneEntry> tune;
  size_t defaultChunk = 256 * 1024;  ///< TRELLIS_CHUNK_BYTES
  bool chunkFixed = false;           ///< TRELLIS_CHUNK_BYTES set by the user: not tuned
  bool includePlanned = false;       ///< also plannedAlgorithms() (the CLI only: they cannot run)
  bool flatOnly = false;             ///< only algorithms that ignore the topology (the CLI's blind baseline)
};

/// Chunk sizes the tuner tries for algorithms that chunk.
const std::vector<size_t>& chunkCandidates();

/// nccl-tests size of a call (see cost_model.h).
uint64_t ncclTestsSize(const algos::CollArgs& args, int nranks);

class Tuner {
 public:
  /// Reads TRELLIS_ALGO and TRELLIS_TUNE; `defaultChunk`/`chunkFixed` come from the communicator;
  /// `topologyAware` false (TRELLIS_TOPO_AWARE=0) leaves out the algorithms that use the cluster view.
  static Result<Tuner> fromParams(Shape shape, size_t defaultChunk, bool chunkFixed, bool topologyAware = true);
  Tuner(Shape shape, TunerOptions options);
  Tuner(Tuner&&) noexcept;
  ~Tuner();

  /// The decision for this call (cached). Thread-safe.
  Decision select(const algos::CollArgs& args);
  /// The decision for a collective of `bytes` (nccl-tests size), not cached, evaluated at exactly
  /// that size (the CLI).
  Decision decide(algos::Coll coll, uint64_t bytes, bool inPlace = false) const;

  /// One candidate's best knobs and predicted time (the CLI lists them all).
  struct Candidate {
    const algos::Algorithm* algo;
    size_t chunkBytes;
    int channels;
    Prediction prediction;
  };
  std::vector<Candidate> candidates(algos::Coll coll, uint64_t bytes, bool inPlace = false) const;

  const CostModel& model() const { return *model_; }
  const Shape& shape() const { return model_->shape(); }
  const TunerOptions& options() const { return opts_; }

 private:
  Decision decideAt(algos::Coll coll, double modelBytes, bool inPlace, uint64_t mask) const;
  Candidate best(const algos::Algorithm* a, double bytes, bool inPlace, size_t chunkSet, int channelsSet) const;
  bool feasible(const algos::Algorithm* a) const;
  std::vector<const algos::Algorithm*> algorithmsFor(algos::Coll coll) const;

  std::unique_ptr<CostModel> model_;
  TunerOptions opts_;
  mutable std::mutex mu_;
  std::map<std::pair<uint64_t, uint64_t>, Decision> cache_;  // (coll|inPlace|bucket, tune mask)
  // The calls that match no TRELLIS_TUNE entry (all of them without one) find their decision
  // here without the lock: a pointer per (collective, size bucket) into cache_ (whose nodes never
  // move), published once under the lock. Every call takes this path, so it is kept to a load.
  struct FastTable;
  std::unique_ptr<FastTable> fast_;
};

}  // namespace trellis::tuner
