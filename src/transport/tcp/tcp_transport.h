// TCP transport: non-blocking sockets (several per peer), epoll-driven progress, messages streamed
// without a handshake. Each message is cut into chunks of TRELLIS_TCP_CHUNK_BYTES spread round-robin
// over the peer's sockets; every chunk carries {sequence, offset, total} so the receiver writes it
// straight into the posted buffer (no staging copy, no per-call allocation). A chunk whose receive is
// not posted yet is left in the kernel (the socket is paused), so TCP flow control, not memory,
// absorbs early senders. With TRELLIS_CHECKSUM=1 each chunk carries the CRC32C of its payload and
// the receiver reports a mismatch with the peer and the chunk's byte offset.
//
// NICs: a rank given its NICs (TcpOptions::nics, from the topology) listens on each one's address
// and binds the sockets it opens to them, so its traffic leaves through its own NICs (with the
// per-NIC source routing multi-rail hosts are configured with). A pair of ranks opens
// max(socketsPerPeer, NICs of either side) sockets; socket i uses the connecting rank's NIC
// i mod its count and the peer's address on the same rail when it has one, so chunks striped
// round-robin over the sockets are striped over the NICs. Without NICs the bootstrap's
// interface (TRELLIS_SOCKET_IFNAME) is used and sockets are not bound.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/bootstrap.h"
#include "transport/transport.h"

namespace trellis::transport {

/// One NIC of this rank: its kernel interface and its rail (-1 unknown).
struct TcpNic {
  std::string ifname;
  int rail = -1;
};

struct TcpOptions {
  int socketsPerPeer = 2;
  size_t chunkBytes = 512 * 1024;
  double timeoutS = 60;
  bool checksum = false;  // CRC32C per chunk (TRELLIS_CHECKSUM)
  /// This rank's NICs; interfaces without an address of the bootstrap's family, or excluded by
  /// TRELLIS_SOCKET_IFNAME, are skipped. Empty (or none usable): the bootstrap's interface.
  std::vector<TcpNic> nics;
};

/// Reads TRELLIS_SOCKETS_PER_PEER, TRELLIS_TCP_CHUNK_BYTES and TRELLIS_CHECKSUM.
TcpOptions tcpOptionsFromParams();

class TcpTransport final : public Transport {
 public:
  /// Connects to every rank in `peers` (collective over the bootstrap: every rank must call it,
  /// with symmetric peer sets). Connections present the job secret; others are dropped.
  static Result<std::unique_ptr<TcpTransport>> create(Bootstrap& bootstrap, const std::vector<int>& peers,
                                                      const TcpOptions& options,
                                                      const std::atomic<bool>* abort);
  /// Tests and fuzzers: a transport over sockets that are already connected, without bootstrap or
  /// hello. peerSocks[p] lists the non-blocking fds to peer p (empty: not reached); they are adopted.
  static Result<std::unique_ptr<TcpTransport>> fromSockets(int rank, const std::vector<std::vector<int>>& peerSocks,
                                                           const TcpOptions& options);
  ~TcpTransport() override;

  const char* name() const override { return "tcp"; }
  bool reaches(int peer) const override;
  Status postSend(int peer, const void* data, size_t bytes, Request* req) override;
  Status postRecv(int peer, void* data, size_t bytes, Request* req) override;
  Status progress(int timeoutMs, bool* didWork) override;
  void cancelAll() override;
  std::string describePeer(int peer) const override;

  struct Impl;

 private:
  explicit TcpTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace testing {
/// Test hook: the `n`-th TCP chunk this process starts sending from now on (1-based; 0: none) goes
/// out with one payload bit flipped after its checksum was computed, as corruption on the wire would.
void corruptNthTcpChunk(uint64_t n);
}  // namespace testing

}  // namespace trellis::transport
