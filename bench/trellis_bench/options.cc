#include "options.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

namespace trellis::bench {
namespace {

constexpr Coll kAllColls[] = {Coll::kAllReduce, Coll::kAllGather, Coll::kReduceScatter,
                              Coll::kBroadcast, Coll::kReduce,    Coll::kAlltoAll,
                              Coll::kSendRecv};

std::vector<std::string> splitList(const std::string& s) {
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

}  // namespace

bool parseSize(const std::string& s, size_t* out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end == s.c_str() || v < 0) return false;
  double m = 1;
  switch (*end) {
    case 'K':
    case 'k':
      m = 1024.0, ++end;
      break;
    case 'M':
    case 'm':
      m = 1024.0 * 1024, ++end;
      break;
    case 'G':
    case 'g':
      m = 1024.0 * 1024 * 1024, ++end;
      break;
    default:
      break;
  }
  if (*end == 'B' || *end == 'b') ++end;
  if (*end != '\0') return false;
  *out = static_cast<size_t>(v * m);
  return true;
}

bool parseType(const std::string& s, trellisDataType_t* out) {
  static const std::pair<const char*, trellisDataType_t> k[] = {
      {"int8", trellisInt8},       {"char", trellisInt8},       {"uint8", trellisUint8},
      {"int32", trellisInt32},     {"int", trellisInt32},       {"uint32", trellisUint32},
      {"int64", trellisInt64},     {"uint64", trellisUint64},   {"half", trellisFloat16},
      {"float16", trellisFloat16}, {"float", trellisFloat32},   {"float32", trellisFloat32},
      {"double", trellisFloat64},  {"float64", trellisFloat64}, {"bfloat16", trellisBfloat16}};
  for (auto& [n, t] : k)
    if (s == n) return *out = t, true;
  return false;
}

bool parseOp(const std::string& s, trellisRedOp_t* out) {
  static const std::pair<const char*, trellisRedOp_t> k[] = {{"sum", trellisSum},
                                                             {"prod", trellisProd},
                                                             {"max", trellisMax},
                                                             {"min", trellisMin},
                                                             {"avg", trellisAvg}};
  for (auto& [n, o] : k)
    if (s == n) return *out = o, true;
  return false;
}

bool parseColl(const std::string& s, Coll* out) {
  for (Coll c : kAllColls)
    if (s == collName(c)) return *out = c, true;
  return false;
}

std::string parseCollList(const std::string& s, std::vector<Coll>* out) {
  out->clear();
  for (const std::string& name : splitList(s)) {
    Coll c;
    if (name == "all") {
      out->insert(out->end(), std::begin(kAllColls), std::end(kAllColls));
    } else if (parseColl(name, &c)) {
      out->push_back(c);
    } else {
      return "unknown collective '" + name +
             "' (allreduce allgather reducescatter broadcast reduce alltoall "
             "sendrecv, or all)";
    }
  }
  return out->empty() ? "no collective given" : "";
}

std::vector<size_t> sweepSizes(const Config& cfg) {
  std::vector<size_t> out;
  for (size_t b = cfg.minBytes; b <= cfg.maxBytes;) {
    out.push_back(b);
    const size_t next = cfg.factor != 0 ? static_cast<size_t>(static_cast<double>(b) * cfg.factor)
                                        : b + cfg.stepBytes;
    b = std::max(next, b + 1);  // -b 0 -f 2 still advances
  }
  return out;
}

int parseArgs(int argc, char** argv, Config* cfg) {
  CLI::App app{
      "trellis-bench: collective benchmark with nccl-tests' flags and output, through Trellis,\n"
      "OpenMPI or Gloo (--impl). Launch under trellis-run (or mpirun):\n"
      "  trellis-run -n 4 trellis-bench --op-name all -b 8 -e 64M -f 4 -c 1\n"
      "Started by hand it runs one rank. Rows follow nccl-tests (size/count of the whole buffer "
      "for\n"
      "allgather, reducescatter, alltoall; GB = 1e9 B; busbw factors as nccl-tests). AlltoAll and\n"
      "SendRecv have no in-place form: their in-place columns print N/A. A type an implementation\n"
      "lacks (MPI: float16, bfloat16; Gloo: bfloat16) prints a '# skipped:' line, never a\n"
      "passing row. -J writes {impl, nranks, wrong_total, skipped, avg_busbw_gbps, rows: [...]}.\n"
      "Exit status: 0, or 3 when a check found wrong values, 1 on errors, 2 on bad arguments."};
  std::string minB = "32M", maxB = "32M", stepB = "1M", colls = "allreduce", ops = "sum";
  std::string cflag;
  int nthreads = 1, ngpus = 1;
  app.add_option("-b,--minbytes", minB, "smallest size in bytes (K/M/G suffixes; default 32M)");
  app.add_option("-e,--maxbytes", maxB, "largest size in bytes (default 32M)");
  app.add_option("-f,--stepfactor", cfg->factor, "multiply the size by this each step");
  app.add_option("-i,--stepbytes", stepB, "add this to the size each step when -f is not given");
  app.add_option("-n,--iters", cfg->iters, "timed iterations (default 20)")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("-w,--warmup_iters", cfg->warmup, "warmup iterations (default 1)")
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("-m,--agg_iters", cfg->aggIters, "operations per timed iteration (default 1)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("-c,--check", cfg->check, "checked runs per size (0: no check, #wrong is N/A)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("-d,--datatype", cfg->typeArg,
                 "int8 uint8 int32 uint32 int64 uint64 half float double "
                 "bfloat16, a comma list, "
                 "or all (default float)");
  app.add_option("-o,--op", ops, "sum prod max min avg, a comma list, or all (default sum)");
  app.add_option("-r,--root", cfg->root, "root rank of broadcast/reduce, or all (default 0)");
  app.add_option("-a,--average", cfg->average,
                 "combine times over ranks: 0 rank 0, 1 average, 2 min, 3 max "
                 "(default 1)")
      ->check(CLI::Range(0, 3));
  app.add_option("--iter-time", cfg->iterTime,
                 "mean (default, nccl-tests: total / iterations) or min (each iteration timed after a "
                 "barrier, the fastest kept; for loaded machines)")
      ->check(CLI::IsMember({"mean", "min"}));
  app.add_option("-J,--output_file", cfg->jsonFile, "write every row as JSON to this file");
  app.add_option("-t,--nthreads", nthreads, "threads per process (only 1)")
      ->check(CLI::Range(1, 1));
  app.add_option("-g,--ngpus", ngpus, "GPUs per thread (only 1: host memory)")
      ->check(CLI::Range(1, 1));
  app.add_option("-C,--report_cputime", cflag,
                 "nccl-tests' flag, accepted (host collectives: CPU time is "
                 "the wall time shown)");
  app.add_option("--op-name,--collective", colls,
                 "which collectives: allreduce allgather reducescatter "
                 "broadcast reduce alltoall "
                 "sendrecv, a comma list, or all (default allreduce)");
  app.add_option("--impl", cfg->impl, "trellis (default), mpi or gloo")
      ->check(CLI::IsMember({"trellis", "mpi", "gloo"}));
  app.add_option("--gloo-store", cfg->glooStore,
                 "Gloo FileStore directory shared by the ranks (default: named after the job: "
                 "TRELLIS_UNIQUE_ID under trellis-run, OpenMPI's job id under mpirun)");
  app.add_option("--gloo-host", cfg->glooHost,
                 "address Gloo's TCP device binds (default 127.0.0.1)");
  app.add_option("--gloo-iface", cfg->glooIface,
                 "network interface Gloo's TCP device binds (its address; overrides --gloo-host)");
  app.add_option("--debug-corrupt", cfg->debugCorrupt,
                 "testing: rank 0 spoils this many output elements of every "
                 "checked run, so the "
                 "check must report them")
      ->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "trellis-bench: %s\n", m.c_str());
    return 2;
  };
  if (!cflag.empty() && cflag != "0" && cflag != "1") {
    // Earlier trellis-bench builds took the collective list as -C; keep those
    // command lines working.
    std::fprintf(stderr,
                 "trellis-bench: -C %s read as --op-name %s (-C is nccl-tests' "
                 "report_cputime; use --op-name)\n",
                 cflag.c_str(), cflag.c_str());
    colls = cflag;
  }
  if (std::string e = parseCollList(colls, &cfg->colls); !e.empty()) return fail(e);
  cfg->types.clear();
  for (const std::string& t : splitList(cfg->typeArg)) {
    trellisDataType_t dt;
    if (t == "all") {
      for (int i = 0; i < trellisNumTypes; ++i)
        cfg->types.push_back(static_cast<trellisDataType_t>(i));
    } else if (parseType(t, &dt)) {
      cfg->types.push_back(dt);
    } else {
      return fail("unknown datatype '" + t + "'");
    }
  }
  cfg->typeColumnFromList = cfg->types.size() == 1 && cfg->typeArg.find(',') == std::string::npos &&
                            cfg->typeArg != "all";
  cfg->ops.clear();
  for (const std::string& o : splitList(ops)) {
    trellisRedOp_t op;
    if (o == "all") {
      for (int i = 0; i < trellisNumOps; ++i) cfg->ops.push_back(static_cast<trellisRedOp_t>(i));
    } else if (parseOp(o, &op)) {
      cfg->ops.push_back(op);
    } else {
      return fail("unknown op '" + o + "'");
    }
  }
  if (cfg->types.empty() || cfg->ops.empty()) return fail("no datatype or no op given");
  if (!parseSize(minB, &cfg->minBytes) || !parseSize(maxB, &cfg->maxBytes) ||
      !parseSize(stepB, &cfg->stepBytes) || cfg->maxBytes < cfg->minBytes)
    return fail("bad sizes -b " + minB + " -e " + maxB + " -i " + stepB);
  if (cfg->factor != 0 && cfg->factor <= 1) return fail("-f must be > 1");
  if (cfg->factor == 0 && cfg->stepBytes == 0) return fail("-i must be > 0");
  if (cfg->root != "all") {
    char* end = nullptr;
    long r = std::strtol(cfg->root.c_str(), &end, 10);
    if (cfg->root.empty() || *end != '\0' || r < 0) return fail("bad root '" + cfg->root + "'");
  }
  return -1;
}

}  // namespace trellis::bench
