// nccl-tests' output format: the preamble, the two-line column header, rows,
// the footers, the bandwidth conventions (GB = 1e9 B; busbw factors per
// collective) and nccl-tests' meaning of the size and count columns. Pure
// functions, so the format is unit-tested without running anything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "impl.h"

namespace trellis::bench {

bool isReduction(Coll c);
bool isRooted(Coll c);
/// AlltoAll and SendRecv have no in-place form in the Trellis API: their
/// in-place group is N/A.
bool hasInPlace(Coll c);
/// busbw = algbw * factor (2(n-1)/n allreduce; (n-1)/n allgather,
/// reducescatter, alltoall; else 1).
double busFactor(Coll c, int nranks);

struct Counts {
  size_t param;      ///< count argument of the API call (per rank block for
                     ///< gather/scatter/alltoall)
  size_t sizeBytes;  ///< the "size" column: the whole buffer for
                     ///< AllGather/ReduceScatter/AlltoAll
  size_t elems;      ///< the "count" column
};
/// Rounds `bytes` down to what the collective can move with elements of
/// `elemSize` over n ranks.
Counts countsFor(Coll c, size_t bytes, size_t elemSize, int nranks);

/// A float that fits `width` columns: %.2f, else %.1f, else %.0f, else
/// e-notation.
std::string cell(double v, int width);

/// `#       size  ...` three lines (group titles and the two header lines),
/// each ending in '\n'.
std::string columnHeader();
/// The five leading columns of a row.
std::string rowLead(size_t sizeBytes, size_t count, const char* type, const char* redop, int root);
/// One out-of-place or in-place group; wrong < 0 prints N/A (no check was run).
std::string rowGroup(double timeUs, double algbw, double busbw, int64_t wrong);
/// The group of a collective without that mode.
std::string rowGroupNa();
/// `# Out of bounds values : N OK|FAILED` and `# Avg bus bandwidth    : X`,
/// then `#`.
std::string footer(int64_t wrongTotal, double avgBusbw);

}  // namespace trellis::bench
