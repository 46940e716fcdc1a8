// The cost model behind ncclTunerPlugin_v4/v5: a small alpha-beta model of NCCL's algorithms
// (ring, tree, PAT, NVLS, NVLS-tree) x protocols (LL, LL128, Simple) over the node the Trellis
// topology describes and NCCL's rank/node counts. It stands in for the Trellis tuner's cost model
// (src/tuner), which does not model NCCL's GPU algorithms yet; docs/NCCL_PLUGIN.md lists every
// constant and formula. The model never enables what NCCL disabled: it only re-prices entries
// NCCL left >= 0, and it has no opinion on CollNet (those entries keep NCCL's own times).
#pragma once

#include <cstddef>
#include <string>

#include "abi/nccl_abi.h"
#include "topo/model.h"

namespace trellis::ncclnet::tuner {

/// What the model needs to know about one node.
struct NodeFacts {
  int gpus = 0;             ///< GPUs in the topology (0: unknown)
  double intraGBps = 24;    ///< per-GPU bandwidth to the other GPUs of the node, per direction
  double intraLatUs = 1.5;  ///< one intra-node step
  bool nvlink = false;
  bool nvswitch = false;
  double netGBps = 12.5;  ///< the node's compute NICs together, per direction
  double netLatUs = 5.0;  ///< one inter-node step
  std::string describe;   ///< for the init log line
};

/// Reads the node from a topology (GPUs, NVLink/NVSwitch, compute NICs and their link layer).
NodeFacts nodeFactsFrom(const topo::System& s);

/// Predicted time (us) of `coll` on nBytes with algorithm `algo` and protocol `proto` on nRanks
/// ranks over nNodes nodes; < 0 when the model has no opinion (CollNet, unknown collective, an
/// algorithm that cannot run the collective).
double predictUs(const NodeFacts& node, int nRanks, int nNodes, nccl_abi::Func coll, size_t nBytes,
                 nccl_abi::Algo algo, nccl_abi::Proto proto);

const char* algoName(int algo);
const char* protoName(int proto);

}  // namespace trellis::ncclnet::tuner
