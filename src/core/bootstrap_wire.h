// The bootstrap's wire formats and the checks applied to what arrives (untrusted bytes): a rank's
// join request to the root, the root's bookkeeping of who joined, and the header of a rank-to-rank
// message. Separate from the sockets so that tests and fuzzers drive them directly.
#pragma once

#include <cstdint>
#include <vector>

#include "core/socket.h"
#include "core/status.h"

namespace trellis::bootwire {

constexpr uint32_t kMagic = 0x7e11b007;
/// Largest job the bootstrap accepts (the root's table is 28 bytes per rank: 28 MiB at this size).
constexpr int kMaxRanks = 1 << 20;
enum class MsgKind : uint32_t { kJoin = 1, kTable = 2, kP2p = 3 };

/// A rank's join request to the root.
struct JoinMsg {
  uint32_t magic;
  uint32_t kind;
  uint8_t secret[16];
  int32_t nranks;
  int32_t rank;
  net::WireAddr addr;
};
static_assert(sizeof(JoinMsg) == 60);

/// Header of a rank-to-rank message (`bytes` of payload follow).
struct P2pHeader {
  uint32_t magic;
  uint32_t kind;
  uint8_t secret[16];
  int32_t from;
  uint32_t tag;
  uint64_t bytes;
};
static_assert(sizeof(P2pHeader) == 40);

/// The root's table of joined ranks. offer() accepts a join request or says why it is refused
/// (the caller logs and drops the connection); the first accepted request fixes nranks.
class JoinTable {
 public:
  explicit JoinTable(const uint8_t secret[16]);
  /// Ok: rank `*rank` joined. Error: the request is refused, nothing changed.
  Status offer(const JoinMsg& msg, int* rank);
  bool complete() const { return nranks_ > 0 && count_ == nranks_; }
  int nranks() const { return nranks_; }
  int joined() const { return count_; }
  /// Every rank's listen address, indexed by rank (complete tables only).
  const std::vector<net::WireAddr>& addresses() const { return table_; }

 private:
  uint8_t secret_[16];
  int nranks_ = -1;
  int count_ = 0;
  std::vector<net::WireAddr> table_;
  std::vector<bool> joined_;
};

/// Checks a message header from a peer: magic, kind, secret (constant time), sender rank in
/// [0, nranks), length at most maxBytes.
Status checkP2pHeader(const P2pHeader& h, const uint8_t secret[16], int nranks, uint64_t maxBytes);
/// Decodes the root's table of `nranks` listen addresses (each family checked).
Result<std::vector<net::SockAddr>> decodeTable(const std::vector<net::WireAddr>& table);

}  // namespace trellis::bootwire
