// Direct (node-local) AllReduce, for ranks that can read each other's memory (one host, single
// copy allowed). Each rank reduces its 1/n block by reading that block from every peer's input
// (process_vm_readv into a cache-sized tile, reduced straight into its output) and writes each
// reduced tile into every peer's output (process_vm_writev) while it is still in cache; a final
// barrier tells every rank its output is complete and keeps buffers alive until every access is
// done. Per rank: S(n-1)/n bytes read from peers and as many written to them, one pass of
// reductions, no intermediate staging: wins for large messages inside a host.
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
  // Tile by tile: reduce this rank's block from every rank's input, then push the reduced tile,
  // still in cache, into every peer's output. Pushing (process_vm_writev) rather than letting the
  // peers pull the finished block later saves one pass over memory (the block is not read back
  // from DRAM) and a barrier. Only rank r reads or writes block r anywhere, so in place is safe:
  // a peer's input tile is overwritten only after it was read.
  const size_t first = blockOffset(args.count, n, r), count = blockCount(args.count, n, r);
  const size_t tileElems = std::max<size_t>(1, kTileBytes / es);
  char* tmp = static_cast<char*>(exec.scratch(kScratchAlgo, tileElems * es));
  for (size_t t = 0; t < count; t += tileElems) {
    const size_t m = std::min(tileElems, count - t);
    const size_t off = (first + t) * es;
    const char* acc = send + off;
    for (int k = 1; k < n; ++k) {  // peers in the same rotated order on every rank
      const int p = (r + k) % n;
      TRELLIS_TRY(exec.readPeer(p, bufs[p].send + off, tmp, m * es));
      reduce2(recv + off, acc, tmp, m, args.dtype, args.op);
      acc = recv + off;
    }
    for (int k = 1; k < n; ++k) {
      const int p = (r + k) % n;
      TRELLIS_TRY(exec.writePeer(p, bufs[p].recv + off, recv + off, m * es));
    }
  }
  // Every peer has written its block into this rank's output once it reaches the barrier.
  return barrier(exec);
}

}  // namespace trellis::algos
