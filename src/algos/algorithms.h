// Every algorithm's entry point (one file each under src/algos/<collective>/).
#pragma once

#include "algos/coll.h"

namespace trellis::algos {

Status allreduceRing(Exec& exec, const CollArgs& args);
Status allreduceRecursiveDoubling(Exec& exec, const CollArgs& args);
Status allreduceOneShot(Exec& exec, const CollArgs& args);
Status allreduceRabenseifner(Exec& exec, const CollArgs& args);
Status broadcastBinomial(Exec& exec, const CollArgs& args);
Status broadcastOneShot(Exec& exec, const CollArgs& args);
Status broadcastScatterAllgather(Exec& exec, const CollArgs& args);
Status reduceBinomial(Exec& exec, const CollArgs& args);
Status reduceDirect(Exec& exec, const CollArgs& args);
Status allgatherRing(Exec& exec, const CollArgs& args);
Status allgatherBruck(Exec& exec, const CollArgs& args);
Status allgatherOneShot(Exec& exec, const CollArgs& args);
Status reducescatterRing(Exec& exec, const CollArgs& args);
Status reducescatterRd(Exec& exec, const CollArgs& args);
Status reducescatterOneShot(Exec& exec, const CollArgs& args);
Status alltoallPairwise(Exec& exec, const CollArgs& args);
Status alltoallvPairwise(Exec& exec, const CollArgs& args);
Status allreduceDirect(Exec& exec, const CollArgs& args);
Status reducescatterDirect(Exec& exec, const CollArgs& args);
Status allgatherDirect(Exec& exec, const CollArgs& args);
Status alltoallDirect(Exec& exec, const CollArgs& args);
Status broadcastDirect(Exec& exec, const CollArgs& args);
// Topology-aware: they read exec.cluster() (without one, every rank is its own node).
Status allreduceHier(Exec& exec, const CollArgs& args);
Status allreduceTopoRing(Exec& exec, const CollArgs& args);
Status reducescatterHier(Exec& exec, const CollArgs& args);
Status reducescatterTopoRing(Exec& exec, const CollArgs& args);
Status allgatherHier(Exec& exec, const CollArgs& args);
Status allgatherTopoRing(Exec& exec, const CollArgs& args);
Status broadcastHier(Exec& exec, const CollArgs& args);
Status reduceHier(Exec& exec, const CollArgs& args);
Status alltoallRail(Exec& exec, const CollArgs& args);

}  // namespace trellis::algos
