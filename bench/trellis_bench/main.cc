// trellis-bench: nccl-tests-compatible sweeps (same flags, preamble, header,
// columns, busbw factors, #wrong and footers) through Trellis, OpenMPI or Gloo
// (--impl), so peers are compared in the same process layout. Options in
// options.cc, output format in format.cc, the correctness check in check.cc,
// rows in runner.cc, one file per implementation.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "algos/kernels/reduce.h"
#include "format.h"
#include "impl.h"
#include "options.h"
#include "runner.h"

namespace trellis::bench {
namespace {

// Allocated once at the largest size, 2 MiB aligned and advised to use
// transparent huge pages, touched once: no page faults inside the timed loops,
// no allocation per size or iteration.
char* bigAlloc(size_t bytes) {
  constexpr size_t kHuge = 2 << 20;
  bytes = (std::max<size_t>(bytes, 4096) + kHuge - 1) / kHuge * kHuge;
  void* p =
      mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  char* a = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + kHuge - 1) / kHuge * kHuge);
  madvise(a, bytes, MADV_HUGEPAGE);
  std::memset(a, 0, bytes);
  return a;
}

std::unique_ptr<Impl> makeImpl(Config& cfg, std::string* err) {
  if (cfg.impl == "trellis") return makeTrellisImpl(err);
#ifdef TRELLIS_BENCH_WITH_MPI
  if (cfg.impl == "mpi") return makeMpiImpl(err);
#endif
#ifdef TRELLIS_BENCH_WITH_GLOO
  if (cfg.impl == "gloo") {
    // Ranks of one trellis-run job share TRELLIS_UNIQUE_ID: a store directory
    // named after it is the same for all of them and different for every job.
    const char* id = std::getenv("TRELLIS_UNIQUE_ID");
    // Under mpirun the job id of OpenMPI's runtime plays that part.
    const char* ompiJob = std::getenv("OMPI_MCA_ess_base_jobid");
    if (cfg.glooStore.empty() && id == nullptr && ompiJob != nullptr)
      cfg.glooStore = std::string("/tmp/trellis-bench-gloo-ompi-") + ompiJob;
    if (cfg.glooStore.empty() && id != nullptr)
      cfg.glooStore = "/tmp/trellis-bench-gloo-" + std::to_string(std::hash<std::string>{}(id));
    if (!cfg.glooStore.empty()) {
      mkdir(cfg.glooStore.c_str(), 0700);
    } else if (std::getenv("TRELLIS_RANK") == nullptr &&
               std::getenv("OMPI_COMM_WORLD_RANK") == nullptr) {
      char tmpl[] = "/tmp/trellis-bench-gloo-XXXXXX";  // started by hand: one rank
      if (mkdtemp(tmpl) != nullptr) cfg.glooStore = tmpl;
    }
    return makeGlooImpl(cfg.glooStore, cfg.glooHost, cfg.glooIface, err);
  }
#endif
  *err = "--impl " + cfg.impl +
         " was not compiled into this trellis-bench (its library was not found "
         "when it was "
         "configured: install libopenmpi-dev / libgloo-dev and re-run cmake)";
  return nullptr;
}

