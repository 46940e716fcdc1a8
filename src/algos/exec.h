// What an algorithm sees of the communicator: its rank, the number of ranks, non-blocking
// point-to-point operations that match in posted order per peer, waits, and pooled scratch memory.
// Algorithms never know which transport carries a message, so every algorithm runs over any
// transport (and over the in-memory one the unit tests use).
#pragma once

#include <cstddef>

#include "core/status.h"
#include "topo/cluster_view.h"
#include "transport/transport.h"

namespace trellis::algos {

using transport::Request;

class Exec {
 public:
  virtual ~Exec() = default;
  virtual int rank() const = 0;
  virtual int nranks() const = 0;
  /// Posts a send/receive; `peer` may be this rank (matched locally, in order).
  virtual Status isend(int peer, const void* data, size_t bytes, Request* req) = 0;
  virtual Status irecv(int peer, void* data, size_t bytes, Request* req) = 0;
  /// Waits until every request in reqs[0..n) is done (bounded by the communicator's timeout).
  virtual Status waitAll(Request* const* reqs, size_t n) = 0;
  Status wait(Request* req) { return waitAll(&req, 1); }
  /// Scratch buffer `slot` (0..7) of at least `bytes`, reused across calls (grown, never shrunk
  /// below the largest use): no per-call allocation or first touch in steady state.
  virtual void* scratch(int slot, size_t bytes) = 0;
  /// Bytes per pipelined chunk for this message size.
  virtual size_t chunkBytes() const = 0;
  /// Whether this rank can read every peer's memory directly (all on this host with single copy
  /// allowed): the "direct" node-local algorithms need it.
  virtual bool canReadAllPeers() const { return false; }
  /// Where every rank sits (node, local rank, rail, leaf); null when the communicator was created
  /// topology-blind (TRELLIS_TOPO_AWARE=0) or for a sub-group of ranks.
  virtual const topo::ClusterView* cluster() const { return nullptr; }
  /// Copies `bytes` at address `remote` of `peer`'s address space into `local`.
  virtual Status readPeer(int peer, uint64_t remote, void* local, size_t bytes) {
    (void)remote;
    (void)local;
    (void)bytes;
    return internalError("rank %d cannot read rank %d's memory directly", rank(), peer);
  }
  /// Copies `bytes` at `local` into address `remote` of `peer`'s address space (same conditions
  /// as readPeer).
  virtual Status writePeer(int peer, uint64_t remote, const void* local, size_t bytes) {
    (void)remote;
    (void)local;
    (void)bytes;
    return internalError("rank %d cannot write rank %d's memory directly", rank(), peer);
  }
};

}  // namespace trellis::algos
