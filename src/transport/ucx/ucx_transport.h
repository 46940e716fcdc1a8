// UCX transport: point-to-point messages over UCP tagged send/receive (Debian's UCX 1.13). UCX
// picks the wire itself (tcp, shared memory, InfiniBand/RoCE on a cluster; UCX_TLS or
// TRELLIS_UCX_TLS restricts it).
//
// One UCP context and worker per transport. Each message carries a 64-bit tag: the sender's id in
// the high 24 bits and a per-(sender, receiver) sequence number in the low 40, and every receive is
// posted for the exact tag it expects, so the n-th receive posted for a peer takes the n-th message
// that peer sent here whatever order UCX delivers them in. Endpoints use
// UCP_ERR_HANDLING_MODE_PEER: a peer that exits or dies fails the requests that involve it with an
// error naming the peer and UCX's status, not a hang. progress() blocks in poll() on the worker's
// event fd (ucp_worker_arm) for at most the time it is given.
//
// Besides the bootstrap-driven create(), open() + address() + connect() let a caller with its own
// address exchange (the NCCL net plugin) use the transport as a plain point-to-point layer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/bootstrap.h"
#include "transport/transport.h"

namespace trellis::transport {

struct UcxOptions {
  /// UCX_TLS for this transport's context ("" keeps UCX's own choice, which reads UCX_TLS).
  std::string tls;
  /// How long closing waits for UCX to push out what completed sends left in its buffers.
  double closeTimeoutS = 10;
};

/// Reads TRELLIS_UCX_TLS.
UcxOptions ucxOptionsFromParams();

class UcxTransport final : public Transport {
 public:
  /// Largest peer id (ids are carried in 24 bits of the tag).
  static constexpr int kMaxPeerId = (1 << 24) - 1;

  /// Connects to every rank in `peers` (collective over the bootstrap: every rank calls it, with
  /// symmetric peer sets, even an empty one). Worker addresses are exchanged over the bootstrap.
  static Result<std::unique_ptr<UcxTransport>> create(Bootstrap& bootstrap,
                                                      const std::vector<int>& peers,
                                                      const UcxOptions& options);
  /// A transport with no peers yet that tells its peers it is `selfId` (unique among the workers
  /// that connect to one another, in [0, kMaxPeerId]).
  static Result<std::unique_ptr<UcxTransport>> open(int selfId, const UcxOptions& options);
  /// Flushes the worker (bounded by closeTimeoutS; it does not wait for peers), closes every
  /// endpoint by force, then releases UCX. With requests still pending nothing is flushed: they
  /// are abandoned as by cancelAll().
  ~UcxTransport() override;

  /// This worker's address: opaque bytes a peer passes to connect().
  const std::vector<uint8_t>& address() const;
  /// Creates the endpoint to the worker at `address`, which calls itself `peer`.
  Status connect(int peer, const void* address, size_t bytes);

  const char* name() const override { return "ucx"; }
  bool reaches(int peer) const override;
  Status postSend(int peer, const void* data, size_t bytes, Request* req) override;
  Status postRecv(int peer, void* data, size_t bytes, Request* req) override;
  Status progress(int timeoutMs, bool* didWork) override;
  /// Detaches every pending request, cancels the receives and closes every endpoint by force,
  /// without progressing UCX: afterwards UCX never touches a caller's Request or buffer again (the
  /// worker is not progressed any more), and every later call fails with the first error.
  void cancelAll() override;
  std::string describePeer(int peer) const override;

  struct Impl;

 private:
  explicit UcxTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace trellis::transport
