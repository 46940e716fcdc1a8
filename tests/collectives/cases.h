// One collective call checked against the double-precision reference, run by every rank.
#pragma once

#include <string>
#include <vector>

#include "trellis/trellis.h"

namespace trellis::test {

enum class CollKind { kAllReduce, kBroadcast, kReduce, kAllGather, kReduceScatter, kAlltoAll, kAlltoAllv, kSendRecv };
const char* collKindName(CollKind k);

struct Case {
  CollKind coll;
  trellisDataType_t dtype;
  trellisRedOp_t op;
  size_t count;
  bool inPlace;
  int root;
  std::string describe() const;
};

/// Every (collective, datatype, op, count, in-place) combination for these counts; reductions
/// take every op, data movement only Sum. Roots rotate with the case index.
std::vector<Case> fullMatrix(int nranks, const std::vector<size_t>& counts);
/// A cheaper cross-section: every datatype with Sum and every op with int32/float32/bfloat16.
std::vector<Case> crossSection(int nranks, const std::vector<size_t>& counts);

/// Runs `c` on this rank and checks the result; "" on success.
std::string runCase(trellisComm_t comm, int rank, int nranks, const Case& c);

}  // namespace trellis::test
