// Direct (node-local) Reduce, for ranks that can read each other's memory (one host, single copy
// allowed). Every rank reduces its 1/n block by reading that block from every peer's input (as
// the direct AllReduce does: tile by tile, reduced straight into place); a barrier; then the root
// copies the other ranks' reduced blocks into its output, and tells each rank it is done so their
// blocks can be reused. Per rank (n-1)/n * S read for the reductions, the root another (n-1)/n * S;
// the reductions run on all ranks at once instead of log2(n) full-size rounds of a tree: wins for
// large messages inside a host.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status reduceBlockDirect(Exec& exec, const std::vector<PeerBuffers>& bufs, const char* myInput, char* out,
                         size_t first, size_t count, trellisDataType_t dt, trellisRedOp_t op);

Status reduceDirect(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t es = dtypeSize(args.dtype);
  const char* send = static_cast<const char*>(args.send);
  const bool isRoot = r == args.root;
  if (n == 1) {
    copyIfDistinct(args.recv, send, args.count * es);
    return Status::ok();
  }
  const size_t first = blockOffset(args.count, n, r), count = blockCount(args.count, n, r);
  // Where this rank's reduced block lands: in place in the root's output, in scratch elsewhere
  // (the non-root output buffer may be NULL). The base is shifted so block offsets line up with
  // the input's, as in the direct ReduceScatter.
  char* block = isRoot ? static_cast<char*>(args.recv) + first * es
                       : static_cast<char*>(exec.scratch(kScratchAlgo + 1, std::max<size_t>(count * es, 1)));
  char* outBase = block - first * es;
  std::vector<PeerBuffers> bufs;
  TRELLIS_TRY(exchangeBuffers(exec, send, outBase, &bufs));
  TRELLIS_TRY(reduceBlockDirect(exec, bufs, send, outBase, first, count, args.dtype, args.op));
  TRELLIS_TRY(barrier(exec));  // every block reduced; the inputs are no longer read
  if (!isRoot) {
    Request done;
    TRELLIS_TRY(exec.irecv(args.root, nullptr, 0, &done));
    return exec.wait(&done);
  }
  char* recv = static_cast<char*>(args.recv);
  for (int k = 1; k < n; ++k) {
    int p = (r + k) % n;
    size_t off = blockOffset(args.count, n, p) * es, len = blockCount(args.count, n, p) * es;
    if (len) TRELLIS_TRY(exec.readPeer(p, bufs[p].recv + off, recv + off, len));
  }
  std::vector<Request> done(n);
  std::vector<Request*> reqs;
  for (int p = 0; p < n; ++p) {
    if (p == r) continue;
    TRELLIS_TRY(exec.isend(p, nullptr, 0, &done[p]));
    reqs.push_back(&done[p]);
  }
  return exec.waitAll(reqs.data(), reqs.size());
}

}  // namespace trellis::algos
