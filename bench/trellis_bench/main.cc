// trellis-bench: nccl-tests-compatible sweeps (same flags, header, columns, busbw factors, #wrong
// and footer) through Trellis, OpenMPI or Gloo (--impl), so peers are compared in one run.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../../tests/support/reference.h"
#include "algos/kernels/reduce.h"
#include "impl.h"
#include "trellis/trellis.h"

namespace trellis::bench {

const char* collName(Coll c) {
  static const char* kNames[] = {"allreduce", "allgather", "reducescatter", "broadcast", "reduce", "alltoall", "sendrecv"};
  return kNames[static_cast<int>(c)];
}

namespace {

struct Options {
  std::string minBytes = "32M", maxBytes = "32M", stepBytes = "1M";
  double factor = 0;
  int iters = 20, warmup = 5, check = 1, average = 1;
  std::string dtype = "float", op = "sum", root = "0", colls = "allreduce", impl = "trellis";
  std::string jsonFile, glooStore, glooHost = "127.0.0.1";
};

bool isReduction(Coll c) { return c == Coll::kAllReduce || c == Coll::kReduceScatter || c == Coll::kReduce; }
bool isRooted(Coll c) { return c == Coll::kBroadcast || c == Coll::kReduce; }
bool hasInPlace(Coll c) { return c != Coll::kAlltoAll && c != Coll::kSendRecv; }

double busFactor(Coll c, int n) {
  switch (c) {
    case Coll::kAllReduce: return 2.0 * (n - 1) / n;
    case Coll::kAllGather:
    case Coll::kReduceScatter:
    case Coll::kAlltoAll: return static_cast<double>(n - 1) / n;
    default: return 1.0;
  }
}

// nccl-tests' float cell: %.2f, then %.1f, %.0f, then e-notation when too wide.
std::string cell(double v, int width) {
  char b[64];
  for (const char* f : {"%.2f", "%.1f", "%.0f"}) {
    snprintf(b, sizeof b, f, v);
    if (static_cast<int>(strlen(b)) <= width) return b;
  }
  snprintf(b, sizeof b, "%.*e", std::max(0, width - 6), v);
  return b;
}

bool parseType(const std::string& s, trellisDataType_t* out) {
  static const std::pair<const char*, trellisDataType_t> k[] = {
      {"int8", trellisInt8},       {"char", trellisInt8},     {"uint8", trellisUint8},   {"int32", trellisInt32},
      {"int", trellisInt32},       {"uint32", trellisUint32}, {"int64", trellisInt64},   {"uint64", trellisUint64},
      {"half", trellisFloat16},    {"float16", trellisFloat16}, {"float", trellisFloat32}, {"float32", trellisFloat32},
      {"double", trellisFloat64},  {"float64", trellisFloat64}, {"bfloat16", trellisBfloat16}};
  for (auto& [n, t] : k)
    if (s == n) { *out = t; return true; }
  return false;
}

bool parseOp(const std::string& s, trellisRedOp_t* out) {
  static const std::pair<const char*, trellisRedOp_t> k[] = {
      {"sum", trellisSum}, {"prod", trellisProd}, {"max", trellisMax}, {"min", trellisMin}, {"avg", trellisAvg}};
  for (auto& [n, o] : k)
    if (s == n) { *out = o; return true; }
  return false;
}

bool parseSize(const std::string& s, size_t* out) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || v < 0) return false;
  double m = 1;
  if (*end == 'K' || *end == 'k') m = 1024.0, ++end;
  else if (*end == 'M' || *end == 'm') m = 1024.0 * 1024, ++end;
  else if (*end == 'G' || *end == 'g') m = 1024.0 * 1024 * 1024, ++end;
  if (*end == 'B' || *end == 'b') ++end;
  if (*end != '\0') return false;
  *out = static_cast<size_t>(v * m);
  return true;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= s.size()) {
    size_t c = s.find(',', p);
    if (c == std::string::npos) c = s.size();
    if (c > p) out.push_back(s.substr(p, c - p));
    p = c + 1;
  }
  return out;
}

// Huge-page-backed, touched once: no page faults inside timed loops.
void* bigAlloc(size_t bytes) {
  bytes = std::max<size_t>(bytes, 4096);
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  madvise(p, bytes, MADV_HUGEPAGE);
  std::memset(p, 0, bytes);
  return p;
}

