// The collective correctness suite over the verbs transport (TRELLIS_TRANSPORT=verbs: every pair of
// ranks on RC queue pairs), ranks as processes, checked against the double-precision reference.
// Needs an RDMA device: run through tests/rdma/qemu_guest.sh (Soft-RoCE in a qemu guest).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "../collectives/cases.h"
#include "../support/harness.h"
#include "api/comm.h"
#include "transport/verbs/device.h"
#include "transport/verbs/verbs_transport.h"

namespace trellis::test {
namespace {

const int kEnvInit =
    (setenv("TRELLIS_TIMEOUT_S", "60", 0), setenv("TRELLIS_BOOTSTRAP_TIMEOUT_S", "60", 0), 0);

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
  auto cases =
      fullMatrix(n, n == 2 ? std::vector<size_t>{0, 1, 7, 1023} : std::vector<size_t>{1, 1023});
  std::string err =
      runRanksOver(Wire::kVerbs, n, RankMode::kProcesses,
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
  std::string err =
      runRanksOver(Wire::kVerbs, n, RankMode::kProcesses,
                   [&](trellisComm_t c, int r, int k) { return runAll(c, r, k, cases); });
  EXPECT_EQ(err, "") << cases.size() << " cases";
}

// Large float32 buffers (4 MiB at 2 ranks, 1 MiB at 4): messages striped over the QPs (and both
// NICs), in place and out of place.
TEST_P(VerbsCollectives, LargeCountFloat32) {
  const int n = GetParam();
  const size_t count = (n == 2 ? size_t{1} << 20 : size_t{1} << 18) + 3;
  std::vector<Case> cases;
  for (CollKind k :
       {CollKind::kAllReduce, CollKind::kAllGather, CollKind::kBroadcast, CollKind::kSendRecv})
    for (bool inPlace : {false, true}) {
      if (inPlace && (k == CollKind::kSendRecv || k == CollKind::kBroadcast)) continue;
      cases.push_back({k, trellisFloat32, trellisSum, count, inPlace, n - 1});
    }
  std::string err =
      runRanksOver(Wire::kVerbs, n, RankMode::kProcesses,
                   [&](trellisComm_t c, int r, int k) { return runAll(c, r, k, cases); });
  EXPECT_EQ(err, "") << cases.size() << " cases";
}

// trellisCommRegister over verbs: AllReduce and AllGather on registered buffers over three calls
// take every registration from the pinned regions (no registration after trellisCommRegister),
// results are exact, trellisCommDeregister releases the pins, and unregistered buffers go back to
// per-call registrations.
TEST_P(VerbsCollectives, RegisteredBuffersKeepTheirRegistrations) {
  const int n = GetParam();
  if (n > 2) GTEST_SKIP() << "run at 2 ranks (guest time budget)";
  std::string err = runRanksOver(Wire::kVerbs, n, RankMode::kProcesses, [](trellisComm_t c, int rank, int n) -> std::string {
    transport::VerbsTransport* v = nullptr;
    for (transport::Transport* t : c->transports())
      if (std::string(t->name()) == "verbs") v = dynamic_cast<transport::VerbsTransport*>(t);
    if (v == nullptr) return "no verbs transport";
    const size_t count = (size_t{1} << 20) + 5;  // 4 MiB of int32: RDMA writes, striped
    std::vector<int32_t> send(count), recv(count * n);
    void *hs = nullptr, *hr = nullptr;
    if (trellisCommRegister(c, send.data(), send.size() * 4, &hs) != trellisSuccess ||
        trellisCommRegister(c, recv.data(), recv.size() * 4, &hr) != trellisSuccess)
      return std::string("register: ") + trellisGetLastError(c);
    const auto st0 = v->cacheStats();
    auto fill = [&](int call) {
      for (size_t i = 0; i < count; ++i) send[i] = static_cast<int32_t>(i * 3 + rank * 1000 + call);
    };
    auto checkAllReduce = [&](int call) -> std::string {
      for (size_t i = 0; i < count; ++i) {
        int64_t want = 0;
        for (int r = 0; r < n; ++r) want += static_cast<int64_t>(i * 3 + r * 1000 + call);
        if (recv[i] != static_cast<int32_t>(want))
          return "allreduce call " + std::to_string(call) + ": element " + std::to_string(i) + " is " +
                 std::to_string(recv[i]) + ", expected " + std::to_string(want);
      }
      return "";
    };
    constexpr int kWith = 3, kWithout = 2;  // calls with the buffers registered, and after
    uint64_t regsAfterFirst = 0;
    for (int call = 0; call < kWith; ++call) {
      if (call == 1) regsAfterFirst = v->cacheStats().registrations;
      fill(call);
      if (trellisAllReduce(send.data(), recv.data(), count, trellisInt32, trellisSum, c, nullptr) != trellisSuccess)
        return std::string("allreduce: ") + trellisGetLastError(c);
      std::string e = checkAllReduce(call);
      if (!e.empty()) return e;
      if (trellisAllGather(send.data(), recv.data(), count, trellisInt32, c, nullptr) != trellisSuccess)
        return std::string("allgather: ") + trellisGetLastError(c);
      for (int r = 0; r < n; ++r)
        for (size_t i = 0; i < count; ++i)
          if (recv[r * count + i] != static_cast<int32_t>(i * 3 + r * 1000 + call))
            return "allgather call " + std::to_string(call) + ": rank " + std::to_string(r) + " element " +
                   std::to_string(i);
    }
    const auto st1 = v->cacheStats();
    // Every transfer from or into the user's buffers is a pinned hit (the algorithms' scratch
    // memory is pinned by the communicator too).
    if (st1.pinnedHits == st0.pinnedHits) return "no pinned hit over 6 calls";
    // Once the first calls have sized the scratch memory, later calls register nothing at all.
    if (st1.registrations != regsAfterFirst)
      return std::to_string(st1.registrations - regsAfterFirst) +
             " registration(s) in calls 2-3 on registered buffers (expected none)";
    // Without the pins (below) the same calls register the user's buffers again.
    const uint64_t regsWith = st1.registrations - st0.registrations;
    // The two buffers' pins go (one per NIC each); the communicator's scratch memory keeps its own.
    const std::string devs = v->devices();
    const size_t nics = static_cast<size_t>(std::count(devs.begin(), devs.end(), ',')) + 1;
    const size_t pinsBefore = v->cacheStats().pinned;
    if (trellisCommDeregister(c, hs) != trellisSuccess || trellisCommDeregister(c, hr) != trellisSuccess)
      return std::string("deregister: ") + trellisGetLastError(c);
    if (pinsBefore - v->cacheStats().pinned != 2 * nics)
      return "trellisCommDeregister released " + std::to_string(pinsBefore - v->cacheStats().pinned) +
             " pins, expected " + std::to_string(2 * nics);
    const auto st2 = v->cacheStats();
    for (int call = 0; call < kWithout; ++call) {
      fill(call);
      if (trellisAllReduce(send.data(), recv.data(), count, trellisInt32, trellisSum, c, nullptr) != trellisSuccess)
        return std::string("allreduce after deregister: ") + trellisGetLastError(c);
      std::string e = checkAllReduce(call);
      if (!e.empty()) return "after deregister: " + e;
      if (trellisAllGather(send.data(), recv.data(), count, trellisInt32, c, nullptr) != trellisSuccess)
        return std::string("allgather after deregister: ") + trellisGetLastError(c);
    }
    const auto st3 = v->cacheStats();
    const uint64_t regsWithout = st3.registrations - st2.registrations;
    // (Pinned hits go on: the scratch memory's.) Each call now registers the user's buffers.
    if (regsWithout < static_cast<uint64_t>(kWithout))
      return std::to_string(regsWithout) + " registrations in " + std::to_string(kWithout) +
             " calls on deregistered buffers";
    // Per call, the registered buffers need fewer registrations (only the algorithms' scratch).
    if (regsWithout * kWith <= regsWith * kWithout)
      return "registrations with pins " + std::to_string(regsWith) + " in " + std::to_string(kWith) +
             " calls, without " + std::to_string(regsWithout) + " in " + std::to_string(kWithout) +
             ": the pins saved nothing";
    std::printf("rank %d: %d AllReduce+AllGather calls on registered buffers: %lu registrations, %lu pinned hits; "
                "%d unregistered: %lu registrations\n",
                rank, kWith, static_cast<unsigned long>(regsWith),
                static_cast<unsigned long>(st1.pinnedHits - st0.pinnedHits), kWithout,
                static_cast<unsigned long>(regsWithout));
    return "";
  });
  EXPECT_EQ(err, "");
}

INSTANTIATE_TEST_SUITE_P(Ranks, VerbsCollectives, ::testing::Values(2, 4),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "ranks" + std::to_string(i.param);
                         });

}  // namespace
}  // namespace trellis::test