void printPreamble(Impl& impl, const Config& cfg) {
  struct RankInfo {
    int pid;
    char host[60];
  } mine{static_cast<int>(getpid()), {}};
  gethostname(mine.host, sizeof mine.host - 1);
  const int n = impl.nranks();
  std::vector<RankInfo> infos(n);
  impl.allgatherBytes(&mine, infos.data(), sizeof mine);
  if (impl.rank() != 0) return;
  int v = 0;
  trellisGetVersion(&v);
  char step[64];
  if (cfg.factor != 0)
    std::snprintf(step, sizeof step, "%g(factor)", cfg.factor);
  else
    std::snprintf(step, sizeof step, "%zu(bytes)", cfg.stepBytes);
  std::printf("# trellis-bench (nccl-tests format)  trellis %d.%d.%d  impl: %s\n", v / 10000,
              v / 100 % 100, v % 100, impl.name());
  std::printf(
      "# nThread 1 nGpus 1 minBytes %zu maxBytes %zu step: %s warmup "
      "iters: %d iters: %d "
      "agg iters: %d validation: %d graph: 0\n#\n# Using devices\n",
      cfg.minBytes, cfg.maxBytes, step, cfg.warmup, cfg.iters, cfg.aggIters, cfg.check > 0 ? 1 : 0);
  for (int r = 0; r < n; ++r)
    std::printf(
        "#  Rank %2d Group  0 Pid %6d on %10s device -1 [cpu] host "
        "memory (%s)\n",
        r, infos[r].pid, infos[r].host, impl.name());
  std::printf("#\n");
}

}  // namespace
}  // namespace trellis::bench

int main(int argc, char** argv) {
  using namespace trellis::bench;
  Config cfg;
  if (int rc = parseArgs(argc, argv, &cfg); rc >= 0) return rc;

  std::string err;
  std::unique_ptr<Impl> impl = makeImpl(cfg, &err);
  if (!impl) {
    std::fprintf(stderr, "trellis-bench: %s\n", err.c_str());
    return 1;
  }
  const int n = impl->nranks(), me = impl->rank();
  const size_t bufBytes = cfg.maxBytes + 4096;
  char* send = bigAlloc(bufBytes);
  char* recv = bigAlloc(bufBytes);
  if (!send || !recv) {
    std::fprintf(stderr, "trellis-bench: rank %d: cannot allocate 2 x %zu bytes\n", me, bufBytes);
    return 1;
  }
  printPreamble(*impl, cfg);

  Runner run(*impl, cfg, send, recv);
  const std::vector<size_t> sizes = sweepSizes(cfg);
  for (Coll c : cfg.colls) {
    if (me == 0) std::printf("# Collective test: %s\n#\n%s", collName(c), columnHeader().c_str());
    std::vector<int> roots;
    if (!isRooted(c))
      roots = {0};
    else if (cfg.root == "all")
      for (int r = 0; r < n; ++r) roots.push_back(r);
    else
      roots = {std::atoi(cfg.root.c_str()) % n};
    const std::vector<trellisRedOp_t> ops =
        isReduction(c) ? cfg.ops : std::vector<trellisRedOp_t>{trellisSum};
    for (trellisDataType_t dt : cfg.types) {
      for (trellisRedOp_t op : ops) {
        if (std::string why = impl->unsupported(c, dt, op); !why.empty()) {
          run.skipped(c, dt, op, why);
          continue;
        }
        for (int root : roots)
          for (size_t b : sizes) {
            if (std::string e = run.row(c, b, dt, op, root); !e.empty()) {
              std::fprintf(stderr, "trellis-bench: rank %d: %s %s %zu bytes: %s\n", me, collName(c),
                           trellis::algos::dtypeName(dt), b, e.c_str());
              return 1;
            }
          }
      }
    }
  }
  if (me == 0) {
    std::printf("%s", footer(run.wrongTotal(), run.avgBusbw()).c_str());
    std::fflush(stdout);
    if (!cfg.jsonFile.empty()) {
      nlohmann::json doc = {{"impl", impl->name()},
                            {"nranks", n},
                            {"wrong_total", run.wrongTotal()},
                            {"skipped", run.skippedCount()},
                            {"avg_busbw_gbps", run.avgBusbw()},
                            {"rows", run.rows()}};
      std::ofstream(cfg.jsonFile) << doc.dump(1) << "\n";
    }
  }
  impl->barrier();
  if (cfg.impl == "gloo" && me == 0 && !cfg.glooStore.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(cfg.glooStore, ec);
  }
  impl.reset();
  return run.wrongTotal() == 0 ? 0 : 3;
}
