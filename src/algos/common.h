// Building blocks shared by the algorithms: block partitioning and pipelined exchange steps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "algos/exec.h"
#include "trellis/trellis.h"

namespace trellis::algos {

/// Scratch slots used by the helpers below; algorithms use kScratchAlgo and up.
constexpr int kScratchPipeline = 0;
constexpr int kScratchAlgo = 2;
/// Receive buffers in flight per pipelined step.
constexpr int kPipelineDepth = 4;

/// Block i of `count` elements split into `parts` blocks whose sizes differ by at most one.
inline size_t blockOffset(size_t count, int parts, int i) {
  size_t q = count / parts, r = count % parts;
  return q * i + (static_cast<size_t>(i) < r ? i : r);
}
inline size_t blockCount(size_t count, int parts, int i) {
  return count / parts + (static_cast<size_t>(i) < count % parts ? 1 : 0);
}

/// Concurrently sends `sendCount` elements at `sendPtr` to `to` and receives `recvCount` elements
/// from `from`, writing dst[i] = a[i] op in[i] as each chunk arrives (dst may alias a). Both sides
/// cut messages into exec.chunkBytes() pieces, so reductions overlap with the transfer. `to`/`from`
/// may be -1 to skip that direction.
Status sendRecvReduce(Exec& exec, int to, const void* sendPtr, size_t sendCount, int from, void* dst,
                      const void* a, size_t recvCount, trellisDataType_t dtype, trellisRedOp_t op);

/// Concurrently sends `sendBytes` to `to` and receives `recvBytes` from `from` (-1 skips).
Status sendRecv(Exec& exec, int to, const void* sendPtr, size_t sendBytes, int from, void* recvPtr,
                size_t recvBytes);

/// Copies when the pointers differ (memcpy of `bytes`).
void copyIfDistinct(void* dst, const void* src, size_t bytes);

/// One step with every other rank at once (the "oneshot" algorithms): post() posts a receive of
/// `bytes` from every other rank p into recvAt(p) and a send of `bytes` to p from sendAt(p),
/// receives first, each in a rotated order; wait() waits for all of them. In between, the caller
/// does its local work (its own block), which then overlaps with the transfers.
class AllPeers {
 public:
  template <typename RecvAt, typename SendAt>
  Status post(Exec& exec, size_t bytes, RecvAt recvAt, SendAt sendAt) {
    const int n = exec.nranks(), r = exec.rank();
    reqs_.assign(2 * static_cast<size_t>(n - 1), Request{});
    ptrs_.clear();
    for (int s = 1; s < n; ++s) {
      const int p = (r + s) % n;
      TRELLIS_TRY(exec.irecv(p, recvAt(p), bytes, &reqs_[ptrs_.size()]));
      ptrs_.push_back(&reqs_[ptrs_.size()]);
    }
    for (int s = 1; s < n; ++s) {
      const int p = (r - s + n) % n;
      TRELLIS_TRY(exec.isend(p, sendAt(p), bytes, &reqs_[ptrs_.size()]));
      ptrs_.push_back(&reqs_[ptrs_.size()]);
    }
    return Status::ok();
  }
  Status wait(Exec& exec) { return exec.waitAll(ptrs_.data(), ptrs_.size()); }

 private:
  std::vector<Request> reqs_;
  std::vector<Request*> ptrs_;
};

}  // namespace trellis::algos

namespace trellis::algos {

/// A binomial tree rooted at `root`: the parent (-1 at the root) and the children, nearest first
/// (child vr+1, vr+2, vr+4... in root-relative numbering, below the lowest set bit of vr).
struct BinomialTree {
  int parent = -1;
  std::vector<int> children;
};
BinomialTree binomialTree(int rank, int nranks, int root);

/// Recursive doubling/halving on a non-power-of-two rank count: the largest power of two p <= n;
/// the first 2*(n-p) ranks pair up and the even one of each pair sits out. `vrank` is the rank among
/// the p active ones (-1 for ranks sitting out); `toReal` maps an active rank back.
struct PowerOfTwoFold {
  int p = 1;
  int rem = 0;
  int vrank = -1;
  int toReal(int v) const { return v < rem ? v * 2 + 1 : v + rem; }
};
PowerOfTwoFold powerOfTwoFold(int rank, int nranks);

/// Buffer addresses of every rank, for the direct (read-the-peer's-memory) algorithms.
struct PeerBuffers {
  uint64_t send;
  uint64_t recv;
};
/// Exchanges this rank's {send, recv} addresses with every rank (small messages).
Status exchangeBuffers(Exec& exec, const void* send, const void* recv, std::vector<PeerBuffers>* out);
/// Every rank waits for every other (a zero-byte message to and from each peer).
Status barrier(Exec& exec);

}  // namespace trellis::algos
