// The verbs backend's devices, queue-pair sets and comms (verbs_wire.h has the protocol).
// A device is one active RDMA port, opened once per process (context, protection domain, and the
// Trellis registration cache of that protection domain, shared by every comm on the port). A comm
// owns its QPs (one per NIC of the wider end, at most 4), one completion queue per local NIC, and a
// small registered slab for its control messages; it is progressed only from the calls NCCL makes
// on it (isend/irecv/test), so comms never share a lock except the registration cache's.
#pragma once

#include <infiniband/verbs.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/socket.h"
#include "transport/verbs/device.h"
#include "transport/verbs/reg_cache.h"
#include "transport/verbs/verbs_transport.h"
#include "verbs/verbs_wire.h"

namespace trellis::ncclnet::ib {

using Clock = std::chrono::steady_clock;
using transport::verbs::PortInfo;
using transport::verbs::RegCache;
using transport::verbs::Registrar;

struct VerbsConfig {
  transport::VerbsOptions opt;  // TRELLIS_IB_*: HCA filter, GID index, QP timeouts, TC, SL, cache
  int maxRecvs = 8;
  double connectTimeoutS = 60;
  double closeGraceS = 1;  // after the peer's comm closed, how long completions may still come
};

/// ibv_reg_mr / ibv_dereg_mr on one protection domain, for the registration cache.
class PdRegistrar final : public Registrar {
 public:
  PdRegistrar(ibv_pd* pd, std::string dev) : pd_(pd), dev_(std::move(dev)) {}
  Result<Keys> reg(uintptr_t addr, size_t len) override;
  void dereg(void* handle) override;

 private:
  ibv_pd* pd_;
  std::string dev_;
};

/// One opened RDMA port.
struct Dev {
  PortInfo info;
  ibv_context* ctx = nullptr;
  ibv_pd* pd = nullptr;
  int maxQpWr = 0, maxCqe = 0;
  std::unique_ptr<PdRegistrar> registrar;
  std::mutex mu;  // guards cache (comms of several threads share the port)
  std::unique_ptr<RegCache> cache;

  Dev() = default;
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev();
  /// The address a peer needs for a QP on this port.
  ibwire::NicAddr addr() const;
  Result<RegCache::Entry*> acquire(const void* p, size_t n);
  void release(RegCache::Entry* e);
  void invalidate(const void* p, size_t n);
};

/// The QPs, completion queues and control slab of one comm.
class QpSet {
 public:
  QpSet() = default;
  QpSet(const QpSet&) = delete;
  QpSet& operator=(const QpSet&) = delete;
  ~QpSet();

  /// Creates nQps RC QPs (QP j on local[j % local.size()]), a CQ per distinct NIC, and a slab of
  /// `slabBytes` registered on each NIC for local and remote write; QPs end in INIT.
  /// sqDepth/rqDepth are per QP (rqDepth[j] may be 0: nothing is ever received there).
  Status create(const std::vector<Dev*>& local, int nQps, const int* sqDepth, const int* rqDepth,
                size_t slabBytes);
  /// INIT -> RTR -> RTS towards the peer's QPs.
  Status connect(const ibwire::NicAddr* remote, const uint32_t* remoteQpn,
                 const uint32_t* remotePsn, const VerbsConfig& cfg, int trafficClass);

  int nQps() const { return nQps_; }
  Dev* dev(int q) const { return dev_[q]; }
  ibv_qp* qp(int q) const { return qp_[q]; }
  uint32_t psn(int q) const { return psn_[q]; }
  char* slab() const { return slab_; }
  uint32_t slabLkey(int q) const { return slabMr_[q]->lkey; }
  uint32_t slabRkey(int q) const { return slabMr_[q]->rkey; }
  int sqDepth(int q) const { return sqDepth_[q]; }
  /// QP index of a work completion's qp_num (-1 if not ours).
  int qpIndex(uint32_t qpNum) const;
  /// Polls every CQ once; fills up to `max` completions.
  Result<int> poll(ibv_wc* wc, int max);
  /// "rxe0:1<->rxe0:1,rxe1:1<->rxe1:1".
  std::string pairs() const { return pairs_; }

