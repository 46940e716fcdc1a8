// TRELLIS_CHECK=1: ranks calling mismatched collectives (kind, count, datatype, op, root, AlltoAllv
// pair counts) all return invalid usage with the same message naming both ranks' calls, within
// seconds, and the communicator stays usable (a correct AllReduce right after gives the right sum).
// Matching calls of every collective pass unchanged. Threads and processes, over shm and TCP.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "../support/harness.h"
#include "core/params.h"

namespace trellis::test {
namespace {

const int kEnvInit = (setenv("TRELLIS_TIMEOUT_S", "60", 0), 0);

using Call = std::function<trellisResult_t(trellisComm_t c, int rank, std::vector<char>& in, std::vector<char>& out)>;

// Every rank runs `call` and must get invalid usage whose message contains `expect`; then one
// correct AllReduce must succeed with the right result.
std::string expectMismatch(Wire wire, RankMode mode, const Call& call, const std::string& expect) {
  if (!findParam("TRELLIS_CHECK")->setOverride("1").isOk()) return "cannot set TRELLIS_CHECK";
  std::string err = runRanksOver(wire, 4, mode, [&](trellisComm_t c, int r, int n) -> std::string {
    std::vector<char> in(1 << 16, 1), out(static_cast<std::size_t>(n) << 16);
    auto t0 = std::chrono::steady_clock::now();
    trellisResult_t res = call(c, r, in, out);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string who = "rank " + std::to_string(r) + ": ";
    std::string msg = trellisGetLastError(c);
    if (res != trellisInvalidUsage) return who + "expected invalid usage, got " + trellisGetErrorString(res) + ": " + msg;
    if (msg.find(expect) == std::string::npos) return who + "message '" + msg + "' lacks '" + expect + "'";
    if (s > 10) return who + "the mismatch took " + std::to_string(s) + " s to report";
    trellisResult_t async = trellisSuccess;
    if (trellisCommGetAsyncError(c, &async) != trellisSuccess || async != trellisSuccess)
      return who + "the communicator entered an error state after a reported mismatch";
    std::vector<int32_t> a(1000, r + 1), b(1000, 0);
    if (trellisAllReduce(a.data(), b.data(), a.size(), trellisInt32, trellisSum, c, nullptr) != trellisSuccess)
      return who + "AllReduce after the mismatch failed: " + trellisGetLastError(c);
    for (int32_t v : b)
      if (v != n * (n + 1) / 2) return who + "AllReduce after the mismatch gave " + std::to_string(v);
    return "";
  }, 120);
  (void)findParam("TRELLIS_CHECK")->setOverride("");
  return err;
}

class CheckTest : public ::testing::TestWithParam<std::tuple<Wire, RankMode>> {
 protected:
  std::string run(const Call& call, const std::string& expect) {
    return expectMismatch(std::get<0>(GetParam()), std::get<1>(GetParam()), call, expect);
  }
};

TEST_P(CheckTest, Count) {
  EXPECT_EQ(run([](trellisComm_t c, int r, auto& in, auto& out) {
              return trellisAllReduce(in.data(), out.data(), r == 3 ? 1000 : 1024, trellisFloat32, trellisSum, c,
                                      nullptr);
            },
            "rank 0 called AllReduce(count=1024, float32, sum) but rank 3 called AllReduce(count=1000, float32, "
            "sum)"),
            "");
}

TEST_P(CheckTest, Datatype) {
  EXPECT_EQ(run([](trellisComm_t c, int r, auto& in, auto& out) {
              return trellisAllReduce(in.data(), out.data(), 64, r == 1 ? trellisFloat64 : trellisFloat32,
                                      trellisSum, c, nullptr);
            },
            "rank 0 called AllReduce(count=64, float32, sum) but rank 1 called AllReduce(count=64, float64, sum)"),
            "");
}

TEST_P(CheckTest, Op) {
  EXPECT_EQ(run([](trellisComm_t c, int r, auto& in, auto& out) {
              return trellisReduce(in.data(), out.data(), 64, trellisInt32, r == 2 ? trellisMax : trellisSum, 0, c,
                                   nullptr);
            },
            "rank 0 called Reduce(count=64, int32, sum, root=0) but rank 2 called Reduce(count=64, int32, max, "
            "root=0)"),
            "");
}

TEST_P(CheckTest, Root) {
  EXPECT_EQ(run([](trellisComm_t c, int r, auto& in, auto& out) {
              return trellisBroadcast(in.data(), out.data(), 64, trellisUint8, r >= 2 ? 1 : 0, c, nullptr);
            },
            "rank 0 called Broadcast(count=64, uint8, root=0) but rank 2 called Broadcast(count=64, uint8, root=1)"),
            "");
}

TEST_P(CheckTest, Collective) {
  EXPECT_EQ(run([](trellisComm_t c, int r, auto& in, auto& out) {
              if (r == 3) return trellisAllGather(in.data(), out.data(), 64, trellisFloat32, c, nullptr);
              return trellisAllReduce(in.data(), out.data(), 64, trellisFloat32, trellisSum, c, nullptr);
            },
            "rank 0 called AllReduce(count=64, float32, sum) but rank 3 called AllGather(sendcount=64, float32)"),
            "");
}

TEST_P(CheckTest, AlltoAllvCounts) {
  EXPECT_EQ(run([](trellisComm_t c, int r, auto& in, auto& out) {
              const int n = 4;
              std::vector<size_t> sc(n, 4), sd(n), rc(n, 4), rd(n);
              for (int p = 0; p < n; ++p) sd[p] = rd[p] = 8 * p;
              if (r == 2) rc[0] = 5;  // rank 2 expects 5 elements from rank 0, which sends 4
              return trellisAlltoAllv(in.data(), sc.data(), sd.data(), out.data(), rc.data(), rd.data(),
                                      trellisFloat32, c, nullptr);
            },
            "rank 0 sends rank 2 sendcounts[2]=4 elements but rank 2 expects recvcounts[0]=5 from it"),
            "");
}

INSTANTIATE_TEST_SUITE_P(Modes, CheckTest,
                         ::testing::Combine(::testing::Values(Wire::kShm, Wire::kTcp),
                                            ::testing::Values(RankMode::kThreads, RankMode::kProcesses)),
                         [](const auto& i) {
                           return std::string(wireName(std::get<0>(i.param))) + "_" + modeName(std::get<1>(i.param));
                         });

// Matching calls of every collective pass with TRELLIS_CHECK=1 and give the right results.
TEST(Check, MatchingCallsPass) {
  ASSERT_TRUE(findParam("TRELLIS_CHECK")->setOverride("1").isOk());
  std::string err = runRanksOver(Wire::kShm, 3, RankMode::kThreads, [](trellisComm_t c, int r, int n) -> std::string {
    std::string who = "rank " + std::to_string(r) + ": ";
    std::vector<int32_t> in(12 * n, r + 1), out(12 * n, -1);
    auto ok = [&](trellisResult_t res, const char* what) {
      return res == trellisSuccess ? std::string() : who + what + ": " + trellisGetLastError(c);
    };
    std::string e;
    for (int rep = 0; rep < 3 && e.empty(); ++rep) {
      e = ok(trellisAllReduce(in.data(), out.data(), 12, trellisInt32, trellisSum, c, nullptr), "AllReduce");
      if (e.empty() && out[11] != n * (n + 1) / 2) e = who + "AllReduce result " + std::to_string(out[11]);
      if (e.empty()) e = ok(trellisBroadcast(in.data(), out.data(), 12, trellisInt32, 1, c, nullptr), "Broadcast");
      if (e.empty() && out[0] != 2) e = who + "Broadcast result " + std::to_string(out[0]);
      if (e.empty()) e = ok(trellisReduce(in.data(), out.data(), 12, trellisInt32, trellisMax, 2, c, nullptr), "Reduce");
      if (e.empty()) e = ok(trellisAllGather(in.data(), out.data(), 12, trellisInt32, c, nullptr), "AllGather");
      if (e.empty() && out[12 * (n - 1)] != n) e = who + "AllGather result";
      if (e.empty())
        e = ok(trellisReduceScatter(in.data(), out.data(), 4, trellisInt32, trellisSum, c, nullptr), "ReduceScatter");
      if (e.empty()) e = ok(trellisAlltoAll(in.data(), out.data(), 4, trellisInt32, c, nullptr), "AlltoAll");
      std::vector<size_t> sc(n), sd(n), rc(n), rd(n);
      for (int p = 0; p < n; ++p) {  // rank r sends p+r+1 elements to rank p
        sc[p] = p + r + 1;
        rc[p] = r + p + 1;
        sd[p] = rd[p] = 12 * p;
      }
      if (e.empty())
        e = ok(trellisAlltoAllv(in.data(), sc.data(), sd.data(), out.data(), rc.data(), rd.data(), trellisInt32, c,
                                nullptr),
               "AlltoAllv");
      if (e.empty() && out[12 * (n - 1)] != n) e = who + "AlltoAllv result";
    }
    return e;
  });
  (void)findParam("TRELLIS_CHECK")->setOverride("");
  EXPECT_EQ(err, "");
}

// Ranks that disagree on TRELLIS_CHECK fail at creation, naming both settings (they would put
// different messages on the wire).
TEST(Check, DisagreementFailsAtInit) {
  setBeforeInitHook([](int rank) { (void)findParam("TRELLIS_CHECK")->setOverride(rank == 1 ? "1" : "0"); });
  std::string err = runRanks(3, RankMode::kProcesses, [](trellisComm_t, int, int) { return std::string(); }, 120);
  setBeforeInitHook(nullptr);
  EXPECT_NE(err.find("rank 0: init failed: invalid usage"), std::string::npos) << err;
  EXPECT_NE(err.find("rank 0 has TRELLIS_CHECK=0 but rank 1 has TRELLIS_CHECK=1"), std::string::npos) << err;
  EXPECT_NE(err.find("rank 1 has TRELLIS_CHECK=1 but rank 0 has TRELLIS_CHECK=0"), std::string::npos) << err;
}

}  // namespace
}  // namespace trellis::test
