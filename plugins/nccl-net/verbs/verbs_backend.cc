// The verbs backend: devices are the active RDMA ports (TRELLIS_IB_HCA applies, RoCE GIDs chosen
// by the Trellis verbs layer), described from the Trellis topology; listen/connect/accept set up
// RC queue pairs over a small TCP exchange without ever blocking (verbs_wire.h has the protocol,
// verbs_comm.cc the data path).
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "abi/nccl_abi.h"
#include "core/backend.h"
#include "core/devices.h"
#include "core/params.h"
#include "core/plugin_log.h"
#include "core/topo_view.h"
#include "transport/verbs/hca_filter.h"
#include "verbs/verbs_comm.h"
#include "verbs/verbs_wire.h"

namespace trellis::ncclnet {

static Param<double> kCloseGrace(
    "TRELLIS_NCCL_NET_IB_CLOSE_GRACE_S", 1.0,
    "verbs backend: seconds a pending request may still complete after its peer closed its comm, "
    "before it fails");

namespace {

using namespace ib;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
bool wouldBlock(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

// Non-blocking transfer of a fixed-size message: true when complete. A closed peer or a socket
// error is an error naming `what`.
Result<bool> sendSome(int fd, const void* buf, size_t len, size_t* done, const char* what) {
  while (*done < len) {
    ssize_t n = ::send(fd, static_cast<const char*>(buf) + *done, len - *done,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (wouldBlock(errno)) return false;
      return systemError(errno, "sending the %s", what);
    }
    *done += static_cast<size_t>(n);
  }
  return true;
}
Result<bool> recvSome(int fd, void* buf, size_t len, size_t* done, const char* what) {
  while (*done < len) {
    ssize_t n = ::recv(fd, static_cast<char*>(buf) + *done, len - *done, MSG_DONTWAIT);
    if (n == 0)
      return remoteError("the peer closed the set-up connection before sending its %s (%zu of "
                         "%zu bytes came)",
                         what, *done, len);
    if (n < 0) {
      if (wouldBlock(errno)) return false;
      return systemError(errno, "receiving the %s", what);
    }
    *done += static_cast<size_t>(n);
  }
  return true;
}

// Port speed in Mbps from the verbs port attributes (0 when the encoding is unknown).
int portSpeedMbps(const ibv_port_attr& a) {
  int lanes = 0;
  switch (a.active_width) {
    case 1: lanes = 1; break;
    case 2: lanes = 4; break;
    case 4: lanes = 8; break;
    case 8: lanes = 12; break;
    case 16: lanes = 2; break;
    default: break;
  }
  int perLane = 0;  // Mbps
  switch (a.active_speed) {
    case 1: perLane = 2500; break;
    case 2: perLane = 5000; break;
    case 4: case 8: perLane = 10000; break;
    case 16: perLane = 14000; break;
    case 32: perLane = 25000; break;
    case 64: perLane = 50000; break;
    case 128: perLane = 100000; break;
    default: break;
  }
  return lanes * perLane;
}

// The QP depths of each side (see verbs_wire.h: what flow control bounds).
void receiverDepths(int nQps, int* sq, int* rq) {
  for (int q = 0; q < nQps; ++q) {
    sq[q] = q == 0 ? kReceiverSqDepth : 1;  // clear-to-sends go on QP 0
    rq[q] = VerbsRecvComm::kImmRecvs;
  }
}
void senderDepths(int nQps, int* sq, int* rq) {
  for (int q = 0; q < nQps; ++q) {
    sq[q] = kSenderSqDepth;
    rq[q] = q == 0 ? kCtsRecvs : 0;
  }
}

// ---- Listen / accept -------------------------------------------------------------------------

class VerbsListenComm final : public ListenComm {
 public:
  VerbsListenComm(net::Socket fd, net::SockAddr addr, uint64_t token, std::vector<Dev*> local,
                  int trafficClass, const VerbsConfig& cfg)
      : fd_(std::move(fd)),
        addr_(addr),
        token_(token),
        local_(std::move(local)),
        trafficClass_(trafficClass),
        cfg_(cfg) {}

  Status accept(std::unique_ptr<RecvComm>* out) override {
    for (;;) {
      net::SockAddr from;
      from.len = sizeof from.storage;
      int fd = ::accept4(fd_.fd(), reinterpret_cast<sockaddr*>(&from.storage), &from.len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (wouldBlock(errno) || errno == ECONNABORTED) break;
        return systemError(errno, "accept on %s", addr_.toString().c_str());
      }
      net::setNoDelay(fd);
      auto p = std::make_unique<Pending>();
      p->fd = net::Socket(fd);
      p->from = from;
      p->since = Clock::now();
      pending_.push_back(std::move(p));
    }
    for (size_t i = 0; i < pending_.size();) {
      Pending& p = *pending_[i];
      Result<bool> r = step(p);
      if (!r || (!r.value() && secondsSince(p.since) > cfg_.connectTimeoutS)) {
        std::string why = r ? formatString("no complete set-up within %.0f s (state %d)",
                                           cfg_.connectTimeoutS, static_cast<int>(p.state))
                            : r.status().message();
        NCCLNET_WARN(nccl_abi::kFlagNet, "verbs accept on %s: dropping the connection from %s: %s",
                     addr_.toString().c_str(), p.from.toString().c_str(), why.c_str());
        pending_.erase(pending_.begin() + static_cast<long>(i));
        continue;
      }
      if (r.value()) {
        std::string desc = formatString("verbs recv %s <- %s (%d QP%s)", p.qps->pairs().c_str(),
                                        p.from.toString().c_str(), p.qps->nQps(),
                                        p.qps->nQps() > 1 ? "s" : "");
        *out = std::make_unique<VerbsRecvComm>(std::move(p.qps), std::move(p.fd), desc, cfg_);
        pending_.erase(pending_.begin() + static_cast<long>(i));
        return Status::ok();
      }
      ++i;
    }
    return Status::ok();
  }

 private:
  enum class State { kHello, kReply, kRefuse, kQps, kAck };
  struct Pending {
    net::Socket fd;
    net::SockAddr from;
    State state = State::kHello;
    Clock::time_point since;
    ibwire::Hello hello{};
    ibwire::Reply reply{};
    ibwire::Qps qpsMsg{};
    ibwire::Ack ack{};
    size_t got = 0, sent = 0;
    std::unique_ptr<QpSet> qps;
  };

  // Advances one incoming connection: true when its receive comm is ready.
  Result<bool> step(Pending& p) {
    const int fd = p.fd.fd();
    if (p.state == State::kHello) {
      TRELLIS_ASSIGN_OR_RETURN(bool in, recvSome(fd, &p.hello, sizeof p.hello, &p.got, "hello"));
      if (!in) return false;
      const ibwire::Hello& h = p.hello;
      if (h.magic != ibwire::kHelloMagic)
        return invalidArgument("bad hello magic 0x%08x (not this plugin's verbs backend)", h.magic);
      if (h.version != ibwire::kVersion)
        return invalidArgument("protocol version %u, this side speaks %u", h.version,
                               ibwire::kVersion);
      if (!net::constantTimeEqual(&h.token, &token_, sizeof token_))
        return invalidArgument("wrong listen token (a handle of another listen comm)");
      if (h.nNics < 1 || h.nNics > ibwire::kMaxQps)
        return invalidArgument("hello announces %u NICs (1..%d)", h.nNics, ibwire::kMaxQps);
      p.reply.magic = ibwire::kReplyMagic;
      std::string refuse;
      for (int i = 0; i < h.nNics; ++i)
        if ((h.nics[i].infiniband != 0) != local_[0]->info.infiniband)
          refuse = formatString("the connector's NIC %d is %s, this side's %s is %s", i,
                                h.nics[i].infiniband ? "InfiniBand" : "Ethernet (RoCE)",
                                local_[0]->info.dev.c_str(),
                                local_[0]->info.infiniband ? "InfiniBand" : "Ethernet (RoCE)");
      Status made = Status::ok();
      if (refuse.empty()) {
        int nQps = std::max<int>(static_cast<int>(local_.size()), h.nNics);
        int sq[ibwire::kMaxQps], rq[ibwire::kMaxQps];
        receiverDepths(nQps, sq, rq);
        p.qps = std::make_unique<QpSet>();
        made = p.qps->create(local_, nQps, sq, rq, kReceiverSlabBytes);
        if (made) made = VerbsRecvComm::postImmRecvs(*p.qps);
        if (!made) refuse = "the acceptor could not create its QPs: " + made.message();
      }
      if (!refuse.empty()) {
        p.reply.status = 1;
        std::snprintf(p.reply.why, sizeof p.reply.why, "%s", refuse.c_str());
        p.state = State::kRefuse;  // tell the connector why, then drop it (logged by accept)
        p.sent = 0;
      } else {
        const QpSet& s = *p.qps;
        p.reply.nQps = static_cast<uint16_t>(s.nQps());
        for (int q = 0; q < s.nQps(); ++q) {
          p.reply.qpn[q] = s.qp(q)->qp_num;
          p.reply.psn[q] = s.psn(q);
          p.reply.nics[q] = s.dev(q)->addr();
          p.reply.sizesRkey[q] = s.slabRkey(q);
        }
        p.reply.sizesAddr = reinterpret_cast<uintptr_t>(s.slab() + kReceiverSizesOffset);
        p.state = State::kReply;
        p.sent = 0;
      }
    }
    if (p.state == State::kRefuse) {
      TRELLIS_ASSIGN_OR_RETURN(bool sent,
                               sendSome(fd, &p.reply, sizeof p.reply, &p.sent, "refusal"));
      if (!sent) return false;
      return invalidUsage("%s", p.reply.why);
    }
    if (p.state == State::kReply) {
      TRELLIS_ASSIGN_OR_RETURN(bool sent, sendSome(fd, &p.reply, sizeof p.reply, &p.sent, "reply"));
      if (!sent) return false;
      p.state = State::kQps;
      p.got = 0;
    }
    if (p.state == State::kQps) {
      TRELLIS_ASSIGN_OR_RETURN(bool in,
                               recvSome(fd, &p.qpsMsg, sizeof p.qpsMsg, &p.got, "QP numbers"));
      if (!in) return false;
      if (p.qpsMsg.magic != ibwire::kQpsMagic)
        return invalidArgument("bad QP message magic 0x%08x", p.qpsMsg.magic);
      ibwire::NicAddr remote[ibwire::kMaxQps];
      for (int q = 0; q < p.qps->nQps(); ++q) remote[q] = p.hello.nics[q % p.hello.nNics];
      TRELLIS_TRY(p.qps->connect(remote, p.qpsMsg.qpn, p.qpsMsg.psn, cfg_, trafficClass_));
      p.ack.magic = ibwire::kAckMagic;
      p.state = State::kAck;
      p.sent = 0;
    }
    TRELLIS_ASSIGN_OR_RETURN(bool sent, sendSome(fd, &p.ack, sizeof p.ack, &p.sent, "ack"));
    return sent;
  }

  net::Socket fd_;
  net::SockAddr addr_;
  uint64_t token_;
  std::vector<Dev*> local_;
  int trafficClass_;
  VerbsConfig cfg_;
  std::vector<std::unique_ptr<Pending>> pending_;
};

// ---- Connect ---------------------------------------------------------------------------------

class VerbsConnector final : public Connector {
 public:
  VerbsConnector(net::SockAddr remote, uint64_t token, std::vector<Dev*> local, int trafficClass,
                 const VerbsConfig& cfg)
      : remote_(remote),
        local_(std::move(local)),
        trafficClass_(trafficClass),
        cfg_(cfg),
        started_(Clock::now()) {
    hello_.magic = ibwire::kHelloMagic;
    hello_.version = ibwire::kVersion;
    hello_.nNics = static_cast<uint16_t>(local_.size());
    hello_.token = token;
    for (size_t i = 0; i < local_.size(); ++i) hello_.nics[i] = local_[i]->addr();
  }

  Status progress(std::unique_ptr<SendComm>* out) override {
    Status s = step(out);
    if (!s || *out) return s;
    if (secondsSince(started_) > cfg_.connectTimeoutS)
      return timeoutError(
          "cannot connect to %s within %.0f s (TRELLIS_NCCL_NET_CONNECT_TIMEOUT_S); last error: "
          "%s (set-up state %d)",
          remote_.toString().c_str(), cfg_.connectTimeoutS,
          lastErr_ ? strerror(lastErr_) : "none (still in progress)", static_cast<int>(state_));
    return Status::ok();
  }

 private:
  enum class State { kIdle, kConnecting, kHello, kReply, kQps, kAck };
  static bool retryable(int err) {
    return err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH ||
           err == ECONNRESET || err == EAGAIN;
  }
  void retry(int err) {
    fd_.close();
    state_ = State::kIdle;
    sent_ = 0;
    lastErr_ = err;
    retryAt_ = Clock::now() + std::chrono::milliseconds(backoffMs_);
    backoffMs_ = std::min(backoffMs_ * 2, 500);
  }

  Status step(std::unique_ptr<SendComm>* out) {
    if (state_ == State::kIdle) {
      if (Clock::now() < retryAt_) return Status::ok();
      fd_ = net::Socket(::socket(remote_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd_.valid()) return systemError(errno, "socket() for %s", remote_.toString().c_str());
      int rc = ::connect(fd_.fd(), remote_.sa(), remote_.len);
      int err = rc == 0 ? 0 : errno;
      if (err == 0) {
        state_ = State::kHello;
      } else if (err == EINPROGRESS || err == EINTR) {
        state_ = State::kConnecting;
      } else if (retryable(err)) {
        retry(err);
        return Status::ok();
      } else {
        return systemError(err, "connect(%s)", remote_.toString().c_str());
      }
    }
    if (state_ == State::kConnecting) {
      pollfd p{fd_.fd(), POLLOUT, 0};
      int rc = ::poll(&p, 1, 0);
      if (rc == 0 || (rc < 0 && errno == EINTR)) return Status::ok();
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd_.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        if (retryable(err)) {
          retry(err);
          return Status::ok();
        }
        return systemError(err, "connect(%s)", remote_.toString().c_str());
      }
      net::setNoDelay(fd_.fd());
      state_ = State::kHello;
      sent_ = 0;
    }
    if (state_ == State::kHello) {
      int err = 0;
      Result<bool> r = sendSome(fd_.fd(), &hello_, sizeof hello_, &sent_, "hello");
      if (!r) err = errno;
      if (!r) {  // the listener dropped the connection early: try again until the timeout
        retry(err != 0 ? err : ECONNRESET);
        return Status::ok();
      }
      if (!r.value()) return Status::ok();
      state_ = State::kReply;
      got_ = 0;
    }
    if (state_ == State::kReply) {
      Result<bool> r = recvSome(fd_.fd(), &reply_, sizeof reply_, &got_, "reply");
      if (!r)
        return r.status().withContext(
            formatString("the listener at %s (wrong or stale handle?)", remote_.toString().c_str()));
      if (!r.value()) return Status::ok();
      if (reply_.magic != ibwire::kReplyMagic)
        return remoteError("bad set-up reply magic 0x%08x from %s", reply_.magic,
                           remote_.toString().c_str());
      if (reply_.status != 0) {
        reply_.why[sizeof reply_.why - 1] = 0;
        return invalidUsage("the listener at %s refused the connection: %s",
                            remote_.toString().c_str(), reply_.why);
      }
      if (reply_.nQps < 1 || reply_.nQps > ibwire::kMaxQps)
        return remoteError("the listener at %s answered with %u QPs (1..%d)",
                           remote_.toString().c_str(), reply_.nQps, ibwire::kMaxQps);
      int sq[ibwire::kMaxQps], rq[ibwire::kMaxQps];
      senderDepths(reply_.nQps, sq, rq);
      qps_ = std::make_unique<QpSet>();
      TRELLIS_TRY(qps_->create(local_, reply_.nQps, sq, rq, kSenderSlabBytes));
      TRELLIS_TRY(VerbsSendComm::postCtsRecvs(*qps_));
      TRELLIS_TRY(qps_->connect(reply_.nics, reply_.qpn, reply_.psn, cfg_, trafficClass_));
      msg_.magic = ibwire::kQpsMagic;
      for (int q = 0; q < qps_->nQps(); ++q) {
        msg_.qpn[q] = qps_->qp(q)->qp_num;
        msg_.psn[q] = qps_->psn(q);
      }
      state_ = State::kQps;
      sent_ = 0;
    }
    if (state_ == State::kQps) {
      TRELLIS_ASSIGN_OR_RETURN(bool sent, sendSome(fd_.fd(), &msg_, sizeof msg_, &sent_, "QP numbers"));
      if (!sent) return Status::ok();
      state_ = State::kAck;
      got_ = 0;
    }
    TRELLIS_ASSIGN_OR_RETURN(bool in, recvSome(fd_.fd(), &ack_, sizeof ack_, &got_, "ack"));
    if (!in) return Status::ok();
    if (ack_.magic != ibwire::kAckMagic)
      return remoteError("bad set-up ack magic 0x%08x from %s", ack_.magic,
                         remote_.toString().c_str());
    std::string desc = formatString("verbs send %s -> %s (%d QP%s)", qps_->pairs().c_str(),
                                    remote_.toString().c_str(), qps_->nQps(),
                                    qps_->nQps() > 1 ? "s" : "");
    *out = std::make_unique<VerbsSendComm>(std::move(qps_), std::move(fd_), reply_.sizesAddr,
                                           reply_.sizesRkey, desc, cfg_);
    return Status::ok();
  }

  net::SockAddr remote_;
  std::vector<Dev*> local_;
  int trafficClass_;
  VerbsConfig cfg_;
  Clock::time_point started_;
  State state_ = State::kIdle;
  net::Socket fd_;
  ibwire::Hello hello_{};
  ibwire::Reply reply_{};
  ibwire::Qps msg_{};
  ibwire::Ack ack_{};
  size_t sent_ = 0, got_ = 0;
  std::unique_ptr<QpSet> qps_;
  Clock::time_point retryAt_{};
  int backoffMs_ = 5;
  int lastErr_ = 0;
};

// ---- Backend ---------------------------------------------------------------------------------

class VerbsBackend final : public Backend {
 public:
  VerbsBackend(std::vector<PhysDevice> devs, std::vector<std::unique_ptr<Dev>> ports,
               std::vector<net::SockAddr> setup, const VerbsConfig& cfg)
      : devs_(std::move(devs)), ports_(std::move(ports)), setup_(std::move(setup)), cfg_(cfg) {}

  const char* name() const override { return "verbs"; }
  const std::vector<PhysDevice>& devices() const override { return devs_; }
  int maxRecvs() const override { return cfg_.maxRecvs; }

  Status listen(const std::vector<int>& devs, const CommOptions& opt, void* handle,
                std::unique_ptr<ListenComm>* out) override {
    net::SockAddr bound;
    TRELLIS_ASSIGN_OR_RETURN(net::Socket s, net::listenOn(setup_[devs[0]], &bound));
    ibwire::Handle h{};
    h.magic = ibwire::kHandleMagic;
    h.version = ibwire::kVersion;
    h.backend = ibwire::kBackendVerbs;
    TRELLIS_TRY(net::randomBytes(&h.token, sizeof h.token));
    h.addr = tcpwire::toCompact(bound);
    std::memcpy(handle, &h, sizeof h);
    *out = std::make_unique<VerbsListenComm>(std::move(s), bound, h.token, local(devs),
                                             opt.trafficClass, cfg_);
    return Status::ok();
  }

  Status connect(const std::vector<int>& devs, const CommOptions& opt, const void* handle,
                 std::unique_ptr<Connector>* out) override {
    ibwire::Handle h;
    std::memcpy(&h, handle, sizeof h);
    if (h.magic != ibwire::kHandleMagic || h.backend != ibwire::kBackendVerbs)
      return invalidArgument(
          "the handle (magic 0x%08x, backend %u) was not made by this plugin's verbs backend",
          h.magic, h.backend);
    if (h.version != ibwire::kVersion)
      return invalidArgument("handle of protocol version %u; this side speaks %u", h.version,
                             ibwire::kVersion);
    TRELLIS_ASSIGN_OR_RETURN(net::SockAddr remote, tcpwire::fromCompact(h.addr));
    *out = std::make_unique<VerbsConnector>(remote, h.token, local(devs), opt.trafficClass, cfg_);
    return Status::ok();
  }

  void invalidateMemory(const void* addr, size_t len) override {
    for (auto& p : ports_) p->invalidate(addr, len);
  }

 private:
  std::vector<Dev*> local(const std::vector<int>& devs) const {
    std::vector<Dev*> out;
    for (int d : devs) out.push_back(ports_[static_cast<size_t>(d)].get());
    return out;
  }

  std::vector<PhysDevice> devs_;
  std::vector<std::unique_ptr<Dev>> ports_;
  std::vector<net::SockAddr> setup_;
  VerbsConfig cfg_;
};

// Opens one port: context, protection domain, limits, registration cache.
Result<std::unique_ptr<Dev>> openPort(const PortInfo& info, const VerbsConfig& cfg,
                                      ibv_device_attr* attr, ibv_port_attr* pattr) {
  auto d = std::make_unique<Dev>();
  d->info = info;
  int count = 0;
  ibv_device** list = ibv_get_device_list(&count);
  if (list == nullptr) return systemError(errno, "ibv_get_device_list");
  for (int i = 0; i < count && d->ctx == nullptr; ++i)
    if (info.dev == ibv_get_device_name(list[i])) d->ctx = ibv_open_device(list[i]);
  ibv_free_device_list(list);
  if (d->ctx == nullptr) return systemError(errno, "ibv_open_device(%s)", info.dev.c_str());
  if (ibv_query_device(d->ctx, attr) != 0)
    return systemError(errno, "ibv_query_device(%s)", info.dev.c_str());
  if (ibv_query_port(d->ctx, static_cast<uint8_t>(info.port), pattr) != 0)
    return systemError(errno, "ibv_query_port(%s, %d)", info.dev.c_str(), info.port);
  d->maxQpWr = attr->max_qp_wr;
  d->maxCqe = attr->max_cqe;
  d->pd = ibv_alloc_pd(d->ctx);
  if (d->pd == nullptr) return systemError(errno, "ibv_alloc_pd on %s", info.dev.c_str());
  d->registrar = std::make_unique<PdRegistrar>(d->pd, info.dev);
  transport::verbs::RegCacheOptions ro;
  ro.maxBytes = cfg.opt.regCacheBytes;
  // Misses register whole MiBs around the buffer: NCCL's buffers are large and reused. Cached
  // regions are forgotten whenever NCCL registers new memory or drops a registration over them
  // (invalidateMemory), so a region never outlives the mapping it was made for.
  ro.align = size_t{1} << 20;
  d->cache = std::make_unique<RegCache>(d->registrar.get(), ro);
  return d;
}

}  // namespace

Result<std::unique_ptr<Backend>> createVerbsBackend(bool* noDevice) {
  *noDevice = false;
  VerbsConfig cfg;
  TRELLIS_ASSIGN_OR_RETURN(cfg.opt, transport::verbsOptionsFromParams());
  CommonParams common = commonParams();
  cfg.maxRecvs = common.maxRecvs;
  cfg.connectTimeoutS = common.connectTimeoutS;
  cfg.closeGraceS = std::max(0.0, kCloseGrace.get());
  std::vector<std::string> notes;
  std::vector<PortInfo> ports = transport::verbs::listActivePorts(cfg.opt.gidIndex, &notes);
  TRELLIS_ASSIGN_OR_RETURN(transport::verbs::HcaFilter filter,
                           transport::verbs::parseHcaFilter(cfg.opt.hca));
  std::vector<PortInfo> allowed;
  std::string active;
  for (const PortInfo& p : ports) {
    active += (active.empty() ? "" : ", ") + p.dev + ":" + std::to_string(p.port);
    if (filter.allows(p.dev, p.port)) allowed.push_back(p);
  }
  if (!filter.empty())  // an inclusive list is also the order of preference
    std::stable_sort(allowed.begin(), allowed.end(), [&](const PortInfo& a, const PortInfo& b) {
      return filter.rank(a.dev, a.port) < filter.rank(b.dev, b.port);
    });
  if (allowed.empty()) {
    *noDevice = true;
    std::string why;
    for (const std::string& n : notes) why += (why.empty() ? "" : "; ") + n;
    if (ports.empty())
      return invalidUsage("no RDMA device%s%s%s",
                          notes.empty() ? " (ibv_get_device_list found none)" : " with an active port (",
                          why.c_str(), notes.empty() ? "" : ")");
    return invalidUsage("no active RDMA port matches TRELLIS_IB_HCA='%s' (active ports: %s)",
                        cfg.opt.hca.c_str(), active.c_str());
  }
  Result<std::vector<NetdevDevice>> netdevs = netdevDevices();
  if (!netdevs)
    return netdevs.status().withContext(
        "the verbs backend needs a network interface for its set-up connections");
  std::vector<PhysDevice> devs;
  std::vector<std::unique_ptr<Dev>> opened;
  std::vector<net::SockAddr> setup;
  const TopoView& topo = TopoView::get();
  for (const PortInfo& p : allowed) {
    ibv_device_attr attr{};
    ibv_port_attr pattr{};
    TRELLIS_ASSIGN_OR_RETURN(std::unique_ptr<Dev> d, openPort(p, cfg, &attr, &pattr));
    PhysDevice pd;
    pd.name = p.dev;
    pd.port = p.port;
    std::optional<NicFacts> f = topo.forRdmaPort(p.dev, p.port);
    if (f) {
      pd.pciPath = f->pciPath;
      pd.guid = f->guid;
      pd.railGroup = f->railGroup;
      if (f->speedMbps > 0) {
        pd.speedMbps = static_cast<int>(f->speedMbps);
        pd.speedKnown = true;
      }
    } else {
      char resolved[PATH_MAX];
      std::string link = "/sys/class/infiniband/" + p.dev + "/device";
      if (realpath(link.c_str(), resolved) != nullptr &&
          std::strncmp(resolved, "/sys/devices/pci", 16) == 0)
        pd.pciPath = resolved;
    }
    if (pd.guid == 0) pd.guid = be64toh(attr.node_guid);
    if (pd.guid == 0) pd.guid = fnv1a64("rdma:" + p.dev);
    if (!pd.speedKnown && portSpeedMbps(pattr) > 0) {
      pd.speedMbps = portSpeedMbps(pattr);
      pd.speedKnown = true;
    }
    if (!pd.speedKnown) pd.speedMbps = defaultSpeedMbps();
    pd.maxComms = std::max(1, std::min({attr.max_qp, attr.max_cq, 65536}));
    pd.describe = formatString("%s, %d Mbps%s", p.describe().c_str(), pd.speedMbps,
                               pd.speedKnown ? "" : " assumed: speed unknown");
    // Set-up connections go over the port's own interface when it is one Trellis may use.
    net::SockAddr addr = netdevs.value()[0].addr;
    for (const NetdevDevice& n : netdevs.value())
      if (!p.netdev.empty() && n.dev.name == p.netdev) addr = n.addr;
    devs.push_back(pd);
    opened.push_back(std::move(d));
    setup.push_back(addr);
  }
  for (const std::string& n : notes) NCCLNET_TRACE(nccl_abi::kFlagInit | nccl_abi::kFlagNet, "verbs: %s", n.c_str());
  return std::unique_ptr<Backend>(
      new VerbsBackend(std::move(devs), std::move(opened), std::move(setup), cfg));
}

}  // namespace trellis::ncclnet