 private:
  int nQps_ = 0;
  Dev* dev_[ibwire::kMaxQps] = {};
  ibv_qp* qp_[ibwire::kMaxQps] = {};
  uint32_t psn_[ibwire::kMaxQps] = {};
  int sqDepth_[ibwire::kMaxQps] = {};
  std::vector<ibv_cq*> cqs_;
  std::vector<Dev*> cqDev_;
  ibv_mr* slabMr_[ibwire::kMaxQps] = {};
  std::vector<ibv_mr*> mrs_;  // one per distinct NIC
  char* slab_ = nullptr;
  size_t slabBytes_ = 0;
  std::string pairs_;
};

/// End of stream on the set-up socket: the peer closed its comm (or died).
struct Liveness {
  int fd = -1;
  double graceS = 1;
  bool closed = false;
  Clock::time_point closedAt, lastCheck;
  /// Checks the socket (at most every 10 ms); true once the peer has been gone for graceS.
  bool gone();
};

/// Text of a failed work completion ("RDMA write ... failed: remote access error (status 10,
/// vendor error 0x..)"), with a hint for the statuses that usually mean the peer is gone.
std::string describeWc(const ibv_wc& wc, const char* what);

// Sizes of the slabs.
constexpr int kCtsRecvs = ibwire::kMaxRequests + 4;  // clear-to-send receives posted by a sender
constexpr int kMaxSendReqs = ibwire::kMaxRequests * ibwire::kMaxRecvs;
constexpr size_t kSenderSlabBytes = kCtsRecvs * sizeof(ibwire::Cts) + kMaxSendReqs * 8;
constexpr size_t kReceiverSizesOffset = ibwire::kMaxRequests * sizeof(ibwire::Cts);
constexpr size_t kReceiverSlabBytes =
    kReceiverSizesOffset + ibwire::kMaxRequests * ibwire::kMaxRecvs * 8;
constexpr int kSenderSqDepth = 2 * kMaxSendReqs + 8;  // a data write + a size write per send
constexpr int kReceiverSqDepth = ibwire::kMaxRequests + 8;

class VerbsSendComm final : public SendComm {
 public:
  /// `qps` are at RTS, with the clear-to-send receives posted on QP 0.
  VerbsSendComm(std::unique_ptr<QpSet> qps, net::Socket ctl, uint64_t sizesAddr,
                const uint32_t* sizesRkey, std::string desc, const VerbsConfig& cfg);
  ~VerbsSendComm() override;
  Status isend(const void* data, size_t size, int tag, Request** req) override;
  Status test(Request* req, bool* done, size_t* sizes) override;
  std::string describe() const override { return desc_; }
  /// Posts the clear-to-send receives (before the QPs leave INIT).
  static Status postCtsRecvs(QpSet& qps);

 private:
  struct Req : Request {
    int index = 0;
    size_t size = 0;
    int parts = 0, partsDone = 0;
    int qpOf[ibwire::kMaxQps] = {};
    int wrsOf[ibwire::kMaxQps] = {};
    RegCache::Entry* mr[ibwire::kMaxQps] = {};  // the source buffer's registration per part
    Dev* mrDev[ibwire::kMaxQps] = {};
    bool done = false;
    bool internal = false;  // an error notice: never handed to NCCL
  };
  struct Pending {  // a clear-to-send with buffers not matched yet
    ibwire::Cts cts;
    bool matched[ibwire::kMaxRecvs] = {};
    int left = 0;
  };
  Status progress();
  Status onCompletion(const ibv_wc& wc);
  Status fail(Status s);
  void releaseMrs(Req* r);
  Status checkPeer(const char* what);

  std::unique_ptr<QpSet> qps_;
  net::Socket ctl_;
  uint64_t sizesAddr_;
  uint32_t sizesRkey_[ibwire::kMaxQps] = {};
  std::string desc_;
  VerbsConfig cfg_;
  Liveness live_;
  std::unique_ptr<Req[]> reqs_;
  std::vector<Req*> free_;
  int inFlight_ = 0;
  std::deque<Pending> cts_;
  uint64_t nextCtsSeq_ = 0;
  int sqOut_[ibwire::kMaxQps] = {};
  unsigned rr_ = 0;
  Status error_;
};

class VerbsRecvComm final : public RecvComm {
 public:
  VerbsRecvComm(std::unique_ptr<QpSet> qps, net::Socket ctl, std::string desc,
                const VerbsConfig& cfg);
  ~VerbsRecvComm() override;
  Status irecv(int n, void* const* data, const size_t* sizes, const int* tags,
               Request** req) override;
  Status test(Request* req, bool* done, size_t* sizes) override;
  std::string describe() const override { return desc_; }
  /// Posts the immediate receives on every QP (before the QPs leave INIT).
  static Status postImmRecvs(QpSet& qps);
  /// Receives each QP holds posted.
  static constexpr int kImmRecvs = kMaxSendReqs + 8;

 private:
  struct Buf {
    char* data = nullptr;
    size_t cap = 0;
    int tag = 0;
    int parts = 0, partsGot = 0;
    bool done = false;
    size_t size = 0;
    RegCache::Entry* mr[ibwire::kMaxQps] = {};  // the buffer's registration on QP j's NIC
    Dev* mrDev[ibwire::kMaxQps] = {};
  };
  struct Req : Request {
    int slot = 0;
    uint64_t seq = 0;
    bool busy = false;
    Buf bufs[ibwire::kMaxRecvs];
    int left = 0;
  };
  Status progress();
  Status onCompletion(const ibv_wc& wc);
  Status fail(Status s);
  void releaseMrs(Req* r);
  volatile uint64_t* sizeSlot(int slot, int index) const;

  std::unique_ptr<QpSet> qps_;
  net::Socket ctl_;
  std::string desc_;
  VerbsConfig cfg_;
  Liveness live_;
  std::unique_ptr<Req[]> reqs_;
  std::vector<int> freeSlots_;
  uint64_t nextSeq_ = 0;
  int sqOut_ = 0;
  Status error_;
};

}  // namespace trellis::ncclnet::ib
