// Collectives on device buffers, run by `trellis-run -n N gpu_collectives` (every rank a process; all
// ranks share GPU 0 when the machine has one GPU). Checks, each against the double-precision
// reference of tests/support:
//   cases        the collective matrix of tests/collectives (crossSection: every datatype incl.
//                float16/bfloat16, every op for int32/float32/bfloat16, in place and out of place)
//   ordering     a kernel writes the input on the stream just before the collective (no sync)
//   two-streams  a second stream that waits for the first (event) feeds a second collective
//   two-comms    two communicators, each on its own stream, in flight together
//   group        a group whose second collective reads the first one's output
//   host-after   a host-buffer call right after a device-buffer call (it must wait for it)
//   host+stream  host buffers (pageable and pinned) with a stream
//   graph        AllReduce captured in a CUDA graph, replayed three times with new inputs
//   rejected     a call mixing device and host buffers, and one past its allocation's end
// --probe: exit 77 ("skipped: no CUDA device") where there is no device. --bench: also time
// AllReduce and AlltoAll on device buffers (algorithm and bus bandwidth, nccl-tests' definitions).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../support/reference.h"
#include "cuda/device.h"
#include "cuda/reduce_launch.h"
#include "gpu_cases.h"
#include "gpu_env.h"
#include "trellis/trellis.h"

using namespace trellis;
using namespace trellis::test;
using cuda::testing::check;
using cuda::testing::DeviceBuffer;
using cuda::testing::drv;

namespace {

int gRank = 0, gRanks = 1;

std::string callError(const char* what, trellisResult_t r, trellisComm_t comm) {
  return std::string(what) + ": " + trellisGetErrorString(r) + ": " + trellisGetLastError(comm);
}

std::string syncAndCheck(trellisComm_t comm, CUstream s) {
  if (std::string e = check(drv().cuStreamSynchronize(s), "cuStreamSynchronize"); !e.empty()) return e;
  trellisResult_t async = trellisSuccess;
  trellisCommGetAsyncError(comm, &async);
  if (async != trellisSuccess) return callError("async error", async, comm);
  return "";
}

std::vector<char> hostValues(size_t count, trellisDataType_t dt, trellisRedOp_t op, int rank) {
  std::vector<char> v(count * elemSize(dt));
  fill(v.data(), count, dt, op, rank);
  return v;
}

std::string checkAllReduced(const DeviceBuffer& out, size_t count, trellisDataType_t dt, trellisRedOp_t op,
                            const std::function<double(size_t)>& expected = nullptr) {
  std::vector<char> got(count * elemSize(dt));
  out.download(got.data(), got.size());
  return compare(got.data(), count, dt, expected ? expected : [&](size_t i) { return expectedReduce(op, dt, gRanks, i); });
}

std::string checkCases(trellisComm_t comm, CUstream s) {
  std::vector<Case> cases = crossSection(gRanks, {0, 1, 1031, 65537});
  for (const Case& c : cases)
    if (std::string e = runDeviceCase(comm, gRank, gRanks, c, s); !e.empty()) return e;
  std::printf("rank %d: %zu device-buffer cases\n", gRank, cases.size());
  return "";
}

// The input is written by a kernel (in = a + b) queued just before the collective on the same stream.
std::string checkOrdering(trellisComm_t comm, CUstream s) {
  const size_t count = (size_t{4} << 20) / 4;
  std::vector<char> want = hostValues(count, trellisFloat32, trellisSum, gRank);
  std::vector<float> a(count), b(count, 1.0f);
  for (size_t i = 0; i < count; ++i) a[i] = reinterpret_cast<float*>(want.data())[i] - 1.0f;
  DeviceBuffer da(count * 4), db(count * 4), in(count * 4), out(count * 4);
  da.upload(a.data(), count * 4);
  db.upload(b.data(), count * 4);
  std::vector<char> zeros(count * 4, 0);
  in.upload(zeros.data(), zeros.size());
  cuda::DeviceReduce r;
  r.dst = in.ptr();
  r.srcs[0] = da.ptr();
  r.srcs[1] = db.ptr();
  r.k = 2;
  r.count = count;
  for (int iter = 0; iter < 3; ++iter) {
    Status st = cuda::launchReduce(r, s);
    if (!st.isOk()) return st.message();
    trellisResult_t res = trellisAllReduce(in.ptr(), out.ptr(), count, trellisFloat32, trellisSum, comm, s);
    if (res != trellisSuccess) return callError("trellisAllReduce", res, comm);
    if (std::string e = syncAndCheck(comm, s); !e.empty()) return e;
    if (std::string e = checkAllReduced(out, count, trellisFloat32, trellisSum); !e.empty()) return e;
    in.upload(zeros.data(), zeros.size());
  }
  return "";
}

std::string checkTwoStreams(trellisComm_t comm, CUstream s1, CUstream s2) {
  const size_t count = 100003;
  std::vector<char> mine = hostValues(count, trellisInt32, trellisSum, gRank);
  DeviceBuffer in(count * 4), mid(count * 4), out(count * 4);
  in.upload(mine.data(), mine.size());
  CUevent ev = nullptr;
  if (std::string e = check(drv().cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING), "cuEventCreate"); !e.empty()) return e;
  trellisResult_t res = trellisAllReduce(in.ptr(), mid.ptr(), count, trellisInt32, trellisSum, comm, s1);
  if (res != trellisSuccess) return callError("trellisAllReduce on stream 1", res, comm);
  std::string e = check(drv().cuEventRecord(ev, s1), "cuEventRecord");
  if (e.empty()) e = check(drv().cuStreamWaitEvent(s2, ev, 0), "cuStreamWaitEvent");
  if (e.empty()) {
    res = trellisBroadcast(mid.ptr(), out.ptr(), count, trellisInt32, gRanks - 1, comm, s2);
    if (res != trellisSuccess) e = callError("trellisBroadcast on stream 2", res, comm);
  }
  if (e.empty()) e = syncAndCheck(comm, s2);
  if (e.empty()) e = syncAndCheck(comm, s1);
  drv().cuEventDestroy(ev);
  if (!e.empty()) return e;
  return checkAllReduced(out, count, trellisInt32, trellisSum);
}

