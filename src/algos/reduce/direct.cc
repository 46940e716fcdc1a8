// Direct (node-local) Reduce, for ranks that can read each other's memory (one host, single copy
// allowed). Every rank reduces its 1/n block by reading that block from every peer's input, tile
// by tile (as the direct AllReduce does); the root reduces straight into its output, every other
// rank into a cache-sized tile that it then writes into the root's output (process_vm_writev)
// while still in cache; a final barrier tells the root its output is complete. Per rank (n-1)/n * S
// read for the reductions and S/n written to the root; the reductions run on all ranks at once
// instead of log2(n) full-size rounds of a tree: wins for large messages inside a host.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

namespace {
constexpr size_t kTileBytes = 256 * 1024;
}

Status reduceDirect(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t es = dtypeSize(args.dtype);
  const char* send = static_cast<const char*>(args.send);
  const bool isRoot = r == args.root;
  if (n == 1) {
    copyIfDistinct(args.recv, send, args.count * es);
    return Status::ok();
  }
  std::vector<PeerBuffers> bufs;
  TRELLIS_TRY(exchangeBuffers(exec, send, isRoot ? args.recv : nullptr, &bufs));
  const size_t first = blockOffset(args.count, n, r), count = blockCount(args.count, n, r);
  const size_t tileElems = std::max<size_t>(1, kTileBytes / es);
  char* tmp = static_cast<char*>(exec.scratch(kScratchAlgo, tileElems * es));
  char* tile = isRoot ? nullptr : static_cast<char*>(exec.scratch(kScratchAlgo + 1, tileElems * es));
  const uint64_t rootOut = bufs[args.root].recv;
  for (size_t t = 0; t < count; t += tileElems) {
    const size_t m = std::min(tileElems, count - t);
    const size_t off = (first + t) * es;
    // Only this rank touches block r of any buffer: the root's output may be its input (in place).
    char* dst = isRoot ? static_cast<char*>(args.recv) + off : tile;
    const char* acc = send + off;
    for (int k = 1; k < n; ++k) {  // peers in the same rotated order on every rank
      const int p = (r + k) % n;
      TRELLIS_TRY(exec.readPeer(p, bufs[p].send + off, tmp, m * es));
      reduce2(dst, acc, tmp, m, args.dtype, args.op);
      acc = dst;
    }
    if (!isRoot) TRELLIS_TRY(exec.writePeer(args.root, rootOut + off, dst, m * es));
  }
  // Past the barrier every block is in the root's output and no rank reads an input any more.
  return barrier(exec);
}

}  // namespace trellis::algos