struct Counts {
  size_t param;      // count argument of the API call
  size_t sizeBytes;  // the "size" column
  size_t elems;      // the "count" column
};

// nccl-tests' conventions: `size` is the whole buffer for AllGather/ReduceScatter/AlltoAll.
Counts countsFor(Coll c, size_t bytes, size_t es, int n) {
  size_t count = bytes / es;
  switch (c) {
    case Coll::kAllGather:
    case Coll::kReduceScatter:
    case Coll::kAlltoAll: {
      size_t per = count / n;
      return {per, per * n * es, per * n};
    }
    default: return {count, count * es, count};
  }
}

struct Runner {
  Impl& impl;
  Options& opt;
  char* send;
  char* recv;
  double bwSum = 0;
  int bwCount = 0;
  int64_t wrongTotal = 0;
  nlohmann::json rows = nlohmann::json::array();

  // Fills inputs, runs once, counts wrong elements on this rank.
  int64_t checkOnce(Coll c, const Counts& k, trellisDataType_t dt, trellisRedOp_t op, int root, bool inPlace,
                    std::string* err) {
    using namespace trellis::test;
    const int me = impl.rank(), n = impl.nranks();
    const size_t es = algos::dtypeSize(dt), cnt = k.param;
    const trellisRedOp_t fillOp = isReduction(c) ? op : trellisSum;
    auto value = [&](int r, size_t i) { return inputValue(fillOp, dt, r, i); };
    const void* in = send;
    void* out = recv;
    switch (c) {
      case Coll::kAllReduce:
      case Coll::kReduce:
        if (inPlace) in = recv;
        fill(const_cast<void*>(in), cnt, dt, op, me);
        break;
      case Coll::kBroadcast:
        if (inPlace) in = recv;
        if (me == root) fill(const_cast<void*>(in), cnt, dt, trellisSum, root);
        break;
      case Coll::kAllGather:
        if (inPlace) in = recv + me * cnt * es;
        fill(const_cast<void*>(in), cnt, dt, trellisSum, me);
        break;
      case Coll::kReduceScatter:
        fill(send, n * cnt, dt, op, me);
        if (inPlace) out = send + me * cnt * es;
        break;
      case Coll::kAlltoAll: fill(send, n * cnt, dt, trellisSum, me); break;
      case Coll::kSendRecv: fill(send, cnt, dt, trellisSum, me); break;
    }
    *err = impl.run(c, in, out, cnt, dt, op, root);
    if (!err->empty()) return static_cast<int64_t>(cnt);
    switch (c) {
      case Coll::kAllReduce:
        return countWrong(out, cnt, dt, [&](size_t i) { return expectedReduce(op, dt, n, i); });
      case Coll::kReduce:
        return me != root ? 0 : countWrong(out, cnt, dt, [&](size_t i) { return expectedReduce(op, dt, n, i); });
      case Coll::kBroadcast: return countWrong(out, cnt, dt, [&](size_t i) { return value(root, i); });
      case Coll::kAllGather:
        return countWrong(out, n * cnt, dt, [&](size_t i) { return value(static_cast<int>(i / cnt), i % cnt); });
      case Coll::kReduceScatter:
        return countWrong(out, cnt, dt, [&](size_t i) { return expectedReduce(op, dt, n, me * cnt + i); });
      case Coll::kAlltoAll:
        return countWrong(out, n * cnt, dt, [&](size_t i) { return value(static_cast<int>(i / cnt), me * cnt + i % cnt); });
      case Coll::kSendRecv: return countWrong(out, cnt, dt, [&](size_t i) { return value((me - 1 + n) % n, i); });
    }
    return 0;
  }

