// Bootstrap: how the ranks of a communicator find each other.
//
// The unique id carries the root's address and a random 128-bit secret. trellisGetUniqueId starts a
// root listener (a thread in the calling process); each rank opens its own bootstrap listener,
// connects to the root and presents {secret, nranks, rank, its listener address}; once all nranks
// ranks have joined, the root sends every rank the table of all listener addresses and exits.
// After that ranks exchange small messages directly (one short-lived connection per message,
// each carrying the secret): point-to-point send/recv with tags, ring all-gather, barrier.
// Connections that do not present the secret are dropped and logged. Every wait has a deadline.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/acceptor.h"
#include "core/socket.h"
#include "core/status.h"
#include "trellis/trellis.h"

namespace trellis {

/// The decoded unique id. Byte layout (little-endian host fields, network-order port):
/// [0..4) magic 'TRLS', [4..6) version, [6..8) family, [8..10) port (network order), [12..28)
/// address, [28..44) secret; the rest is zero.
struct UniqueIdData {
  static constexpr uint32_t kMagic = 0x534c5254;  // "TRLS" in memory order
  static constexpr uint16_t kVersion = 1;
  net::SockAddr root;
  uint8_t secret[16] = {};

  void encode(trellisUniqueId* out) const;
  static Result<UniqueIdData> decode(const trellisUniqueId& id);
  /// 256 lowercase hex characters (TRELLIS_UNIQUE_ID as set by trellis-run).
  static std::string toHex(const trellisUniqueId& id);
  static Result<trellisUniqueId> fromHex(const std::string& hex);
};

/// Creates an id for a root listening on the selected interface (`port` 0: ephemeral) and starts
/// the root thread in this process. The root gives up `rootTimeoutS` seconds after it started
/// if the job has not fully joined by then.
Result<UniqueIdData> startBootstrapRoot(uint16_t port, double rootTimeoutS);
/// Starts a root listening on `addr` with the given secret (launchers that agree on both out of band).
Result<UniqueIdData> startBootstrapRootAt(const net::SockAddr& addr, const uint8_t secret[16], double rootTimeoutS);

class Bootstrap {
 public:
  Bootstrap() = default;
  ~Bootstrap();
  Bootstrap(const Bootstrap&) = delete;
  Bootstrap& operator=(const Bootstrap&) = delete;

  /// Joins the job described by `id`. Blocks until every rank has joined or `timeoutS` elapsed.
  Status init(const UniqueIdData& id, int rank, int nranks, double timeoutS,
              const std::atomic<bool>* abort);

  int rank() const { return rank_; }
  int nranks() const { return nranks_; }
  const uint8_t* secret() const { return secret_; }
  const net::SockAddr& listenAddr() const { return self_; }

  /// Sends `bytes` to `peer`, matched by (sender, tag) on the receiving side.
  Status send(int peer, uint32_t tag, const void* data, size_t bytes);
  /// Receives exactly `bytes` from `peer` with `tag` (messages of other peers/tags are queued).
  Status recv(int peer, uint32_t tag, void* data, size_t bytes);
  /// Every rank contributes `bytes` at data + rank*bytes; on return all slots are filled.
  Status allGather(void* data, size_t bytes);
  Status barrier();
  /// Allocates a fresh tag range for a collective operation on this bootstrap (same on all ranks
  /// because calls happen in the same order).
  uint32_t nextTag() { return tagCounter_ += 16; }

 private:
  struct Pending {
    int from;
    uint32_t tag;
    std::vector<char> data;
  };
  Status acceptMessage(net::Deadline deadline, Pending* out);

  int rank_ = -1;
  int nranks_ = 0;
  double timeoutS_ = 60;
  uint8_t secret_[16] = {};
  net::Socket listen_;
  std::unique_ptr<net::GreetingAcceptor> acceptor_;  // strangers are read concurrently and dropped
  net::SockAddr self_;
  std::vector<net::SockAddr> peers_;
  std::deque<Pending> unexpected_;
  const std::atomic<bool>* abort_ = nullptr;
  uint32_t tagCounter_ = 0x1000;
};

}  // namespace trellis
