// trellis-soak: many collectives of random kind, size and datatype on 4 ranks (processes), every
// result checked against the double-precision reference, with each rank's resident memory, open
// file descriptors and threads sampled after a warm-up (every kind once at the largest size, so
// pooled scratch has reached its final size) and at the end. Exit status 0 only when every
// result was right and the samples are flat (same fds and threads; RSS within --rss-slack-mib).
//   trellis-soak [--iters N] [--max-bytes B] [--wire shm|tcp|mixed] [--ranks R] [--seed S]
#include <dirent.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../collectives/cases.h"
#include "../support/harness.h"
#include "../support/reference.h"

using namespace trellis::test;

namespace {

struct Sample {
  long rssKiB = 0;
  int fds = 0;
  int threads = 0;
};

int countDir(const char* path) {
  int n = 0;
  if (DIR* d = opendir(path)) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

Sample sample() {
  Sample s;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    long pages = 0, rss = 0;
    if (std::fscanf(f, "%ld %ld", &pages, &rss) == 2) s.rssKiB = rss * (sysconf(_SC_PAGESIZE) / 1024);
    std::fclose(f);
  }
  s.fds = countDir("/proc/self/fd") - 1;  // the directory stream itself
  s.threads = countDir("/proc/self/task");
  return s;
}

const trellisDataType_t kTypes[] = {trellisInt8,   trellisUint8,   trellisInt32,   trellisUint32, trellisInt64,
                                    trellisUint64, trellisFloat16, trellisFloat32, trellisFloat64, trellisBfloat16};
const CollKind kKinds[] = {CollKind::kAllReduce, CollKind::kBroadcast,  CollKind::kReduce,
                           CollKind::kAllGather, CollKind::kReduceScatter, CollKind::kAlltoAll,
                           CollKind::kAlltoAllv, CollKind::kSendRecv};

bool reduces(CollKind k) {
  return k == CollKind::kAllReduce || k == CollKind::kReduce || k == CollKind::kReduceScatter;
}

// Case i of the run, the same on every rank (same seed). Sizes are log-uniform over 1 B .. max
// (plus zero-size calls), so small and large messages both come up often.
Case pick(std::mt19937_64& rng, int nranks, size_t maxBytes) {
  Case c;
  c.coll = kKinds[rng() % 8];
  c.dtype = kTypes[rng() % 10];
  c.op = reduces(c.coll) ? static_cast<trellisRedOp_t>(rng() % trellisNumOps) : trellisSum;
  double lg = std::uniform_real_distribution<double>(0, std::log2(static_cast<double>(maxBytes)))(rng);
  size_t bytes = rng() % 64 == 0 ? 0 : static_cast<size_t>(std::exp2(lg));
  size_t per = elemSize(c.dtype);
  // AllGather/AlltoAll(v)/ReduceScatter counts are per rank: keep each rank's buffer <= maxBytes.
  bool perRank = c.coll == CollKind::kAllGather || c.coll == CollKind::kAlltoAll || c.coll == CollKind::kAlltoAllv ||
                 c.coll == CollKind::kReduceScatter;
  c.count = bytes / per / (perRank ? static_cast<size_t>(nranks) : 1);
  c.inPlace = rng() % 4 == 0 && c.coll != CollKind::kAlltoAll && c.coll != CollKind::kAlltoAllv &&
              c.coll != CollKind::kSendRecv;
  c.root = static_cast<int>(rng() % nranks);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  int iters = 10000, nranks = 4;
  size_t maxBytes = 8u << 20;
  long rssSlackMiB = 32;
  uint64_t seed = 20261129;
  Wire wire = Wire::kShm;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "trellis-soak: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--iters") iters = std::atoi(next().c_str());
    else if (a == "--ranks") nranks = std::atoi(next().c_str());
    else if (a == "--max-bytes") maxBytes = std::strtoull(next().c_str(), nullptr, 0);
    else if (a == "--seed") seed = std::strtoull(next().c_str(), nullptr, 0);
    else if (a == "--rss-slack-mib") rssSlackMiB = std::atol(next().c_str());
    else if (a == "--wire") {
      std::string w = next();
      wire = w == "tcp" ? Wire::kTcp : w == "mixed" ? Wire::kMixed : Wire::kShm;
      if (w != "tcp" && w != "mixed" && w != "shm") {
        std::fprintf(stderr, "trellis-soak: --wire %s is not shm, tcp or mixed\n", w.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: trellis-soak [--iters N] [--max-bytes B] [--wire shm|tcp|mixed] [--ranks R] "
                           "[--seed S] [--rss-slack-mib M]\n");
      return 2;
    }
  }
  if (iters < 1 || nranks < 2 || maxBytes < 1) {
    std::fprintf(stderr, "trellis-soak: --iters, --ranks (>= 2) and --max-bytes must be positive\n");
    return 2;
  }
  // The test's own buffers (up to n x 8 MiB per call) are mapped and unmapped each time: a fixed
  // mmap threshold keeps glibc from raising it and keeping freed buffers resident, which would
  // show up as RSS growth that is not the library's.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  std::printf("trellis-soak: %d ranks x %d collectives over %s, sizes 0..%zu bytes, seed %llu\n", nranks, iters,
              wireName(wire), maxBytes, static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  auto t0 = std::chrono::steady_clock::now();
  std::string err = runRanksOver(wire, nranks, RankMode::kProcesses, [&](trellisComm_t c, int r, int n) -> std::string {
    // Warm-up: every kind at the largest size once.
    for (CollKind k : kKinds) {
      Case w{k, trellisFloat32, trellisSum, maxBytes / 4 / static_cast<size_t>(n), false, 0};
      std::string e = runCase(c, r, n, w);
      if (!e.empty()) return "warm-up: " + e;
    }
    Sample start = sample(), mid;
    std::mt19937_64 rng(seed);
    size_t bytesMoved = 0;
    for (int i = 0; i < iters; ++i) {
      if (i == iters / 2) mid = sample();
      Case cs = pick(rng, n, maxBytes);
      std::string e = runCase(c, r, n, cs);
      if (!e.empty()) return "collective #" + std::to_string(i) + " (" + cs.describe() + "): " + e;
      bytesMoved += cs.count * elemSize(cs.dtype);
    }
    Sample end = sample();
    std::printf("rank %d: %d collectives, %.1f MiB contributed; RSS %ld -> %ld -> %ld KiB (start, middle, end), "
                "fds %d -> %d, threads %d -> %d\n", r, iters, bytesMoved / 1048576.0, start.rssKiB, mid.rssKiB,
                end.rssKiB, start.fds, end.fds, start.threads, end.threads);
    std::fflush(stdout);
    if (end.fds != start.fds) return "rank " + std::to_string(r) + ": open fds went from " +
                                     std::to_string(start.fds) + " to " + std::to_string(end.fds);
    if (end.threads != start.threads)
      return "rank " + std::to_string(r) + ": threads went from " + std::to_string(start.threads) + " to " +
             std::to_string(end.threads);
    if (end.rssKiB - start.rssKiB > rssSlackMiB * 1024)
      return "rank " + std::to_string(r) + ": RSS grew by " + std::to_string((end.rssKiB - start.rssKiB) / 1024) +
             " MiB (more than --rss-slack-mib " + std::to_string(rssSlackMiB) + ")";
    return "";
  }, 36000);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!err.empty()) {
    std::printf("FAIL after %.1f s:\n%s", secs, err.c_str());
    return 1;
  }
  std::printf("PASS: %d x %d collectives checked in %.1f s\n", nranks, iters, secs);
  return 0;
}
