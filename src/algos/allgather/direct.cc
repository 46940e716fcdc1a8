// Direct (node-local) AllGather: each rank copies every peer's block straight from the peer's
// input (one copy per byte), then a barrier keeps inputs alive until all readers are done.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allgatherDirect(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t block = args.count * dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  copyIfDistinct(recv + r * block, args.send, block);
  if (n == 1) return Status::ok();
  std::vector<PeerBuffers> bufs;
  TRELLIS_TRY(exchangeBuffers(exec, args.send, recv, &bufs));
  for (int k = 1; k < n && block > 0; ++k) {
    int p = (r + k) % n;
    TRELLIS_TRY(exec.readPeer(p, bufs[p].send, recv + p * block, block));
  }
  return barrier(exec);
}

}  // namespace trellis::algos
