// Rabenseifner AllReduce: reduce-scatter by recursive halving, then all-gather by recursive
// doubling, over p = 2^floor(log2 n) ranks (the extra ranks fold in and out as in recursive
// doubling). Bytes per rank: 2(p-1)/p * S like the ring, but in 2 log2(p) steps instead of 2(n-1):
// wins for medium messages and large rank counts.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allreduceRabenseifner(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t es = dtypeSize(args.dtype);
  const size_t bytes = args.count * es;
  char* recv = static_cast<char*>(args.recv);
  copyIfDistinct(recv, args.send, bytes);
  if (n == 1) return Status::ok();
  const PowerOfTwoFold fold = powerOfTwoFold(r, n);
  const int p = fold.p, rem = fold.rem, vr = fold.vrank;
  if (r < 2 * rem) {
    if (vr < 0)  // chunked exactly as the receiving side reduces it
      TRELLIS_TRY(sendRecvReduce(exec, r + 1, recv, args.count, -1, nullptr, nullptr, 0, args.dtype, args.op));
    else
      TRELLIS_TRY(sendRecvReduce(exec, -1, nullptr, 0, r - 1, recv, recv, args.count, args.dtype, args.op));
  }
  auto real = [&](int v) { return fold.toReal(v); };
  auto eoff = [&](int block) { return block == p ? args.count : blockOffset(args.count, p, block); };
  if (vr >= 0) {
    int lo = 0, hi = p;
    for (int mask = p / 2; mask >= 1; mask /= 2) {
      int partner = real(vr ^ mask);
      int mid = (lo + hi) / 2;
      int keepLo = (vr & mask) ? mid : lo, keepHi = (vr & mask) ? hi : mid;
      int giveLo = (vr & mask) ? lo : mid, giveHi = (vr & mask) ? mid : hi;
      TRELLIS_TRY(sendRecvReduce(exec, partner, recv + eoff(giveLo) * es, eoff(giveHi) - eoff(giveLo), partner,
                                 recv + eoff(keepLo) * es, recv + eoff(keepLo) * es, eoff(keepHi) - eoff(keepLo),
                                 args.dtype, args.op));
      lo = keepLo;
      hi = keepHi;
    }
    // Block vr is fully reduced here; double the owned range at each step.
    for (int mask = 1; mask < p; mask *= 2) {
      int partner = real(vr ^ mask);
      int myLo = vr & ~(mask - 1), myHi = myLo + mask;
      int thLo = (vr ^ mask) & ~(mask - 1), thHi = thLo + mask;
      TRELLIS_TRY(sendRecv(exec, partner, recv + eoff(myLo) * es, (eoff(myHi) - eoff(myLo)) * es, partner,
                           recv + eoff(thLo) * es, (eoff(thHi) - eoff(thLo)) * es));
    }
  }
  if (r < 2 * rem) {
    if (r % 2 == 0) TRELLIS_TRY(sendRecv(exec, -1, nullptr, 0, r + 1, recv, bytes));
    else TRELLIS_TRY(sendRecv(exec, r - 1, recv, bytes, -1, nullptr, 0));
  }
  return Status::ok();
}

}  // namespace trellis::algos
