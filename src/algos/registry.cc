#include <strings.h>

#include <cstring>

#include "algos/algorithms.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

const char* collName(Coll c) {
  switch (c) {
    case Coll::kAllReduce: return "allreduce";
    case Coll::kBroadcast: return "broadcast";
    case Coll::kReduce: return "reduce";
    case Coll::kAllGather: return "allgather";
    case Coll::kReduceScatter: return "reducescatter";
    case Coll::kAlltoAll: return "alltoall";
    case Coll::kAlltoAllv: return "alltoallv";
    case Coll::kCount: break;
  }
  return "?";
}

bool parseColl(std::string_view name, Coll* out) {
  for (int i = 0; i < static_cast<int>(Coll::kCount); ++i) {
    const char* n = collName(static_cast<Coll>(i));
    if (name.size() == std::strlen(n) && strncasecmp(name.data(), n, name.size()) == 0) {
      *out = static_cast<Coll>(i);
      return true;
    }
  }
  return false;
}

size_t CollArgs::bytes() const { return count * dtypeSize(dtype); }

const std::vector<Algorithm>& allAlgorithms() {
  static const std::vector<Algorithm> kAll = {
      {Coll::kAllReduce, "ring", "reduce-scatter + all-gather around a ring, chunked and pipelined; "
                                 "2(n-1)/n of the data per rank on the wire; best for large messages",
       allreduceRing},
      {Coll::kAllReduce, "rd", "recursive doubling: log2(n) full-size exchanges; best latency for "
                               "small messages", allreduceRecursiveDoubling},
      {Coll::kAllReduce, "oneshot", "every rank sends its input to every other at once and reduces all n "
                                    "in rank order: one step; small messages when steps are costly",
       allreduceOneShot},
      {Coll::kAllReduce, "rabenseifner", "recursive halving reduce-scatter + doubling all-gather; "
                                         "2 log2(n) steps, ring's bandwidth; medium messages",
       allreduceRabenseifner},
      {Coll::kBroadcast, "binomial", "binomial tree, chunked and pipelined; log2(n) hops",
       broadcastBinomial},
      {Coll::kBroadcast, "scatter_allgather", "binomial scatter then ring all-gather (van de Geijn); "
                                              "~2x the bandwidth of a tree for large messages",
       broadcastScatterAllgather},
      {Coll::kBroadcast, "oneshot", "the root sends to every rank at once, nobody forwards: one hop; "
                                    "small messages on one host", broadcastOneShot},
      {Coll::kReduce, "binomial", "binomial tree reduction, chunked and pipelined", reduceBinomial},
      {Coll::kAllGather, "ring", "ring, n-1 steps straight into the output", allgatherRing},
      {Coll::kReduceScatter, "ring", "ring, n-1 steps with pipelined reductions", reducescatterRing},
      {Coll::kAllGather, "bruck", "Bruck: ceil(log2 n) steps of doubling size into scratch, then one local "
                                  "reordering copy; small messages on more than 2 ranks", allgatherBruck},
      {Coll::kReduceScatter, "rd", "recursive-doubling AllReduce of the whole input, each rank keeps its "
                                   "block: log2(n) steps; small messages on more than 2 ranks", reducescatterRd},
      {Coll::kAllGather, "oneshot", "every rank sends its block to every other at once: one step; small "
                                    "messages on one host", allgatherOneShot},
      {Coll::kReduceScatter, "oneshot", "every rank sends block q to rank q at once and reduces the n "
                                        "contributions in rank order: one step; small messages on one host",
       reducescatterOneShot},
      {Coll::kAlltoAll, "pairwise", "pairwise exchange with a window of concurrent peers",
       alltoallPairwise},
      {Coll::kAlltoAllv, "pairwise", "pairwise exchange with per-peer counts", alltoallvPairwise},
      {Coll::kAllReduce, "direct", "one host: each rank reduces its block reading every peer's input "
                                   "(single copy), then copies the others' blocks",
       allreduceDirect, true},
      {Coll::kReduceScatter, "direct", "one host: each rank reduces its block from every peer's input",
       reducescatterDirect, true},
      {Coll::kAllGather, "direct", "one host: each rank copies every peer's block directly", allgatherDirect, true},
      {Coll::kAlltoAll, "direct", "one host: each rank copies its block from every peer directly",
       alltoallDirect, true},
      {Coll::kBroadcast, "direct", "one host: every rank copies the root's buffer directly", broadcastDirect, true},
      {Coll::kReduce, "direct", "one host: each rank reduces its block reading every peer's input, "
                                "then the root copies the reduced blocks", reduceDirect, true},
      {Coll::kAllReduce, "hier", "topology-aware: node-local reduce-scatter, per-rail allreduce among the ranks "
                                 "owning the same slice, node-local all-gather; 1/L of the data per NIC",
       allreduceHier},
      {Coll::kAllReduce, "topo_ring", "ring in the cluster view's order: node-local hops in shared memory, "
                                      "inter-node hops on one rail", allreduceTopoRing},
      {Coll::kReduceScatter, "hier", "topology-aware: node-local reduce-scatter to each block's proxy on its "
                                     "rail, then one rail-to-rail exchange", reducescatterHier},
      {Coll::kReduceScatter, "topo_ring", "ring in the cluster view's order", reducescatterTopoRing},
      {Coll::kAllGather, "hier", "topology-aware: rail-to-rail exchange with each node's proxy, then a "
                                 "node-local all-gather", allgatherHier},
      {Coll::kAllGather, "topo_ring", "ring in the cluster view's order", allgatherTopoRing},
      {Coll::kBroadcast, "hier", "topology-aware: scatter in the root's node, per-rail broadcast of each "
                                 "slice, node-local all-gather", broadcastHier},
      {Coll::kReduce, "hier", "topology-aware: node-local reduce-scatter, per-rail reduce of each slice to "
                              "the root's node, gather to the root", reduceHier},
      {Coll::kAlltoAll, "rail", "rail-aligned (PXN-style): blocks move inside the node to the rank on the "
                                "destination's rail, then cross rail to rail", alltoallRail},
  };
  return kAll;
}

const Algorithm* findAlgorithm(Coll coll, std::string_view name) {
  for (const auto& a : allAlgorithms())
    if (a.coll == coll && name.size() == std::strlen(a.name) && strncasecmp(name.data(), a.name, name.size()) == 0)
      return &a;
  return nullptr;
}

Status runAlgorithm(Exec& exec, const Algorithm& algo, const CollArgs& args) {
  TRELLIS_TRY(algo.run(exec, args));
  if (args.op != trellisAvg || exec.nranks() == 1) return Status::ok();
  switch (args.coll) {
    case Coll::kAllReduce:
    case Coll::kReduceScatter:
      divideInPlace(args.recv, args.count, args.dtype, exec.nranks());
      break;
    case Coll::kReduce:
      if (exec.rank() == args.root) divideInPlace(args.recv, args.count, args.dtype, exec.nranks());
      break;
    default:
      break;
  }
  return Status::ok();
}

}  // namespace trellis::algos
