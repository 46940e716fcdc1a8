// Bandwidth of the CUDA reduction kernels against a device-to-device copy measured in the same run on
// the same GPU (issue 9's target: a reduction reaches at least 85% of the copy's bytes per second).
// Bytes counted: a copy reads and writes each byte (2 x size); a k-input reduction reads k inputs and
// writes one output ((k + 1) x size). Each figure is the median of 7 batches of 10 back-to-back
// launches, timed on the host around a stream synchronisation.
// Usage: gpu_reduce_bw [MiB per buffer, default 256]. Exit 77 without a CUDA device.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <vector>

#include "algos/kernels/reduce.h"
#include "cuda/reduce_launch.h"
#include "gpu_env.h"

using namespace trellis;
using namespace trellis::cuda::testing;

namespace {

double medianSeconds(CUstream s, const std::function<void()>& launch) {
  launch();
  drv().cuStreamSynchronize(s);
  std::vector<double> t;
  for (int b = 0; b < 7; ++b) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; ++i) launch();
    drv().cuStreamSynchronize(s);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 10);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::string why = noDeviceReason();
  if (!why.empty()) {
    std::printf("skipped: no CUDA device (%s)\n", why.c_str());
    return kSkipExit;
  }
  if (std::string e = useDevice(0); !e.empty()) {
    std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  const size_t bytes = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 256) << 20;
  char name[128] = "?";
  CUdevice dev = 0;
  drv().cuDeviceGet(&dev, 0);
  drv().cuDeviceGetName(name, sizeof name, dev);
  CUstream s = nullptr;
  drv().cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
  std::vector<std::unique_ptr<DeviceBuffer>> in;
  for (int j = 0; j < 8; ++j) {
    in.push_back(std::make_unique<DeviceBuffer>(bytes));
    drv().cuMemsetD8Async(reinterpret_cast<CUdeviceptr>(in[j]->ptr()), static_cast<unsigned char>(j + 1), bytes, s);
  }
  DeviceBuffer out(bytes);
  const double copy = medianSeconds(s, [&] {
    drv().cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(out.ptr()), reinterpret_cast<CUdeviceptr>(in[0]->ptr()), bytes, s);
  });
  const double copyBw = 2.0 * bytes / copy / 1e9;
  std::printf("# %s, %zu MiB per buffer\n# copy (cuMemcpyDtoDAsync): %.1f GB/s\n", name, bytes >> 20, copyBw);
  std::printf("# %-9s %-5s %2s %12s %10s\n", "dtype", "op", "k", "GB/s", "vs_copy");
  int below = 0;
  for (trellisDataType_t dt : {trellisFloat32, trellisBfloat16, trellisFloat16, trellisFloat64, trellisInt8})
    for (int k : {2, 4, 8}) {
      cuda::DeviceReduce r;
      r.dst = out.ptr();
      for (int j = 0; j < k; ++j) r.srcs[j] = in[j]->ptr();
      r.k = k;
      r.count = bytes / algos::dtypeSize(dt);
      r.dtype = dt;
      r.op = trellisSum;
      Status st = cuda::launchReduce(r, s);
      if (!st.isOk()) {
        std::fprintf(stderr, "launchReduce: %s\n", st.message().c_str());
        return 1;
      }
      const double t = medianSeconds(s, [&] { (void)cuda::launchReduce(r, s); });
      const double bw = (k + 1.0) * bytes / t / 1e9;
      below += bw < 0.85 * copyBw;
      std::printf("  %-9s %-5s %2d %12.1f %9.0f%%\n", algos::dtypeName(dt), "sum", k, bw, 100 * bw / copyBw);
    }
  std::printf("# %d configuration(s) below 85%% of the copy\n", below);
  drv().cuStreamDestroy(s);
  return 0;
}
