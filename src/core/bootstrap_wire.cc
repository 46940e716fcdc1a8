#include "core/bootstrap_wire.h"

#include <cstring>

namespace trellis::bootwire {

JoinTable::JoinTable(const uint8_t secret[16]) { std::memcpy(secret_, secret, sizeof secret_); }

Status JoinTable::offer(const JoinMsg& msg, int* rank) {
  if (msg.magic != kMagic || msg.kind != static_cast<uint32_t>(MsgKind::kJoin) ||
      !net::constantTimeEqual(msg.secret, secret_, sizeof secret_))
    return invalidArgument("not a join request with the job's secret");
  if (msg.nranks <= 0 || msg.nranks > kMaxRanks || msg.rank < 0 || msg.rank >= msg.nranks ||
      (nranks_ > 0 && msg.nranks != nranks_))
    return invalidArgument("rank %d announced nranks %d (expected %d, at most %d)", msg.rank, msg.nranks, nranks_,
                           kMaxRanks);
  if (nranks_ < 0) {
    nranks_ = msg.nranks;
    table_.assign(nranks_, net::WireAddr{});
    joined_.assign(nranks_, false);
  }
  if (joined_[msg.rank]) return invalidArgument("rank %d joined twice", msg.rank);
  joined_[msg.rank] = true;
  table_[msg.rank] = msg.addr;
  ++count_;
  *rank = msg.rank;
  return Status::ok();
}

Status checkP2pHeader(const P2pHeader& h, const uint8_t secret[16], int nranks, uint64_t maxBytes) {
  if (h.magic != kMagic || h.kind != static_cast<uint32_t>(MsgKind::kP2p) ||
      !net::constantTimeEqual(h.secret, secret, 16))
    return invalidArgument("not a message header with the job's secret");
  if (h.from < 0 || h.from >= nranks || h.bytes > maxBytes)
    return invalidArgument("sender rank %d of %d, %llu bytes (at most %llu accepted, TRELLIS_BOOTSTRAP_MAX_MSG_BYTES)",
                           h.from, nranks, static_cast<unsigned long long>(h.bytes),
                           static_cast<unsigned long long>(maxBytes));
  return Status::ok();
}

Result<std::vector<net::SockAddr>> decodeTable(const std::vector<net::WireAddr>& table) {
  std::vector<net::SockAddr> out(table.size());
  for (size_t r = 0; r < table.size(); ++r) {
    auto a = net::fromWire(table[r]);
    if (!a) return a.status().withContext(formatString("bootstrap table entry of rank %zu", r));
    out[r] = a.value();
  }
  return out;
}

}  // namespace trellis::bootwire
