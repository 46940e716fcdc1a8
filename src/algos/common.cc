#include "algos/common.h"

#include <cstring>
#include <vector>

#include "algos/kernels/reduce.h"

namespace trellis::algos {

void copyIfDistinct(void* dst, const void* src, size_t bytes) {
  if (dst != src && bytes > 0) std::memmove(dst, src, bytes);
}

Status sendRecv(Exec& exec, int to, const void* sendPtr, size_t sendBytes, int from, void* recvPtr,
                size_t recvBytes) {
  Request reqs[2];
  Request* list[2];
  size_t n = 0;
  if (from >= 0) {
    TRELLIS_TRY(exec.irecv(from, recvPtr, recvBytes, &reqs[n]));
    list[n] = &reqs[n];
    ++n;
  }
  if (to >= 0) {
    TRELLIS_TRY(exec.isend(to, sendPtr, sendBytes, &reqs[n]));
    list[n] = &reqs[n];
    ++n;
  }
  return exec.waitAll(list, n);
}

Status sendRecvReduce(Exec& exec, int to, const void* sendPtr, size_t sendCount, int from, void* dst,
                      const void* a, size_t recvCount, trellisDataType_t dtype, trellisRedOp_t op) {
  const size_t es = dtypeSize(dtype);
  const size_t chunkElems = std::max<size_t>(1, exec.chunkBytes() / es);
  auto chunks = [&](size_t n) { return n == 0 ? size_t{1} : (n + chunkElems - 1) / chunkElems; };
  const size_t nsend = to >= 0 ? chunks(sendCount) : 0;
  const size_t nrecv = from >= 0 ? chunks(recvCount) : 0;
  std::vector<Request> sreqs(nsend);
  std::vector<Request*> sptrs(nsend);
  Request rreqs[kPipelineDepth];
  char* slots = nullptr;
  if (nrecv > 0)
    slots = static_cast<char*>(exec.scratch(kScratchPipeline, kPipelineDepth * std::min(chunkElems, std::max<size_t>(recvCount, 1)) * es));
  const size_t slotElems = std::min(chunkElems, std::max<size_t>(recvCount, 1));
  auto chunkLen = [&](size_t total, size_t i) { return std::min(chunkElems, total - std::min(total, i * chunkElems)); };
  auto postRecv = [&](size_t i) {
    return exec.irecv(from, slots + (i % kPipelineDepth) * slotElems * es, chunkLen(recvCount, i) * es,
                      &rreqs[i % kPipelineDepth]);
  };
  for (size_t i = 0; i < nrecv && i < static_cast<size_t>(kPipelineDepth); ++i) TRELLIS_TRY(postRecv(i));
  const char* sbase = static_cast<const char*>(sendPtr);
  for (size_t i = 0; i < nsend; ++i) {
    TRELLIS_TRY(exec.isend(to, sbase + i * chunkElems * es, chunkLen(sendCount, i) * es, &sreqs[i]));
    sptrs[i] = &sreqs[i];
  }
  char* d = static_cast<char*>(dst);
  const char* ab = static_cast<const char*>(a);
  for (size_t i = 0; i < nrecv; ++i) {
    TRELLIS_TRY(exec.wait(&rreqs[i % kPipelineDepth]));
    size_t n = chunkLen(recvCount, i);
    size_t off = i * chunkElems * es;
    reduce2(d + off, ab + off, slots + (i % kPipelineDepth) * slotElems * es, n, dtype, op);
    if (i + kPipelineDepth < nrecv) TRELLIS_TRY(postRecv(i + kPipelineDepth));
  }
  return exec.waitAll(sptrs.data(), nsend);
}

}  // namespace trellis::algos

namespace trellis::algos {

BinomialTree binomialTree(int rank, int n, int root) {
  BinomialTree t;
  const int vr = (rank - root + n) % n;
  int lowbit = 1;
  while (lowbit < n && !(vr & lowbit)) lowbit <<= 1;
  if (vr != 0) t.parent = (vr - lowbit + root) % n;
  for (int m = 1; m < (vr == 0 ? n : lowbit); m <<= 1)
    if (vr + m < n) t.children.push_back((vr + m + root) % n);
  return t;
}

PowerOfTwoFold powerOfTwoFold(int rank, int n) {
  PowerOfTwoFold f;
  while (f.p * 2 <= n) f.p *= 2;
  f.rem = n - f.p;
  if (rank < 2 * f.rem) f.vrank = rank % 2 == 0 ? -1 : rank / 2;
  else f.vrank = rank - f.rem;
  return f;
}

Status exchangeBuffers(Exec& exec, const void* send, const void* recv, std::vector<PeerBuffers>* out) {
  const int n = exec.nranks(), r = exec.rank();
  out->assign(n, PeerBuffers{});
  PeerBuffers mine{reinterpret_cast<uint64_t>(send), reinterpret_cast<uint64_t>(recv)};
  (*out)[r] = mine;
  std::vector<Request> reqs(2 * (n - 1));
  std::vector<Request*> ptrs;
  size_t k = 0;
  for (int p = 0; p < n; ++p) {
    if (p == r) continue;
    TRELLIS_TRY(exec.irecv(p, &(*out)[p], sizeof(PeerBuffers), &reqs[k]));
    ptrs.push_back(&reqs[k++]);
    TRELLIS_TRY(exec.isend(p, &mine, sizeof mine, &reqs[k]));
    ptrs.push_back(&reqs[k++]);
  }
  return exec.waitAll(ptrs.data(), ptrs.size());
}

Status barrier(Exec& exec) {
  const int n = exec.nranks(), r = exec.rank();
  std::vector<Request> reqs(2 * (n - 1));
  std::vector<Request*> ptrs;
  size_t k = 0;
  for (int p = 0; p < n; ++p) {
    if (p == r) continue;
    TRELLIS_TRY(exec.irecv(p, nullptr, 0, &reqs[k]));
    ptrs.push_back(&reqs[k++]);
    TRELLIS_TRY(exec.isend(p, nullptr, 0, &reqs[k]));
    ptrs.push_back(&reqs[k++]);
  }
  return exec.waitAll(ptrs.data(), ptrs.size());
}

}  // namespace trellis::algos
