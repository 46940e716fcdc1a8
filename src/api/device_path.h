// Collectives and point-to-point calls on device buffers (docs/GPU.md): where a call's buffers live
// (pointer attributes, never the stream argument), and the staged form of a device call: its
// inputs copied into pinned host memory on the caller's stream, the host collective run on them by
// the communicator's stream executor, its outputs copied back, all ordered on the stream; the call
// returns once that is queued (NCCL semantics).
#pragma once

#include <vector>

#include "algos/coll.h"
#include "api/comm.h"
#include "core/status.h"

namespace trellis {

/// Where a call's buffers are.
enum class Placement { kHost, kDevice };

/// Decides where a collective runs from its buffers' pointer attributes: device when they are device
/// (or managed) memory, host otherwise. Rejects a call that mixes device and host buffers, and a device
/// buffer whose extent runs past its CUDA allocation. For host buffers with a non-NULL stream it first
/// waits for the stream, so the call sees the work queued before it; without a usable CUDA driver a
/// non-NULL stream is an error naming why.
Result<Placement> placeCollective(trellisComm* comm, const algos::CollArgs& a, void* stream, const char* api);
/// The same for a send or receive of `bytes` at `buf`.
Result<Placement> placeP2p(trellisComm* comm, const void* buf, size_t bytes, void* stream, const char* api);

/// One operation of a device batch (a call, or a communicator's share of a group).
struct DeviceOp {
  bool isP2p = false;
  algos::CollArgs coll;
  trellisComm::P2pOp p2p{};
  const char* api = "";
  std::vector<size_t> vcounts;  ///< AlltoAllv: sendcounts, sdispls, recvcounts, rdispls (own copy)
};
/// A collective as a DeviceOp (copies AlltoAllv's count arrays: the caller may reuse them once the
/// call returns).
DeviceOp deviceCollective(const algos::CollArgs& a, int nranks, const char* api);
DeviceOp deviceP2p(const trellisComm::P2pOp& op, const char* api);

/// Queues `ops` on `stream` as one job of `comm`'s stream executor: every input copied to staging,
/// then the operations run in order on the host (consecutive sends and receives posted together),
/// then every output copied back. Buffers shared between operations share their staging, so a later
/// operation reads what an earlier one wrote, as with host buffers.
Status enqueueDevice(trellisComm* comm, std::vector<DeviceOp> ops, void* stream);

}  // namespace trellis
