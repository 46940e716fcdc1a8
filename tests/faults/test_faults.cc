// Faults: a rank killed with SIGKILL in the middle of a stream of AllReduces, over shared memory
// over TCP and over UCX (its tcp and its shared memory). The survivors must return an error naming
// the dead rank within seconds (not at the collective timeout), and nothing may be left in
// /dev/shm.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <thread>
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

int countEntries(const char* dir) {
  int n = 0;
  if (DIR* d = opendir(dir)) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

int gFdsBefore = -1, gThreadsBefore = -1;  // per rank process, taken just before init

// Randomized kills: TRELLIS_FAULT_ITERS iterations (default 4 here; scripts/faults.sh runs 50),
// each with a random wire (shm or TCP), victim, collective (AllReduce, AlltoAll, Broadcast with a
// random root), message size and kill point: the victim kills itself with SIGKILL at a random
// iteration, from a timer thread a random number of microseconds into that call (mid-transfer).
// Every survivor must return remote error within 10 s of the call that failed, and after its
// trellisCommDestroy have exactly the fds and threads it had before trellisCommInitRank; nothing
// may be left in /dev/shm.
TEST(KillLoop, Randomized) {
  const char* itersEnv = std::getenv("TRELLIS_FAULT_ITERS");
  const char* seedEnv = std::getenv("TRELLIS_FAULT_SEED");
  const int iters = itersEnv ? std::atoi(itersEnv) : 4;
  const uint64_t seed = seedEnv ? std::strtoull(seedEnv, nullptr, 0) : 4242;
  std::mt19937_64 rng(seed);
  setBeforeInitHook([](int) {
    // A sanitizer runtime may start a helper thread at a process's first thread creation
    // (ThreadSanitizer's background thread): create one first so that it is counted before too.
    std::thread([] {}).join();
    gFdsBefore = countEntries("/proc/self/fd");
    gThreadsBefore = countEntries("/proc/self/task");
  });
  setAfterDestroyHook([](int r) -> std::string {
    int fds = countEntries("/proc/self/fd"), threads = countEntries("/proc/self/task");
    if (fds != gFdsBefore || threads != gThreadsBefore)
      return "rank " + std::to_string(r) + ": after destroy " + std::to_string(fds) + " fds and " +
             std::to_string(threads) + " threads, before init " + std::to_string(gFdsBefore) + " and " +
             std::to_string(gThreadsBefore);
    return "";
  });
  const char* kColls[] = {"AllReduce", "AlltoAll", "Broadcast"};
  double worst = 0;
  for (int i = 0; i < iters; ++i) {
    const Wire wire = rng() % 2 ? Wire::kTcp : Wire::kShm;
    const int victim = static_cast<int>(rng() % 4), coll = static_cast<int>(rng() % 3);
    const int root = static_cast<int>(rng() % 4), killAt = static_cast<int>(rng() % 12);
    const int delayUs = static_cast<int>(rng() % 3000);
    const size_t count = size_t{256} << (rng() % 11);  // 1 KiB .. 1 MiB of floats per rank
    std::string what = "iteration " + std::to_string(i) + ": " + kColls[coll] + " of " + std::to_string(count) +
                       " floats over " + wireName(wire) + ", rank " + std::to_string(victim) + " killed " +
                       std::to_string(delayUs) + " us into call " + std::to_string(killAt);
    const std::set<std::string> before = shmEntries();
    std::fflush(stdout);  // or the forked ranks would print this process's buffered lines again
    auto t0 = std::chrono::steady_clock::now();
    std::string err = runRanksOver(wire, 4, RankMode::kProcesses, [&](trellisComm_t c, int r, int n) -> std::string {
      std::vector<float> in(count * n, 1.0f), out(count * n);
      // The victim calls until its timer kills it; survivors until they see the error (or 60 s).
      auto start = std::chrono::steady_clock::now();
      for (int it = 0; r == victim || std::chrono::steady_clock::now() - start < std::chrono::seconds(60); ++it) {
        if (r == victim && it == killAt) {
          std::thread([delayUs] {
            usleep(delayUs);
            raise(SIGKILL);
          }).detach();
        }
        auto c0 = std::chrono::steady_clock::now();
        trellisResult_t res = coll == 0   ? trellisAllReduce(in.data(), out.data(), count, trellisFloat32, trellisSum, c, nullptr)
                              : coll == 1 ? trellisAlltoAll(in.data(), out.data(), count, trellisFloat32, c, nullptr)
                                          : trellisBroadcast(in.data(), out.data(), count, trellisFloat32, root, c, nullptr);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
        if (res == trellisSuccess) continue;
        std::string msg = trellisGetLastError(c);
        if (res != trellisRemoteError) return "rank " + std::to_string(r) + ": expected remote error, got " + msg;
        if (s > 10) return "rank " + std::to_string(r) + ": the error took " + std::to_string(s) + " s: " + msg;
        std::printf("  rank %d: remote error after %.3f s: %s\n", r, s, msg.c_str());
        std::fflush(stdout);  // a forked rank leaves with _exit
        return "";
      }
      return "rank " + std::to_string(r) + ": every call for 60 s succeeded with a dead peer";
    }, 120);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    worst = std::max(worst, secs);
    std::printf("%s: %.2f s\n", what.c_str(), secs);
    std::string expect = "rank " + std::to_string(victim) + ": exited with status 9\n";
    EXPECT_EQ(err, expect) << what;
    std::set<std::string> leaked = leakedSince(before);
    EXPECT_TRUE(leaked.empty()) << what << ": " << leaked.size() << " segment(s) left in /dev/shm";
    if (err != expect) break;
  }
  setBeforeInitHook(nullptr);
  setAfterDestroyHook(nullptr);
  std::printf("%d randomized kills (seed %llu), slowest job %.2f s\n", iters, static_cast<unsigned long long>(seed),
              worst);
}

INSTANTIATE_TEST_SUITE_P(Wires, KillTest, ::testing::Values(Wire::kShm, Wire::kTcp, Wire::kUcxTcp, Wire::kUcxSm),
                         [](const ::testing::TestParamInfo<Wire>& i) { return std::string(wireName(i.param)); });

}  // namespace
}  // namespace trellis::test
