// Launching the CUDA reduction kernels through the dlopen'ed driver: the embedded fatbin is loaded
// once per CUDA context (cuModuleLoadData), its 40 kernels looked up by name, and each reduction is
// one cuLaunchKernel on the caller's stream.
#include "cuda/reduce_launch.h"

#include <map>
#include <mutex>

#include "algos/kernels/reduce.h"
#include "core/log.h"
#include "cuda/driver.h"
#include "cuda/fatbin.h"

namespace trellis::cuda {

namespace {

struct ContextKernels {
  CUmodule module = nullptr;
  CUfunction fn[trellisNumTypes][kReduceKernelOps] = {};
  int sms = 1;
};

Result<const ContextKernels*> kernelsFor(const Driver& d, CUcontext ctx) {
  static std::mutex mu;
  static auto* cache = new std::map<CUcontext, ContextKernels>();  // modules live as long as their context
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(ctx);
  if (it != cache->end()) return &it->second;
  ContextKernels k;
  CUresult r = d.cuModuleLoadData(&k.module, embeddedFatbin());
  if (r != CUDA_SUCCESS)
    return cuError(d, r,
                   formatString("cuModuleLoadData(embedded kernels, %zu bytes; sm_80/sm_90 code and compute_90 PTX "
                                "built with CUDA %d.%d, driver %s is version %d.%d)",
                                embeddedFatbinBytes(), CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10,
                                d.library.c_str(), d.version / 1000, d.version % 1000 / 10));
  for (int t = 0; t < trellisNumTypes; ++t)
    for (int o = 0; o < kReduceKernelOps; ++o) {
      const std::string name = reduceKernelName(static_cast<trellisDataType_t>(t), static_cast<trellisRedOp_t>(o));
      r = d.cuModuleGetFunction(&k.fn[t][o], k.module, name.c_str());
      if (r != CUDA_SUCCESS) {
        d.cuModuleUnload(k.module);
        return cuError(d, r, "cuModuleGetFunction(" + name + ") in the embedded kernels");
      }
    }
  CUdevice dev = 0;
  r = d.cuCtxGetDevice(&dev);
  if (r == CUDA_SUCCESS) r = d.cuDeviceGetAttribute(&k.sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
  if (r != CUDA_SUCCESS) {
    d.cuModuleUnload(k.module);
    return cuError(d, r, "reading the multiprocessor count of the current device");
  }
  TRELLIS_INFO(kCuda, "reduction kernels loaded into context %p (%d SMs)", static_cast<void*>(ctx), k.sms);
  return &cache->emplace(ctx, k).first->second;
}

}  // namespace

Status launchReduce(const DeviceReduce& r, void* stream) {
  TRELLIS_TRY(checkReduce(r));
  if (r.count == 0) return Status::ok();
  TRELLIS_ASSIGN_OR_RETURN(const Driver* d, driver());
  if (!cudaInitialized(*d))
    return invalidUsage("device reduce: CUDA is not initialised in this process (no context, so no device memory)");
  CUstream s = static_cast<CUstream>(stream);
  CUcontext ctx = nullptr;
  CUresult rc = d->cuStreamGetCtx(s, &ctx);
  if (rc != CUDA_SUCCESS) return cuError(*d, rc, formatString("device reduce: cuStreamGetCtx(stream %p)", stream));
  ScopedContext scope(*d, ctx);
  TRELLIS_TRY(scope.status());
  TRELLIS_ASSIGN_OR_RETURN(const ContextKernels* k, kernelsFor(*d, ctx));
  ReduceParams p = {};
  p.dst = r.dst;
  bool vec16 = reinterpret_cast<uintptr_t>(r.dst) % 16 == 0;
  for (int j = 0; j < r.k; ++j) {
    p.src[j] = r.srcs[j];
    vec16 = vec16 && reinterpret_cast<uintptr_t>(r.srcs[j]) % 16 == 0;
  }
  p.n = r.count;
  p.k = r.k;
  p.divisor = r.divisor;
  p.vec16 = vec16 ? 1 : 0;
  const int op = r.op == trellisAvg ? static_cast<int>(trellisSum) : static_cast<int>(r.op);
  CUfunction fn = k->fn[static_cast<int>(r.dtype)][op];
  const unsigned blocks = reduceGridBlocks(r.count, r.dtype, vec16, k->sms);
  void* args[] = {&p};
  rc = d->cuLaunchKernel(fn, blocks, 1, 1, kReduceBlockThreads, 1, 1, 0, s, args, nullptr);
  if (rc != CUDA_SUCCESS)
    return cuError(*d, rc,
                   formatString("cuLaunchKernel(%s, %u blocks of %d threads, %zu elements, stream %p)",
                                reduceKernelName(r.dtype, r.op).c_str(), blocks, kReduceBlockThreads, r.count, stream));
  return Status::ok();
}

}  // namespace trellis::cuda
