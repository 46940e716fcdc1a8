// Bootstrap messages as the root and the ranks receive them from the network: a stream of join
// requests offered to the root's table (the first byte of each says whether to plant the job's
// secret, so the checks after the secret are reached too), rank-to-rank message headers, and the
// root's table of addresses as a rank decodes it.
#include <cstring>
#include <vector>

#include "core/bootstrap_wire.h"

using namespace trellis::bootwire;

static const uint8_t kSecret[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  JoinTable joins(kSecret);
  size_t off = 0;
  int accepted = 0;
  while (off + 1 + sizeof(JoinMsg) <= size && off < 64 * (1 + sizeof(JoinMsg))) {
    const bool plant = data[off] & 1;
    JoinMsg m;
    std::memcpy(&m, data + off + 1, sizeof m);
    if (plant) std::memcpy(m.secret, kSecret, 16);
    int rank = -1;
    if (joins.offer(m, &rank).isOk()) {
      ++accepted;
      if (rank < 0 || rank >= joins.nranks()) __builtin_trap();
    }
    if (joins.joined() != accepted || (accepted > 0 && joins.joined() > joins.nranks())) __builtin_trap();
    off += 1 + sizeof(JoinMsg);
  }
  if (joins.complete()) (void)decodeTable(joins.addresses());
  // Whatever is left: message headers, then a table of addresses.
  while (off + 1 + sizeof(P2pHeader) <= size) {
    P2pHeader h;
    std::memcpy(&h, data + off + 1, sizeof h);
    if (data[off] & 1) std::memcpy(h.secret, kSecret, 16);
    int nranks = 1 + (data[off] >> 1);
    if (checkP2pHeader(h, kSecret, nranks, 1 << 20).isOk() && (h.from < 0 || h.from >= nranks || h.bytes > (1 << 20)))
      __builtin_trap();
    off += 1 + sizeof(P2pHeader);
  }
  std::vector<trellis::net::WireAddr> table((size - off) / sizeof(trellis::net::WireAddr));
  if (!table.empty()) std::memcpy(table.data(), data + off, table.size() * sizeof(trellis::net::WireAddr));
  auto t = decodeTable(table);
  if (t)
    for (const auto& a : t.value()) (void)a.toString();
  return 0;
}
