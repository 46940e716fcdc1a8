#include "runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "algos/kernels/reduce.h"
#include "check.h"
#include "format.h"

namespace trellis::bench {

double Runner::timeIt(Coll c, size_t param, trellisDataType_t dt, trellisRedOp_t op, int root,
                      bool inPlace, std::string* err) {
  const void* in;
  void* out;
  operands(c, param, algos::dtypeSize(dt), impl_.rank(), inPlace, send_, recv_, &in, &out);
  for (int i = 0; i < cfg_.warmup && err->empty(); ++i)
    *err = impl_.run(c, in, out, param, dt, op, root);
  // A failed call ends this rank here (the caller exits and the launcher stops the others);
  // joining the barrier would leave the peers waiting in a collective this rank never posts.
  if (!err->empty()) return 0;
  double us = 0;
  if (cfg_.iterTime == "min") {
    us = 1e300;
    for (int i = 0; i < cfg_.iters && err->empty(); ++i) {
      impl_.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      for (int j = 0; j < cfg_.aggIters && err->empty(); ++j) *err = impl_.run(c, in, out, param, dt, op, root);
      us = std::min(us, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
                            cfg_.aggIters);
    }
  } else {
    impl_.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    const int total = cfg_.iters * cfg_.aggIters;
    for (int i = 0; i < total && err->empty(); ++i) *err = impl_.run(c, in, out, param, dt, op, root);
    us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / total;
  }
  if (!err->empty()) return 0;
  switch (cfg_.average) {
    case 0:
      return impl_.combine(impl_.rank() == 0 ? us : 0.0, 0);
    case 2:
      return impl_.combine(us, 1);
    case 3:
      return impl_.combine(us, 2);
    default:
      return impl_.combine(us, 0) / impl_.nranks();  // sum, then divide
  }
}

std::string Runner::row(Coll c, size_t bytes, trellisDataType_t dt, trellisRedOp_t op, int root) {
  const int n = impl_.nranks();
  const Counts k = countsFor(c, bytes, algos::dtypeSize(dt), n);
  const char* type = cfg_.typeColumnFromList ? cfg_.typeArg.c_str() : algos::dtypeName(dt);
  const char* redop = isReduction(c) ? algos::opName(op) : "none";
  const int rootCol = isRooted(c) ? root : -1;
  std::string line = rowLead(k.sizeBytes, k.elems, type, redop, rootCol);
  nlohmann::json j = {{"collective", collName(c)},
                      {"impl", impl_.name()},
                      {"nranks", n},
                      {"size", k.sizeBytes},
                      {"count", k.elems},
                      {"type", algos::dtypeName(dt)},
                      {"redop", redop},
                      {"root", rootCol}};
  for (int ip = 0; ip < 2; ++ip) {
    const char* key = ip ? "inplace" : "outofplace";
    if (ip && !hasInPlace(c)) {
      line += rowGroupNa();
      j[key] = nullptr;
      continue;
    }
    std::string err;
    int64_t wrong = -1;
    if (cfg_.check > 0) {
      int64_t mine = 0;
      for (int i = 0; i < cfg_.check && err.empty(); ++i)
        mine +=
            checkOnce(impl_, {c, k, dt, op, root, ip == 1, cfg_.debugCorrupt}, send_, recv_, &err);
      if (!err.empty()) return err;
      wrong = static_cast<int64_t>(impl_.combine(static_cast<double>(mine), 0));
    }
    const double us = timeIt(c, k.param, dt, op, root, ip == 1, &err);
    if (!err.empty()) return err;
    const double algbw = us > 0 ? static_cast<double>(k.sizeBytes) / us / 1e3 : 0;  // GB = 1e9 B
    const double busbw = algbw * busFactor(c, n);
    line += rowGroup(us, algbw, busbw, wrong);
    if (wrong > 0) wrongTotal_ += wrong;
    bwSum_ += busbw;
    ++bwCount_;
    j[key] = {{"time_us", us}, {"algbw_gbps", algbw}, {"busbw_gbps", busbw}};
    j[key]["wrong"] = wrong >= 0 ? nlohmann::json(wrong) : nlohmann::json(nullptr);
  }
  if (impl_.rank() == 0) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
  rows_.push_back(j);
  return "";
}

void Runner::skipped(Coll c, trellisDataType_t dt, trellisRedOp_t op, const std::string& why) {
  const char* redop = isReduction(c) ? algos::opName(op) : "none";
  if (impl_.rank() == 0)
    std::printf("# skipped: %s %s %s: %s (not run, not counted as passing)\n", collName(c),
                algos::dtypeName(dt), redop, why.c_str());
  ++skipped_;
  rows_.push_back({{"collective", collName(c)},
                   {"impl", impl_.name()},
                   {"nranks", impl_.nranks()},
                   {"type", algos::dtypeName(dt)},
                   {"redop", redop},
                   {"skipped", why}});
}

}  // namespace trellis::bench
