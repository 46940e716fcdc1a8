// trellis-bench: the nccl-tests format (unit tests of the formatting and option
// code), and end to end runs under trellis-run (and mpirun when built with MPI)
// whose every output line must parse as nccl-tests output, with #wrong 0, the
// footers, and a JSON file holding every row. The check must catch wrong values
// (--debug-corrupt) and peers must report datatypes they lack as skipped.
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "format.h"
#include "options.h"
#include "proc.h"

namespace trellis::test {
namespace {

using namespace trellis::bench;
const std::string kRun = TRELLIS_RUN_PATH, kBench = TRELLIS_BENCH_PATH;

TEST(BenchFormat, CellsShrinkLikeNcclTests) {
  EXPECT_EQ(cell(1.234, 7), "1.23");
  EXPECT_EQ(cell(12345.678, 7), "12345.7");
  EXPECT_EQ(cell(123456.7, 7), "123457");
  EXPECT_EQ(cell(12345678.9, 7), "1.2e+07");
  EXPECT_EQ(cell(0, 6), "0.00");
}

TEST(BenchFormat, RowWidthsAndNa) {
  const std::string lead = rowLead(1048576, 262144, "float", "sum", -1);
  EXPECT_EQ(lead, "     1048576        262144     float     sum      -1");
  EXPECT_EQ(rowGroup(12.5, 83.89, 167.77, 0), "    12.50   83.89  167.77       0");
  EXPECT_EQ(rowGroup(12.5, 83.89, 167.77, -1), "    12.50   83.89  167.77     N/A");
  EXPECT_EQ(rowGroupNa(), "      N/A     N/A     N/A     N/A");
  EXPECT_EQ(footer(0, 1.5), "# Out of bounds values : 0 OK\n# Avg bus bandwidth    : 1.50 \n#\n");
  EXPECT_NE(footer(3, 0).find(": 3 FAILED"), std::string::npos);
  const std::string h = columnHeader();
  EXPECT_NE(h.find("#       size         count      type   redop    root     "
                   "time   algbw   busbw "
                   "#wrong     time   algbw   busbw #wrong\n"),
            std::string::npos);
}

TEST(BenchFormat, BusFactorsAndCounts) {
  EXPECT_DOUBLE_EQ(busFactor(Coll::kAllReduce, 4), 1.5);
  EXPECT_DOUBLE_EQ(busFactor(Coll::kAllGather, 4), 0.75);
  EXPECT_DOUBLE_EQ(busFactor(Coll::kReduceScatter, 4), 0.75);
  EXPECT_DOUBLE_EQ(busFactor(Coll::kAlltoAll, 4), 0.75);
  EXPECT_DOUBLE_EQ(busFactor(Coll::kBroadcast, 4), 1);
  EXPECT_DOUBLE_EQ(busFactor(Coll::kReduce, 4), 1);
  EXPECT_DOUBLE_EQ(busFactor(Coll::kSendRecv, 4), 1);
  Counts k = countsFor(Coll::kAllGather, 100, 4, 3);  // 25 floats -> 8 per rank
  EXPECT_EQ(k.param, 8u);
  EXPECT_EQ(k.elems, 24u);
  EXPECT_EQ(k.sizeBytes, 96u);
  k = countsFor(Coll::kAllReduce, 100, 8, 3);
  EXPECT_EQ(k.param, 12u);
  EXPECT_EQ(k.sizeBytes, 96u);
}

TEST(BenchOptions, SizesListsAndSweep) {
  size_t v = 0;
  EXPECT_TRUE(parseSize("64M", &v));
  EXPECT_EQ(v, 64u << 20);
  EXPECT_TRUE(parseSize("1G", &v));
  EXPECT_EQ(v, 1u << 30);
  EXPECT_TRUE(parseSize("8", &v));
  EXPECT_EQ(v, 8u);
  EXPECT_FALSE(parseSize("12Q", &v));
  EXPECT_FALSE(parseSize("", &v));
  std::vector<Coll> cs;
  EXPECT_EQ(parseCollList("all", &cs), "");
  EXPECT_EQ(cs.size(), 7u);
  EXPECT_EQ(parseCollList("alltoall,sendrecv", &cs), "");
  EXPECT_EQ(cs, (std::vector<Coll>{Coll::kAlltoAll, Coll::kSendRecv}));
  EXPECT_NE(parseCollList("allreduc", &cs), "");
  Config cfg;
  cfg.minBytes = 8;
  cfg.maxBytes = 64 << 20;
  cfg.factor = 4;
  auto sizes = sweepSizes(cfg);
  EXPECT_EQ(sizes.front(), 8u);
  EXPECT_EQ(sizes.back(), 32u << 20);
  EXPECT_EQ(sizes.size(), 12u);
  cfg.factor = 0;
  cfg.minBytes = 0;
  cfg.maxBytes = 3;
  cfg.stepBytes = 1;
  EXPECT_EQ(sweepSizes(cfg), (std::vector<size_t>{0, 1, 2, 3}));
}

// Every line is a comment/preamble line or a row of the exact nccl-tests shape;
// returns the rows.
std::vector<std::string> checkNcclFormat(const std::string& out, int nranks) {
  const std::regex row(
      R"( *[0-9]+  +[0-9]+  +[a-z0-9]+  +[a-z]+  +-?[0-9]+)"
      R"((  +[0-9.e+]+  +[0-9.e+]+  +[0-9.e+]+  +([0-9]+|N/A)|      N/A     N/A     N/A     N/A){2})");
  std::vector<std::string> rows;
  int rankLines = 0, footers = 0;
  for (const auto& l : lines(out)) {
    if (l.rfind("#", 0) == 0) {
      rankLines += l.rfind("#  Rank ", 0) == 0 && l.find(" device -1 [cpu] ") != std::string::npos;
      footers += l == "# Out of bounds values : 0 OK";
      footers += l.rfind("# Avg bus bandwidth    : ", 0) == 0;
      continue;
    }
    EXPECT_TRUE(std::regex_match(l, row)) << "not an nccl-tests row: '" << l << "'";
    EXPECT_EQ(l.size(), 118u) << l;  // 52 columns of lead + 2 x 33 (no number overflowed here)
    rows.push_back(l);
  }
  EXPECT_EQ(rankLines, nranks);
  EXPECT_EQ(footers, 2);
  return rows;
}

std::vector<std::string> benchArgs(const std::string& json) {
  return {kBench, "--op-name", "all", "-b", "8",  "-e", "64K", "-f", "8",
          "-c",   "1",         "-n",  "2",  "-w", "1",  "-J",  json};
}

void checkJson(const std::string& path, size_t rows, const std::string& impl) {
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << path;
  auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j["impl"], impl);
  EXPECT_EQ(j["wrong_total"], 0);
  size_t timed = 0;
  for (const auto& r : j["rows"]) {
    if (r.contains("skipped")) continue;
    ++timed;
    EXPECT_EQ(r["outofplace"]["wrong"], 0) << r.dump();
    EXPECT_GT(r["outofplace"]["time_us"].get<double>(), 0) << r.dump();
  }
  EXPECT_EQ(timed, rows);
}

TEST(BenchRun, TrellisEveryCollectiveMatchesTheFormat) {
  const std::string json = ::testing::TempDir() + "bench_trellis.json";
  std::vector<std::string> argv = {kRun, "-n", "3", "--no-tag", "--timeout", "120"};
  for (const auto& a : benchArgs(json)) argv.push_back(a);
  auto r = runProc(argv, 150);
  ASSERT_EQ(exitCode(r), 0) << r.out << r.err;
  auto rows = checkNcclFormat(r.out, 3);
  EXPECT_EQ(rows.size(), 7u * 5);  // 8, 64, 512, 4096, 32768 B per collective
  for (const auto& l : rows) {
    EXPECT_EQ(l.find("sum      -1") != std::string::npos || l.find("none") != std::string::npos ||
                  l.find("sum       0") != std::string::npos,
              true)
        << l;
  }
  checkJson(json, rows.size(), "trellis");
}

// Whether a communicator's ranks wait by spinning or by yielding and sleeping depends on how many
// cores its host's ranks share: the union of their affinity masks, not each rank's own (ranks
// pinned one per core each see one CPU). The decision is logged at info.
TEST(BenchRun, RanksPinnedToTheirOwnCoresSpin) {
  cpu_set_t mask;
  ASSERT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0);
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE && first < 0; ++c)
    if (CPU_ISSET(c, &mask)) first = c;
  if (CPU_COUNT(&mask) < 2) GTEST_SKIP() << "needs 2 CPUs, this process may use " << CPU_COUNT(&mask);
  auto shares = [&](std::vector<std::string> pre, int n, const std::string& bind) {
    std::vector<std::string> argv = {"env", "TRELLIS_DEBUG=info", "TRELLIS_DEBUG_SUBSYS=init"};
    argv.insert(argv.end(), pre.begin(), pre.end());
    for (const std::string& a : {kRun, std::string("-n"), std::to_string(n), std::string("--bind-to"), bind,
                                 std::string("--timeout"), std::string("60"), kBench, std::string("-b"),
                                 std::string("8"), std::string("-e"), std::string("8"), std::string("-n"),
                                 std::string("2"), std::string("-c"), std::string("1")})
      argv.push_back(a);
    auto r = runProc(argv, 90);
    EXPECT_EQ(exitCode(r), 0) << r.out << r.err;
    std::smatch m;
    const std::string all = r.out + r.err;
    return std::regex_search(all, m, std::regex("rank 0: ([0-9]+) ranks on this host share ([0-9]+) cores"))
               ? m[1].str() + " on " + m[2].str()
               : std::string("spin");
  };
  EXPECT_EQ(shares({}, 2, "core"), "spin");  // one CPU each
  EXPECT_EQ(shares({"taskset", "-c", std::to_string(first)}, 2, "none"), "2 on 1");  // both on one CPU
  const int over = CPU_COUNT(&mask) + 1;
  EXPECT_EQ(shares({}, over, "core"), std::to_string(over) + " on " + std::to_string(CPU_COUNT(&mask)));
}

