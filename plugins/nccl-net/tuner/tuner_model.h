// The cost model behind ncclTunerPlugin_v4/v5: for one NCCL communicator (ranks, network nodes, the
// node the Trellis topology describes) the predicted time of each NCCL algorithm x protocol.
//
// - Ring (AllReduce, AllGather, ReduceScatter) and Tree (AllReduce) come from the Trellis cost
// model
//   (src/tuner/cost_model.h): Trellis' "ring" and "hier" algorithms on a GPU cluster shape (NVLink
//   inside a node, the node's NICs as rails, RDMA or TCP between nodes), with their steps, flows
//   and NIC contention. NCCL's Ring runs a channel per NIC: across nodes it is modelled as `rails`
//   Trellis rings of 1/rails of the bytes each. NCCL's Tree (a chain in each node, a tree across
//   nodes) is modelled by Trellis' hier (reduce-scatter in the node, the slices reduced across
//   nodes on every rank's NIC, all-gather back); on one node hier is Trellis' ring. NCCL's
//   protocols are applied on top: a base cost, a per-step latency factor and a bandwidth
//   efficiency (see kProto* in tuner_model.cc).
// - NCCL's algorithms Trellis has no counterpart for (NVLS, NVLS-tree, PAT, and the pipelined chain
//   NCCL uses as Broadcast/Reduce "ring") use a small alpha-beta stand-in fed with the same
//   bandwidths and latencies, so that all entries of one table share their constants.
// The model never enables what NCCL disabled: the plugin only re-prices entries NCCL left >= 0,
// and it has no opinion on CollNet (those keep NCCL's own times).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "abi/nccl_abi.h"
#include "topo/model.h"

namespace trellis::tuner {
class CostModel;
}

namespace trellis::ncclnet::tuner {

/// The bandwidths and latencies every entry of a communicator's table uses.
struct Facts {
  int gpus = 0;         ///< GPUs in the node's topology (0: unknown)
  int rails = 1;        ///< compute NICs per node
  bool nvlink = false;  ///< every GPU pair over NVLink/NVSwitch
  bool nvswitch = false;
  bool rdma = false;      ///< the NICs are RDMA ports (else TCP between nodes)
  double intraGBps = 0;   ///< per GPU to its peers, per direction
  double intraLatUs = 0;  ///< one intra-node step
  double netGBps = 0;     ///< the node's compute NICs together, per direction
  double netLatUs = 0;    ///< one inter-node step
};

class CommModel {
 public:
  /// nRanks ranks over nNodes network nodes, each like `node`.
  CommModel(const topo::System& node, int nRanks, int nNodes);
  ~CommModel();
  CommModel(const CommModel&) = delete;
  CommModel& operator=(const CommModel&) = delete;

  /// Predicted time (us) of `coll` on nBytes (NCCL's size: AllGather/ReduceScatter count every
  /// rank's block) with `algo` and `proto`; < 0 when the model has no opinion.
  double predictUs(nccl_abi::Func coll, size_t nBytes, nccl_abi::Algo algo,
                   nccl_abi::Proto proto) const;
  /// Which model priced (coll, algo): "trellis:ring", "trellis:hier", "stand-in", "" (none).
  std::string source(nccl_abi::Func coll, nccl_abi::Algo algo) const;
  const Facts& facts() const { return f_; }
  /// "8 ranks on 1 node(s), 8 GPU(s), intra 450 GB/s 2.0 us (NVSwitch), net 400 GB/s 3.0 us (RDMA,
  /// 8 rails)".
  const std::string& describe() const { return describe_; }

 private:
  double standIn(nccl_abi::Func coll, double bytes, nccl_abi::Algo algo,
                 nccl_abi::Proto proto) const;
  double trellis(nccl_abi::Func coll, double bytes, const char* algo, nccl_abi::Proto proto) const;

  int n_, nodes_;
  Facts f_;
  std::unique_ptr<trellis::tuner::CostModel> cm_;
  std::string describe_;
};

const char* algoName(int algo);
const char* protoName(int proto);

}  // namespace trellis::ncclnet::tuner
