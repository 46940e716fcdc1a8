// Scatter + all-gather Broadcast (van de Geijn): the root sends block i to rank i, then a ring
// all-gather completes every rank's copy. The root sends (n-1)/n * S instead of S per child, and
// every link carries ~2S/n per step: wins for large messages on many ranks.
#include <vector>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status broadcastScatterAllgather(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t es = dtypeSize(args.dtype);
  char* buf = static_cast<char*>(args.recv);
  if (r == args.root) copyIfDistinct(buf, args.send, args.count * es);
  if (n == 1) return Status::ok();
  auto off = [&](int b) { return blockOffset(args.count, n, (b % n + n) % n) * es; };
  auto len = [&](int b) { return blockCount(args.count, n, (b % n + n) % n) * es; };
  // Block b belongs to virtual rank b (rank root+b), so the ring below starts from the root.
  const int vr = (r - args.root + n) % n;
  if (r == args.root) {
    std::vector<Request> reqs(n - 1);
    std::vector<Request*> ptrs(n - 1);
    for (int v = 1; v < n; ++v) {
      TRELLIS_TRY(exec.isend((v + args.root) % n, buf + off(v), len(v), &reqs[v - 1]));
      ptrs[v - 1] = &reqs[v - 1];
    }
    TRELLIS_TRY(exec.waitAll(ptrs.data(), ptrs.size()));
  } else {
    TRELLIS_TRY(sendRecv(exec, -1, nullptr, 0, args.root, buf + off(vr), len(vr)));
  }
  const int right = (r + 1) % n, left = (r - 1 + n) % n;
  for (int s = 0; s < n - 1; ++s) {
    int sb = vr - s, rb = vr - s - 1;
    TRELLIS_TRY(sendRecv(exec, right, buf + off(sb), len(sb), left, buf + off(rb), len(rb)));
  }
  return Status::ok();
}

}  // namespace trellis::algos
