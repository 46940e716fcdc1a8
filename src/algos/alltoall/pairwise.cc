// Pairwise-exchange AlltoAll(v): at step s a rank sends to r+s and receives from r-s, so every
// pair exchanges exactly once and no rank is a hot spot. A window of steps is kept in flight to
// hide per-message latency. (n-1)/n of the data crosses the network; the own block is a copy.
#include <vector>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

namespace {
constexpr int kWindow = 8;

template <typename SOff, typename SLen, typename ROff, typename RLen>
Status pairwise(Exec& exec, const char* send, char* recv, SOff soff, SLen slen, ROff roff, RLen rlen) {
  const int n = exec.nranks(), r = exec.rank();
  copyIfDistinct(recv + roff(r), send + soff(r), slen(r));
  std::vector<Request> reqs(2 * (n - 1));
  std::vector<Request*> ptrs(2 * (n - 1));
  for (int s = 1; s < n; s += kWindow) {
    int end = std::min(n, s + kWindow);
    size_t k = 0;
    for (int t = s; t < end; ++t) {
      int to = (r + t) % n, from = (r - t + n) % n;
      TRELLIS_TRY(exec.irecv(from, recv + roff(from), rlen(from), &reqs[k]));
      ptrs[k] = &reqs[k];
      ++k;
      TRELLIS_TRY(exec.isend(to, send + soff(to), slen(to), &reqs[k]));
      ptrs[k] = &reqs[k];
      ++k;
    }
    TRELLIS_TRY(exec.waitAll(ptrs.data(), k));
  }
  return Status::ok();
}
}  // namespace

Status alltoallPairwise(Exec& exec, const CollArgs& args) {
  const size_t block = args.count * dtypeSize(args.dtype);
  auto off = [&](int p) { return p * block; };
  auto len = [&](int) { return block; };
  return pairwise(exec, static_cast<const char*>(args.send), static_cast<char*>(args.recv), off, len, off, len);
}

Status alltoallvPairwise(Exec& exec, const CollArgs& args) {
  const size_t es = dtypeSize(args.dtype);
  auto soff = [&](int p) { return args.sdispls[p] * es; };
  auto slen = [&](int p) { return args.sendcounts[p] * es; };
  auto roff = [&](int p) { return args.rdispls[p] * es; };
  auto rlen = [&](int p) { return args.recvcounts[p] * es; };
  return pairwise(exec, static_cast<const char*>(args.send), static_cast<char*>(args.recv), soff, slen, roff, rlen);
}

}  // namespace trellis::algos