  // Mean µs per operation, combined over ranks per -a.
  double timeIt(Coll c, const Counts& k, trellisDataType_t dt, trellisRedOp_t op, int root, bool inPlace,
                std::string* err) {
    const int me = impl.rank();
    const size_t es = algos::dtypeSize(dt);
    const void* in = send;
    void* out = recv;
    if (inPlace) {
      if (c == Coll::kAllGather) in = recv + me * k.param * es;
      else if (c == Coll::kReduceScatter) out = send + me * k.param * es;
      else in = recv;
    }
    for (int i = 0; i < opt.warmup && err->empty(); ++i) *err = impl.run(c, in, out, k.param, dt, op, root);
    impl.barrier();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < opt.iters && err->empty(); ++i) *err = impl.run(c, in, out, k.param, dt, op, root);
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
                std::max(1, opt.iters);
    switch (opt.average) {
      case 0: {
        double v = impl.combine(me == 0 ? us : 0.0, 0);
        return v;
      }
      case 2: return impl.combine(us, 1);
      case 3: return impl.combine(us, 2);
      default: return impl.combine(us, 0) / impl.nranks();
    }
  }

  void row(Coll c, size_t bytes, trellisDataType_t dt, trellisRedOp_t op, int root) {
    const int n = impl.nranks();
    const Counts k = countsFor(c, bytes, algos::dtypeSize(dt), n);
    std::string line;
    char head[128];
    snprintf(head, sizeof head, "%12zu  %12zu  %8s  %6s  %6i", k.sizeBytes, k.elems,
             opt.dtype == "all" ? algos::dtypeName(dt) : opt.dtype.c_str(), isReduction(c) ? algos::opName(op) : "none",
             isRooted(c) ? root : -1);
    line = head;
    nlohmann::json j = {{"collective", collName(c)}, {"impl", impl.name()}, {"size", k.sizeBytes},
                        {"count", k.elems},          {"type", algos::dtypeName(dt)}, {"redop", isReduction(c) ? algos::opName(op) : "none"},
                        {"root", isRooted(c) ? root : -1}, {"nranks", n}};
    for (int ip = 0; ip < 2; ++ip) {
      const char* key = ip ? "inplace" : "outofplace";
      if (ip && !hasInPlace(c)) {
        char b[64];
        snprintf(b, sizeof b, "  %7s  %6s  %6s  %6s", "N/A", "N/A", "N/A", "N/A");
        line += b;
        continue;
      }
      std::string err;
      int64_t wrong = 0;
      if (opt.check > 0) {
        for (int i = 0; i < opt.check && err.empty(); ++i) wrong += checkOnce(c, k, dt, op, root, ip == 1, &err);
        wrong = static_cast<int64_t>(impl.combine(static_cast<double>(wrong), 0));
      }
      double us = err.empty() ? timeIt(c, k, dt, op, root, ip == 1, &err) : 0;
      if (!err.empty()) {
        std::fprintf(stderr, "trellis-bench: rank %d: %s %zu bytes: %s\n", impl.rank(), collName(c), bytes, err.c_str());
        std::exit(1);
      }
      double algbw = us > 0 ? static_cast<double>(k.sizeBytes) / us / 1e3 : 0;  // GB/s with GB = 1e9
      double busbw = algbw * busFactor(c, n);
      char b[96];
      if (opt.check > 0) snprintf(b, sizeof b, "  %7s  %6s  %6s  %6g", cell(us, 7).c_str(), cell(algbw, 6).c_str(), cell(busbw, 6).c_str(), static_cast<double>(wrong));
      else snprintf(b, sizeof b, "  %7s  %6s  %6s  %6s", cell(us, 7).c_str(), cell(algbw, 6).c_str(), cell(busbw, 6).c_str(), "N/A");
      line += b;
      wrongTotal += wrong;
      bwSum += busbw;
      ++bwCount;
      j[key] = {{"time_us", us}, {"algbw_gbps", algbw}, {"busbw_gbps", busbw}, {"wrong", opt.check > 0 ? wrong : -1}};
    }
    if (impl.rank() == 0) std::printf("%s\n", line.c_str());
    rows.push_back(j);
  }
};

}  // namespace
}  // namespace trellis::bench

