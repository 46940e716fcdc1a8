// The transport interface: what collective algorithms need from a way of moving bytes between
// two ranks, and nothing more. A Transport owns the connections of one communicator to a set of
// peers (shm to ranks on this host, tcp to the others, ...). Messages between two ranks match in
// the order posted (the n-th receive posted for peer p takes the n-th message p sent us); this is
// what collectives need, since every rank issues them in the same order.
//
// Requests are owned by the caller and must stay alive until complete, or until the transport has
// been cancelled (cancelAll) after an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace trellis::transport {

enum class ReqState : int { kIdle = 0, kPending = 1, kDone = 2, kError = 3 };

/// One posted send or receive.
struct Request {
  ReqState state = ReqState::kIdle;
  bool isSend = false;
  int peer = -1;
  size_t bytes = 0;     // posted size (receive: capacity)
  size_t done = 0;      // bytes moved so far
  size_t received = 0;  // receive: actual message size once known
  uint32_t pendingParts = 0;  // transport-private: chunks not yet moved
  bool isDone() const { return state == ReqState::kDone; }
};

class Transport {
 public:
  virtual ~Transport() = default;
  /// "tcp", "shm", ...
  virtual const char* name() const = 0;
  /// Whether this transport has a connection to `peer`.
  virtual bool reaches(int peer) const = 0;
  /// Posts a send of `bytes` from `data` to `peer`. The buffer must not change until done.
  virtual Status postSend(int peer, const void* data, size_t bytes, Request* req) = 0;
  /// Posts a receive of at most `bytes` into `data` from `peer`. A larger message is an error.
  virtual Status postRecv(int peer, void* data, size_t bytes, Request* req) = 0;
  /// Moves data on every connection. Waits up to `timeoutMs` for something to happen when
  /// nothing could be done immediately (0: never blocks). Returns the first connection error,
  /// naming the peer.
  virtual Status progress(int timeoutMs, bool* didWork) = 0;
  /// Forgets every pending request (after an error or abort; the connections are unusable).
  virtual void cancelAll() = 0;
  /// "tcp 10.0.0.5:41234 (2 sockets)" for messages.
  virtual std::string describePeer(int peer) const = 0;
  /// The communicator call whose buffers were posted has returned: the caller may free or remap
  /// them from now on. A transport that caches facts about caller memory (RDMA registrations)
  /// forgets them here.
  virtual void releaseCallerMemory() {}
  /// [addr, addr+bytes) was unmapped (the communicator's own scratch memory when it grows): a
  /// transport must not use what it cached about that range.
  virtual void memoryFreed(const void* addr, size_t bytes) {
    (void)addr;
    (void)bytes;
  }
  /// The user registered [addr, addr+bytes) (trellisCommRegister) and keeps it mapped until it
  /// deregisters. A transport that registers memory with its hardware (RDMA) registers it now and
  /// keeps that registration across calls until deregisterMemory(token). Returns the token; 0 when
  /// the transport keeps nothing for it.
  virtual Result<uint64_t> registerMemory(const void* addr, size_t bytes) {
    (void)addr;
    (void)bytes;
    return uint64_t{0};
  }
  /// Releases what registerMemory returned `token` (non-zero) for.
  virtual void deregisterMemory(uint64_t token) { (void)token; }
};

}  // namespace trellis::transport