std::string checkTwoComms(trellisComm_t comm, CUstream s1, CUstream s2) {
  trellisComm_t other = nullptr;
  trellisResult_t res = trellisCommSplit(comm, 0, gRank, &other, nullptr);
  if (res != trellisSuccess) return callError("trellisCommSplit", res, comm);
  const size_t count = 262147;
  std::vector<char> a = hostValues(count, trellisBfloat16, trellisMax, gRank);
  std::vector<char> b = hostValues(count, trellisFloat16, trellisSum, gRank);
  DeviceBuffer ina(a.size()), outa(a.size()), inb(b.size()), outb(b.size());
  ina.upload(a.data(), a.size());
  inb.upload(b.data(), b.size());
  std::string e;
  for (int iter = 0; iter < 4 && e.empty(); ++iter) {
    res = trellisAllReduce(ina.ptr(), outa.ptr(), count, trellisBfloat16, trellisMax, comm, s1);
    if (res != trellisSuccess) e = callError("trellisAllReduce (first comm)", res, comm);
    res = trellisAllReduce(inb.ptr(), outb.ptr(), count, trellisFloat16, trellisSum, other, s2);
    if (e.empty() && res != trellisSuccess) e = callError("trellisAllReduce (second comm)", res, other);
  }
  if (e.empty()) e = syncAndCheck(comm, s1);
  if (e.empty()) e = syncAndCheck(other, s2);
  if (e.empty()) e = checkAllReduced(outa, count, trellisBfloat16, trellisMax);
  if (e.empty()) e = checkAllReduced(outb, count, trellisFloat16, trellisSum);
  trellisCommDestroy(other);
  return e;
}

std::string checkGroup(trellisComm_t comm, CUstream s) {
  const size_t count = 4099;
  std::vector<char> mine = hostValues(count, trellisFloat64, trellisProd, gRank);
  DeviceBuffer in(mine.size()), mid(mine.size()), out(mine.size());
  in.upload(mine.data(), mine.size());
  trellisGroupStart();
  trellisAllReduce(in.ptr(), mid.ptr(), count, trellisFloat64, trellisProd, comm, s);
  trellisBroadcast(mid.ptr(), out.ptr(), count, trellisFloat64, 0, comm, s);
  trellisResult_t res = trellisGroupEnd();
  if (res != trellisSuccess) return callError("trellisGroupEnd", res, comm);
  if (std::string e = syncAndCheck(comm, s); !e.empty()) return e;
  return checkAllReduced(out, count, trellisFloat64, trellisProd);
}

std::string checkHostAfterDevice(trellisComm_t comm, CUstream s) {
  const size_t count = 1 << 20;
  std::vector<char> mine = hostValues(count, trellisFloat32, trellisSum, gRank);
  DeviceBuffer in(mine.size()), out(mine.size());
  in.upload(mine.data(), mine.size());
  for (int iter = 0; iter < 3; ++iter) {
    trellisResult_t res = trellisAllReduce(in.ptr(), out.ptr(), count, trellisFloat32, trellisSum, comm, s);
    if (res != trellisSuccess) return callError("trellisAllReduce (device)", res, comm);
    int32_t x = gRank + 1, y = 0;
    res = trellisAllReduce(&x, &y, 1, trellisInt32, trellisSum, comm, nullptr);  // right away, no sync
    if (res != trellisSuccess) return callError("trellisAllReduce (host)", res, comm);
    if (y != gRanks * (gRanks + 1) / 2) return "host allreduce after a device one: got " + std::to_string(y);
  }
  if (std::string e = syncAndCheck(comm, s); !e.empty()) return e;
  return checkAllReduced(out, count, trellisFloat32, trellisSum);
}

