// One-shot AllGather for small messages: every rank sends its block to every other rank at once
// and receives every other block straight into its output. One step with n-1 messages each way
// (Bruck needs ceil(log2 n), the ring n-1 dependent steps); (n-1) S/n bytes out per rank.
#include "algos/algorithms.h"
#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

Status allgatherOneShot(Exec& exec, const CollArgs& args) {
  const int r = exec.rank();
  const size_t block = args.count * dtypeSize(args.dtype);
  char* recv = static_cast<char*>(args.recv);
  AllPeers peers;
  TRELLIS_TRY(peers.post(
      exec, block, [&](int p) { return recv + static_cast<size_t>(p) * block; }, [&](int) { return args.send; }));
  copyIfDistinct(recv + static_cast<size_t>(r) * block, args.send, block);  // in place: send is block r
  return peers.wait(exec);
}

}  // namespace trellis::algos
