// The UCX backend's shared pieces: one UCP context + worker per set of devices (UCX_NET_DEVICES),
// shared by every comm on those devices, and the tag layout that keeps comms apart on it.
//
// UCX is reached through Trellis' loader (src/transport/ucx/ucx_api.h: libucp.so.0 is dlopen()ed
// only when this backend is chosen). A worker is used by several NCCL proxy threads, so every UCX
// call on it holds Worker::mu (the worker itself is created UCS_THREAD_MODE_SERIALIZED).
//
// Tags (64 bits): [receive comm id: 20][NCCL tag: 24][per-tag sequence: 20]. The receive comm id is
// chosen by the accepting worker (unique among its live comms); a sender numbers its sends of each
// tag, a receiver its buffers of each tag, so the s-th send with tag t lands in the s-th buffer
// with tag t: NCCL's rule (the k-th receive takes the k-th group of sends, one send per tag per
// group) without a clear-to-send round trip. At most 32 x 8 requests are in flight per comm, far
// below the 2^20 sequence wrap.
#pragma once

#include <ucp/api/ucp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "transport/ucx/ucx_api.h"

namespace trellis::ncclnet::ucxb {

namespace ux = ::trellis::transport::ucx;

constexpr int kCommBits = 20, kTagBits = 24, kSeqBits = 20;
constexpr uint32_t kMaxComm = (1u << kCommBits) - 1;
constexpr int64_t kMaxTag = (int64_t{1} << kTagBits) - 1;
constexpr ucp_tag_t kFullMask = ~ucp_tag_t{0};

inline ucp_tag_t makeTag(uint32_t comm, uint32_t tag, uint32_t seq) {
  return (static_cast<uint64_t>(comm) << (kTagBits + kSeqBits)) |
         (static_cast<uint64_t>(tag) << kSeqBits) | (seq & ((1u << kSeqBits) - 1));
}

class Worker;

/// The completion state of one UCX operation; UCX's callbacks write it (under Worker::mu).
struct UcxOp {
  Worker* worker = nullptr;
  bool abandoned = false;  ///< its comm closed first: the worker frees it when UCX is done with it
  void* handle = nullptr;  ///< UCX request while pending
  bool posting = false;    ///< inside ucp_tag_recv_nbx (its callback may run before it returns)
  bool done = false;
  ucs_status_t status = UCS_OK;
  size_t length = 0;  ///< received bytes
};

/// Callbacks for ucp_tag_send_nbx / ucp_tag_recv_nbx with user_data = UcxOp*.
void onSendDone(void* request, ucs_status_t status, void* user);
void onRecvDone(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info, void* user);

class Worker {
 public:
  /// A context and worker restricted to `netDevices` (UCX_NET_DEVICES syntax, "" = all) and to
  /// `tls` (UCX_TLS syntax, "" = UCX's own choice).
  static Result<std::unique_ptr<Worker>> create(const ux::Api* u, const std::string& netDevices,
                                                const std::string& tls);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// A remote worker's endpoint, shared by every send comm to that worker.
  struct Endpoint {
    ucp_ep_h ep = nullptr;
    ucs_status_t status = UCS_OK;  ///< set by UCX's error handler
  };

  const ux::Api* u = nullptr;
  ucp_context_h context = nullptr;
  ucp_worker_h worker = nullptr;
  std::vector<uint8_t> address;
  std::string netDevices;
  std::mutex mu;  ///< held around every UCX call on this worker

  /// A receive-comm id not in use (requires mu); 0 when all 2^20-1 are taken.
  uint32_t allocComm();
  void freeComm(uint32_t id);
  /// Progresses until UCX reports nothing more to do, at most `rounds` times (requires mu).
  bool drain(int rounds = 64);
  /// The endpoint to the worker at `address` (requires mu). Endpoints live as long as this worker:
  /// closing one while other comms' transfers run between the same two workers makes UCX cancel
  /// those transfers, so comms share them and never close them.
  Result<Endpoint*> endpointTo(const uint8_t* address, size_t len);
  /// Takes over an op UCX still holds when its comm closes (requires mu): freed when its callback
  /// runs, or with the worker.
  void abandon(UcxOp* op);
  /// Called by the completion callbacks for an abandoned op.
  void reap(UcxOp* op);
  /// Flushes every endpoint of the worker for at most `seconds` (requires mu); false on timeout.
  bool flush(double seconds);

 private:
  Worker() = default;
  std::set<uint32_t> live_;
  uint32_t next_ = 1;
  std::map<std::string, std::unique_ptr<Endpoint>> eps_;  // by remote worker address bytes
  std::set<UcxOp*> abandoned_;
  std::vector<std::unique_ptr<Endpoint>> retired_;  // failed endpoints (their error handler's arg)
};

}  // namespace trellis::ncclnet::ucxb
