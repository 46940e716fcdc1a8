#include "reference.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "algos/kernels/reduce.h"

namespace trellis::test {

bool isSigned(trellisDataType_t dt) {
  return dt == trellisInt8 || dt == trellisInt32 || dt == trellisInt64 || isFloat(dt);
}
bool isFloat(trellisDataType_t dt) {
  return dt == trellisFloat16 || dt == trellisBfloat16 || dt == trellisFloat32 || dt == trellisFloat64;
}
size_t elemSize(trellisDataType_t dt) { return algos::dtypeSize(dt); }
const char* typeName(trellisDataType_t dt) { return algos::dtypeName(dt); }
const char* redopName(trellisRedOp_t op) { return algos::opName(op); }

double inputValue(trellisRedOp_t op, trellisDataType_t dt, int rank, size_t i) {
  size_t k = static_cast<size_t>(rank) * 7 + i * 13;
  if (op == trellisProd) {
    // Mostly 1, sometimes 2 (or -1 for signed types): products stay within [-8, 8] on 16 ranks.
    if ((rank + i) % 5 == 0) return 2;
    if (isSigned(dt) && (rank + i) % 3 == 0) return -1;
    return 1;
  }
  int v = static_cast<int>(k % 11);      // 0..10: sums over 16 ranks <= 160 (uint8 max 255)
  return isSigned(dt) ? v - 5 : v;       // -5..5: sums within [-80, 80] (int8)
}

double readElem(const void* buf, trellisDataType_t dt, size_t i) {
  switch (dt) {
    case trellisInt8: return static_cast<const int8_t*>(buf)[i];
    case trellisUint8: return static_cast<const uint8_t*>(buf)[i];
    case trellisInt32: return static_cast<const int32_t*>(buf)[i];
    case trellisUint32: return static_cast<const uint32_t*>(buf)[i];
    case trellisInt64: return static_cast<double>(static_cast<const int64_t*>(buf)[i]);
    case trellisUint64: return static_cast<double>(static_cast<const uint64_t*>(buf)[i]);
    case trellisFloat16: return algos::halfToFloat(static_cast<const uint16_t*>(buf)[i]);
    case trellisBfloat16: return algos::bf16ToFloat(static_cast<const uint16_t*>(buf)[i]);
    case trellisFloat32: return static_cast<const float*>(buf)[i];
    case trellisFloat64: return static_cast<const double*>(buf)[i];
    default: return NAN;
  }
}

void writeElem(void* buf, trellisDataType_t dt, size_t i, double v) {
  switch (dt) {
    case trellisInt8: static_cast<int8_t*>(buf)[i] = static_cast<int8_t>(v); break;
    case trellisUint8: static_cast<uint8_t*>(buf)[i] = static_cast<uint8_t>(v); break;
    case trellisInt32: static_cast<int32_t*>(buf)[i] = static_cast<int32_t>(v); break;
    case trellisUint32: static_cast<uint32_t*>(buf)[i] = static_cast<uint32_t>(v); break;
    case trellisInt64: static_cast<int64_t*>(buf)[i] = static_cast<int64_t>(v); break;
    case trellisUint64: static_cast<uint64_t*>(buf)[i] = static_cast<uint64_t>(v); break;
    case trellisFloat16: static_cast<uint16_t*>(buf)[i] = algos::floatToHalf(static_cast<float>(v)); break;
    case trellisBfloat16: static_cast<uint16_t*>(buf)[i] = algos::floatToBf16(static_cast<float>(v)); break;
    case trellisFloat32: static_cast<float*>(buf)[i] = static_cast<float>(v); break;
    case trellisFloat64: static_cast<double*>(buf)[i] = v; break;
    default: break;
  }
}

void fill(void* buf, size_t n, trellisDataType_t dt, trellisRedOp_t op, int rank, size_t base) {
  for (size_t k = 0; k < n; ++k) writeElem(buf, dt, k, inputValue(op, dt, rank, base + k));
}

double expectedReduce(trellisRedOp_t op, trellisDataType_t dt, int nranks, size_t i) {
  double acc = inputValue(op, dt, 0, i);
  for (int r = 1; r < nranks; ++r) {
    double v = inputValue(op, dt, r, i);
    switch (op) {
      case trellisSum:
      case trellisAvg: acc += v; break;
      case trellisProd: acc *= v; break;
      case trellisMax: acc = std::max(acc, v); break;
      case trellisMin: acc = std::min(acc, v); break;
      default: break;
    }
  }
  if (op == trellisAvg) acc = isFloat(dt) ? acc / nranks : std::trunc(acc / nranks);
  return acc;
}

static bool matches(double got, double want, trellisDataType_t dt) {
  // Only Avg of floats can be inexact: one rounding of the division in the datatype.
  double tol = dt == trellisFloat16 ? 1e-3 : dt == trellisBfloat16 ? 8e-3 : dt == trellisFloat32 ? 1e-6 : 1e-12;
  return isFloat(dt) ? std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want)) : got == want;
}

size_t countWrong(const void* buf, size_t n, trellisDataType_t dt, const std::function<double(size_t)>& expected) {
  size_t wrong = 0;
  for (size_t k = 0; k < n; ++k) wrong += matches(readElem(buf, dt, k), expected(k), dt) ? 0 : 1;
  return wrong;
}

std::string compare(const void* buf, size_t n, trellisDataType_t dt, const std::function<double(size_t)>& expected) {
  size_t wrong = 0, first = 0;
  double got0 = 0, want0 = 0;
  for (size_t k = 0; k < n; ++k) {
    double want = expected(k), got = readElem(buf, dt, k);
    if (!matches(got, want, dt) && wrong++ == 0) {
      first = k;
      got0 = got;
      want0 = want;
    }
  }
  if (wrong == 0) return "";
  char msg[256];
  snprintf(msg, sizeof msg, "%zu of %zu wrong, first at %zu: got %g want %g", wrong, n, first, got0, want0);
  return msg;
}

}  // namespace trellis::test
