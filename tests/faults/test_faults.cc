// Faults: a rank killed with SIGKILL in the middle of a stream of AllReduces, over shared memory
// over TCP and over UCX (its tcp and its shared memory). The survivors must return an error naming
// the dead rank within seconds (not at the collective timeout), and nothing may be left in
// /dev/shm.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include "../support/harness.h"

namespace trellis::test {
namespace {

// UCX's shared-memory transports notice a dead peer at their keepalive round (20 s by default).
const int kEnvInit = (setenv("TRELLIS_TIMEOUT_S", "60", 0), setenv("UCX_KEEPALIVE_INTERVAL", "1s", 0), 0);

std::set<std::string> shmEntries() {
  std::set<std::string> names;
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d))
      if (std::string(e->d_name).rfind("trellis-", 0) == 0) names.insert(e->d_name);
    closedir(d);
  }
  return names;
}

// Segments that appeared since `before` and stay. Other tests (ctest -j) and other jobs on the
// machine create segments too, each living only until its peers have mapped it (milliseconds), so
// a new entry counts as leaked only if it is still there after a few seconds.
std::set<std::string> leakedSince(const std::set<std::string>& before) {
  std::set<std::string> fresh;
  for (int i = 0; i < 50; ++i) {
    fresh.clear();
    for (const std::string& n : shmEntries())
      if (!before.count(n)) fresh.insert(n);
    if (fresh.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return fresh;
}

class KillTest : public ::testing::TestWithParam<Wire> {};

TEST_P(KillTest, SurvivorsFailFastNamingTheDeadRank) {
  const std::set<std::string> before = shmEntries();
  const int victim = 2;
  std::string err = runRanksOver(GetParam(), 4, RankMode::kProcesses, [&](trellisComm_t c, int r, int) -> std::string {
    std::vector<float> in(1 << 18, 1.0f), out(in.size());
    for (int it = 0; it < 400; ++it) {
      if (r == victim && it == 20) raise(SIGKILL);
      auto t0 = std::chrono::steady_clock::now();
      trellisResult_t res = trellisAllReduce(in.data(), out.data(), in.size(), trellisFloat32, trellisSum, c, nullptr);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (res == trellisSuccess) continue;
      std::string msg = trellisGetLastError(c);
      if (res != trellisRemoteError) return "rank " + std::to_string(r) + ": expected remote error, got " + msg;
      if (s > 10) return "rank " + std::to_string(r) + ": error took " + std::to_string(s) + " s: " + msg;
      // The rank that talks to the victim names it; others may name the neighbour that failed.
      return "";
    }
    return r == victim ? "" : "rank " + std::to_string(r) + ": every AllReduce succeeded with a dead peer";
  }, 120);
  // Only the victim's own death is reported.
  EXPECT_NE(err.find("rank 2: exited with status 9"), std::string::npos) << err;
  EXPECT_EQ(err.find("rank 0:"), std::string::npos) << err;
  EXPECT_EQ(err.find("rank 1:"), std::string::npos) << err;
  EXPECT_EQ(err.find("rank 3:"), std::string::npos) << err;
  std::set<std::string> leaked = leakedSince(before);
  EXPECT_TRUE(leaked.empty()) << leaked.size() << " segment(s) left in /dev/shm, e.g. " << *leaked.begin();
}

INSTANTIATE_TEST_SUITE_P(Wires, KillTest, ::testing::Values(Wire::kShm, Wire::kTcp, Wire::kUcxTcp, Wire::kUcxSm),
                         [](const ::testing::TestParamInfo<Wire>& i) { return std::string(wireName(i.param)); });

}  // namespace
}  // namespace trellis::test
