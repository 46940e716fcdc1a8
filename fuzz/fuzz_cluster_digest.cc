// Topology digests all-gathered from peers at communicator creation: each 1 KiB-ish record is
// validated (fromDigest) and the accepted ones build the cluster view, as every rank does.
#include <cstring>
#include <vector>

#include "topo/cluster_view.h"

using namespace trellis::topo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint64_t> hosts;
  std::vector<LocalTopology> locals;
  size_t off = 0;
  for (int rank = 0; off + 1 + sizeof(RankDigest) <= size && rank < 16; ++rank) {
    RankDigest d;
    std::memcpy(&d, data + off + 1, sizeof d);
    if (data[off] & 1) {  // plant a valid header so the checks after it are reached
      d.magic = RankDigest::kMagic;
      d.version = RankDigest::kVersion;
    }
    off += 1 + sizeof d;
    uint64_t host = 0;
    auto t = fromDigest(d, rank, &host);
    if (!t) continue;
    hosts.push_back(host);
    locals.push_back(t.value());
    RankDigest again = toDigest(host, t.value());
    (void)fromDigest(again, rank, &host);
  }
  if (hosts.empty()) return 0;
  ClusterView v = ClusterView::build(hosts, locals);
  (void)v.describe();
  (void)v.ringOrder();
  for (int n = 0; n < v.nnodes(); ++n) (void)v.slots(n);
  return 0;
}
