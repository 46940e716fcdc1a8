// RDMA verbs transport (libibverbs from rdma-core): reliable-connected queue pairs to each peer,
// set up over the bootstrap's network (no librdmacm), on InfiniBand or RoCE.
//
// Wire protocol, per peer (both directions are symmetric):
//  - Small messages (<= TRELLIS_IB_EAGER_BYTES) are SENDs of {header, payload} into bounce buffers
//    the receiver pre-posted; the receiver copies them into the matching receive (or holds the
//    buffer until that receive is posted).
//  - For a larger receive, the receiver registers its buffer and sends a clear-to-send {sequence,
//    address, capacity, rkey per NIC}; the sender RDMA-WRITEs-with-immediate the message straight
//    into it, striped over the connection's QPs (so over both NICs when there are two). The
//    immediate carries {sequence mod 2^16, number of parts}; the receive completes when every part
//    has landed.
//  - Flow control: every SEND and WRITE-with-immediate consumes one pre-posted receive at the peer,
//    so a sender spends one credit each; the receiver returns credits by RDMA-writing its
//    cumulative count of posted receives per QP into a mailbox in the sender's memory (a write
//    without immediate consumes no receive). Data keeps a reserve of credits for clear-to-sends,
//    so a receiver holding every bounce buffer cannot deadlock the other direction.
//  - Messages match in posted order per peer (sequence numbers), whatever QP carried them.
// Each connection keeps its bootstrap TCP socket open: its end of stream tells a rank that the peer
// exited while a transfer to or from it was incomplete. Work-completion errors become errors naming
// the peer, the device and ibv_wc_status_str.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/bootstrap.h"
#include "transport/transport.h"

namespace trellis::transport {

/// How registrations of caller buffers are cached (TRELLIS_IB_REG_CACHE).
enum class RegMode {
  kCall,  // reused within one communicator call, forgotten when it returns (default; always safe)
  kKeep,  // kept across calls (the caller never frees or remaps a buffer it passed while the
          // communicator lives; fastest, silently wrong if that promise is broken)
  kOff,   // registered and deregistered around every message
};

struct VerbsOptions {
  std::string hca;                     // TRELLIS_IB_HCA
  int gidIndex = -1;                   // TRELLIS_IB_GID_INDEX (-1: automatic)
  int qpsPerConnection = 2;            // at least the NIC count of either end
  int maxNics = 4;                     // NICs one rank stripes over
  size_t eagerBytes = 16384;           // largest message sent through bounce buffers
  int recvDepth = 64;                  // bounce receives per QP (the credits a peer starts with)
  int sendDepth = 256;                 // send work requests per QP
  size_t stripeMinBytes = 1 << 20;  // smallest part when a message is striped over QPs
  int ibTimeout = 14;                  // QP ACK timeout exponent (4.096 us * 2^n)
  int retryCount = 7;
  int trafficClass = 0;
  int serviceLevel = 0;
  RegMode regMode = RegMode::kCall;
  size_t regCacheBytes = size_t{4} << 30;  // per NIC
  double timeoutS = 60;                    // connection setup
  bool useTopology = true;                 // choose the NICs nearest to this rank (TRELLIS_IB_TOPO)
  bool gpuDirect = true;  // TRELLIS_IB_GDR=auto: register device memory directly where the
                          // topology allows (gpu_direct.h); false: never (host staging)
  std::vector<std::string>
      railNics;  // this rank's rail NICs from the cluster view (device or interface names)
};

/// Reads the TRELLIS_IB_* parameters.
Result<VerbsOptions> verbsOptionsFromParams();

class VerbsTransport final : public Transport {
 public:
  /// Collective over the bootstrap: every rank calls it, with or without an RDMA device, with the
  /// peers it would reach over verbs (symmetric sets). Connects to each of those peers for which
  /// both ends have a usable device; reaches() tells which. With no usable device here, logs "no
  /// RDMA device" once per process (info level) and returns a transport that reaches nobody.
  static Result<std::unique_ptr<VerbsTransport>> create(Bootstrap& bootstrap,
                                                        const std::vector<int>& peers,
                                                        const VerbsOptions& options,
                                                        const std::atomic<bool>* abort);
  ~VerbsTransport() override;

  const char* name() const override { return "verbs"; }
  bool reaches(int peer) const override;
  Status postSend(int peer, const void* data, size_t bytes, Request* req) override;
  Status postRecv(int peer, void* data, size_t bytes, Request* req) override;
  Status progress(int timeoutMs, bool* didWork) override;
  void cancelAll() override;
  std::string describePeer(int peer) const override;
  void releaseCallerMemory() override;
  void memoryFreed(const void* addr, size_t bytes) override;
  /// Pins [addr, addr+bytes) in every NIC's registration cache until deregisterMemory(token):
  /// transfers inside it reuse those registrations across calls (trellisCommRegister).
  Result<uint64_t> registerMemory(const void* addr, size_t bytes) override;
  void deregisterMemory(uint64_t token) override;

  /// The ports this rank uses ("rxe0:1,rxe1:1"; empty without a device).
  std::string devices() const;
  /// Number of QPs to `peer` (0 when not connected).
  int queuePairs(int peer) const;
  /// Registration-cache counters summed over NICs (tests, trellis-info).
  struct CacheStats {
    uint64_t hits = 0, misses = 0, evictions = 0;
    size_t entries = 0;
    uint64_t registrations = 0;  // memory registrations made (cache misses and pins)
    uint64_t registeredBytes = 0;  // bytes those registrations covered
    uint64_t pinnedHits = 0;     // hits served by a pinned (user-registered) region
    size_t pinned = 0;           // pinned regions (one per NIC per registerMemory)
    // GPUDirect RDMA: device memory registered through a dmabuf, through peer memory, refused.
    uint64_t gdrDmabuf = 0, gdrPeerMemory = 0, gdrRefused = 0;
  };
  CacheStats cacheStats() const;

  struct Impl;

 private:
  explicit VerbsTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Transport selection for a communicator (collective, like create): creates the verbs transport
/// for the ranks in `*peers` and removes those it reaches from `*peers` (the rest fall back to
/// TCP). `force` (TRELLIS_TRANSPORT=verbs): every rank in `*peers` must be reached, otherwise the
/// error names the ranks without a usable device.
/// `railNics`: the NICs of this rank's rails in the communicator's cluster view (preferred when
/// TRELLIS_IB_HCA is not set).
Result<std::unique_ptr<VerbsTransport>> connectVerbsPeers(
    Bootstrap& bootstrap, bool force, std::vector<int>* peers, double timeoutS,
    const std::atomic<bool>* abort, const std::vector<std::string>& railNics = {});

}  // namespace trellis::transport
