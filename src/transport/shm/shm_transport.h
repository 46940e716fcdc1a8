// Shared-memory transport between ranks of one host (processes or threads).
//
// Every rank creates one POSIX shared-memory segment (owner-only permissions, a random name) that
// holds its inbound rings, one single-producer/single-consumer ring per local peer, plus a doorbell
// word. Names are exchanged over the bootstrap, every peer maps the segments it writes to, and the
// names are unlinked as soon as everyone has mapped them: nothing is left in /dev/shm even if a
// rank is killed later.
//
// Small messages are copied through ring slots (no system call on the fast path: head and tail are
// atomics in shared memory). Large messages go in one copy: the sender publishes {pid, address,
// size} and the receiver pulls the bytes straight into its buffer with process_vm_readv (CMA), or
// memcpy when both ranks are threads of one process; a per-ring counter tells the sender when its
// buffer is free. When CMA is refused (ptrace policy), large messages stream through the ring.
// Waiting: spin, then sleep on the doorbell futex (senders ring the receiver's doorbell).
// A peer that dies is detected by its pid vanishing while we wait for it.
#pragma once

#include <memory>
#include <vector>

#include "core/bootstrap.h"
#include "transport/transport.h"

namespace trellis::transport {

struct ShmOptions {
  size_t slotBytes = 64 * 1024;  // payload + header per ring slot
  int slots = 16;                // slots per ring
  size_t cmaMinBytes = 64 * 1024;
  double timeoutS = 60;
};

/// Reads TRELLIS_SHM_SLOT_BYTES, TRELLIS_SHM_SLOTS, TRELLIS_SHM_CMA_MIN_BYTES, TRELLIS_SHM_CMA.
ShmOptions shmOptionsFromParams();

class ShmTransport final : public Transport {
 public:
  /// Collective over the bootstrap (every rank calls it; `peers` are this rank's local peers and
  /// must be symmetric).
  static Result<std::unique_ptr<ShmTransport>> create(Bootstrap& bootstrap, const std::vector<int>& peers,
                                                      const ShmOptions& options);
  ~ShmTransport() override;

  const char* name() const override { return "shm"; }
  bool reaches(int peer) const override;
  Status postSend(int peer, const void* data, size_t bytes, Request* req) override;
  Status postRecv(int peer, void* data, size_t bytes, Request* req) override;
  Status progress(int timeoutMs, bool* didWork) override;
  void cancelAll() override;
  std::string describePeer(int peer) const override;

  /// Whether single-copy reads of `peer`'s memory are possible.
  bool canRead(int peer) const;
  /// Reads `bytes` at `remote` in `peer`'s address space into `local` (process_vm_readv, or memcpy
  /// when the peer is a thread of this process).
  Status read(int peer, uint64_t remote, void* local, size_t bytes);
  /// Writes `bytes` from `local` to `remote` in `peer`'s address space (process_vm_writev, or
  /// memcpy between threads of one process).
  Status write(int peer, uint64_t remote, const void* local, size_t bytes);

  struct Impl;

 private:
  explicit ShmTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace trellis::transport