TEST(BenchRun, CheckCatchesWrongValues) {
  std::vector<std::string> argv = {
      kRun, "-n", "2",  "--no-tag", "--timeout", "60", kBench, "--op-name", "allreduce,alltoall",
      "-b", "64", "-e", "64",       "-n",        "1",  "-w",   "0",         "--debug-corrupt",
      "3"};
  auto r = runProc(argv, 90);
  EXPECT_EQ(exitCode(r), 3) << r.out << r.err;
  EXPECT_NE(r.out.find("# Out of bounds values : 9 FAILED"), std::string::npos) << r.out;
}

TEST(BenchRun, BadArgumentsAreRejected) {
  EXPECT_EQ(exitCode(runProc({kBench, "--op-name", "allreduc"}, 30)), 2);
  EXPECT_EQ(exitCode(runProc({kBench, "-b", "1Q"}, 30)), 2);
  EXPECT_EQ(exitCode(runProc({kBench, "-d", "float8"}, 30)), 2);
  auto help = runProc({kBench, "--help"}, 30);
  EXPECT_EQ(exitCode(help), 0);
  EXPECT_NE(help.out.find("--op-name"), std::string::npos);
}

TEST(BenchRun, RootsAllAndAverageModes) {
  // -r all: one row per root for broadcast/reduce; -a 0/2/3 accepted; -m
  // aggregates.
  for (const char* avg : {"0", "2", "3"}) {
    auto r = runProc(
        {kRun, "-n",  "3",  "--no-tag", "--timeout", "60", kBench, "--op-name", "broadcast,reduce",
         "-r", "all", "-a", avg,        "-m",        "2",  "-b",   "1K",        "-e",
         "1K", "-n",  "2",  "-w",       "1"},
        90);
    ASSERT_EQ(exitCode(r), 0) << r.out << r.err;
    auto rows = checkNcclFormat(r.out, 3);
    ASSERT_EQ(rows.size(), 6u) << r.out;
    for (int i = 0; i < 6; ++i)
      EXPECT_EQ(rows[i].substr(46, 6), "     " + std::to_string(i % 3)) << rows[i];
    EXPECT_NE(r.out.find("agg iters: 2"), std::string::npos);
  }
}

