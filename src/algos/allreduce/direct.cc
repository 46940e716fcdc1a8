// Direct (node-local) AllReduce, for ranks that can read each other's memory (one host, single
// copy allowed). Each rank reduces its 1/n block by reading that block from every peer's input
// (process_vm_readv into a cache-sized tile, reduced straight into its output), a barrier, then
// each rank copies the other blocks from the peers' outputs, and a final barrier keeps buffers
// alive until every reader is done. Per rank: S bytes read from peers, one pass of reductions and
// no intermediate message staging: wins for large messages inside a host.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

namespace {
constexpr size_t kTileBytes = 256 * 1024;
}

// Reduces elements [first, first+count) of every rank's input into `out` (+first).
Status reduceBlockDirect(Exec& exec, const std::vector<PeerBuffers>& bufs, const char* myInput, char* out,
                         size_t first, size_t count, trellisDataType_t dt, trellisRedOp_t op) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t es = dtypeSize(dt);
  const size_t tileElems = std::max<size_t>(1, kTileBytes / es);
  char* tmp = static_cast<char*>(exec.scratch(kScratchAlgo, tileElems * es));
  for (size_t t = 0; t < count; t += tileElems) {
    size_t m = std::min(tileElems, count - t);
    size_t off = (first + t) * es;
    const char* acc = myInput + off;
    for (int k = 1; k < n; ++k) {  // peers in the same rotated order on every rank
      int p = (r + k) % n;
      TRELLIS_TRY(exec.readPeer(p, bufs[p].send + off, tmp, m * es));
      reduce2(out + off, acc, tmp, m, dt, op);
      acc = out + off;
    }
  }
  return Status::ok();
}

Status allreduceDirect(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t es = dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  const char* send = static_cast<const char*>(args.send);
  if (n == 1) {
    copyIfDistinct(recv, send, args.count * es);
    return Status::ok();
  }
  std::vector<PeerBuffers> bufs;
  TRELLIS_TRY(exchangeBuffers(exec, send, recv, &bufs));
  TRELLIS_TRY(reduceBlockDirect(exec, bufs, send, recv, blockOffset(args.count, n, r), blockCount(args.count, n, r),
                                args.dtype, args.op));
  TRELLIS_TRY(barrier(exec));
  for (int k = 1; k < n; ++k) {
    int p = (r + k) % n;
    size_t off = blockOffset(args.count, n, p) * es, len = blockCount(args.count, n, p) * es;
    if (len) TRELLIS_TRY(exec.readPeer(p, bufs[p].recv + off, recv + off, len));
  }
  return barrier(exec);
}

}  // namespace trellis::algos
