// Test data and references: every input element is a small integer chosen so that sums, products,
// minima and maxima over up to 16 ranks are exact in every datatype (float16 and bfloat16
// included); the reference is computed in double precision (exact for integers); Avg follows C
// truncation for integers.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "trellis/trellis.h"

namespace trellis::test {

bool isSigned(trellisDataType_t dt);
bool isFloat(trellisDataType_t dt);
size_t elemSize(trellisDataType_t dt);
const char* typeName(trellisDataType_t dt);
const char* redopName(trellisRedOp_t op);

/// Input element i of `rank` for reductions with `op` (and for data movement with trellisSum).
double inputValue(trellisRedOp_t op, trellisDataType_t dt, int rank, size_t i);
/// buf[k] = inputValue(op, dt, rank, base + k) for k < n.
void fill(void* buf, size_t n, trellisDataType_t dt, trellisRedOp_t op, int rank, size_t base = 0);
/// Reduction of element i over ranks 0..nranks-1, as the datatype represents it.
double expectedReduce(trellisRedOp_t op, trellisDataType_t dt, int nranks, size_t i);

double readElem(const void* buf, trellisDataType_t dt, size_t i);
void writeElem(void* buf, trellisDataType_t dt, size_t i, double v);

/// Number of k < n where buf[k] differs from expected(k) beyond the datatype's tolerance.
size_t countWrong(const void* buf, size_t n, trellisDataType_t dt, const std::function<double(size_t)>& expected);

/// Compares buf[k] against expected(k) for k < n. Returns "" or "<n wrong>, first at k: got x want y".
std::string compare(const void* buf, size_t n, trellisDataType_t dt, const std::function<double(size_t)>& expected);

}  // namespace trellis::test
