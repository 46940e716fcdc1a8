// reduce2 / reduceMany / divideInPlace: every datatype x op x SIMD path this CPU has, against the
// exact reference of kernel_reference.h; odd lengths, unaligned pointers, aliasing, NaN semantics,
// integer wrap-around, TRELLIS_REDUCE_ISA.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <string>

#include "algos/kernels/reduce.h"
#include "core/params.h"
#include "kernel_reference.h"

namespace trellis::algos {
namespace {

using namespace testing;  // NOLINT: the test-side reference helpers

const size_t kLengths[] = {0, 1, 7, 31, 33, 1023, 4097};

// Runs body(isa) once per SIMD path this CPU has; restores the automatic choice afterwards.
template <typename F>
int forEachIsa(F body) {
  int paths = 0;
  for (const char* isa : kIsas) {
    if (!detail::setIsaForTesting(isa)) continue;
    ++paths;
    EXPECT_STREQ(reduceIsaName(), isa);
    body(isa);
  }
  detail::setIsaForTesting("auto");
  return paths;
}

std::string where(const char* isa, trellisDataType_t dt, trellisRedOp_t op, size_t n, size_t i) {
  return std::string(isa) + " " + dtypeName(dt) + " " + opName(op) + " n=" + std::to_string(n) +
         " element " + std::to_string(i);
}

void referenceReduce(void* d, const void* const* srcs, int k, size_t n, trellisDataType_t dt,
                     trellisRedOp_t op) {
  for (size_t i = 0; i < n; ++i) {
    RefAcc acc{dt, op};
    acc.init(srcs[0], i);
    for (int j = 1; j < k; ++j) acc.add(srcs[j], i);
    acc.store(d, i);
  }
}

TEST(Reduce2, EveryTypeOpPathLengthAlignmentAndAlias) {
  int paths = forEachIsa([](const char* isa) {
    for (int d = 0; d < trellisNumTypes; ++d)
      for (int o = 0; o < trellisNumOps; ++o)
        for (size_t n : kLengths)
          for (size_t misalign : {size_t{0}, size_t{1}, size_t{3}}) {
            const auto dt = static_cast<trellisDataType_t>(d);
            const auto op = static_cast<trellisRedOp_t>(o);
            const size_t es = dtypeSize(dt), off = misalign * es;
            auto a = randomBuffer(dt, n + misalign, 11 + d * 7 + o);
            auto b = randomBuffer(dt, n + misalign, 99 + d);
            std::vector<uint8_t> want(n * es + 64), got(n * es + 64, 0xcd);
            const void* srcs[] = {a.data() + off, b.data() + off};
            referenceReduce(want.data(), srcs, 2, n, dt, op);
            reduce2(got.data() + off, a.data() + off, b.data() + off, n, dt, op);
            for (size_t i = 0; i < n; ++i)
              ASSERT_TRUE(sameElement(want.data(), got.data() + off, i, dt))
                  << where(isa, dt, op, n, i) << " misalign " << misalign;
            EXPECT_EQ(got[off + n * es], 0xcd)
                << "wrote past the end: " << where(isa, dt, op, n, n);
            if (off > 0) {
              EXPECT_EQ(got[off - 1], 0xcd) << "wrote before the start";
            }
            std::vector<uint8_t> x(a);  // dst == a
            reduce2(x.data() + off, x.data() + off, b.data() + off, n, dt, op);
            for (size_t i = 0; i < n; ++i)
              ASSERT_TRUE(sameElement(want.data(), x.data() + off, i, dt))
                  << "dst==a " << where(isa, dt, op, n, i);
            std::vector<uint8_t> y(b);  // dst == b
            reduce2(y.data() + off, a.data() + off, y.data() + off, n, dt, op);
            for (size_t i = 0; i < n; ++i)
              ASSERT_TRUE(sameElement(want.data(), y.data() + off, i, dt))
                  << "dst==b " << where(isa, dt, op, n, i);
            std::vector<uint8_t> z(a), zwant(n * es + 64);  // dst == a == b
            const void* same[] = {a.data() + off, a.data() + off};
            referenceReduce(zwant.data(), same, 2, n, dt, op);
            reduce2(z.data() + off, z.data() + off, z.data() + off, n, dt, op);
            for (size_t i = 0; i < n; ++i)
              ASSERT_TRUE(sameElement(zwant.data(), z.data() + off, i, dt))
                  << "dst==a==b " << where(isa, dt, op, n, i);
          }
  });
  EXPECT_GE(paths, 1);
  std::printf("checked %d SIMD paths; auto picks %s\n", paths, reduceIsaName());
}

TEST(ReduceMany, KInputsEveryTypeOpPath) {
  forEachIsa([](const char* isa) {
    for (int d = 0; d < trellisNumTypes; ++d)
      for (int o = 0; o < trellisNumOps; ++o)
        for (int k = 1; k <= 9; ++k)
          for (size_t n : {size_t{0}, size_t{1}, size_t{33}, size_t{4097}, size_t{17000}}) {
            const auto dt = static_cast<trellisDataType_t>(d);
            const auto op = static_cast<trellisRedOp_t>(o);
            const size_t es = dtypeSize(dt), off = (k % 2) * es;  // odd k: unaligned
            std::vector<std::vector<uint8_t>> in;
            std::vector<const void*> srcs;
            for (int j = 0; j < k; ++j)
              in.push_back(randomBuffer(dt, n + 1, 1000 * d + 10 * o + j));
            for (int j = 0; j < k; ++j) srcs.push_back(in[j].data() + off);
            std::vector<uint8_t> want(n * es + 64), got(n * es + 64, 0xcd);
            referenceReduce(want.data(), srcs.data(), k, n, dt, op);
            reduceMany(got.data() + off, srcs.data(), k, n, dt, op);
            for (size_t i = 0; i < n; ++i)
              ASSERT_TRUE(sameElement(want.data(), got.data() + off, i, dt))
                  << "k=" << k << " " << where(isa, dt, op, n, i);
            EXPECT_EQ(got[off + n * es], 0xcd) << "wrote past the end";
            // dst == srcs[0].
            reduceMany(in[0].data() + off, srcs.data(), k, n, dt, op);
            for (size_t i = 0; i < n; ++i)
              ASSERT_TRUE(sameElement(want.data(), in[0].data() + off, i, dt))
                  << "in place k=" << k << " " << where(isa, dt, op, n, i);
          }
  });
}

TEST(ReduceMany, HalfTypesAccumulateInFloatAndRoundOnce) {
  // 1 + 8 * 2^-11: each 2^-11 alone is a tie that rounds away in float16 (to even), but
  // accumulating in float32 keeps all eight.
  forEachIsa([](const char* isa) {
    for (trellisDataType_t dt : {trellisFloat16, trellisBfloat16}) {
      const bool half = dt == trellisFloat16;
      const float tinyValue = std::ldexp(1.0f, half ? -11 : -8);
      auto enc = [&](float f) { return half ? floatToHalf(f) : floatToBf16(f); };
      std::vector<uint16_t> one(37, enc(1.0f)), tiny(37, enc(tinyValue)), out(37);
      std::vector<const void*> srcs = {one.data()};
      for (int j = 1; j < 9; ++j) srcs.push_back(tiny.data());
      reduceMany(out.data(), srcs.data(), 9, out.size(), dt, trellisSum);
      for (uint16_t v : out) EXPECT_EQ(v, enc(1.0f + 8 * tinyValue)) << isa << " " << dtypeName(dt);
      std::vector<uint16_t> chained(one);
      for (int j = 1; j < 9; ++j)
        reduce2(chained.data(), chained.data(), tiny.data(), chained.size(), dt, trellisSum);
      EXPECT_EQ(chained[36], enc(1.0f)) << "chained reduce2 rounds each step";
    }
  });
}

TEST(Reduce2, FloatMaxMinPropagateNaN) {
  forEachIsa([](const char* isa) {
    for (trellisDataType_t dt : {trellisFloat16, trellisBfloat16, trellisFloat32, trellisFloat64})
      for (trellisRedOp_t op : {trellisMax, trellisMin}) {
        const size_t n = 37;  // vector body and scalar tail
        std::vector<uint8_t> a(n * 8), b(n * 8), d(n * 8);
        for (size_t i = 0; i < n; ++i) {
          storeFromDouble(a.data(), i, dt, i % 3 == 0 ? NAN : 1.0);
          storeFromDouble(b.data(), i, dt, i % 3 == 1 ? NAN : 2.0);
        }
        reduce2(d.data(), a.data(), b.data(), n, dt, op);
        for (size_t i = 0; i < n; ++i) {
          double v = loadAsDouble(d.data(), i, dt);
          if (i % 3 == 2)
            EXPECT_EQ(v, op == trellisMax ? 2.0 : 1.0) << where(isa, dt, op, n, i);
          else
            EXPECT_TRUE(std::isnan(v)) << where(isa, dt, op, n, i) << " got " << v;
        }
        // Signed zeros compare equal: the result is a.
        storeFromDouble(a.data(), 0, dt, -0.0);
        storeFromDouble(b.data(), 0, dt, 0.0);
        reduce2(d.data(), a.data(), b.data(), 1, dt, op);
        EXPECT_TRUE(std::signbit(loadAsDouble(d.data(), 0, dt))) << where(isa, dt, op, 1, 0);
      }
  });
}

TEST(Reduce2, IntegerSumAndProdWrap) {
  forEachIsa([](const char* isa) {
    std::vector<int32_t> a(19, INT32_MAX), b(19, 1), d(19);
    reduce2(d.data(), a.data(), b.data(), d.size(), trellisInt32, trellisSum);
    for (int32_t v : d) EXPECT_EQ(v, INT32_MIN) << isa;
    std::vector<int8_t> c(67, 16), e(67);
    reduce2(e.data(), c.data(), c.data(), e.size(), trellisInt8, trellisProd);
    for (int8_t v : e) EXPECT_EQ(v, 0) << isa;
    std::vector<int64_t> m(9, INT64_MIN), neg(9, -1), r(9);
    reduce2(r.data(), m.data(), neg.data(), r.size(), trellisInt64, trellisProd);
    for (int64_t v : r) EXPECT_EQ(v, INT64_MIN) << isa;
    std::vector<uint8_t> u(40, 200), w(40);
    reduce2(w.data(), u.data(), u.data(), w.size(), trellisUint8, trellisSum);
    for (uint8_t v : w) EXPECT_EQ(v, 144) << isa;
  });
}

TEST(DivideInPlace, EveryTypePathAndDivisor) {
  forEachIsa([](const char* isa) {
    for (int d = 0; d < trellisNumTypes; ++d)
      for (int divisor : {2, 3, 7, 16, 1000})
        for (size_t n : kLengths) {
          const auto dt = static_cast<trellisDataType_t>(d);
          const size_t es = dtypeSize(dt);
          auto buf = randomBuffer(dt, n + 1, 7 * d + divisor);
          std::vector<uint8_t> want(buf);
          for (size_t i = 0; i < n; ++i) {
            if (isFloatType(dt)) {
              // float16/bfloat16 divide in float32, then round: two roundings, as documented.
              double q = loadAsDouble(buf.data() + es, i, dt) / divisor;
              if (dt != trellisFloat64) q = static_cast<float>(q);
              storeFromDouble(want.data() + es, i, dt, q);
            } else {
              uint64_t v = loadBits(buf.data() + es, i, dt);
              uint64_t q = isSigned(dt) ? static_cast<uint64_t>(signExtend(v, dt) / divisor)
                                        : v / static_cast<uint64_t>(divisor);
              std::memcpy(want.data() + es + i * es, &q, es);
            }
          }
          divideInPlace(buf.data() + es, n, dt,
                        divisor);  // +es: unaligned for 2-byte and wider types
          for (size_t i = 0; i < n; ++i)
            ASSERT_TRUE(sameElement(want.data() + es, buf.data() + es, i, dt))
                << isa << " " << dtypeName(dt) << " / " << divisor << " n=" << n << " element "
                << i;
          EXPECT_EQ(std::memcmp(want.data() + es + n * es, buf.data() + es + n * es,
                                buf.size() - es - n * es),
                    0)
              << "wrote past the end";
        }
  });
}

TEST(DivideInPlace, TruncatesLikeCAndIgnoresBadDivisors) {
  std::vector<int32_t> i = {7, -7, 8, INT32_MIN, INT32_MAX};
  divideInPlace(i.data(), i.size(), trellisInt32, 2);
  EXPECT_EQ(i, (std::vector<int32_t>{3, -3, 4, INT32_MIN / 2, INT32_MAX / 2}));
  std::vector<uint32_t> u = {UINT32_MAX, 5};
  divideInPlace(u.data(), u.size(), trellisUint32, 3);
  EXPECT_EQ(u, (std::vector<uint32_t>{UINT32_MAX / 3, 1}));
  std::vector<float> f = {1, 2, 3};
  divideInPlace(f.data(), 3, trellisFloat32, 3);
  EXPECT_EQ(f[0], 1.0f / 3);
  std::vector<int8_t> c = {-128, 127};
  divideInPlace(c.data(), 2, trellisInt8, 0);  // ignored
  EXPECT_EQ(c, (std::vector<int8_t>{-128, 127}));
  divideInPlace(c.data(), 2, trellisInt8, -2);  // ignored
  EXPECT_EQ(c, (std::vector<int8_t>{-128, 127}));
}

TEST(Isa, ParamForcesAPathAndFallsBack) {
  ParamBase* p = findParam("TRELLIS_REDUCE_ISA");
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(p->setOverride("scalar").isOk());
  ASSERT_TRUE(detail::setIsaForTesting("auto"));
  EXPECT_STREQ(reduceIsaName(), "scalar");
  ASSERT_TRUE(p->setOverride("no-such-isa").isOk());
  ASSERT_TRUE(detail::setIsaForTesting("auto"));
  const std::string best = reduceIsaName();
  EXPECT_TRUE(best == "avx512" || best == "avx2" || best == "scalar") << best;
  ASSERT_TRUE(p->setOverride("").isOk());
  ASSERT_TRUE(detail::setIsaForTesting("auto"));
  EXPECT_EQ(reduceIsaName(), best);
  EXPECT_FALSE(detail::setIsaForTesting("avx1024"));
  EXPECT_EQ(reduceIsaName(), best);
}

TEST(Names, TypesAndOps) {
  EXPECT_EQ(dtypeSize(trellisBfloat16), 2u);
  EXPECT_EQ(dtypeSize(trellisFloat64), 8u);
  EXPECT_EQ(dtypeSize(static_cast<trellisDataType_t>(trellisNumTypes)), 0u);
  EXPECT_EQ(dtypeSize(static_cast<trellisDataType_t>(-1)), 0u);
  EXPECT_STREQ(dtypeName(trellisFloat16), "float16");
  EXPECT_STREQ(dtypeName(trellisUint64), "uint64");
  EXPECT_STREQ(opName(trellisAvg), "avg");
  EXPECT_STREQ(opName(trellisProd), "prod");
}

}  // namespace
}  // namespace trellis::algos
