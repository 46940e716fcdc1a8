// The CUDA support's checks that need no GPU (they run in every build, with or without a driver):
// the loader's errors, pointer placement without CUDA, the kernel launcher's argument checks, the
// embedded kernels (present, for every datatype and op, for sm_80 and sm_90 plus PTX), and the C
// API's answer to a stream given with host buffers.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "../support/harness.h"
#include "cuda/device.h"
#include "cuda/reduce_launch.h"
#include "trellis/trellis.h"
#ifdef TRELLIS_HAVE_CUDA
#include "cuda/driver.h"
#include "cuda/fatbin.h"
#endif

namespace trellis::cuda {
namespace {

const int kEnvInit = (setenv("TRELLIS_TIMEOUT_S", "30", 0), setenv("TRELLIS_BOOTSTRAP_TIMEOUT_S", "20", 0), 0);

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(CudaLoader, StatusSaysWhyNotOrIsUsable) {
  Status s = driverStatus();
  if (!builtWithCuda()) {
    EXPECT_FALSE(s.isOk());
    EXPECT_TRUE(contains(s.message(), "no CUDA support")) << s.message();
    return;
  }
  if (s.isOk()) {
    std::printf("a CUDA driver is loadable here\n");
    return;
  }
  // This machine has no driver (or it is disabled): the message says which library and why.
  EXPECT_TRUE(contains(s.message(), "no CUDA driver: dlopen(\"libcuda.so.1\") failed") ||
              contains(s.message(), "TRELLIS_CUDA_DISABLE"))
      << s.message();
}

#ifdef TRELLIS_HAVE_CUDA
TEST(CudaLoader, MissingLibraryIsNamed) {
  Result<Driver*> d = detail::loadDriver("libtrellis-no-such-cuda.so.1");
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().code(), Code::kInvalidUsage);
  EXPECT_TRUE(contains(d.status().message(), "no CUDA driver: dlopen(\"libtrellis-no-such-cuda.so.1\") failed"))
      << d.status().message();
  EXPECT_TRUE(contains(d.status().message(), "cannot open shared object file")) << d.status().message();
}

TEST(CudaLoader, MissingSymbolIsNamed) {
  // A real library that is not a CUDA driver: the first required entry point is missing.
  Result<Driver*> d = detail::loadDriver("libm.so.6");
  ASSERT_FALSE(d.isOk());
  EXPECT_TRUE(contains(d.status().message(), "CUDA driver libm.so.6 is unusable: it has no symbol cuGetErrorString"))
      << d.status().message();
}

TEST(CudaKernels, FatbinIsEmbedded) {
  ASSERT_GT(embeddedFatbinBytes(), 1024u);
  uint32_t magic = 0;
  std::memcpy(&magic, embeddedFatbin(), sizeof magic);
  EXPECT_EQ(magic, 0xBA55ED50u) << "not a fatbin";
  EXPECT_EQ(reinterpret_cast<uintptr_t>(embeddedFatbin()) % 16, 0u);
}

// nvcc's intermediates of the embedded fatbin: the sm_80 and sm_90 cubins must define every kernel
// the launcher looks up, and the compute_90 PTX must carry them too (for GPUs newer than sm_90).
std::set<std::string> launcherKernelNames() {
  std::set<std::string> names;
  for (int t = 0; t < trellisNumTypes; ++t)
    for (int o = 0; o < kReduceKernelOps; ++o)
      names.insert(reduceKernelName(static_cast<trellisDataType_t>(t), static_cast<trellisRedOp_t>(o)));
  return names;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(CudaKernels, CubinsAndPtxDefineEveryKernel) {
  const std::set<std::string> want = launcherKernelNames();
  ASSERT_EQ(want.size(), 40u);
  std::vector<std::string> cubins, ptx;
  // TRELLIS_TEST_CUDA_KEEP_DIR: where scripts/gpu_check.sh's bundle carries them on another machine.
  const char* env = std::getenv("TRELLIS_TEST_CUDA_KEEP_DIR");
  const std::string dir = env != nullptr && *env != 0 ? env : TRELLIS_CUDA_KEEP_DIR;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  ASSERT_FALSE(ec) << "cannot list nvcc's intermediates in " << dir << ": " << ec.message();
  for (auto& e : it) {
    const std::string p = e.path().string();
    if (e.path().extension() == ".cubin") cubins.push_back(p);
    if (e.path().extension() == ".ptx") ptx.push_back(p);
  }
  std::set<std::string> archs;
  for (const std::string& c : cubins) {
    archs.insert(contains(c, "sm_90") ? "sm_90" : contains(c, "compute_80") ? "sm_80" : c);
    const std::string syms = run("readelf -Ws '" + c + "' 2>&1");
    for (const std::string& k : want)
      EXPECT_TRUE(contains(syms, " FUNC    GLOBAL DEFAULT") && contains(syms, " " + k + "\n"))
          << k << " missing from " << c;
  }
  EXPECT_EQ(archs, (std::set<std::string>{"sm_80", "sm_90"}));
  bool ptx90 = false;
  for (const std::string& p : ptx) {
    const std::string text = run("cat '" + p + "'");
    if (!contains(text, ".target sm_90")) continue;
    ptx90 = true;
    for (const std::string& k : want) EXPECT_TRUE(contains(text, ".entry " + k + "(")) << k << " missing from " << p;
  }
  EXPECT_TRUE(ptx90) << "no compute_90 PTX in " << dir;
}
#endif  // TRELLIS_HAVE_CUDA

TEST(CudaPointers, HostMemoryIsHost) {
  // Nothing in this process initialises CUDA (Trellis never does), so no pointer can be CUDA memory,
  // with or without a driver.
  EXPECT_FALSE(mayHaveCudaMemory());
  int onStack = 0;
  std::vector<char> onHeap(1 << 20);
  for (const void* p : {static_cast<const void*>(&onStack), static_cast<const void*>(onHeap.data()),
                        static_cast<const void*>(nullptr)}) {
    Result<PointerInfo> info = pointerInfo(p);
    ASSERT_TRUE(info.isOk()) << info.status().message();
    EXPECT_EQ(info->kind, MemKind::kHost) << p;
    EXPECT_EQ(info->device, -1);
  }
  EXPECT_STREQ(memKindName(MemKind::kDevice), "device");
  EXPECT_STREQ(memKindName(MemKind::kCudaHost), "cuda-host");
}

TEST(CudaKernels, NamesAndGrid) {
  EXPECT_EQ(reduceKernelName(trellisFloat32, trellisSum), "trellis_reduce_f32_sum");
  EXPECT_EQ(reduceKernelName(trellisBfloat16, trellisMin), "trellis_reduce_bf16_min");
  EXPECT_EQ(reduceKernelName(trellisFloat16, trellisAvg), "trellis_reduce_f16_sum");
  EXPECT_EQ(reduceKernelName(trellisUint8, trellisProd), "trellis_reduce_u8_prod");
  EXPECT_EQ(reduceKernelName(static_cast<trellisDataType_t>(10), trellisSum), "");
  EXPECT_EQ(reduceKernelName(trellisInt8, static_cast<trellisRedOp_t>(-1)), "");
  // 16-byte vectors: 4 float32 per thread, 256 threads per block.
  EXPECT_EQ(reduceGridBlocks(1, trellisFloat32, true, 132), 1u);
  EXPECT_EQ(reduceGridBlocks(4 * 256, trellisFloat32, true, 132), 1u);
  EXPECT_EQ(reduceGridBlocks(4 * 256 + 1, trellisFloat32, true, 132), 2u);
  EXPECT_EQ(reduceGridBlocks(4 * 256 + 1, trellisFloat32, false, 132), 5u);
  EXPECT_EQ(reduceGridBlocks(size_t{1} << 30, trellisInt8, true, 132), 132u * 8);
  EXPECT_EQ(reduceGridBlocks(0, trellisFloat64, true, 0), 1u);
}

TEST(CudaKernels, LauncherRejectsBadArguments) {
  alignas(16) static float a[64], b[64], out[64];
  DeviceReduce r;
  r.dst = out;
  r.srcs[0] = a;
  r.srcs[1] = b;
  r.k = 2;
  r.count = 64;
  EXPECT_TRUE(checkReduce(r).isOk()) << checkReduce(r).message();
  auto expectError = [&](DeviceReduce bad, const char* part) {
    Status s = checkReduce(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << part;
    EXPECT_TRUE(contains(s.message(), part)) << s.message();
    Status l = launchReduce(bad, nullptr);  // the launcher checks first, before any driver call
    EXPECT_EQ(l.code(), Code::kInvalidArgument) << l.message();
  };
  DeviceReduce x = r;
  x.k = 0;
  expectError(x, "0 inputs, must be 1..8");
  x.k = 9;
  expectError(x, "9 inputs, must be 1..8");
  x = r;
  x.dtype = static_cast<trellisDataType_t>(12);
  expectError(x, "datatype 12");
  x = r;
  x.op = static_cast<trellisRedOp_t>(7);
  expectError(x, "op 7");
  x = r;
  x.divisor = 0;
  expectError(x, "divisor 0");
  x = r;
  x.dst = nullptr;
  expectError(x, "dst is NULL with count 64");
  x = r;
  x.srcs[1] = nullptr;
  expectError(x, "input 1 of 2 is NULL");
  x = r;
  x.srcs[1] = reinterpret_cast<const char*>(b) + 2;
  expectError(x, "input 1 (");
  expectError(x, "is not aligned to its 4-byte float32 elements");
  x = r;
  x.dst = reinterpret_cast<char*>(out) + 1;
  x.dtype = trellisFloat16;
  expectError(x, "not aligned to its 2-byte float16 elements");
  // Nothing to do: fine without a GPU, whatever the pointers.
  x = r;
  x.count = 0;
  x.dst = nullptr;
  EXPECT_TRUE(launchReduce(x, nullptr).isOk());
  // Valid arguments without a usable driver (or without CUDA initialised): an error saying so.
  if (!driverStatus().isOk()) {
    Status l = launchReduce(r, nullptr);
    EXPECT_FALSE(l.isOk());
    EXPECT_TRUE(contains(l.message(), driverStatus().message())) << l.message();
  }
}

// The C API: a stream with host buffers needs a usable CUDA (it waits for the stream first); without
// one the call fails naming the stream and the reason, and the communicator stays usable.
TEST(CudaApi, StreamWithHostBuffersWithoutCuda) {
  if (driverStatus().isOk()) GTEST_SKIP() << "a CUDA driver is loadable here: covered by the GPU tests";
  std::string err = test::runRanks(2, test::RankMode::kThreads, [](trellisComm_t comm, int rank, int) -> std::string {
    void* bogusStream = reinterpret_cast<void*>(0x1);
    float x = static_cast<float>(rank + 1), y = 0;
    trellisResult_t r = trellisAllReduce(&x, &y, 1, trellisFloat32, trellisSum, comm, bogusStream);
    std::string msg = trellisGetLastError(comm);
    if (r != trellisInvalidUsage) return "allreduce with a stream: got " + std::string(trellisGetErrorString(r));
    if (!contains(msg, "trellisAllReduce: stream 0x1 given with host buffers, but:")) return "message: " + msg;
    if (!contains(msg, driverStatus().message())) return "message lacks the driver status: " + msg;
    r = trellisSend(&x, 1, trellisFloat32, 1 - rank, comm, bogusStream);
    msg = trellisGetLastError(comm);
    if (r != trellisInvalidUsage || !contains(msg, "trellisSend: stream 0x1 given with host buffers"))
      return "send with a stream: " + msg;
    // Nothing was sent: the communicator still works on host buffers.
    if (trellisAllReduce(&x, &y, 1, trellisFloat32, trellisSum, comm, nullptr) != trellisSuccess || y != 3.0f)
      return std::string("allreduce after the rejected calls: ") + trellisGetLastError(comm);
    trellisResult_t async = trellisInternalError;
    if (trellisCommGetAsyncError(comm, &async) != trellisSuccess || async != trellisSuccess) return "async error set";
    return "";
  });
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace trellis::cuda
