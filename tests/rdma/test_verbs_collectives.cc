// The collective correctness suite over the verbs transport (TRELLIS_TRANSPORT=verbs: every pair of
// ranks on RC queue pairs), ranks as processes, checked against the double-precision reference.
// Needs an RDMA device: run through tests/rdma/qemu_guest.sh (Soft-RoCE in a qemu guest).
#include <gtest/gtest.h>

#include <cstdlib>

#include "../collectives/cases.h"
#include "../support/harness.h"
#include "transport/verbs/device.h"

namespace trellis::test {
namespace {

const int kEnvInit = (setenv("TRELLIS_TIMEOUT_S", "60", 0), setenv("TRELLIS_BOOTSTRAP_TIMEOUT_S", "60", 0), 0);

std::string runAll(trellisComm_t comm, int rank, int n, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    std::string e = runCase(comm, rank, n, c);
    if (!e.empty()) return e;  // later cases would run on mismatched ranks
  }
  return "";
}

class VerbsCollectives : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (transport::verbs::listActivePorts(-1, nullptr).empty())
      GTEST_SKIP() << "no active RDMA port (run through tests/rdma/qemu_guest.sh)";
  }
};

// Every collective x datatype x op, in place and out of place, on counts 0, 1, 7 and 1023 (at 4
// ranks 1 and 1023: four ranks share the guest's two vCPUs, and the 0 and 7 cases add time, not
// paths, over what 2 ranks cover).
TEST_P(VerbsCollectives, FullMatrixSmallCounts) {
  const int n = GetParam();
  auto cases = fullMatrix(n, n == 2 ? std::vector<size_t>{0, 1, 7, 1023} : std::vector<size_t>{1, 1023});
  std::string err = runRanksOver(Wire::kVerbs, n, RankMode::kProcesses,
                                 [&](trellisComm_t c, int r, int k) { return runAll(c, r, k, cases); });
  EXPECT_EQ(err, "") << cases.size() << " cases";
}

// 20011 elements: every datatype with Sum and every op on int32/float32/bfloat16, with messages
// on both sides of the eager limit (16 KiB: 1-byte types go eager in pieces, 8-byte ones as RDMA
// writes into the receiver's buffer). Two ranks only: four ranks share the guest's two vCPUs and
// this many cases would dominate the guest run; they get the full matrix and the large cases.
TEST_P(VerbsCollectives, CrossSectionMidCount) {
  const int n = GetParam();
  if (n > 2) GTEST_SKIP() << "run at 2 ranks (guest time budget)";
  auto cases = crossSection(n, {20011});
  std::string err = runRanksOver(Wire::kVerbs, n, RankMode::kProcesses,
                                 [&](trellisComm_t c, int r, int k) { return runAll(c, r, k, cases); });
  EXPECT_EQ(err, "") << cases.size() << " cases";
}

// Large float32 buffers (4 MiB at 2 ranks, 1 MiB at 4): messages striped over the QPs (and both
// NICs), in place and out of place.
TEST_P(VerbsCollectives, LargeCountFloat32) {
  const int n = GetParam();
  const size_t count = (n == 2 ? size_t{1} << 20 : size_t{1} << 18) + 3;
  std::vector<Case> cases;
  for (CollKind k : {CollKind::kAllReduce, CollKind::kAllGather, CollKind::kBroadcast, CollKind::kSendRecv})
    for (bool inPlace : {false, true}) {
      if (inPlace && (k == CollKind::kSendRecv || k == CollKind::kBroadcast)) continue;
      cases.push_back({k, trellisFloat32, trellisSum, count, inPlace, n - 1});
    }
  std::string err = runRanksOver(Wire::kVerbs, n, RankMode::kProcesses,
                                 [&](trellisComm_t c, int r, int k) { return runAll(c, r, k, cases); });
  EXPECT_EQ(err, "") << cases.size() << " cases";
}

INSTANTIATE_TEST_SUITE_P(Ranks, VerbsCollectives, ::testing::Values(2, 4),
                         [](const ::testing::TestParamInfo<int>& i) { return "ranks" + std::to_string(i.param); });

}  // namespace
}  // namespace trellis::test
