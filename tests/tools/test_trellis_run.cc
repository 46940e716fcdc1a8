// trellis-run end to end: the environment each rank gets, output tagging with
// stdout and stderr kept apart, failure propagation (exit code, signal, the
// message naming the rank), --timeout, signal forwarding, and that no wait is
// unbounded (ranks ignoring SIGTERM, children holding the pipes).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <sched.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "proc.h"

namespace trellis::test {
namespace {

const std::string kRun = TRELLIS_RUN_PATH;

std::vector<std::string> launch(int n, const std::vector<std::string>& extra,
                                const std::string& script) {
  std::vector<std::string> argv = {kRun, "-n", std::to_string(n)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  for (const char* a : {"--", "/bin/sh", "-c"}) argv.push_back(a);
  argv.push_back(script);
  return argv;
}

TEST(TrellisRun, SetsTheEnvironmentOfEveryRank) {
  auto r = runProc(launch(3, {"--no-tag"},
                          "echo $TRELLIS_RANK $TRELLIS_WORLD_SIZE "
                          "$TRELLIS_LOCAL_RANK $TRELLIS_LOCAL_SIZE "
                          "$TRELLIS_UNIQUE_ID $TRELLIS_ROOT_ADDR"),
                   30);
  ASSERT_EQ(exitCode(r), 0) << r.err;
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 3u) << r.out;
  std::set<std::string> ranks, ids;
  const std::regex re(
      R"(^([0-9]+) 3 ([0-9]+) 3 ([0-9a-f]{256}) ([0-9.]+|\[[0-9a-f:]+\]):([0-9]+)$)");
  for (const auto& l : ls) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, re)) << l;
    EXPECT_EQ(m[1], m[2]) << "one machine: local rank == rank";
    ranks.insert(m[1]);
    ids.insert(m[3]);
    // The id starts with the magic "TRLS" and carries the root's port (network
    // order at byte 8).
    EXPECT_EQ(m[3].str().substr(0, 8), "54524c53");
    const int port = std::stoi(m[3].str().substr(16, 4), nullptr, 16);
    EXPECT_EQ(port, std::stoi(m[5])) << l;
    EXPECT_NE(port, 0);
  }
  EXPECT_EQ(ranks, (std::set<std::string>{"0", "1", "2"}));
  EXPECT_EQ(ids.size(), 1u) << "every rank gets the same id";
}

// --bind-to: "core" gives rank r the r-th CPU of the launcher's mask (round robin past the last),
// "none" leaves the mask alone, "auto" binds only when every rank gets a CPU of its own.
TEST(TrellisRun, BindsRanksToCores) {
  cpu_set_t mask;
  ASSERT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &mask)) cpus.push_back(c);
  const int ncpu = static_cast<int>(cpus.size());
  auto allowed = [&](int n, const std::string& bind) {
    auto r = runProc(launch(n, {"--no-tag", "--bind-to", bind},
                            "echo $TRELLIS_RANK $(grep Cpus_allowed_list /proc/self/status | cut -f2)"),
                     30);
    EXPECT_EQ(exitCode(r), 0) << r.err;
    std::map<int, std::string> out;
    for (const auto& l : lines(r.out)) out[std::stoi(l.substr(0, l.find(' ')))] = l.substr(l.find(' ') + 1);
    return out;
  };
  const int n = ncpu + 1;
  auto core = allowed(n, "core");
  ASSERT_EQ(core.size(), static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) EXPECT_EQ(core[r], std::to_string(cpus[r % ncpu])) << "rank " << r;
  auto none = allowed(2, "none");
  auto fresh = runProc({"/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status | cut -f2"}, 10);
  for (int r = 0; r < 2; ++r) EXPECT_EQ(none[r] + "\n", fresh.out) << "rank " << r;
  auto autoFit = allowed(ncpu, "auto");
  for (int r = 0; r < ncpu; ++r) EXPECT_EQ(autoFit[r], std::to_string(cpus[r])) << "rank " << r;
  auto autoOver = allowed(n, "auto");
  for (int r = 0; r < n; ++r) EXPECT_EQ(autoOver[r] + "\n", fresh.out) << "rank " << r;
  auto bad = runProc(launch(1, {"--bind-to", "socket"}, "true"), 10);
  EXPECT_NE(exitCode(bad), 0);
}

TEST(TrellisRun, TagsLinesAndKeepsStdoutAndStderrApart) {
  auto r = runProc(launch(2, {},
                          "echo out$TRELLIS_RANK; echo err$TRELLIS_RANK >&2; "
                          "printf tail$TRELLIS_RANK"),
                   30);
  ASSERT_EQ(exitCode(r), 0) << r.err;
  auto out = lines(r.out), err = lines(r.err);
  std::sort(out.begin(), out.end());
  std::sort(err.begin(), err.end());
  // A last line without a newline is still delivered, tagged, whole.
  EXPECT_EQ(out, (std::vector<std::string>{"[0] out0", "[0] tail0", "[1] out1", "[1] tail1"}));
  EXPECT_EQ(err, (std::vector<std::string>{"[0] err0", "[1] err1"}));
}

