// One-shot AllGather for small messages: every rank sends its block to every other rank at once
// and receives every other block straight into its output. One step with n-1 messages each way
// (Bruck needs ceil(log2 n), the ring n-1 dependent steps); (n-1) S/n bytes out per rank.
#include <vector>

#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allgatherOneShot(Exec& exec, const CollArgs& args) {
  const int n = exec.nranks(), r = exec.rank();
  const size_t block = args.count * dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  std::vector<Request> reqs(2 * static_cast<size_t>(n - 1));
  std::vector<Request*> ptrs;
  ptrs.reserve(reqs.size());
  size_t k = 0;
  for (int s = 1; s < n; ++s) {
    const int p = (r + s) % n;
    TRELLIS_TRY(exec.irecv(p, recv + static_cast<size_t>(p) * block, block, &reqs[k]));
    ptrs.push_back(&reqs[k++]);
  }
  for (int s = 1; s < n; ++s) {
    TRELLIS_TRY(exec.isend((r - s + n) % n, args.send, block, &reqs[k]));
    ptrs.push_back(&reqs[k++]);
  }
  copyIfDistinct(recv + static_cast<size_t>(r) * block, args.send, block);  // in place: send is block r
  return exec.waitAll(ptrs.data(), ptrs.size());
}

}  // namespace trellis::algos
