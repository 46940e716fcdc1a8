#include "verbs/verbs_comm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "abi/nccl_abi.h"
#include "core/plugin_log.h"

namespace trellis::ncclnet::ib {

namespace {

// Work-request ids: kind in the low 4 bits, a value above.
enum WrKind : uint64_t { kCtsRecv = 1, kData = 2, kSize = 3, kCtsSend = 4, kImmRecv = 5 };
inline uint64_t wrId(WrKind k, uint64_t v) { return v << 4 | k; }
inline WrKind wrKind(uint64_t id) { return static_cast<WrKind>(id & 15); }
inline uint64_t wrValue(uint64_t id) { return id >> 4; }

const char* kindName(WrKind k) {
  switch (k) {
    case kCtsRecv:
      return "clear-to-send receive";
    case kData:
      return "RDMA write of data";
    case kSize:
      return "RDMA write-with-immediate of a message size";
    case kCtsSend:
      return "clear-to-send SEND";
    case kImmRecv:
      return "immediate receive";
  }
  return "work request";
}

// Remote-side failures (the peer or the path) are remote errors; the rest are system errors.
Code codeOf(ibv_wc_status s) {
  switch (s) {
    case IBV_WC_RETRY_EXC_ERR:
    case IBV_WC_RNR_RETRY_EXC_ERR:
    case IBV_WC_REM_INV_REQ_ERR:
    case IBV_WC_REM_ACCESS_ERR:
    case IBV_WC_REM_OP_ERR:
    case IBV_WC_REM_ABORT_ERR:
    case IBV_WC_RESP_TIMEOUT_ERR:
      return Code::kRemoteError;
    default:
      return Code::kSystemError;
  }
}

constexpr size_t kSenderSizeSrcOffset = kCtsRecvs * sizeof(ibwire::Cts);

}  // namespace

std::string describeWc(const ibv_wc& wc, const char* what) {
  const char* hint = "";
  if (wc.status == IBV_WC_RETRY_EXC_ERR)
    hint = " (no answer from the peer: its comm closed, its process died, or the path is down)";
  else if (wc.status == IBV_WC_RNR_RETRY_EXC_ERR)
    hint = " (the peer had no receive posted)";
  else if (wc.status == IBV_WC_REM_ACCESS_ERR)
    hint = " (the peer refused the access: its buffer was deregistered or its comm closed)";
  else if (wc.status == IBV_WC_WR_FLUSH_ERR)
    hint = " (flushed: the QP was already in error)";
  return formatString("%s on QP %u failed: %s (status %d, vendor error 0x%x)%s", what, wc.qp_num,
                      ibv_wc_status_str(wc.status), static_cast<int>(wc.status), wc.vendor_err,
                      hint);
}

// ---- Devices -----------------------------------------------------------------------------------

Result<Registrar::Keys> PdRegistrar::reg(uintptr_t addr, size_t len) {
  ibv_mr* mr = ibv_reg_mr(pd_, reinterpret_cast<void*>(addr), len,
                          IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
  if (mr == nullptr)
    return systemError(errno, "ibv_reg_mr of %zu bytes at %p on %s%s", len,
                       reinterpret_cast<void*>(addr), dev_.c_str(),
                       errno == ENOMEM || errno == EPERM ? " (is `ulimit -l` large enough?)" : "");
  return Keys{mr->lkey, mr->rkey, mr};
}

void PdRegistrar::dereg(void* handle) {
  if (handle != nullptr) ibv_dereg_mr(static_cast<ibv_mr*>(handle));
}

Dev::~Dev() {
  cache.reset();
  if (pd != nullptr) ibv_dealloc_pd(pd);
  if (ctx != nullptr) ibv_close_device(ctx);
}

ibwire::NicAddr Dev::addr() const {
  ibwire::NicAddr a{};
  std::memcpy(a.gid, info.gid, 16);
  a.lid = info.lid;
  a.port = static_cast<uint8_t>(info.port);
  a.infiniband = info.infiniband ? 1 : 0;
  a.mtu = static_cast<uint8_t>(info.mtu);
  return a;
}

Result<RegCache::Entry*> Dev::acquire(const void* p, size_t n) {
  std::lock_guard<std::mutex> lock(mu);
  return cache->acquire(p, n);
}
void Dev::release(RegCache::Entry* e) {
  if (e == nullptr) return;
  std::lock_guard<std::mutex> lock(mu);
  cache->release(e);
}
void Dev::invalidate(const void* p, size_t n) {
  std::lock_guard<std::mutex> lock(mu);
  cache->invalidate(p, n);
}

// ---- Queue pairs ------------------------------------------------------------------------------

QpSet::~QpSet() {
  for (ibv_qp*& q : qp_)
    if (q != nullptr) ibv_destroy_qp(q);
  for (ibv_cq* c : cqs_)
    if (c != nullptr) ibv_destroy_cq(c);
  for (ibv_mr* m : mrs_)
    if (m != nullptr) ibv_dereg_mr(m);
  if (slab_ != nullptr) munmap(slab_, slabBytes_);
}

Status QpSet::create(const std::vector<Dev*>& local, int nQps, const int* sqDepth,
                     const int* rqDepth, size_t slabBytes) {
  nQps_ = nQps;
  std::vector<int> cqe;
  for (int q = 0; q < nQps; ++q) {
    Dev* d = local[static_cast<size_t>(q) % local.size()];
    dev_[q] = d;
    auto it = std::find(cqDev_.begin(), cqDev_.end(), d);
    if (it == cqDev_.end()) {
      cqDev_.push_back(d);
      cqe.push_back(16);
      it = cqDev_.end() - 1;
    }
    cqe[it - cqDev_.begin()] += sqDepth[q] + rqDepth[q];
  }
  slabBytes_ = (slabBytes + 4095) / 4096 * 4096;
  void* slab = mmap(nullptr, slabBytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (slab == MAP_FAILED) return systemError(errno, "mapping a %zu-byte control slab", slabBytes_);
  slab_ = static_cast<char*>(slab);
  for (size_t i = 0; i < cqDev_.size(); ++i) {
    Dev* d = cqDev_[i];
    int n = d->maxCqe > 0 ? std::min(cqe[i], d->maxCqe) : cqe[i];
    ibv_cq* cq = ibv_create_cq(d->ctx, n, nullptr, nullptr, 0);
    if (cq == nullptr)
      return systemError(errno, "ibv_create_cq(%d entries) on %s", n, d->info.dev.c_str());
    cqs_.push_back(cq);
    ibv_mr* mr = ibv_reg_mr(d->pd, slab_, slabBytes_, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    if (mr == nullptr)
      return systemError(errno, "registering the %zu-byte control slab on %s", slabBytes_,
                         d->info.dev.c_str());
    mrs_.push_back(mr);
  }
  uint32_t seed = 0;
  TRELLIS_TRY(net::randomBytes(&seed, sizeof seed));
  for (int q = 0; q < nQps; ++q) {
    Dev* d = dev_[q];
    size_t ci = static_cast<size_t>(std::find(cqDev_.begin(), cqDev_.end(), d) - cqDev_.begin());
    slabMr_[q] = mrs_[ci];
    int rq = std::max(rqDepth[q], 1);
    if (d->maxQpWr > 0 && rq > d->maxQpWr)
      return invalidUsage("%s allows %d work requests per queue; this backend needs %d receives",
                          d->info.dev.c_str(), d->maxQpWr, rq);
    ibv_qp_init_attr ia{};
    ia.send_cq = cqs_[ci];
    ia.recv_cq = cqs_[ci];
    ia.qp_type = IBV_QPT_RC;
    ia.cap.max_send_wr =
        static_cast<uint32_t>(d->maxQpWr > 0 ? std::min(sqDepth[q], d->maxQpWr) : sqDepth[q]);
    ia.cap.max_recv_wr = static_cast<uint32_t>(rq);
    ia.cap.max_send_sge = 1;
    ia.cap.max_recv_sge = 1;
    qp_[q] = ibv_create_qp(d->pd, &ia);
    if (qp_[q] == nullptr)
      return systemError(errno, "ibv_create_qp (%u send, %u receive work requests) on %s",
                         ia.cap.max_send_wr, ia.cap.max_recv_wr, d->info.dev.c_str());
    sqDepth_[q] = static_cast<int>(ia.cap.max_send_wr);
    psn_[q] = (seed + static_cast<uint32_t>(q) * 7919u) & 0xffffff;
    ibv_qp_attr a{};
    a.qp_state = IBV_QPS_INIT;
    a.pkey_index = 0;
    a.port_num = static_cast<uint8_t>(d->info.port);
    a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
    int rc = ibv_modify_qp(qp_[q], &a,
                           IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
    if (rc != 0)
      return systemError(rc, "ibv_modify_qp of QP %u on %s to INIT", qp_[q]->qp_num,
                         d->info.dev.c_str());
  }
  return Status::ok();
}

Status QpSet::connect(const ibwire::NicAddr* remote, const uint32_t* remoteQpn,
                      const uint32_t* remotePsn, const VerbsConfig& cfg, int trafficClass) {
  pairs_.clear();
  for (int q = 0; q < nQps_; ++q) {
    const Dev* d = dev_[q];
    const ibwire::NicAddr& r = remote[q];
    if ((r.infiniband != 0) != d->info.infiniband)
      return invalidUsage(
          "QP %d: %s:%d is %s but the peer's port is %s: a QP cannot join two link layers", q,
          d->info.dev.c_str(), d->info.port, d->info.infiniband ? "InfiniBand" : "Ethernet (RoCE)",
          r.infiniband ? "InfiniBand" : "Ethernet (RoCE)");
    ibv_qp_attr a{};
    a.qp_state = IBV_QPS_RTR;
    a.path_mtu = static_cast<ibv_mtu>(std::min<int>(d->info.mtu, r.mtu));
    a.dest_qp_num = remoteQpn[q];
    a.rq_psn = remotePsn[q];
    a.max_dest_rd_atomic = 1;
    a.min_rnr_timer = 12;
    a.ah_attr.port_num = static_cast<uint8_t>(d->info.port);
    a.ah_attr.sl = static_cast<uint8_t>(cfg.opt.serviceLevel);
    if (d->info.infiniband && r.lid != 0) {
      a.ah_attr.dlid = r.lid;
    } else {
      a.ah_attr.is_global = 1;
      std::memcpy(a.ah_attr.grh.dgid.raw, r.gid, 16);
      a.ah_attr.grh.sgid_index = static_cast<uint8_t>(d->info.gidIndex);
      a.ah_attr.grh.hop_limit = 255;
      a.ah_attr.grh.traffic_class =
          static_cast<uint8_t>(trafficClass >= 0 ? trafficClass : cfg.opt.trafficClass);
    }
    int rc = ibv_modify_qp(qp_[q], &a,
                           IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                               IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
    if (rc != 0)
      return systemError(rc, "ibv_modify_qp of QP %u on %s to RTR (peer QP %u, GID %s, LID %u)",
                         qp_[q]->qp_num, d->info.dev.c_str(), remoteQpn[q],
                         transport::verbs::gidToString(r.gid).c_str(), r.lid);
    ibv_qp_attr s{};
    s.qp_state = IBV_QPS_RTS;
    s.timeout = static_cast<uint8_t>(cfg.opt.ibTimeout);
    s.retry_cnt = static_cast<uint8_t>(cfg.opt.retryCount);
    s.rnr_retry = 6;  // finite: with this flow control a receiver-not-ready is a bug, and surfaces
    s.sq_psn = psn_[q];
    s.max_rd_atomic = 1;
    rc = ibv_modify_qp(qp_[q], &s,
                       IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                           IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
    if (rc != 0)
      return systemError(rc, "ibv_modify_qp of QP %u on %s to RTS", qp_[q]->qp_num,
                         d->info.dev.c_str());
    pairs_ += formatString("%s%s:%d/%u<->%s/%u", pairs_.empty() ? "" : ",", d->info.dev.c_str(),
                           d->info.port, qp_[q]->qp_num,
                           transport::verbs::gidToString(r.gid).c_str(), remoteQpn[q]);
  }
  return Status::ok();
}

int QpSet::qpIndex(uint32_t qpNum) const {
  for (int q = 0; q < nQps_; ++q)
    if (qp_[q]->qp_num == qpNum) return q;
  return -1;
}

Result<int> QpSet::poll(ibv_wc* wc, int max) {
  int got = 0;
  for (size_t i = 0; i < cqs_.size() && got < max; ++i) {
    int n = ibv_poll_cq(cqs_[i], max - got, wc + got);
    if (n < 0) return systemError(EIO, "ibv_poll_cq on %s", cqDev_[i]->info.dev.c_str());
    got += n;
  }
  return got;
}

bool Liveness::gone() {
  Clock::time_point now = Clock::now();
  if (!closed) {
    if (now - lastCheck < std::chrono::milliseconds(10)) return false;
    lastCheck = now;
    char b;
    ssize_t n = ::recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      closed = true;
      closedAt = now;
    }
  }
  return closed && std::chrono::duration<double>(now - closedAt).count() > graceS;
}

// ---- Send comm -------------------------------------------------------------------------------

Status VerbsSendComm::postCtsRecvs(QpSet& qps) {
  for (int i = 0; i < kCtsRecvs; ++i) {
    ibv_sge sge{reinterpret_cast<uintptr_t>(qps.slab() + i * sizeof(ibwire::Cts)),
                sizeof(ibwire::Cts), qps.slabLkey(0)};
    ibv_recv_wr wr{};
    wr.wr_id = wrId(kCtsRecv, static_cast<uint64_t>(i));
    wr.sg_list = &sge;
    wr.num_sge = 1;
    ibv_recv_wr* bad = nullptr;
    int rc = ibv_post_recv(qps.qp(0), &wr, &bad);
    if (rc != 0) return systemError(rc, "ibv_post_recv of a clear-to-send buffer on QP %u", qps.qp(0)->qp_num);
  }
  return Status::ok();
}

VerbsSendComm::VerbsSendComm(std::unique_ptr<QpSet> qps, net::Socket ctl, uint64_t sizesAddr,
                             const uint32_t* sizesRkey, std::string desc, const VerbsConfig& cfg)
    : qps_(std::move(qps)),
      ctl_(std::move(ctl)),
      sizesAddr_(sizesAddr),
      desc_(std::move(desc)),
      cfg_(cfg) {
  std::memcpy(sizesRkey_, sizesRkey, sizeof sizesRkey_);
  live_.fd = ctl_.fd();
  live_.graceS = cfg_.closeGraceS;
  reqs_ = std::make_unique<Req[]>(kMaxSendReqs);
  for (int i = kMaxSendReqs; i-- > 0;) {
    reqs_[i].magic = 0;
    reqs_[i].index = i;
    free_.push_back(&reqs_[i]);
  }
}

VerbsSendComm::~VerbsSendComm() {
  qps_.reset();  // no more writes from our buffers: their registrations may go
  for (int i = 0; i < kMaxSendReqs; ++i) releaseMrs(&reqs_[i]);
}


void VerbsSendComm::releaseMrs(Req* r) {
  for (int k = 0; k < ibwire::kMaxQps; ++k)
    if (r->mr[k] != nullptr) {
      r->mrDev[k]->release(r->mr[k]);
      r->mr[k] = nullptr;
      r->mrDev[k] = nullptr;
    }
}

Status VerbsSendComm::fail(Status s) {
  if (error_.isOk()) error_ = s;
  return error_;
}

Status VerbsSendComm::checkPeer(const char* what) {
  if (live_.gone())
    return fail(remoteError("%s: the peer closed its receive comm (%d send(s) in flight, %zu "
                            "clear-to-send(s) pending)",
                            what, inFlight_, cts_.size()));
  return Status::ok();
}

Status VerbsSendComm::progress() {
  ibv_wc wc[16];
  for (;;) {
    TRELLIS_ASSIGN_OR_RETURN(int n, qps_->poll(wc, 16));
    for (int i = 0; i < n; ++i) TRELLIS_TRY(onCompletion(wc[i]));
    if (n < 16) return Status::ok();
  }
}

Status VerbsSendComm::onCompletion(const ibv_wc& wc) {
  WrKind kind = wrKind(wc.wr_id);
  uint64_t v = wrValue(wc.wr_id);
  if (wc.status != IBV_WC_SUCCESS) {
    std::string what = kindName(kind);
    if (kind == kData || kind == kSize) {
      const Req& r = reqs_[v / ibwire::kMaxQps];
      what += formatString(" (a %zu-byte send)", r.size);
    }
    return fail(Status(codeOf(wc.status), describeWc(wc, what.c_str())));
  }
  if (kind == kCtsRecv) {
    if (v >= static_cast<uint64_t>(kCtsRecvs) || wc.opcode != IBV_WC_RECV)
      return fail(internalError("unexpected receive completion (id %llu, opcode %d)",
                                static_cast<unsigned long long>(v), static_cast<int>(wc.opcode)));
    Pending p;
    std::memcpy(&p.cts, qps_->slab() + v * sizeof(ibwire::Cts), sizeof p.cts);
    // The buffer is free again: re-post it at once (the receiver's 32 requests bound what comes).
    ibv_sge sge{reinterpret_cast<uintptr_t>(qps_->slab() + v * sizeof(ibwire::Cts)),
                sizeof(ibwire::Cts), qps_->slabLkey(0)};
    ibv_recv_wr wr{};
    wr.wr_id = wc.wr_id;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    ibv_recv_wr* bad = nullptr;
    int rc = ibv_post_recv(qps_->qp(0), &wr, &bad);
    if (rc != 0) return fail(systemError(rc, "re-posting a clear-to-send receive"));
    if (wc.byte_len != sizeof(ibwire::Cts) || p.cts.magic != ibwire::kCtsMagic ||
        p.cts.seq != nextCtsSeq_ || p.cts.n < 1 || p.cts.n > ibwire::kMaxRecvs ||
        p.cts.slot >= ibwire::kMaxRequests)
      return fail(remoteError(
          "malformed clear-to-send (%u bytes, magic 0x%08x, receive #%llu while #%llu was due, %u "
          "buffers, slot %u)",
          wc.byte_len, p.cts.magic, static_cast<unsigned long long>(p.cts.seq),
          static_cast<unsigned long long>(nextCtsSeq_), p.cts.n, p.cts.slot));
    ++nextCtsSeq_;
    p.left = p.cts.n;
    cts_.push_back(p);
    return Status::ok();
  }
  if (kind == kSize) {
    Req* r = &reqs_[v / ibwire::kMaxQps];
    int part = static_cast<int>(v % ibwire::kMaxQps);
    sqOut_[r->qpOf[part]] -= r->wrsOf[part];  // the data write before it retired with it
    if (++r->partsDone == r->parts) {
      r->done = true;
      releaseMrs(r);
      if (r->internal) {
        r->internal = false;
        --inFlight_;
        free_.push_back(r);
      }
    }
    return Status::ok();
  }
  return fail(internalError("unexpected completion of a %s", kindName(kind)));
}

Status VerbsSendComm::isend(const void* data, size_t size, int tag, Request** out) {
  *out = nullptr;
  TRELLIS_TRY(error_);
  TRELLIS_TRY(progress());
  if (cts_.empty()) return checkPeer("isend");  // the receive is not posted yet: NCCL calls again
  Pending& p = cts_.front();
  int idx = -1;
  bool hasTag = false;
  for (int i = 0; i < p.cts.n; ++i)
    if (p.cts.e[i].tag == tag) {
      hasTag = true;
      if (!p.matched[i]) {
        idx = i;
        break;
      }
    }
  if (idx < 0) {
    if (hasTag) return Status::ok();  // that buffer is filled: the send is for a later receive
    std::string tags;
    for (int i = 0; i < p.cts.n; ++i) tags += formatString("%s%d", i ? "," : "", p.cts.e[i].tag);
    return fail(invalidUsage("isend: a send with tag %d matches no buffer of receive #%llu (its "
                             "tags: %s)",
                             tag, static_cast<unsigned long long>(p.cts.seq), tags.c_str()));
  }
  if (free_.empty()) return Status::ok();
  const ibwire::CtsEntry& e = p.cts.e[idx];
  const bool tooLarge = size > e.size;
  const int nq = qps_->nQps();
  int parts = 1;
  if (!tooLarge && nq > 1 && size >= 2 * cfg_.opt.stripeMinBytes)
    parts = static_cast<int>(std::min<size_t>(static_cast<size_t>(nq), size / cfg_.opt.stripeMinBytes));
  const int first = static_cast<int>(rr_ % static_cast<unsigned>(nq));
  for (int k = 0; k < parts; ++k) {
    int q = (first + k) % nq;
    if (sqOut_[q] + 2 > qps_->sqDepth(q)) return Status::ok();  // the send queue is full: later
  }
  ++rr_;
  Req* r = free_.back();
  free_.pop_back();
  ++inFlight_;
  r->size = size;
  r->parts = parts;
  r->partsDone = 0;
  r->done = false;
  r->internal = tooLarge;
  const size_t chunk = (size + static_cast<size_t>(parts) - 1) / static_cast<size_t>(parts);
  for (int k = 0; k < parts; ++k) {
    int q = (first + k) % nq;
    r->qpOf[k] = q;
    if (!tooLarge && size > 0) {
      Result<RegCache::Entry*> m = qps_->dev(q)->acquire(data, size);
      if (!m) {
        releaseMrs(r);
        --inFlight_;
        free_.push_back(r);
        return fail(m.status().withContext(formatString("isend of %zu bytes", size)));
      }
      r->mr[k] = m.value();
      r->mrDev[k] = qps_->dev(q);
    }
  }
  auto* sizeSrc = reinterpret_cast<uint64_t*>(qps_->slab() + kSenderSizeSrcOffset) + r->index;
  *sizeSrc = size;
  const uint64_t sizeDst =
      sizesAddr_ + (static_cast<uint64_t>(p.cts.slot) * ibwire::kMaxRecvs + idx) * 8;
  const uint32_t imm = htonl(ibwire::encodeImm(ibwire::Imm{p.cts.slot, static_cast<uint32_t>(idx),
                                                           static_cast<uint32_t>(parts), tooLarge,
                                                           static_cast<uint32_t>(p.cts.seq)}));
  for (int k = 0; k < parts; ++k) {
    int q = r->qpOf[k];
    size_t off = static_cast<size_t>(k) * chunk;
    size_t len = tooLarge ? 0 : std::min(chunk, size - std::min(size, off));
    ibv_sge dsge{}, ssge{};
    ibv_send_wr dwr{}, swr{};
    ssge.addr = reinterpret_cast<uintptr_t>(sizeSrc);
    ssge.length = 8;
    ssge.lkey = qps_->slabLkey(q);
    swr.wr_id = wrId(kSize, static_cast<uint64_t>(r->index) * ibwire::kMaxQps + k);
    swr.sg_list = &ssge;
    swr.num_sge = 1;
    swr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
    swr.send_flags = IBV_SEND_SIGNALED;
    swr.imm_data = imm;
    swr.wr.rdma.remote_addr = sizeDst;
    swr.wr.rdma.rkey = sizesRkey_[q];
    ibv_send_wr* head = &swr;
    int wrs = 1;
    if (len > 0) {
      dsge.addr = reinterpret_cast<uintptr_t>(data) + off;
      dsge.length = static_cast<uint32_t>(len);
      dsge.lkey = r->mr[k]->keys.lkey;
      dwr.wr_id = wrId(kData, static_cast<uint64_t>(r->index) * ibwire::kMaxQps + k);
      dwr.sg_list = &dsge;
      dwr.num_sge = 1;
      dwr.opcode = IBV_WR_RDMA_WRITE;  // unsignaled: the size write after it retires it
      dwr.wr.rdma.remote_addr = e.addr + off;
      dwr.wr.rdma.rkey = e.rkey[q];
      dwr.next = &swr;
      head = &dwr;
      wrs = 2;
    }
    ibv_send_wr* bad = nullptr;
    int rc = ibv_post_send(qps_->qp(q), head, &bad);
    if (rc != 0)
      return fail(systemError(rc, "ibv_post_send of a %zu-byte send on QP %u", size,
                              qps_->qp(q)->qp_num));
    r->wrsOf[k] = wrs;
    sqOut_[q] += wrs;
  }
  p.matched[idx] = true;
  const unsigned long long seq = static_cast<unsigned long long>(p.cts.seq);
  const size_t cap = e.size;
  if (--p.left == 0) cts_.pop_front();
  if (tooLarge)
    return fail(invalidUsage(
        "isend: a %zu-byte send is larger than the %zu-byte buffer %d (tag %d) of receive #%llu "
        "that it matches",
        size, cap, idx, tag, seq));
  r->magic = Request::kMagic;
  r->owner = this;
  r->n = 1;
  *out = r;
  return Status::ok();
}

Status VerbsSendComm::test(Request* req, bool* done, size_t* sizes) {
  *done = false;
  auto* r = static_cast<Req*>(req);
  if (!r->done) {
    TRELLIS_TRY(error_);
    TRELLIS_TRY(progress());
  }
  if (r->done) {
    *done = true;
    sizes[0] = r->size;
    r->magic = 0;
    --inFlight_;
    free_.push_back(r);
    return Status::ok();
  }
  return checkPeer("test of a send");
}

// ---- Receive comm ----------------------------------------------------------------------------

Status VerbsRecvComm::postImmRecvs(QpSet& qps) {
  for (int q = 0; q < qps.nQps(); ++q)
    for (int i = 0; i < kImmRecvs; ++i) {
      ibv_recv_wr wr{};
      wr.wr_id = wrId(kImmRecv, static_cast<uint64_t>(q));
      wr.num_sge = 0;  // a write-with-immediate consumes a receive but places nothing through it
      ibv_recv_wr* bad = nullptr;
      int rc = ibv_post_recv(qps.qp(q), &wr, &bad);
      if (rc != 0) return systemError(rc, "ibv_post_recv on QP %u", qps.qp(q)->qp_num);
    }
  return Status::ok();
}

VerbsRecvComm::VerbsRecvComm(std::unique_ptr<QpSet> qps, net::Socket ctl, std::string desc,
                             const VerbsConfig& cfg)
    : qps_(std::move(qps)), ctl_(std::move(ctl)), desc_(std::move(desc)), cfg_(cfg) {
  live_.fd = ctl_.fd();
  live_.graceS = cfg_.closeGraceS;
  reqs_ = std::make_unique<Req[]>(ibwire::kMaxRequests);
  for (int i = ibwire::kMaxRequests; i-- > 0;) {
    reqs_[i].magic = 0;
    reqs_[i].slot = i;
    freeSlots_.push_back(i);
  }
}

VerbsRecvComm::~VerbsRecvComm() {
  qps_.reset();  // the peer can no longer write into our buffers: their registrations may go
  for (int i = 0; i < ibwire::kMaxRequests; ++i) releaseMrs(&reqs_[i]);
}

void VerbsRecvComm::releaseMrs(Req* r) {
  for (Buf& b : r->bufs)
    for (int q = 0; q < ibwire::kMaxQps; ++q)
      if (b.mr[q] != nullptr) {
        b.mrDev[q]->release(b.mr[q]);
        b.mr[q] = nullptr;
        b.mrDev[q] = nullptr;
      }
}

Status VerbsRecvComm::fail(Status s) {
  if (error_.isOk()) error_ = s;
  return error_;
}

volatile uint64_t* VerbsRecvComm::sizeSlot(int slot, int index) const {
  return reinterpret_cast<volatile uint64_t*>(qps_->slab() + kReceiverSizesOffset) +
         slot * ibwire::kMaxRecvs + index;
}

Status VerbsRecvComm::progress() {
  ibv_wc wc[16];
  for (;;) {
    TRELLIS_ASSIGN_OR_RETURN(int n, qps_->poll(wc, 16));
    for (int i = 0; i < n; ++i) TRELLIS_TRY(onCompletion(wc[i]));
    if (n < 16) return Status::ok();
  }
}

Status VerbsRecvComm::onCompletion(const ibv_wc& wc) {
  WrKind kind = wrKind(wc.wr_id);
  if (wc.status != IBV_WC_SUCCESS)
    return fail(Status(codeOf(wc.status), describeWc(wc, kindName(kind))));
  if (kind == kCtsSend) {
    --sqOut_;
    return Status::ok();
  }
  if (kind != kImmRecv || wc.opcode != IBV_WC_RECV_RDMA_WITH_IMM)
    return fail(internalError("unexpected completion of a %s (opcode %d)", kindName(kind),
                              static_cast<int>(wc.opcode)));
  int q = static_cast<int>(wrValue(wc.wr_id));
  ibv_recv_wr wr{};
  wr.wr_id = wc.wr_id;
  wr.num_sge = 0;
  ibv_recv_wr* bad = nullptr;
  int rc = ibv_post_recv(qps_->qp(q), &wr, &bad);
  if (rc != 0) return fail(systemError(rc, "re-posting a receive on QP %u", qps_->qp(q)->qp_num));
  ibwire::Imm m = ibwire::decodeImm(ntohl(wc.imm_data));
  Req& r = reqs_[m.slot];
  if (!r.busy || (r.seq & ibwire::kImmSeqMask) != m.seq || static_cast<int>(m.index) >= r.n ||
      r.bufs[m.index].done)
    return fail(remoteError(
        "an immediate for slot %u buffer %u of receive #%u (mod 2^21) matches no receive in "
        "flight",
        m.slot, m.index, m.seq));
  Buf& b = r.bufs[m.index];
  if (b.parts == 0) b.parts = static_cast<int>(m.parts);
  if (b.parts != static_cast<int>(m.parts))
    return fail(remoteError("receive #%llu buffer %u: parts announced as %d and as %u",
                            static_cast<unsigned long long>(r.seq), m.index, b.parts, m.parts));
  if (++b.partsGot < b.parts) return Status::ok();
  // The size landed before its completion.
#if defined(__SANITIZE_THREAD__) && defined(__x86_64__)
  // ThreadSanitizer rejects atomic_thread_fence (-Werror=tsan) and cannot see the NIC's writes
  // anyway; on x86-64 an acquire fence is only a compiler barrier.
  asm volatile("" ::: "memory");
#else
  std::atomic_thread_fence(std::memory_order_acquire);
#endif
  uint64_t size = *sizeSlot(m.slot, static_cast<int>(m.index));
  if (m.error)
    return fail(invalidUsage(
        "receive #%llu: the peer's %llu-byte send with tag %d is larger than the %zu-byte buffer "
        "%u it matches",
        static_cast<unsigned long long>(r.seq), static_cast<unsigned long long>(size), b.tag,
        b.cap, m.index));
  if (size > b.cap)
    return fail(remoteError("receive #%llu buffer %u: the peer reports %llu bytes written into "
                            "%zu",
                            static_cast<unsigned long long>(r.seq), m.index,
                            static_cast<unsigned long long>(size), b.cap));
  b.size = size;
  b.done = true;
  --r.left;
  return Status::ok();
}

Status VerbsRecvComm::irecv(int n, void* const* data, const size_t* sizes, const int* tags,
                            Request** out) {
  *out = nullptr;
  if (n < 1 || n > ibwire::kMaxRecvs)
    return invalidArgument("irecv: %d buffers (1..%d)", n, ibwire::kMaxRecvs);
  TRELLIS_TRY(error_);
  TRELLIS_TRY(progress());
  if (freeSlots_.empty() || sqOut_ + 1 > qps_->sqDepth(0)) return Status::ok();
  int slot = freeSlots_.back();
  Req& r = reqs_[slot];
  auto* cts = reinterpret_cast<ibwire::Cts*>(qps_->slab() + slot * sizeof(ibwire::Cts));
  std::memset(cts, 0, sizeof *cts);
  cts->magic = ibwire::kCtsMagic;
  cts->n = static_cast<uint16_t>(n);
  cts->slot = static_cast<uint16_t>(slot);
  cts->seq = nextSeq_;
  r.n = n;
  for (int i = 0; i < n; ++i) {
    Buf& b = r.bufs[i];
    b = Buf{};
    b.data = static_cast<char*>(data[i]);
    b.cap = sizes[i];
    b.tag = tags[i];
    cts->e[i].addr = reinterpret_cast<uintptr_t>(data[i]);
    cts->e[i].size = sizes[i];
    cts->e[i].tag = tags[i];
    if (sizes[i] == 0) continue;
    for (int q = 0; q < qps_->nQps(); ++q) {
      Result<RegCache::Entry*> m = qps_->dev(q)->acquire(data[i], sizes[i]);
      if (!m) {
        releaseMrs(&r);
        return fail(m.status().withContext(formatString("irecv buffer %d (%zu bytes)", i, sizes[i])));
      }
      b.mr[q] = m.value();
      b.mrDev[q] = qps_->dev(q);
      cts->e[i].rkey[q] = m.value()->keys.rkey;
    }
  }
  ibv_sge sge{reinterpret_cast<uintptr_t>(cts), sizeof *cts, qps_->slabLkey(0)};
  ibv_send_wr wr{};
  wr.wr_id = wrId(kCtsSend, static_cast<uint64_t>(slot));
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.opcode = IBV_WR_SEND;
  wr.send_flags = IBV_SEND_SIGNALED;
  ibv_send_wr* bad = nullptr;
  int rc = ibv_post_send(qps_->qp(0), &wr, &bad);
  if (rc != 0) {
    releaseMrs(&r);
    return fail(systemError(rc, "ibv_post_send of a clear-to-send on QP %u", qps_->qp(0)->qp_num));
  }
  ++sqOut_;
  freeSlots_.pop_back();
  r.busy = true;
  r.seq = nextSeq_++;
  r.left = n;
  r.magic = Request::kMagic;
  r.owner = this;
  *out = &r;
  return Status::ok();
}

Status VerbsRecvComm::test(Request* req, bool* done, size_t* sizes) {
  *done = false;
  auto* r = static_cast<Req*>(req);
  if (r->left > 0) {
    TRELLIS_TRY(error_);
    TRELLIS_TRY(progress());
  }
  if (r->left == 0) {
    for (int i = 0; i < r->n; ++i) sizes[i] = r->bufs[i].size;
    releaseMrs(r);
    r->busy = false;
    r->magic = 0;
    freeSlots_.push_back(r->slot);
    *done = true;
    return Status::ok();
  }
  if (live_.gone()) {
    int empty = 0;
    for (int i = 0; i < r->n; ++i) empty += !r->bufs[i].done;
    return fail(remoteError(
        "receive #%llu (%d buffer(s), %d still empty): the peer closed its send comm",
        static_cast<unsigned long long>(r->seq), r->n, empty));
  }
  return Status::ok();
}

}  // namespace trellis::ncclnet::ib
