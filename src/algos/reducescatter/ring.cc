// Ring ReduceScatter: n-1 steps; at step s a rank sends its partial sum of block r-s-1 to the right
// and receives the left neighbour's partial sum of block r-s-2, adding its own input as the chunks
// arrive. The last step lands block r, complete, in the output. (n-1)/n * nS bytes per rank.
// Partial sums alternate between two scratch blocks (each is sent on the step after it is made).
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status reducescatterRing(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t es = dtypeSize(args.dtype);
  const size_t block = args.count * es;
  const char* send = static_cast<const char*>(args.send);
  char* recv = static_cast<char*>(args.recv);
  if (n == 1) {
    copyIfDistinct(recv, send, block);
    return Status::ok();
  }
  char* acc[2] = {nullptr, nullptr};
  if (n > 2) {
    acc[0] = static_cast<char*>(exec.scratch(kScratchAlgo, block));
    acc[1] = static_cast<char*>(exec.scratch(kScratchAlgo + 1, block));
  }
  const int right = (r + 1) % n, left = (r - 1 + n) % n;
  auto mod = [&](int b) { return (b % n + n) % n; };
  for (int s = 0; s < n - 1; ++s) {
    int sb = mod(r - s - 1), rb = mod(r - s - 2);
    const char* src = s == 0 ? send + sb * block : acc[(s - 1) % 2];
    char* dst = s == n - 2 ? recv : acc[s % 2];
    TRELLIS_TRY(sendRecvReduce(exec, right, src, args.count, left, dst, send + rb * block, args.count, args.dtype,
                               args.op));
  }
  return Status::ok();
}

}  // namespace trellis::algos