int main(int argc, char** argv) {
  using namespace trellis::bench;
  Options opt;
  CLI::App app{"trellis-bench: nccl-tests-compatible collective benchmark for Trellis, OpenMPI and Gloo"};
  app.add_option("-b,--minbytes", opt.minBytes, "smallest size (K/M/G suffixes)");
  app.add_option("-e,--maxbytes", opt.maxBytes, "largest size");
  app.add_option("-f,--stepfactor", opt.factor, "multiply the size by this each step");
  app.add_option("-i,--stepbytes", opt.stepBytes, "add this to the size each step (when -f is not given)");
  app.add_option("-n,--iters", opt.iters, "timed iterations")->check(CLI::Range(1, 1 << 30));
  app.add_option("-w,--warmup_iters", opt.warmup, "warmup iterations")->check(CLI::Range(0, 1 << 30));
  app.add_option("-c,--check", opt.check, "check the result of this many runs per size (0: no check)");
  app.add_option("-d,--datatype", opt.dtype, "int8 uint8 int32 uint32 int64 uint64 half float double bfloat16, or all");
  app.add_option("-o,--op", opt.op, "sum prod max min avg, or all");
  app.add_option("-r,--root", opt.root, "root rank, or all");
  app.add_option("-a,--average", opt.average, "combine times over ranks: 0 rank 0, 1 average, 2 min, 3 max")
      ->check(CLI::Range(0, 3));
  app.add_option("-J,--output_file", opt.jsonFile, "write every row as JSON to this file");
  app.add_option("-C,--collective", opt.colls,
                 "comma list of allreduce allgather reducescatter broadcast reduce alltoall sendrecv, or all");
  app.add_option("--impl", opt.impl, "trellis, mpi or gloo")->check(CLI::IsMember({"trellis", "mpi", "gloo"}));
  app.add_option("--gloo-store", opt.glooStore, "Gloo FileStore directory (default: derived from the job id)");
  app.add_option("--gloo-host", opt.glooHost, "address Gloo's TCP device binds");
  CLI11_PARSE(app, argc, argv);

  std::vector<Coll> colls;
  const Coll kAll[] = {Coll::kAllReduce, Coll::kAllGather, Coll::kReduceScatter, Coll::kBroadcast, Coll::kReduce, Coll::kAlltoAll, Coll::kSendRecv};
  for (const std::string& name : split(opt.colls)) {
    bool found = false;
    for (Coll c : kAll)
      if (name == "all" || name == collName(c)) { colls.push_back(c); found = true; }
    if (!found) { std::fprintf(stderr, "trellis-bench: unknown collective '%s'\n", name.c_str()); return 2; }
  }
  std::vector<trellisDataType_t> types;
  for (const std::string& t : split(opt.dtype)) {
    if (t == "all") { for (int i = 0; i < trellisNumTypes; ++i) types.push_back(static_cast<trellisDataType_t>(i)); continue; }
    trellisDataType_t dt;
    if (!parseType(t, &dt)) { std::fprintf(stderr, "trellis-bench: unknown datatype '%s'\n", t.c_str()); return 2; }
    types.push_back(dt);
  }
  std::vector<trellisRedOp_t> ops;
  for (const std::string& o : split(opt.op)) {
    if (o == "all") { for (int i = 0; i < trellisNumOps; ++i) ops.push_back(static_cast<trellisRedOp_t>(i)); continue; }
    trellisRedOp_t op;
    if (!parseOp(o, &op)) { std::fprintf(stderr, "trellis-bench: unknown op '%s'\n", o.c_str()); return 2; }
    ops.push_back(op);
  }
  size_t minB = 0, maxB = 0, stepB = 0;
  if (!parseSize(opt.minBytes, &minB) || !parseSize(opt.maxBytes, &maxB) || !parseSize(opt.stepBytes, &stepB) || maxB < minB) {
    std::fprintf(stderr, "trellis-bench: bad sizes -b %s -e %s -i %s\n", opt.minBytes.c_str(), opt.maxBytes.c_str(), opt.stepBytes.c_str());
    return 2;
  }
  if (opt.factor != 0 && opt.factor <= 1) { std::fprintf(stderr, "trellis-bench: -f must be > 1\n"); return 2; }

  std::string err;
  std::unique_ptr<Impl> impl;
  if (opt.impl == "trellis") impl = makeTrellisImpl(&err);
#ifdef TRELLIS_BENCH_WITH_MPI
  else if (opt.impl == "mpi") impl = makeMpiImpl(&err);
#endif
#ifdef TRELLIS_BENCH_WITH_GLOO
  else if (opt.impl == "gloo") {
    std::string dir = opt.glooStore;
    const char* id = std::getenv("TRELLIS_UNIQUE_ID");
    if (dir.empty() && id != nullptr) dir = "/tmp/trellis-bench-gloo-" + std::to_string(std::hash<std::string>{}(id));
    if (!dir.empty()) mkdir(dir.c_str(), 0700);
    impl = makeGlooImpl(dir, opt.glooHost, &err);
    opt.glooStore = dir;
  }
#endif
  else err = "--impl " + opt.impl + " was not compiled into this trellis-bench (its library was not found at build time)";
  if (!impl) { std::fprintf(stderr, "trellis-bench: %s\n", err.c_str()); return 1; }

  const int n = impl->nranks(), me = impl->rank();
  const size_t bufBytes = maxB + 4096;
  char* send = static_cast<char*>(bigAlloc(bufBytes));
  char* recv = static_cast<char*>(bigAlloc(bufBytes));
  if (!send || !recv) { std::fprintf(stderr, "trellis-bench: cannot allocate 2 x %zu bytes\n", bufBytes); return 1; }

  struct RankInfo { int pid; char host[60]; } mine{static_cast<int>(getpid()), {}}, all[1024];
  gethostname(mine.host, sizeof mine.host - 1);
  std::vector<RankInfo> infos(n);
  impl->allgatherBytes(&mine, infos.data(), sizeof mine);
  (void)all;
  if (me == 0) {
    int v = 0;
    trellisGetVersion(&v);
    std::printf("# nccl-tests compatible trellis-bench  trellis %d.%d.%d  impl=%s\n", v / 10000, v / 100 % 100, v % 100, impl->name());
    std::printf("# nThread 1 nGpus 1 minBytes %zu maxBytes %zu step: %s warmup iters: %d iters: %d agg iters: 1 "
                "validation: %d graph: 0\n#\n# Using devices\n", minB, maxB,
                opt.factor != 0 ? (cell(opt.factor, 8) + "(factor)").c_str() : (std::to_string(stepB) + "(bytes)").c_str(),
                opt.warmup, opt.iters, opt.check);
    for (int r = 0; r < n; ++r)
      std::printf("#  Rank %2d Group  0 Pid %6d on %10s device -1 [cpu] host memory (%s)\n", r, infos[r].pid, infos[r].host, impl->name());
    std::printf("#\n");
  }
  Runner run{*impl, opt, send, recv};
  for (Coll c : colls) {
    if (me == 0)
      std::printf("# Collective test: %s\n#\n#                                                              out-of-place                       in-place          \n"
                  "#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong\n"
                  "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)       \n", collName(c));
    std::vector<int> roots;
    if (!isRooted(c)) roots = {0};
    else if (opt.root == "all") for (int r = 0; r < n; ++r) roots.push_back(r);
    else roots = {std::atoi(opt.root.c_str()) % n};
    for (trellisDataType_t dt : types) {
      for (trellisRedOp_t op : isReduction(c) ? ops : std::vector<trellisRedOp_t>{trellisSum}) {
        std::string why = impl->unsupported(c, dt, op);
        if (!why.empty()) {
          if (me == 0) std::printf("# skipped: %s %s %s: %s\n", collName(c), trellis::algos::dtypeName(dt), trellis::algos::opName(op), why.c_str());
          continue;
        }
        for (int root : roots)
          for (size_t b = minB; b <= maxB; b = opt.factor != 0 ? std::max(b + 1, static_cast<size_t>(b * opt.factor)) : b + std::max<size_t>(stepB, 1))
            run.row(c, b, dt, op, root);
      }
    }
  }
  if (me == 0) {
    std::printf("# Out of bounds values : %ld %s\n", static_cast<long>(run.wrongTotal), run.wrongTotal == 0 ? "OK" : "FAILED");
    std::printf("# Avg bus bandwidth    : %s \n#\n", cell(run.bwCount ? run.bwSum / run.bwCount : 0, 8).c_str());
    if (!opt.jsonFile.empty()) std::ofstream(opt.jsonFile) << run.rows.dump(1) << "\n";
  }
  impl->barrier();
  if (opt.impl == "gloo" && me == 0 && !opt.glooStore.empty()) std::filesystem::remove_all(opt.glooStore);
  impl.reset();
  return run.wrongTotal == 0 ? 0 : 3;
}
