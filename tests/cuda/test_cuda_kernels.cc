// The CUDA reduction kernels against the host kernels (src/algos/kernels), bit for bit: every
// datatype and op, 1..8 inputs, sizes around the vector width, aligned and misaligned buffers, in
// place, Avg's division, NaN propagation; and pointer placement of device, pinned and pageable
// memory. Needs a CUDA device: every test reports "skipped: no CUDA device (...)" without one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "algos/kernels/reduce.h"
#include "cuda/device.h"
#include "cuda/reduce_launch.h"
#include "gpu_env.h"

namespace trellis::cuda::testing {
namespace {

class CudaGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = noDeviceReason();
    if (!why.empty()) GTEST_SKIP() << "skipped: no CUDA device (" << why << ")";
    const std::string e = useDevice(0);
    ASSERT_EQ(e, "");
    ASSERT_EQ(check(drv().cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate"), "");
  }
  void TearDown() override {
    if (stream_ != nullptr) drv().cuStreamDestroy(stream_);
  }
  CUstream stream_ = nullptr;
};

bool isFloat(trellisDataType_t dt) {
  return dt == trellisFloat16 || dt == trellisBfloat16 || dt == trellisFloat32 || dt == trellisFloat64;
}

bool isNan(const uint8_t* p, trellisDataType_t dt) {
  uint16_t h;
  float f;
  double d;
  switch (dt) {
    case trellisFloat16:
      std::memcpy(&h, p, 2);
      return std::isnan(algos::halfToFloat(h));
    case trellisBfloat16:
      std::memcpy(&h, p, 2);
      return std::isnan(algos::bf16ToFloat(h));
    case trellisFloat32:
      std::memcpy(&f, p, 4);
      return std::isnan(f);
    case trellisFloat64:
      std::memcpy(&d, p, 8);
      return std::isnan(d);
    default:
      return false;
  }
}

// Random elements: integers any bits; floats any finite or infinite value, NaN only when allowed.
std::vector<uint8_t> randomElems(size_t n, trellisDataType_t dt, std::mt19937_64& rng, bool allowNan) {
  const size_t es = algos::dtypeSize(dt);
  std::vector<uint8_t> v(n * es);
  for (size_t i = 0; i < n; ++i) {
    do {
      uint64_t bits = rng();
      std::memcpy(v.data() + i * es, &bits, es);
    } while (!allowNan && isNan(v.data() + i * es, dt));
  }
  return v;
}

// Bit-identical, except that NaN matches NaN (a GPU sum or product with NaN gives the canonical NaN).
std::string compare(const std::vector<uint8_t>& want, const std::vector<uint8_t>& got, trellisDataType_t dt) {
  const size_t es = algos::dtypeSize(dt);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i * es < want.size(); ++i) {
    const uint8_t* w = want.data() + i * es;
    const uint8_t* g = got.data() + i * es;
    if (std::memcmp(w, g, es) == 0 || (isFloat(dt) && isNan(w, dt) && isNan(g, dt))) continue;
    if (bad++ == 0) first = i;
  }
  if (bad == 0) return "";
  return std::to_string(bad) + " wrong, first at element " + std::to_string(first);
}

// One launch against the host's reduceMany (+ divideInPlace). offset: elements past a 256-byte
// boundary (1 makes every buffer misaligned for 16-byte vectors).
std::string runCase(CUstream stream, trellisDataType_t dt, trellisRedOp_t op, int k, size_t n, size_t offset,
                    bool inPlace, int divisor, std::mt19937_64& rng, bool allowNan = false) {
  const size_t es = algos::dtypeSize(dt), bytes = n * es, off = offset * es;
  std::vector<std::vector<uint8_t>> in(k);
  std::vector<const void*> hostSrcs(k);
  std::vector<std::unique_ptr<DeviceBuffer>> dev;
  DeviceReduce r;
  for (int j = 0; j < k; ++j) {
    in[j] = randomElems(n, dt, rng, allowNan);
    hostSrcs[j] = in[j].data();
    dev.push_back(std::make_unique<DeviceBuffer>(bytes + off + 16));
    dev[j]->upload(in[j].data(), bytes, off);
    r.srcs[j] = dev[j]->bytes() + off;
  }
  DeviceBuffer out(bytes + off + 16);
  std::vector<uint8_t> want(bytes);
  algos::reduceMany(want.data(), hostSrcs.data(), k, n, dt, op);
  if (divisor > 1) algos::divideInPlace(want.data(), n, dt, divisor);
  r.dst = inPlace ? const_cast<void*>(r.srcs[0]) : out.bytes() + off;
  r.k = k;
  r.count = n;
  r.dtype = dt;
  r.op = op;
  r.divisor = divisor;
  Status s = launchReduce(r, stream);
  if (!s.isOk()) return s.message();
  if (std::string e = check(drv().cuStreamSynchronize(stream), "cuStreamSynchronize"); !e.empty()) return e;
  std::vector<uint8_t> got(bytes);
  (inPlace ? *dev[0] : out).download(got.data(), bytes, off);
  std::string e = compare(want, got, dt);
  if (e.empty()) return "";
  return std::string(algos::dtypeName(dt)) + " " + algos::opName(op) + " k=" + std::to_string(k) + " n=" +
         std::to_string(n) + " offset=" + std::to_string(offset) + (inPlace ? " in place" : "") +
         " divisor=" + std::to_string(divisor) + ": " + e;
}

TEST_F(CudaGpu, EveryTypeOpAndInputCountMatchesHost) {
  std::mt19937_64 rng(1);
  int cases = 0;
  for (int t = 0; t < trellisNumTypes; ++t)
    for (int o = 0; o < trellisNumOps; ++o)
      for (int k : {1, 2, 3, 8})
        for (size_t n : {size_t{1}, size_t{7}, size_t{37}, size_t{4099}})
          for (size_t offset : {0, 1}) {
            const auto dt = static_cast<trellisDataType_t>(t);
            const auto op = static_cast<trellisRedOp_t>(o);
            EXPECT_EQ(runCase(stream_, dt, op, k, n, offset, false, op == trellisAvg ? k : 1, rng), "");
            ++cases;
          }
  std::printf("%d launches compared\n", cases);
}

TEST_F(CudaGpu, LargeBuffersUseEveryBlock) {
  std::mt19937_64 rng(2);
  for (trellisDataType_t dt : {trellisFloat32, trellisBfloat16, trellisInt8, trellisFloat64})
    EXPECT_EQ(runCase(stream_, dt, trellisSum, 4, (size_t{48} << 20) / algos::dtypeSize(dt) + 3, 0, false, 1, rng), "");
}

TEST_F(CudaGpu, InPlaceAndAvg) {
  std::mt19937_64 rng(3);
  for (int t = 0; t < trellisNumTypes; ++t)
    for (size_t offset : {0, 1}) {
      const auto dt = static_cast<trellisDataType_t>(t);
      EXPECT_EQ(runCase(stream_, dt, trellisSum, 3, 1031, offset, true, 1, rng), "");
      EXPECT_EQ(runCase(stream_, dt, trellisAvg, 5, 1031, offset, true, 5, rng), "");
      EXPECT_EQ(runCase(stream_, dt, trellisAvg, 1, 1031, offset, false, 7, rng), "");  // the divide alone
    }
}

TEST_F(CudaGpu, NanPropagatesLikeTheHost) {
  std::mt19937_64 rng(4);
  for (trellisDataType_t dt : {trellisFloat16, trellisBfloat16, trellisFloat32, trellisFloat64})
    for (trellisRedOp_t op : {trellisMax, trellisMin, trellisSum, trellisProd})
      EXPECT_EQ(runCase(stream_, dt, op, 3, 4099, 0, false, 1, rng, /*allowNan=*/true), "");
}

TEST_F(CudaGpu, PointerPlacement) {
  EXPECT_TRUE(mayHaveCudaMemory());  // SetUp initialised CUDA
  DeviceBuffer d(4096);
  Result<PointerInfo> info = pointerInfo(d.bytes() + 100);
  ASSERT_TRUE(info.isOk()) << info.status().message();
  EXPECT_EQ(info->kind, MemKind::kDevice);
  EXPECT_EQ(info->rangeStart, reinterpret_cast<uintptr_t>(d.ptr()));
  EXPECT_GE(info->rangeSize, 4096u);
  EXPECT_EQ(info->device, 0);
  void* pinned = nullptr;
  ASSERT_EQ(check(drv().cuMemAllocHost(&pinned, 4096), "cuMemAllocHost"), "");
  info = pointerInfo(pinned);
  ASSERT_TRUE(info.isOk()) << info.status().message();
  EXPECT_EQ(info->kind, MemKind::kCudaHost);
  drv().cuMemFreeHost(pinned);
  std::vector<char> pageable(4096);
  info = pointerInfo(pageable.data());
  ASSERT_TRUE(info.isOk()) << info.status().message();
  EXPECT_EQ(info->kind, MemKind::kHost);
}

}  // namespace
}  // namespace trellis::cuda::testing
