// Collective correctness against the double-precision reference, for ranks as threads and as
// processes, rank counts 1..8 (odd and non-powers of two), counts 0, 1, 7, 1023 and 1M+3, every
// datatype x op, in place and out of place, with the automatic algorithm choice and with every
// algorithm forced.
#include <gtest/gtest.h>

#include <cstdlib>

#include "../support/harness.h"
#include "cases.h"
#include "core/params.h"

namespace trellis::test {
namespace {

// Keep hung tests short: a collective that waits this long has failed.
const int kEnvInit = (setenv("TRELLIS_TIMEOUT_S", "60", 0), setenv("TRELLIS_BOOTSTRAP_TIMEOUT_S", "30", 0), 0);

constexpr size_t kLarge = (1u << 20) + 3;

std::string runAll(trellisComm_t comm, int rank, int n, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    std::string e = runCase(comm, rank, n, c);
    if (!e.empty()) return e;  // later cases would run on mismatched ranks
  }
  return "";
}

struct Layout {
  Wire wire;
  RankMode mode;
  int nranks;
};

std::string layoutName(const ::testing::TestParamInfo<Layout>& info) {
  return std::string(wireName(info.param.wire)) + "_" + modeName(info.param.mode) + std::to_string(info.param.nranks);
}

std::vector<Layout> layouts(Wire w, RankMode m, std::initializer_list<int> ranks) {
  std::vector<Layout> out;
  for (int n : ranks) out.push_back({w, m, n});
  return out;
}

std::vector<Layout> concat(std::initializer_list<std::vector<Layout>> parts) {
  std::vector<Layout> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

class CollectivesTest : public ::testing::TestWithParam<Layout> {};

TEST_P(CollectivesTest, FullMatrixSmallCounts) {
  const Layout l = GetParam();
  auto cases = fullMatrix(l.nranks, {0, 1, 7, 1023});
  std::string err =
      runRanksOver(l.wire, l.nranks, l.mode, [&](trellisComm_t c, int r, int n) { return runAll(c, r, n, cases); });
  EXPECT_EQ(err, "") << cases.size() << " cases";
}

INSTANTIATE_TEST_SUITE_P(
    All, CollectivesTest,
    ::testing::ValuesIn(concat({layouts(Wire::kShm, RankMode::kThreads, {1, 2, 3, 4, 5, 7, 8}),
                                layouts(Wire::kShm, RankMode::kProcesses, {2, 3, 4, 5, 8}),
                                layouts(Wire::kTcp, RankMode::kThreads, {2, 3, 4, 5, 7, 8}),
                                layouts(Wire::kTcp, RankMode::kProcesses, {2, 3, 5}),
                                layouts(Wire::kMixed, RankMode::kThreads, {4, 5}),
                                layouts(Wire::kMixed, RankMode::kProcesses, {4}),
                                layouts(Wire::kUcxTcp, RankMode::kThreads, {2, 3, 5}),
                                layouts(Wire::kUcxTcp, RankMode::kProcesses, {4}),
                                layouts(Wire::kUcxSm, RankMode::kThreads, {3}),
                                layouts(Wire::kUcxSm, RankMode::kProcesses, {2, 5})})),
    layoutName);

// 1M+3 elements: every datatype with Sum and every op on int32/float32/bfloat16 (the full
// datatype x op product at this size would dominate the suite's run time on 2 cores).
class LargeCountTest : public ::testing::TestWithParam<Layout> {};

TEST_P(LargeCountTest, CrossSection) {
  const Layout l = GetParam();
  auto cases = crossSection(l.nranks, {kLarge});
  std::string err =
      runRanksOver(l.wire, l.nranks, l.mode, [&](trellisComm_t c, int r, int n) { return runAll(c, r, n, cases); });
  EXPECT_EQ(err, "") << cases.size() << " cases";
}

INSTANTIATE_TEST_SUITE_P(
    All, LargeCountTest,
    ::testing::ValuesIn(concat({layouts(Wire::kShm, RankMode::kThreads, {1, 2, 3, 4, 5, 7, 8}),
                                layouts(Wire::kShm, RankMode::kProcesses, {2, 3, 4, 5}),
                                layouts(Wire::kTcp, RankMode::kThreads, {2, 3, 5}),
                                layouts(Wire::kMixed, RankMode::kThreads, {4}),
                                layouts(Wire::kMixed, RankMode::kProcesses, {5}),
                                layouts(Wire::kUcxTcp, RankMode::kProcesses, {2}),
                                layouts(Wire::kUcxSm, RankMode::kProcesses, {2})})),
    layoutName);

// Every algorithm forced through TRELLIS_ALGO, on the sizes where each would not be chosen.
struct Forced {
  const char* spec;
  int nranks;
};
class ForcedAlgoTest : public ::testing::TestWithParam<Forced> {};

TEST_P(ForcedAlgoTest, MatchesReference) {
  const Forced f = GetParam();
  ASSERT_TRUE(findParam("TRELLIS_ALGO")->setOverride(f.spec).isOk());
  std::vector<Case> cases;
  for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{1023}, size_t{100003}})
    for (trellisDataType_t dt : {trellisInt32, trellisFloat32, trellisFloat16, trellisUint8})
      for (trellisRedOp_t op : {trellisSum, trellisMax, trellisAvg})
        for (CollKind k : {CollKind::kAllReduce, CollKind::kBroadcast, CollKind::kReduce, CollKind::kAllGather,
                           CollKind::kReduceScatter})
          for (bool ip : {false, true}) cases.push_back({k, dt, op, count, ip, static_cast<int>(count % f.nranks)});
  std::string err = runRanks(f.nranks, RankMode::kThreads,
                             [&](trellisComm_t c, int r, int n) { return runAll(c, r, n, cases); });
  EXPECT_TRUE(findParam("TRELLIS_ALGO")->setOverride("").isOk());
  EXPECT_EQ(err, "") << f.spec;
}

