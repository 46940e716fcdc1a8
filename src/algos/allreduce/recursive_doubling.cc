// Recursive-doubling AllReduce.
// Non-powers of two: with p = 2^floor(log2 n) and rem = n - p, each even rank below 2*rem hands its
// data to the next odd rank and sits out; the p remaining ranks exchange the whole buffer with the
// partner at distance 1, 2, 4... reducing each time; finally the odd ranks hand the result back.
// Bytes per rank: S * log2(p) (+2S for folded ranks). Latency: log2(p) (+2) hops. Wins for small
// messages, where the hop count, not the bytes, is the cost. All ranks compute identical results
// (a+b == b+a holds in IEEE arithmetic and in the kernels).
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allreduceRecursiveDoubling(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t bytes = args.count * dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  copyIfDistinct(recv, args.send, bytes);
  if (n == 1) return Status::ok();
  const PowerOfTwoFold fold = powerOfTwoFold(r, n);
  const int p = fold.p, rem = fold.rem, vr = fold.vrank;
  char* tmp = static_cast<char*>(exec.scratch(kScratchAlgo, bytes));
  if (r < 2 * rem) {
    if (vr < 0) {
      TRELLIS_TRY(sendRecv(exec, r + 1, recv, bytes, -1, nullptr, 0));
    } else {
      TRELLIS_TRY(sendRecv(exec, -1, nullptr, 0, r - 1, tmp, bytes));
      reduce2(recv, recv, tmp, args.count, args.dtype, args.op);
    }
  }
  if (vr >= 0) {
    for (int mask = 1; mask < p; mask <<= 1) {
      int partner = fold.toReal(vr ^ mask);
      TRELLIS_TRY(sendRecv(exec, partner, recv, bytes, partner, tmp, bytes));
      reduce2(recv, recv, tmp, args.count, args.dtype, args.op);
    }
  }
  if (r < 2 * rem) {
    if (r % 2 == 0) TRELLIS_TRY(sendRecv(exec, -1, nullptr, 0, r + 1, recv, bytes));
    else TRELLIS_TRY(sendRecv(exec, r - 1, recv, bytes, -1, nullptr, 0));
  }
  return Status::ok();
}

}  // namespace trellis::algos
