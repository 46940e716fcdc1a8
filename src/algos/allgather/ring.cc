// Ring AllGather: n-1 steps; at step s a rank forwards block r-s to the right and receives block
// r-s-1 from the left straight into the output. (n-1)/n * nS bytes per rank on the wire, n-1 hops.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allgatherRing(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t block = args.count * dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  copyIfDistinct(recv + r * block, args.send, block);  // in place when send == recv + r*block
  const int right = (r + 1) % n, left = (r - 1 + n) % n;
  for (int s = 0; s < n - 1; ++s) {
    int sb = (r - s + n) % n, rb = (r - s - 1 + n) % n;
    TRELLIS_TRY(sendRecv(exec, right, recv + sb * block, block, left, recv + rb * block, block));
  }
  return Status::ok();
}

}  // namespace trellis::algos
