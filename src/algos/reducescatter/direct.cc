// Direct (node-local) ReduceScatter: each rank reduces its own block by reading it from every
// peer's input (single copy, tile by tile), then a barrier keeps the inputs alive until every
// reader is done. (n-1)/n * nS... per rank only S read from peers.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status reduceBlockDirect(Exec& exec, const std::vector<PeerBuffers>& bufs, const char* myInput, char* out,
                         size_t first, size_t count, trellisDataType_t dt, trellisRedOp_t op);

Status reducescatterDirect(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t es = dtypeSize(args.dtype);
  const char* send = static_cast<const char*>(args.send);
  char* recv = static_cast<char*>(args.recv);
  if (n == 1) {
    copyIfDistinct(recv, send, args.count * es);
    return Status::ok();
  }
  std::vector<PeerBuffers> bufs;
  TRELLIS_TRY(exchangeBuffers(exec, send, recv, &bufs));
  // The output block is r of a buffer laid out like the input: shift so offsets line up.
  char* outBase = recv - r * args.count * es;
  TRELLIS_TRY(reduceBlockDirect(exec, bufs, send, outBase, r * args.count, args.count, args.dtype, args.op));
  return barrier(exec);
}

}  // namespace trellis::algos
