// The correctness check: inputs filled with a deterministic pattern of (rank,
// index) that keeps every op exact in every datatype (small integers; products
// stay in range), the expected result computed on the host in double precision,
// and the wrong elements counted (exact for integers, the datatype's tolerance
// for float16/bfloat16/float32). See tests/support/reference.h.
#pragma once

#include <cstdint>
#include <string>

#include "format.h"
#include "impl.h"

namespace trellis::bench {

struct CheckArgs {
  Coll coll;
  Counts counts;
  trellisDataType_t dt;
  trellisRedOp_t op;
  int root;
  bool inPlace;
  int corrupt = 0;  ///< test hook (--debug-corrupt): rank 0 spoils this many
                    ///< output elements
};

/// Fills the inputs of one operation on this rank, runs it once through `impl`
/// and returns the number of wrong elements this rank sees (its output only).
/// `send`/`recv` are the benchmark's buffers. On a failed call sets *err and
/// returns the element count.
int64_t checkOnce(Impl& impl, const CheckArgs& a, char* send, char* recv, std::string* err);

/// The buffers one operation uses, in place or not (nccl-tests' in-place
/// definitions).
void operands(Coll c, size_t param, size_t elemSize, int rank, bool inPlace, char* send, char* recv,
              const void** in, void** out);

}  // namespace trellis::bench
