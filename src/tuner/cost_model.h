// tuner::CostModel: predicted time of one collective call per (collective, algorithm, bytes,
// ranks, topology shape).
//
// How: each algorithm is written down as the steps it really runs (model_algos.cc), each step as
// the flows it puts on the wire (src rank, dst rank, bytes, messages) plus the bytes each rank
// copies and reduces. A step's time is
//     latency of its slowest path + max over resources (load / capacity) [+ pipeline fill]
// where the resources are each rank's CPU, each node's cores and memory bus, each rank's
// intra-node port (NVLink), each NIC (per direction) and each leaf switch's uplinks and
// downlinks (per direction, capacity = downlink bandwidth / oversubscription). Flows that share a
// resource share its capacity: contention is where several flows cross one NIC, one leaf uplink,
// or the spine. Steps run one after another; a pipelined step (chunked) overlaps its transfers
// with its reductions and pays a fill of one chunk per hop.
//
// Sizes are nccl-tests sizes: AllReduce, Broadcast, Reduce: the buffer; AllGather: the whole
// output (n blocks); ReduceScatter: the whole input; AlltoAll: the whole send buffer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "algos/coll.h"
#include "tuner/shape.h"

namespace trellis::tuner {

/// The knobs an algorithm runs with.
struct Knobs {
  size_t chunkBytes = 256 * 1024;  ///< pipeline chunk (algorithms that chunk)
  int channels = 1;                ///< parallel streams per flow (algorithms that support them)
  bool inPlace = false;
};

/// What the model says about one (collective, algorithm, size, knobs).
struct Prediction {
  bool supported = false;
  double seconds = 0;
  std::string why;  ///< why not supported
};

/// Static facts about an algorithm's model.
struct AlgoTraits {
  bool modelled = false;    ///< a cost function exists
  bool usesChunk = false;   ///< its time depends on the chunk size
  int maxChannels = 1;      ///< channels it can run (1: none)
  bool needsDirect = false;
  bool topologyAware = false;  ///< uses the cluster view (hier, topo_ring, rail); not for a blind communicator
};
AlgoTraits algoTraits(algos::Coll coll, std::string_view algo);

/// Algorithms the model knows that the registry does not have (yet): `run` is null. Only
/// `trellis-topo tune --planned` considers them.
const std::vector<algos::Algorithm>& plannedAlgorithms();

/// nccl-tests bus-bandwidth factor (busbw = size / time * factor).
double busFactor(algos::Coll coll, int nranks);

/// Not thread-safe: predict() works in scratch state (tuner::Tuner serialises its calls).
class CostModel {
 public:
  explicit CostModel(Shape shape);
  ~CostModel();
  CostModel(CostModel&&) noexcept;
  CostModel& operator=(CostModel&&) noexcept;

  const Shape& shape() const;
  /// Predicted seconds of one call of `bytes` (nccl-tests size).
  Prediction predict(algos::Coll coll, std::string_view algo, double bytes, const Knobs& knobs = {}) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace trellis::tuner
