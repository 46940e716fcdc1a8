// What a transport backend of the NCCL net plugin provides. The core (core/net_core.cc) owns the
// NCCL-facing rules (argument checks, virtual devices, the registration cache, contexts, logging);
// a backend moves bytes: it lists its physical devices, listens, connects, accepts, and runs
// tagged sends and multi-receives. Every call is non-blocking.
//
// Matching, as NCCL expects it: the k-th receive posted on a receive comm takes the k-th group of
// sends of its peer. A receive of n buffers carries n tags; a send with tag t fills the buffer of
// the oldest unfinished receive that has tag t unfilled. A send larger than that buffer is an
// error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace trellis::ncclnet {

/// One physical device (a NIC port) as the backend sees it, with the topology facts NCCL needs.
struct PhysDevice {
  std::string name;     ///< "eth0", "mlx5_0" (NCCL logs and NCCL_NET_FORCE_MERGE use it)
  std::string pciPath;  ///< sysfs path of the PCI function; "" for a virtual interface
  uint64_t guid = 0;    ///< the NIC chip: every port of one NIC has the same guid
  int port = 1;
  int speedMbps = 0;
  bool speedKnown = false;  ///< false: speedMbps is the documented default
  float latencyUs = 0;
  int maxComms = 0;
  std::string
      railGroup;         ///< devices with equal non-empty groups may be fused into a virtual device
  std::string describe;  ///< "eth0 (10.0.0.5, 0000:00:03.0, 25000 Mbps)" for logs
};

/// Per-communicator options (v11 init config and setNetAttr; v10 connect config).
struct CommOptions {
  int trafficClass = -1;     ///< -1: unset
  int maxFlowsPerPeer = -1;  ///< -1: unset; caps the data streams of comms this context listens for
};

/// A posted send or multi-receive. The pointer handed to NCCL is the Request itself.
struct Request {
  static constexpr uint32_t kMagic = 0x5452524bu;  // "TRRK"
  uint32_t magic = kMagic;
  class Comm* owner = nullptr;
  int n = 1;  ///< buffers (1 for a send)
};

class Comm {
 public:
  static constexpr uint32_t kMagic = 0x5452434du;  // "TRCM"
  explicit Comm(bool isSend) : isSend_(isSend) {}
  virtual ~Comm() = default;
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;
  bool isSend() const { return isSend_; }
  /// Polls a request of this comm; never blocks. When done, sizes[0..n) hold the bytes moved and
  /// the request is released (it must not be used again). An error leaves the comm in error.
  virtual Status test(Request* req, bool* done, size_t* sizes) = 0;
  /// "tcp 10.0.0.5:41234 <- 10.0.0.7:50112 (4 streams)" for messages.
  virtual std::string describe() const = 0;

 private:
  bool isSend_;
};

class SendComm : public Comm {
 public:
  SendComm() : Comm(true) {}
  /// Posts a send; *req stays null when it cannot be posted yet (the receive is not posted or too
  /// many requests are in flight): NCCL calls again.
  virtual Status isend(const void* data, size_t size, int tag, Request** req) = 0;
};

class RecvComm : public Comm {
 public:
  RecvComm() : Comm(false) {}
  /// Posts a receive of n buffers (n <= maxRecvs); *req stays null when too many are in flight.
  virtual Status irecv(int n, void* const* data, const size_t* sizes, const int* tags,
                       Request** req) = 0;
};

class ListenComm {
 public:
  virtual ~ListenComm() = default;
  /// Non-blocking: *out stays null until one incoming connection is complete. A listen comm
  /// accepts any number of connections (every connect made with its handle).
  virtual Status accept(std::unique_ptr<RecvComm>* out) = 0;
};

/// A connect in progress (NCCL calls connect again with the same handle until it completes).
class Connector {
 public:
  virtual ~Connector() = default;
  /// Non-blocking: *out stays null until the connection is complete.
  virtual Status progress(std::unique_ptr<SendComm>* out) = 0;
};

/// Bytes of the listen handle a backend may use; the core keeps the rest for its own state.
constexpr size_t kBackendHandleBytes = 112;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual const std::vector<PhysDevice>& devices() const = 0;
  /// Largest number of buffers in one receive.
  virtual int maxRecvs() const = 0;
  /// Listens on the physical devices `devs` (one, or the members of a virtual device) and writes
  /// what a peer needs to connect into handle[0..kBackendHandleBytes).
  virtual Status listen(const std::vector<int>& devs, const CommOptions& opt, void* handle,
                        std::unique_ptr<ListenComm>* out) = 0;
  /// Starts connecting from the local devices `devs` to a peer's handle.
  virtual Status connect(const std::vector<int>& devs, const CommOptions& opt, const void* handle,
                         std::unique_ptr<Connector>* out) = 0;
  /// The core registered new memory over [addr, addr+len), or dropped its last registration of
  /// it: a backend that caches NIC registrations forgets those overlapping the range (the memory
  /// may be unmapped and mapped again with other pages).
  virtual void invalidateMemory(const void* addr, size_t len) {
    (void)addr;
    (void)len;
  }
};

/// Creates the TCP backend over the interfaces of this host; fails naming why no interface fits.
Result<std::unique_ptr<Backend>> createTcpBackend();
/// Creates the UCX backend (libucp.so.0 loaded at run time) over this host's RDMA ports, or its
/// interfaces when it has none; fails naming why UCX cannot start.
Result<std::unique_ptr<Backend>> createUcxBackend();
/// Creates the verbs backend over this host's active RDMA ports (TRELLIS_IB_HCA applies). Where no
/// port is usable it fails with "no RDMA device ..." / "no active RDMA port matches ..." and sets
/// *noDevice.
Result<std::unique_ptr<Backend>> createVerbsBackend(bool* noDevice);

}  // namespace trellis::ncclnet