std::string checkHostWithStream(trellisComm_t comm, CUstream s) {
  const size_t count = 65537;
  std::vector<char> mine = hostValues(count, trellisInt64, trellisMin, gRank);
  std::vector<char> out(mine.size(), 0);
  trellisResult_t res = trellisAllReduce(mine.data(), out.data(), count, trellisInt64, trellisMin, comm, s);
  if (res != trellisSuccess) return callError("trellisAllReduce (pageable host buffers, stream)", res, comm);
  std::string e = compare(out.data(), count, trellisInt64, [&](size_t i) { return expectedReduce(trellisMin, trellisInt64, gRanks, i); });
  if (!e.empty()) return "pageable: " + e;
  void* pin = nullptr;
  if (std::string c = check(drv().cuMemAllocHost(&pin, mine.size()), "cuMemAllocHost"); !c.empty()) return c;
  std::memcpy(pin, mine.data(), mine.size());
  res = trellisAllReduce(pin, pin, count, trellisInt64, trellisMin, comm, s);  // in place, pinned
  if (res == trellisSuccess)
    e = compare(pin, count, trellisInt64, [&](size_t i) { return expectedReduce(trellisMin, trellisInt64, gRanks, i); });
  else
    e = callError("trellisAllReduce (pinned host buffer, stream)", res, comm);
  drv().cuMemFreeHost(pin);
  return e.empty() ? "" : "pinned: " + e;
}

std::string checkGraph(trellisComm_t comm, CUstream s) {
  const size_t count = 65536 + 3;
  DeviceBuffer in(count * 4), out(count * 4);
  CUgraph graph = nullptr;
  CUgraphExec exec = nullptr;
  std::string e = check(drv().cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), "cuStreamBeginCapture");
  if (!e.empty()) return e;
  trellisResult_t res = trellisAllReduce(in.ptr(), out.ptr(), count, trellisFloat32, trellisSum, comm, s);
  e = check(drv().cuStreamEndCapture(s, &graph), "cuStreamEndCapture");
  if (res != trellisSuccess) return callError("trellisAllReduce while capturing", res, comm);
  if (!e.empty()) return e;
  e = check(drv().cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags");
  for (int iter = 1; iter <= 3 && e.empty(); ++iter) {
    std::vector<float> v(count);
    std::vector<char> base = hostValues(count, trellisFloat32, trellisSum, gRank);
    for (size_t i = 0; i < count; ++i) v[i] = reinterpret_cast<float*>(base.data())[i] * iter;
    in.upload(v.data(), v.size() * 4);
    e = check(drv().cuGraphLaunch(exec, s), "cuGraphLaunch");
    if (e.empty()) e = syncAndCheck(comm, s);
    if (e.empty())
      e = checkAllReduced(out, count, trellisFloat32, trellisSum,
                          [&](size_t i) { return expectedReduce(trellisSum, trellisFloat32, gRanks, i) * iter; });
    if (!e.empty()) e = "replay " + std::to_string(iter) + ": " + e;
  }
  if (exec != nullptr) drv().cuGraphExecDestroy(exec);
  if (graph != nullptr) drv().cuGraphDestroy(graph);
  return e;
}

std::string checkRejected(trellisComm_t comm, CUstream s) {
  DeviceBuffer d(4096);
  std::vector<float> h(1024);
  trellisResult_t res = trellisAllReduce(d.ptr(), h.data(), 1024, trellisFloat32, trellisSum, comm, s);
  std::string msg = trellisGetLastError(comm);
  if (res != trellisInvalidArgument || msg.find("is device memory but recvbuff") == std::string::npos)
    return "mixed buffers: " + std::string(trellisGetErrorString(res)) + ": " + msg;
  res = trellisAllReduce(d.ptr(), d.ptr(), 1025, trellisFloat32, trellisSum, comm, s);
  msg = trellisGetLastError(comm);
  if (res != trellisInvalidArgument || msg.find("runs past the end of its CUDA allocation") == std::string::npos)
    return "past the allocation: " + std::string(trellisGetErrorString(res)) + ": " + msg;
  return syncAndCheck(comm, s);  // nothing was queued and the communicator is fine
}