TEST(TrellisRun, TagOutputFlagAndNoTag) {
  auto tagged = runProc(launch(1, {"--tag-output"}, "echo hi"), 30);
  EXPECT_EQ(tagged.out, "[0] hi\n");
  auto plain = runProc(launch(1, {"--no-tag"}, "echo hi"), 30);
  EXPECT_EQ(plain.out, "hi\n");
  auto both = runProc(launch(1, {"--no-tag", "--tag-output"}, "echo hi"), 30);
  EXPECT_NE(exitCode(both), 0);
}

TEST(TrellisRun, FailingRankStopsTheOthersQuickly) {
  auto r = runProc(launch(3, {}, "if [ $TRELLIS_RANK = 1 ]; then exit 3; fi; exec sleep 60"), 30);
  EXPECT_EQ(exitCode(r), 3) << r.err;
  EXPECT_LT(r.seconds, 10);
  EXPECT_NE(r.err.find("rank 1 exited with code 3"), std::string::npos) << r.err;
}

TEST(TrellisRun, RankKilledBySignalIsReported) {
  auto r =
      runProc(launch(2, {}, "if [ $TRELLIS_RANK = 0 ]; then kill -9 $$; fi; exec sleep 60"), 30);
  EXPECT_EQ(exitCode(r), 128 + SIGKILL) << r.err;
  EXPECT_LT(r.seconds, 10);
  EXPECT_NE(r.err.find("rank 0 was killed by signal 9"), std::string::npos) << r.err;
}

TEST(TrellisRun, RanksIgnoringSigtermAreKilledAfterGrace) {
  // Rank 1 fails only once rank 0 ignores SIGTERM (it says so with a marker file; rank 1 polls
  // for it, boundedly), so the launcher must fall back to SIGKILL after its 2 s grace.
  char dir[] = "/tmp/trellis-run-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string marker = std::string(dir) + "/ignoring";
  auto r = runProc(launch(2, {},
                          "trap '' TERM; if [ $TRELLIS_RANK = 1 ]; then i=0; while [ ! -e " +
                              marker +
                              " ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; exit 5; "
                              "fi; touch " +
                              marker + "; sleep 60; sleep 60"),
                   30);
  unlink(marker.c_str());
  rmdir(dir);
  EXPECT_EQ(exitCode(r), 5) << r.err;
  EXPECT_GE(r.seconds, 1.5) << "SIGKILL only after the 2 s grace";
  EXPECT_LT(r.seconds, 10);
}

TEST(TrellisRun, TimeoutKillsEverythingWith124) {
  auto r = runProc(launch(2, {"--timeout", "1"}, "exec sleep 60"), 30);
  EXPECT_EQ(exitCode(r), 124) << r.err;
  EXPECT_LT(r.seconds, 8);
  EXPECT_NE(r.err.find("timeout"), std::string::npos) << r.err;
}

TEST(TrellisRun, ForwardsSigtermToTheRanks) {
  Proc p(launch(2, {},
                "trap 'echo got-term; exit 7' TERM; echo ready; while :; do "
                "sleep 0.1; done"));
  ASSERT_TRUE(p.waitForLines("ready", 2, 20));
  kill(p.pid(), SIGTERM);
  auto r = p.finish(20);
  EXPECT_NE(exitCode(r), 0);
  EXPECT_NE(exitCode(r), -1);
  EXPECT_NE(r.out.find("[0] got-term"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[1] got-term"), std::string::npos) << r.out;
}

TEST(TrellisRun, ChildHoldingThePipeDoesNotHangTheLauncher) {
  auto r = runProc(launch(1, {}, "sleep 60 & echo started"), 30);
  EXPECT_EQ(exitCode(r), 0) << r.err;
  EXPECT_EQ(r.out, "[0] started\n");
  EXPECT_LT(r.seconds, 10);
}

TEST(TrellisRun, OnlyRankZeroReadsStdin) {
  // The test's stdin is whatever ctest gives; rank 0 sees it only when it is not a terminal, and
  // every other rank reads /dev/null (never blocks, never stops on a terminal read).
  auto r = runProc(launch(3, {"--no-tag"},
                          "if [ $TRELLIS_RANK != 0 ]; then n=$(wc -c); echo r$TRELLIS_RANK=$n; fi"),
                   30);
  ASSERT_EQ(exitCode(r), 0) << r.err;
  auto ls = lines(r.out);
  std::sort(ls.begin(), ls.end());
  EXPECT_EQ(ls, (std::vector<std::string>{"r1=0", "r2=0"}));
}

TEST(TrellisRun, ProgramThatCannotRun) {
  auto r = runProc({kRun, "-n", "2", "/nonexistent/program"}, 30);
  EXPECT_EQ(exitCode(r), 127);
  EXPECT_NE(r.err.find("cannot run '/nonexistent/program'"), std::string::npos) << r.err;
  auto none = runProc({kRun, "-n", "2"}, 30);
  EXPECT_EQ(exitCode(none), 2);
}

TEST(TrellisRun, ProgramOptionsAreNotTakenByTheLauncher) {
  // Without "--": the program starts at the first word that is not a launcher
  // option.
  auto r =
      runProc({kRun, "-n", "2", "--no-tag", "/bin/sh", "-c", "echo -n x$TRELLIS_RANK; echo"}, 30);
  ASSERT_EQ(exitCode(r), 0) << r.err;
  auto ls = lines(r.out);
  std::sort(ls.begin(), ls.end());
  EXPECT_EQ(ls, (std::vector<std::string>{"x0", "x1"}));
}

}  // namespace
}  // namespace trellis::test
