// Direct (node-local) Broadcast: every rank copies the root's input straight into its own output
// (all readers in parallel with the root's own copy, one copy per byte), then a barrier keeps the
// root's buffers alive.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status broadcastDirect(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t bytes = args.count * dtypeSize(args.dtype);
  char* buf = static_cast<char*>(args.recv);
  if (n == 1 || bytes == 0) {
    if (r == args.root) copyIfDistinct(buf, args.send, bytes);
    return n == 1 ? Status::ok() : barrier(exec);
  }
  std::vector<PeerBuffers> bufs;
  TRELLIS_TRY(exchangeBuffers(exec, args.send, buf, &bufs));
  if (r == args.root) copyIfDistinct(buf, args.send, bytes);
  if (r != args.root && bytes > 0) TRELLIS_TRY(exec.readPeer(args.root, bufs[args.root].send, buf, bytes));
  return barrier(exec);
}

}  // namespace trellis::algos