TEST(BenchRun, StartedByHandIsOneRank) {
  auto r = runProc({kBench, "--op-name", "all", "-b", "8", "-e", "512", "-f", "8", "-n", "2"}, 60);
  ASSERT_EQ(exitCode(r), 0) << r.out << r.err;
  EXPECT_EQ(checkNcclFormat(r.out, 1).size(), 7u * 3);
}

#ifdef TRELLIS_BENCH_HAS_GLOO
TEST(BenchRun, GlooStartedByHandIsOneRank) {
  auto r = runProc({kBench, "--impl", "gloo", "--op-name", "all", "-b", "8", "-e", "512", "-f",
                    "8", "-n", "2"},
                   60);
  ASSERT_EQ(exitCode(r), 0) << r.out << r.err;
  EXPECT_EQ(checkNcclFormat(r.out, 1).size(), 7u * 3);
}

TEST(BenchRun, GlooUnderTrellisRun) {
  const std::string json = ::testing::TempDir() + "bench_gloo.json";
  std::vector<std::string> argv = {kRun,  "-n",   "2",      "--no-tag", "--timeout",
                                   "120", kBench, "--impl", "gloo"};
  for (size_t i = 1; i < benchArgs(json).size(); ++i) argv.push_back(benchArgs(json)[i]);
  auto r = runProc(argv, 150);
  ASSERT_EQ(exitCode(r), 0) << r.out << r.err;
  auto rows = checkNcclFormat(r.out, 2);
  checkJson(json, rows.size(), "gloo");
}
#endif

