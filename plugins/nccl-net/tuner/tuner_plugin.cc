// ncclTunerPlugin_v5 (NCCL 2.28 .. 2.29) and ncclTunerPlugin_v4 (NCCL 2.24 .. 2.27), exported
// from the net plugin library: NCCL looks for the tuner symbol there when no tuner library is set.
// getCollInfo re-prices the cost-table entries NCCL left enabled with tuner/tuner_model.h, so NCCL
// (which takes the cheapest entry) picks what the model predicts fastest. TRELLIS_NCCL_TUNER=0
// leaves NCCL's table untouched.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "abi/nccl_abi.h"
#include "core/params.h"
#include "core/plugin_log.h"
#include "core/topo_view.h"
#include "tuner/tuner_model.h"

namespace trellis::ncclnet::tuner {
namespace {

using namespace nccl_abi;
using nccl_abi::Result;

Param<bool> kTunerOn(
    "TRELLIS_NCCL_TUNER", true,
    "re-price NCCL's algorithm/protocol cost table with the Trellis model (0: leave NCCL's)");

constexpr uint32_t kCtxMagic = 0x5452544eu;  // "TRTN"

struct TunerCtx {
  uint32_t magic = kCtxMagic;
  bool enabled = true;
  int nRanks = 1, nNodes = 1;
  std::unique_ptr<CommModel> model;
};

Result makeCtx(void** ctx, uint64_t commId, size_t nRanks, size_t nNodes, Logger log,
               const NvlDomainInfoV5* nvl, int version) {
  setNcclLogger(log);
  if (ctx == nullptr) {
    NCCLNET_WARN(kFlagTuning, "tuner init: null context output");
    return kInvalidArgument;
  }
  *ctx = nullptr;
  if (nRanks < 1 || nNodes < 1 || nNodes > nRanks) {
    NCCLNET_WARN(kFlagTuning, "tuner init: %zu ranks on %zu nodes is not a communicator shape",
                 nRanks, nNodes);
    return kInvalidArgument;
  }
  auto* c = new TunerCtx;
  c->enabled = kTunerOn.get();
  c->nRanks = static_cast<int>(nRanks);
  c->nNodes = static_cast<int>(nNodes);
  // Nodes of one multi-node NVLink domain reach each other over NVLink, not the network.
  if (nvl != nullptr && nvl->nNvlDomains > 0 && nvl->nNvlDomains < c->nNodes)
    c->nNodes = nvl->nNvlDomains;
  if (c->enabled)
    c->model = std::make_unique<CommModel>(TopoView::get().system(), c->nRanks, c->nNodes);
  *ctx = c;
  if (!c->enabled)
    NCCLNET_INFO(kFlagInit | kFlagTuning,
                 "tuner (v%d) off for communicator 0x%llx: TRELLIS_NCCL_TUNER=0", version,
                 static_cast<unsigned long long>(commId));
  else
    NCCLNET_INFO(
        kFlagInit | kFlagTuning,
        "tuner (v%d) for communicator 0x%llx: %zu ranks, %zu nodes (%d network domains): %s",
        version, static_cast<unsigned long long>(commId), nRanks, nNodes, c->nNodes,
        c->model->describe().c_str());
  return kSuccess;
}

Result getCollInfo(void* context, Func coll, size_t nBytes, int numPipeOps, float** collCostTable,
                   int numAlgo, int numProto, int regBuff, int* nChannels) {
  (void)numPipeOps;
  (void)regBuff;
  (void)nChannels;  // NCCL keeps its channel count
  auto* c = static_cast<TunerCtx*>(context);
  if (c == nullptr || c->magic != kCtxMagic) {
    NCCLNET_WARN(kFlagTuning, "getCollInfo: %p is not a context of this tuner", context);
    return kInvalidArgument;
  }
  if (!c->enabled) return kSuccess;
  if (collCostTable == nullptr || numAlgo < 0 || numProto < 0) {
    NCCLNET_WARN(kFlagTuning, "getCollInfo: cost table %p of %d x %d",
                 static_cast<void*>(collCostTable), numAlgo, numProto);
    return kInvalidArgument;
  }
  // NCCL passes its float[numAlgo][numProto] as float**: the memory is the rows back to back.
  float* table = reinterpret_cast<float*>(collCostTable);
  int best = -1;
  float bestUs = 0;
  for (int a = 0; a < std::min(numAlgo, static_cast<int>(kNumAlgorithms)); ++a)
    for (int p = 0; p < std::min(numProto, static_cast<int>(kNumProtocols)); ++p) {
      float& cell = table[a * numProto + p];
      if (cell < 0) continue;  // NCCL disabled it (NCCL_ALGO_PROTO_IGNORE)
      double us = c->model->predictUs(coll, nBytes, static_cast<Algo>(a), static_cast<Proto>(p));
      if (us >= 0) cell = static_cast<float>(us);
      if (best < 0 || cell < bestUs) {
        best = a * numProto + p;
        bestUs = cell;
      }
    }
  if (best >= 0 && pluginLogWanted(kLogTrace))
    NCCLNET_TRACE(kFlagTuning, "coll %d, %zu bytes, %d ranks / %d nodes: %s/%s at %.1f us",
                  static_cast<int>(coll), nBytes, c->nRanks, c->nNodes, algoName(best / numProto),
                  protoName(best % numProto), bestUs);
  return kSuccess;
}

Result finalize(void* context) {
  auto* c = static_cast<TunerCtx*>(context);
  if (c == nullptr) return kSuccess;
  if (c->magic != kCtxMagic) {
    NCCLNET_WARN(kFlagTuning, "tuner finalize: %p is not a context of this tuner", context);
    return kInvalidArgument;
  }
  c->magic = 0;
  delete c;
  return kSuccess;
}

Result initV5(void** ctx, uint64_t commId, size_t nRanks, size_t nNodes, Logger log,
              NvlDomainInfoV5* nvl,
              TunerConstantsV5* /*constants: NCCL's own model constants stay as they are*/) {
  return makeCtx(ctx, commId, nRanks, nNodes, log, nvl, 5);
}

Result initV4(size_t nRanks, size_t nNodes, Logger log, void** ctx) {
  return makeCtx(ctx, 0, nRanks, nNodes, log, nullptr, 4);
}

}  // namespace
}  // namespace trellis::ncclnet::tuner

namespace t = trellis::ncclnet::tuner;

extern "C" {

__attribute__((visibility("default"))) trellis::nccl_abi::TunerV5 ncclTunerPlugin_v5 = {
    .name = "Trellis",
    .init = t::initV5,
    .getCollInfo = t::getCollInfo,
    .finalize = t::finalize,
};

__attribute__((visibility("default"))) trellis::nccl_abi::TunerV4 ncclTunerPlugin_v4 = {
    .name = "Trellis",
    .init = t::initV4,
    .getCollInfo = t::getCollInfo,
    .destroy = t::finalize,
};

}  // extern "C"
