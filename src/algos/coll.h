// Collective descriptions and the algorithm registry: one folder per collective, one file per
// algorithm; each algorithm registers {collective, name, description, run}.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "algos/exec.h"
#include "trellis/trellis.h"

namespace trellis::algos {

enum class Coll : int {
  kAllReduce = 0,
  kBroadcast,
  kReduce,
  kAllGather,
  kReduceScatter,
  kAlltoAll,
  kAlltoAllv,
  kCount
};
const char* collName(Coll c);
/// Parses "allreduce", "broadcast", ... (case-insensitive).
bool parseColl(std::string_view name, Coll* out);

/// Arguments of one collective call, as the C API received them (counts in elements).
struct CollArgs {
  Coll coll = Coll::kAllReduce;
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;  // AllReduce/Broadcast/Reduce: count; AllGather: sendcount;
                     // ReduceScatter: recvcount; AlltoAll: per peer
  trellisDataType_t dtype = trellisFloat32;
  trellisRedOp_t op = trellisSum;
  int root = 0;
  const size_t* sendcounts = nullptr;  // AlltoAllv
  const size_t* sdispls = nullptr;
  const size_t* recvcounts = nullptr;
  const size_t* rdispls = nullptr;
  /// Bytes a rank contributes, for algorithm selection.
  size_t bytes() const;
};

using AlgoFn = Status (*)(Exec& exec, const CollArgs& args);

struct Algorithm {
  Coll coll;
  const char* name;
  const char* description;
  AlgoFn run;
  bool needsDirect = false;  // reads peers' memory: only when Exec::canReadAllPeers()
};

/// Every algorithm, grouped by collective.
const std::vector<Algorithm>& allAlgorithms();
const Algorithm* findAlgorithm(Coll coll, std::string_view name);

/// Runs `algo` and applies what every algorithm shares (Avg's final division).
Status runAlgorithm(Exec& exec, const Algorithm& algo, const CollArgs& args);

}  // namespace trellis::algos