INSTANTIATE_TEST_SUITE_P(
    Algos, ForcedAlgoTest,
    ::testing::Values(Forced{"allreduce:ring,broadcast:scatter_allgather", 3},
                      Forced{"allreduce:ring,broadcast:scatter_allgather", 6},
                      Forced{"allreduce:rd,broadcast:binomial", 5}, Forced{"allreduce:rd", 6},
                      Forced{"allreduce:rabenseifner", 2}, Forced{"allreduce:rabenseifner", 5},
                      Forced{"allreduce:rabenseifner", 7}, Forced{"allreduce:rabenseifner,broadcast:binomial", 8},
                      Forced{"allreduce:direct,broadcast:direct", 3}, Forced{"allreduce:direct,broadcast:direct", 8},
                      Forced{"reduce:direct", 2}, Forced{"reduce:direct", 5},
                      Forced{"allgather:bruck,reducescatter:rd", 2}, Forced{"allgather:bruck,reducescatter:rd", 3},
                      Forced{"allgather:bruck,reducescatter:rd", 4}, Forced{"allgather:bruck,reducescatter:rd", 5},
                      Forced{"allgather:bruck,reducescatter:rd", 7}, Forced{"allgather:ring,reducescatter:ring", 5},
                      Forced{"allgather:direct,reducescatter:direct", 6}, Forced{"allreduce:oneshot", 2},
                      Forced{"allreduce:oneshot", 3}, Forced{"allreduce:oneshot", 4}, Forced{"allreduce:oneshot", 8},
                      Forced{"allgather:oneshot,reducescatter:oneshot", 2},
                      Forced{"allgather:oneshot,reducescatter:oneshot", 3},
                      Forced{"allgather:oneshot,reducescatter:oneshot", 5},
                      Forced{"broadcast:oneshot", 2}, Forced{"broadcast:oneshot", 5}),
    [](const ::testing::TestParamInfo<Forced>& info) { return "case" + std::to_string(info.index); });

}  // namespace
}  // namespace trellis::test
