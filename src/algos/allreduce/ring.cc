// Ring AllReduce.
// Steps: n-1 reduce-scatter steps (send block r-s to the right, receive block r-s-1 from the left
// and reduce it as its chunks arrive), then n-1 all-gather steps (forward the finished blocks).
// Bytes on the wire per rank: 2(n-1)/n * S. Latency: 2(n-1) hops. Wins for large messages.
// Out of place, the first step reads the send buffer directly, so no initial copy is made.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allreduceRing(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t es = dtypeSize(args.dtype);
  const char* send = static_cast<const char*>(args.send);
  char* recv = static_cast<char*>(args.recv);
  if (n == 1) {
    copyIfDistinct(recv, send, args.count * es);
    return Status::ok();
  }
  const int right = (r + 1) % n, left = (r - 1 + n) % n;
  auto off = [&](int b) { return blockOffset(args.count, n, (b % n + n) % n) * es; };
  auto cnt = [&](int b) { return blockCount(args.count, n, (b % n + n) % n); };
  for (int s = 0; s < n - 1; ++s) {
    int sb = r - s, rb = r - s - 1;
    // Our own block is sent from the input at step 0; later blocks were reduced into recv.
    const char* src = s == 0 ? send + off(sb) : recv + off(sb);
    TRELLIS_TRY(sendRecvReduce(exec, right, src, cnt(sb), left, recv + off(rb), send + off(rb), cnt(rb),
                               args.dtype, args.op));
  }
  // Now block r+1 is complete here; circulate the finished blocks.
  for (int s = 0; s < n - 1; ++s) {
    int sb = r + 1 - s, rb = r - s;
    TRELLIS_TRY(sendRecv(exec, right, recv + off(sb), cnt(sb) * es, left, recv + off(rb), cnt(rb) * es));
  }
  return Status::ok();
}

}  // namespace trellis::algos