void bench(trellisComm_t comm, CUstream s) {
  if (gRank == 0) std::printf("# device-buffer bandwidth, %d ranks (staged through pinned host memory)\n"
                              "# %-10s %12s %10s %10s %10s\n", gRanks, "collective", "bytes", "time_us", "algbw_GB/s", "busbw_GB/s");
  for (int which = 0; which < 2; ++which)
    for (size_t bytes = size_t{1} << 20; bytes <= (size_t{256} << 20); bytes <<= 2) {
      const size_t count = bytes / 4;
      DeviceBuffer in(bytes), out(bytes);
      auto once = [&] {
        return which == 0 ? trellisAllReduce(in.ptr(), out.ptr(), count, trellisFloat32, trellisSum, comm, s)
                          : trellisAlltoAll(in.ptr(), out.ptr(), count / gRanks, trellisFloat32, comm, s);
      };
      for (int w = 0; w < 2; ++w) once();
      drv().cuStreamSynchronize(s);
      const int iters = bytes >= (size_t{64} << 20) ? 5 : 20;
      int32_t z = 0;
      trellisAllReduce(&z, &z, 1, trellisInt32, trellisSum, comm, nullptr);  // start together
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i) once();
      drv().cuStreamSynchronize(s);
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
      const double alg = bytes / sec / 1e9;
      const double factor = which == 0 ? 2.0 * (gRanks - 1) / gRanks : double(gRanks - 1) / gRanks;
      if (gRank == 0)
        std::printf("  %-10s %12zu %10.1f %10.2f %10.2f\n", which == 0 ? "allreduce" : "alltoall", bytes, sec * 1e6,
                    alg, alg * factor);
    }
}

}  // namespace

int main(int argc, char** argv) {
  const bool probe = argc > 1 && std::strcmp(argv[1], "--probe") == 0;
  const bool doBench = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
  const std::string why = cuda::testing::noDeviceReason();
  if (!why.empty()) {
    std::printf("skipped: no CUDA device (%s)\n", why.c_str());
    return cuda::testing::kSkipExit;
  }
  if (probe) return 0;
  int devices = 1;
  drv().cuDeviceGetCount(&devices);
  const char* local = std::getenv("TRELLIS_LOCAL_RANK");
  const int gpu = (local ? std::atoi(local) : 0) % devices;
  if (std::string e = cuda::testing::useDevice(gpu); !e.empty()) {
    std::fprintf(stderr, "FAIL: %s\n", e.c_str());
    return 1;
  }
  trellisComm_t comm = nullptr;
  if (trellisCommInitFromEnv(&comm) != trellisSuccess) {
    std::fprintf(stderr, "FAIL: trellisCommInitFromEnv: %s\n", trellisGetLastError(nullptr));
    return 1;
  }
  trellisCommUserRank(comm, &gRank);
  trellisCommCount(comm, &gRanks);
  CUstream s1 = nullptr, s2 = nullptr;
  drv().cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING);
  drv().cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING);
  char name[128] = "?";
  CUdevice dev = 0;
  drv().cuDeviceGet(&dev, gpu);
  drv().cuDeviceGetName(name, sizeof name, dev);
  if (gRank == 0) std::printf("%d ranks, %d CUDA device(s), rank 0 on %s (device %d)\n", gRanks, devices, name, gpu);
  struct Check {
    const char* name;
    std::function<std::string()> run;
  };
  std::vector<Check> checks = {
      {"cases", [&] { return checkCases(comm, s1); }},
      {"ordering", [&] { return checkOrdering(comm, s1); }},
      {"two-streams", [&] { return checkTwoStreams(comm, s1, s2); }},
      {"two-comms", [&] { return checkTwoComms(comm, s1, s2); }},
      {"group", [&] { return checkGroup(comm, s1); }},
      {"host-after", [&] { return checkHostAfterDevice(comm, s1); }},
      {"host+stream", [&] { return checkHostWithStream(comm, s1); }},
      {"graph", [&] { return checkGraph(comm, s1); }},
      {"rejected", [&] { return checkRejected(comm, s1); }},
  };
  int failed = 0;
  for (const Check& c : checks) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string e = c.run();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (e.empty()) {
      std::printf("rank %d: PASS %s (%.2f s)\n", gRank, c.name, sec);
    } else {
      std::printf("rank %d: FAIL %s: %s\n", gRank, c.name, e.c_str());
      ++failed;
      break;  // the ranks may be out of step now
    }
    std::fflush(stdout);
  }
  if (failed == 0 && doBench) bench(comm, s1);
  drv().cuStreamSynchronize(s1);
  drv().cuStreamSynchronize(s2);
  trellisCommDestroy(comm);
  drv().cuStreamDestroy(s1);
  drv().cuStreamDestroy(s2);
  return failed == 0 ? 0 : 1;
}
