#include "format.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace trellis::bench {

const char* collName(Coll c) {
  static const char* kNames[] = {"allreduce", "allgather", "reducescatter", "broadcast",
                                 "reduce",    "alltoall",  "sendrecv"};
  return kNames[static_cast<int>(c)];
}

bool isReduction(Coll c) {
  return c == Coll::kAllReduce || c == Coll::kReduceScatter || c == Coll::kReduce;
}
bool isRooted(Coll c) { return c == Coll::kBroadcast || c == Coll::kReduce; }
bool hasInPlace(Coll c) { return c != Coll::kAlltoAll && c != Coll::kSendRecv; }

double busFactor(Coll c, int n) {
  switch (c) {
    case Coll::kAllReduce:
      return 2.0 * (n - 1) / n;
    case Coll::kAllGather:
    case Coll::kReduceScatter:
    case Coll::kAlltoAll:
      return static_cast<double>(n - 1) / n;
    default:
      return 1.0;
  }
}

Counts countsFor(Coll c, size_t bytes, size_t es, int n) {
  const size_t count = bytes / es;
  switch (c) {
    case Coll::kAllGather:
    case Coll::kReduceScatter:
    case Coll::kAlltoAll: {
      const size_t per = count / n;
      return {per, per * n * es, per * n};
    }
    default:
      return {count, count * es, count};
  }
}

std::string cell(double v, int width) {
  char b[64];
  for (const char* f : {"%.2f", "%.1f", "%.0f"}) {
    std::snprintf(b, sizeof b, f, v);
    if (static_cast<int>(std::strlen(b)) <= width) return b;
  }
  std::snprintf(b, sizeof b, "%.*e", std::max(0, width - 6), v);
  return b;
}

std::string columnHeader() {
  // The header is fixed text in nccl-tests (its spacing does not follow the row
  // widths exactly).
  return "#                                                              "
         "out-of-place                  "
         "     in-place          \n"
         "#       size         count      type   redop    root     time   "
         "algbw   busbw #wrong     time "
         "  algbw   busbw #wrong\n"
         "#        (B)    (elements)                               (us)  "
         "(GB/s)  (GB/s)            (us) "
         " (GB/s)  (GB/s)       \n";
}

std::string rowLead(size_t sizeBytes, size_t count, const char* type, const char* redop, int root) {
  char b[128];
  std::snprintf(b, sizeof b, "%12li  %12li  %8s  %6s  %6i", static_cast<long>(sizeBytes),
                static_cast<long>(count), type, redop, root);
  return b;
}

std::string rowGroup(double us, double algbw, double busbw, int64_t wrong) {
  char b[128];
  if (wrong < 0) {
    std::snprintf(b, sizeof b, "  %7s  %6s  %6s  %6s", cell(us, 7).c_str(), cell(algbw, 6).c_str(),
                  cell(busbw, 6).c_str(), "N/A");
  } else {
    std::snprintf(b, sizeof b, "  %7s  %6s  %6s  %6g", cell(us, 7).c_str(), cell(algbw, 6).c_str(),
                  cell(busbw, 6).c_str(), static_cast<double>(wrong));
  }
  return b;
}

std::string rowGroupNa() {
  char b[64];
  std::snprintf(b, sizeof b, "  %7s  %6s  %6s  %6s", "N/A", "N/A", "N/A", "N/A");
  return b;
}

std::string footer(int64_t wrongTotal, double avgBusbw) {
  char b[160];
  std::snprintf(b, sizeof b, "# Out of bounds values : %ld %s\n# Avg bus bandwidth    : %s \n#\n",
                static_cast<long>(wrongTotal), wrongTotal == 0 ? "OK" : "FAILED",
                cell(avgBusbw, 8).c_str());
  return b;
}

}  // namespace trellis::bench