#ifdef TRELLIS_BENCH_HAS_MPI
TEST(BenchRun, TrellisUnderMpirunBroadcastsTheId) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  auto r = runProc({"timeout", "120", "mpirun",     "-np",  "2",         "--oversubscribe",
                    "--mca",   "btl", "self,vader", kBench, "--op-name", "allreduce,sendrecv",
                    "-b",      "8",   "-e",         "4K",   "-f",        "8",
                    "-n",      "2",   "-w",         "1"},
                   150);
  ASSERT_EQ(exitCode(r), 0) << r.out << r.err;
  EXPECT_EQ(checkNcclFormat(r.out, 2).size(), 2u * 4);
  EXPECT_NE(r.out.find("impl: trellis"), std::string::npos);
}

TEST(BenchRun, MpiSkipsHalfPrecisionAndPassesTheRest) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  const std::string json = ::testing::TempDir() + "bench_mpi.json";
  std::vector<std::string> argv = {
      "timeout",    "120",  "mpirun", "-np", "2",  "--oversubscribe",       "--mca", "btl",
      "self,vader", kBench, "--impl", "mpi", "-d", "float16,float,bfloat16"};
  for (size_t i = 1; i < benchArgs(json).size(); ++i) argv.push_back(benchArgs(json)[i]);
  auto r = runProc(argv, 150);
  ASSERT_EQ(exitCode(r), 0) << r.out << r.err;
  auto rows = checkNcclFormat(r.out, 2);
  EXPECT_EQ(rows.size(), 7u * 5);  // float only
  EXPECT_NE(r.out.find("# skipped: allreduce float16 sum: MPI has no float16"), std::string::npos);
  EXPECT_NE(r.out.find("# skipped: alltoall bfloat16 none"), std::string::npos);
  for (const auto& l : rows) EXPECT_EQ(l.find("float16"), std::string::npos) << l;
  checkJson(json, rows.size(), "mpi");
}
#endif

}  // namespace
}  // namespace trellis::test
