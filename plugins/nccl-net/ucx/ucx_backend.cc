// The UCX backend: UCP tagged messages (UCX picks the wire: shared memory on one host, TCP,
// InfiniBand/RoCE) on one worker per device set (ucx_worker.h has the tag layout).
//
// Connection setup goes over a small TCP exchange, because a UCX worker address does not fit the
// 128-byte NCCL handle: the handle carries the listener's TCP address and a random token; the
// connector sends a hello with the token, the acceptor answers with the receive comm's id and its
// worker's address, and the connector creates its endpoint to that worker. The TCP socket stays
// open for the comm's life: its end of stream tells a receiver that the sender closed its comm
// (UCX alone would leave the receive waiting forever, since a receiver has no endpoint back).
// Everything is non-blocking; NCCL's proxy polls test(), which progresses the worker.
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <unordered_map>

#include "abi/nccl_abi.h"
#include "core/backend.h"
#include "core/devices.h"
#include "core/params.h"
#include "core/plugin_log.h"
#include "core/topo_view.h"
#include "tcp/tcp_wire.h"
#include "transport/ucx/ucx_transport.h"
#include "ucx/ucx_worker.h"

namespace trellis::ncclnet {

namespace {

using namespace ucxb;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kHandleMagic = 0x54524e55u;  // "TRNU"
constexpr uint32_t kHelloMagic = 0x54524e56u;   // "TRNV"
constexpr uint32_t kReplyMagic = 0x54524e57u;   // "TRNW"
constexpr uint8_t kVersion = 1;
constexpr size_t kMaxAddressBytes = 64 * 1024;
// After the peer's end of the setup socket closes, how long a request may still complete (UCX may
// deliver data sent just before the close) before it fails.
Param<double> kCloseGrace(
    "TRELLIS_NCCL_NET_UCX_CLOSE_GRACE_S", 5.0,
    "UCX backend: seconds a pending request may still complete after its peer closed "
    "its comm, before it fails");

struct Handle {
  uint32_t magic;
  uint8_t version;
  uint8_t backend;
  uint16_t reserved;
  uint64_t token;
  tcpwire::CompactAddr addr;  // the listener's setup socket
};
static_assert(sizeof(Handle) <= kBackendHandleBytes);

struct Hello {
  uint32_t magic;
  uint16_t version;
  uint16_t reserved;
  uint64_t token;
  uint64_t reserved2[2];
};
struct Reply {
  uint32_t magic;
  uint32_t commId;
  uint32_t addrLen;
  uint32_t reserved;
};
static_assert(sizeof(Hello) == 32 && sizeof(Reply) == 16);

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
bool wouldBlock(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

// End of stream on the setup socket: the peer closed its comm (or died).
struct Liveness {
  int fd = -1;
  double graceS = kCloseGrace.get();
  bool closed = false;
  Clock::time_point closedAt;
  // True once the peer has been gone for longer than the grace period.
  bool gone() {
    if (!closed) {
      char b;
      ssize_t n = ::recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
      if (n == 0 || (n < 0 && !wouldBlock(errno))) {
        closed = true;
        closedAt = Clock::now();
      }
    }
    return closed && secondsSince(closedAt) > graceS;
  }
};

// ---- Send comm -------------------------------------------------------------------------------

class UcxSendComm final : public SendComm {
 public:
  UcxSendComm(Worker* w, Worker::Endpoint* ep, uint32_t remoteComm, net::Socket ctl,
              std::string desc, int maxRecvs)
      : w_(w), ep_(ep), remote_(remoteComm), ctl_(std::move(ctl)), desc_(std::move(desc)) {
    live_.fd = ctl_.fd();
    size_t n = static_cast<size_t>(nccl_abi::kMaxRequests) * static_cast<size_t>(maxRecvs);
    reqs_ = std::make_unique<Req[]>(n);
    for (size_t i = n; i-- > 0;) {
      reqs_[i].magic = 0;
      reqs_[i].op = new UcxOp;
      free_.push_back(&reqs_[i]);
    }
  }

  ~UcxSendComm() override {
    std::lock_guard<std::mutex> lock(w_->mu);
    size_t pending = 0;
    for (Req* r : used_) pending += !r->op->done;
    // Nothing pending: push out what completed sends may have left in UCX's buffers before the
    // peer sees this comm close (bounded; other comms' transfers may keep the worker busy).
    if (pending == 0 && !used_.empty()) w_->flush(1.0);
    for (size_t i = 0; i < nReqs(); ++i) {
      UcxOp* op = reqs_[i].op;
      if (op->handle != nullptr && !op->done)
        w_->abandon(op);  // UCX still holds it
      else
        delete op;
    }
  }

  Status isend(const void* data, size_t size, int tag, Request** out) override {
    *out = nullptr;
    if (tag < 0 || tag > kMaxTag)
      return invalidArgument("isend: tag %d outside the UCX backend's range [0, %lld]", tag,
                             static_cast<long long>(kMaxTag));
    std::lock_guard<std::mutex> lock(w_->mu);
    TRELLIS_TRY(checkError());
    if (free_.empty()) return Status::ok();
    Req* r = free_.back();
    free_.pop_back();
    used_.push_back(r);
    r->magic = Request::kMagic;
    r->owner = this;
    r->n = 1;
    r->size = size;
    *r->op = UcxOp{};
    r->op->worker = w_;
    ucp_request_param_t prm{};
    prm.op_attr_mask =
        UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_DATATYPE;
    prm.cb.send = onSendDone;
    prm.user_data = r->op;
    prm.datatype = ucp_dt_make_contig(1);
    uint32_t seq = seq_[tag]++;
    void* h = w_->u->ucp_tag_send_nbx(ep_->ep, data, size,
                                      makeTag(remote_, static_cast<uint32_t>(tag), seq), &prm);
    if (h == nullptr) {
      r->op->done = true;  // completed in place
    } else if (UCS_PTR_IS_ERR(h)) {
      r->op->done = true;
      r->op->status = UCS_PTR_STATUS(h);
    } else {
      r->op->handle = h;
    }
    *out = r;
    return Status::ok();
  }

  Status test(Request* req, bool* done, size_t* sizes) override {
    *done = false;
    auto* r = static_cast<Req*>(req);
    std::lock_guard<std::mutex> lock(w_->mu);
    w_->drain();
    if (r->op->done) {
      if (r->op->status != UCS_OK)
        return fail(remoteError("send of %zu bytes failed: %s", r->size,
                                w_->u->ucs_status_string(r->op->status)));
      *done = true;
      sizes[0] = r->size;
      r->magic = 0;
      used_.erase(std::find(used_.begin(), used_.end(), r));
      free_.push_back(r);
      return Status::ok();
    }
    return checkError();
  }

  std::string describe() const override { return desc_; }

 private:
  struct Req : Request {
    UcxOp* op = nullptr;  // heap: handed to the worker if the comm closes while UCX holds it
    size_t size = 0;
  };
  size_t nReqs() const { return free_.size() + used_.size(); }
  Status fail(Status s) {
    if (error_.isOk()) error_ = s;
    return error_;
  }
  Status checkError() {
    TRELLIS_TRY(error_);
    if (ep_->status != UCS_OK)
      return fail(
          remoteError("the UCX endpoint failed: %s", w_->u->ucs_status_string(ep_->status)));
    if (!used_.empty() && live_.gone())
      return fail(
          remoteError("the peer closed its receive comm with %zu send(s) in flight", used_.size()));
    return Status::ok();
  }

  Worker* w_;
  Worker::Endpoint* ep_;
  uint32_t remote_;
  net::Socket ctl_;
  std::string desc_;
  Liveness live_;
  std::unique_ptr<Req[]> reqs_;
  std::vector<Req*> free_, used_;
  std::unordered_map<int, uint32_t> seq_;
  Status error_;
};

// ---- Receive comm ----------------------------------------------------------------------------

class UcxRecvComm final : public RecvComm {
 public:
  UcxRecvComm(Worker* w, uint32_t commId, net::Socket ctl, std::string desc, int maxRecvs)
      : w_(w), id_(commId), ctl_(std::move(ctl)), desc_(std::move(desc)), maxRecvs_(maxRecvs) {
    live_.fd = ctl_.fd();
    reqs_ = std::make_unique<Req[]>(nccl_abi::kMaxRequests);
    for (int i = nccl_abi::kMaxRequests; i-- > 0;) {
      reqs_[i].magic = 0;
      for (UcxOp*& op : reqs_[i].ops) op = new UcxOp;
      free_.push_back(&reqs_[i]);
    }
  }

  ~UcxRecvComm() override {
    std::lock_guard<std::mutex> lock(w_->mu);
    // Cancelled receives complete (UCS_ERR_CANCELED) on the next progress calls.
    std::vector<UcxOp*> pending;
    for (int i = 0; i < nccl_abi::kMaxRequests; ++i)
      for (UcxOp* op : reqs_[i].ops)
        if (!op->done && op->handle != nullptr) {
          w_->u->ucp_request_cancel(w_->worker, op->handle);
          pending.push_back(op);
        }
    auto until = Clock::now() + std::chrono::seconds(1);
    auto allDone = [&] {
      for (UcxOp* op : pending)
        if (!op->done) return false;
      return true;
    };
    while (!allDone() && Clock::now() < until) w_->u->ucp_worker_progress(w_->worker);
    for (int i = 0; i < nccl_abi::kMaxRequests; ++i)
      for (UcxOp* op : reqs_[i].ops) {
        if (op->handle != nullptr && !op->done)
          w_->abandon(op);
        else
          delete op;
      }
    w_->freeComm(id_);
  }

  Status irecv(int n, void* const* data, const size_t* sizes, const int* tags,
               Request** out) override {
    *out = nullptr;
    if (n < 1 || n > maxRecvs_) return invalidArgument("irecv: %d buffers (1..%d)", n, maxRecvs_);
    for (int i = 0; i < n; ++i)
      if (tags[i] < 0 || tags[i] > kMaxTag)
        return invalidArgument("irecv: tag %d outside the UCX backend's range [0, %lld]", tags[i],
                               static_cast<long long>(kMaxTag));
    std::lock_guard<std::mutex> lock(w_->mu);
    TRELLIS_TRY(error_);
    if (free_.empty()) return Status::ok();
    Req* r = free_.back();
    free_.pop_back();
    used_.push_back(r);
    r->magic = Request::kMagic;
    r->owner = this;
    r->n = n;
    for (int i = 0; i < n; ++i) {
      UcxOp& op = *r->ops[i];
      op = UcxOp{};
      op.worker = w_;
      r->cap[i] = sizes[i];
      r->tags[i] = tags[i];
      ucp_request_param_t prm{};
      // No immediate completion: UCX 1.13 does not fill recv_info then, so the size of a message
      // that already arrived is only known to the callback (which then runs inside the call).
      prm.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                         UCP_OP_ATTR_FIELD_DATATYPE | UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
      prm.cb.recv = onRecvDone;
      prm.user_data = &op;
      prm.datatype = ucp_dt_make_contig(1);
      uint32_t seq = seq_[tags[i]]++;
      op.posting = true;
      void* h = w_->u->ucp_tag_recv_nbx(w_->worker, data[i], sizes[i],
                                        makeTag(id_, static_cast<uint32_t>(tags[i]), seq),
                                        kFullMask, &prm);
      op.posting = false;
      if (UCS_PTR_IS_ERR(h)) {
        op.done = true;
        op.status = UCS_PTR_STATUS(h);
      } else if (!op.done) {
        op.handle = h;  // (when the callback already ran, it freed the request)
      }
    }
    *out = r;
    return Status::ok();
  }

  Status test(Request* req, bool* done, size_t* sizes) override {
    *done = false;
    auto* r = static_cast<Req*>(req);
    std::lock_guard<std::mutex> lock(w_->mu);
    TRELLIS_TRY(error_);
    w_->drain();
    bool all = true;
    for (int i = 0; i < r->n; ++i) all = all && r->ops[i]->done;
    if (!all) {
      if (live_.gone())
        return fail(remoteError(
            "receive of %d buffer(s): the peer closed its send comm before sending them all",
            r->n));
      return Status::ok();
    }
    for (int i = 0; i < r->n; ++i) {
      const UcxOp& op = *r->ops[i];
      if (op.status == UCS_ERR_MESSAGE_TRUNCATED)
        return fail(invalidUsage(
            "a %zu-byte message arrived for the %zu-byte buffer %d (tag %d): the send is "
            "larger than the receive",
            op.length, r->cap[i], i, r->tags[i]));
      if (op.status != UCS_OK)
        return fail(remoteError("receive into buffer %d (tag %d) failed: %s", i, r->tags[i],
                                w_->u->ucs_status_string(op.status)));
      sizes[i] = op.length;
    }
    *done = true;
    r->magic = 0;
    used_.erase(std::find(used_.begin(), used_.end(), r));
    free_.push_back(r);
    return Status::ok();
  }

  std::string describe() const override { return desc_; }

 private:
  struct Req : Request {
    UcxOp* ops[8] = {};  // heap: handed to the worker if the comm closes while UCX holds them
    size_t cap[8] = {};
    int tags[8] = {};
  };
  Status fail(Status s) {
    if (error_.isOk()) error_ = s;
    return error_;
  }

  Worker* w_;
  uint32_t id_;
  net::Socket ctl_;
  std::string desc_;
  int maxRecvs_;
  Liveness live_;
  std::unique_ptr<Req[]> reqs_;
  std::vector<Req*> free_, used_;
  std::unordered_map<int, uint32_t> seq_;
  Status error_;
};

// ---- Listen / accept -------------------------------------------------------------------------

class UcxListenComm final : public ListenComm {
 public:
  UcxListenComm(net::Socket fd, net::SockAddr addr, uint64_t token, Worker* w,
                const CommonParams& cfg)
      : fd_(std::move(fd)), addr_(addr), token_(token), w_(w), cfg_(cfg) {}

  ~UcxListenComm() override {
    std::lock_guard<std::mutex> lock(w_->mu);
    for (Pending& p : pending_)
      if (p.commId != 0) w_->freeComm(p.commId);
  }

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
      pending_.push_back(Pending{net::Socket(fd), from, Hello{}, 0, {}, 0, 0, Clock::now()});
    }
    for (size_t i = 0; i < pending_.size();) {
      Pending& p = pending_[i];
      std::string drop = step(p);
      if (!drop.empty()) {
        NCCLNET_WARN(nccl_abi::kFlagNet, "ucx accept on %s: dropping %s: %s",
                     addr_.toString().c_str(), p.from.toString().c_str(), drop.c_str());
        if (p.commId != 0) {
          std::lock_guard<std::mutex> lock(w_->mu);
          w_->freeComm(p.commId);
        }
        pending_.erase(pending_.begin() + static_cast<long>(i));
        continue;
      }
      if (p.commId != 0 && p.sent == p.reply.size()) {
        std::string desc =
            formatString("ucx recv comm %u on %s <- %s (%s)", p.commId, addr_.toString().c_str(),
                         p.from.toString().c_str(),
                         w_->netDevices.empty() ? "all devices" : w_->netDevices.c_str());
        *out = std::make_unique<UcxRecvComm>(w_, p.commId, std::move(p.fd), desc, cfg_.maxRecvs);
        pending_.erase(pending_.begin() + static_cast<long>(i));
        return Status::ok();
      }
      ++i;
    }
    return Status::ok();
  }

 private:
  struct Pending {
    net::Socket fd;
    net::SockAddr from;
    Hello hello;
    size_t got;
    std::vector<uint8_t> reply;
    size_t sent;
    uint32_t commId;
    Clock::time_point since;
  };

  // Advances one incoming connection; a non-empty result says why it is dropped.
  std::string step(Pending& p) {
    if (p.got < sizeof p.hello) {
      ssize_t n =
          ::recv(p.fd.fd(), reinterpret_cast<char*>(&p.hello) + p.got, sizeof p.hello - p.got, 0);
      if (n == 0) return "closed before its hello";
      if (n < 0) return wouldBlock(errno) ? timedOut(p) : std::string(strerror(errno));
      p.got += static_cast<size_t>(n);
      if (p.got < sizeof p.hello) return timedOut(p);
      if (p.hello.magic != kHelloMagic)
        return formatString("bad hello magic 0x%08x", p.hello.magic);
      if (p.hello.version != kVersion)
        return formatString("protocol version %u, this side speaks %u", p.hello.version, kVersion);
      if (!net::constantTimeEqual(&p.hello.token, &token_, sizeof token_))
        return "wrong listen token (a handle of another listen comm)";
      std::lock_guard<std::mutex> lock(w_->mu);
      p.commId = w_->allocComm();
      if (p.commId == 0) return "this worker has no receive-comm id left (2^20 - 1 open)";
      Reply rep{kReplyMagic, p.commId, static_cast<uint32_t>(w_->address.size()), 0};
      p.reply.resize(sizeof rep + w_->address.size());
      std::memcpy(p.reply.data(), &rep, sizeof rep);
      std::memcpy(p.reply.data() + sizeof rep, w_->address.data(), w_->address.size());
    }
    while (p.sent < p.reply.size()) {
      ssize_t n = ::send(p.fd.fd(), p.reply.data() + p.sent, p.reply.size() - p.sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) return wouldBlock(errno) ? timedOut(p) : std::string(strerror(errno));
      p.sent += static_cast<size_t>(n);
    }
    return "";
  }

  std::string timedOut(const Pending& p) const {
    return secondsSince(p.since) > cfg_.connectTimeoutS
               ? formatString("no complete setup within %.0f s", cfg_.connectTimeoutS)
               : "";
  }

  net::Socket fd_;
  net::SockAddr addr_;
  uint64_t token_;
  Worker* w_;
  CommonParams cfg_;
  std::vector<Pending> pending_;
};

// ---- Connect ---------------------------------------------------------------------------------

class UcxConnector final : public Connector {
 public:
  UcxConnector(net::SockAddr remote, uint64_t token, Worker* w, const CommonParams& cfg)
      : remote_(remote), w_(w), cfg_(cfg), started_(Clock::now()) {
    hello_ = Hello{kHelloMagic, kVersion, 0, token, {0, 0}};
  }

  Status progress(std::unique_ptr<SendComm>* out) override {
    for (;;) {
      switch (state_) {
        case State::kIdle: {
          if (Clock::now() < retryAt_) return timeout();
          fd_ = net::Socket(
              ::socket(remote_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
          if (!fd_.valid())
            return systemError(errno, "socket() for %s", remote_.toString().c_str());
          int rc = ::connect(fd_.fd(), remote_.sa(), remote_.len);
          int err = rc == 0 ? 0 : errno;
          if (err == 0)
            state_ = State::kHello;
          else if (err == EINPROGRESS || err == EINTR)
            state_ = State::kConnecting;
          else if (retryable(err))
            return retry(err);
          else
            return systemError(err, "connect(%s)", remote_.toString().c_str());
          break;
        }
        case State::kConnecting: {
          pollfd p{fd_.fd(), POLLOUT, 0};
          int rc = ::poll(&p, 1, 0);
          if (rc == 0 || (rc < 0 && errno == EINTR)) return timeout();
          int err = 0;
          socklen_t len = sizeof err;
          getsockopt(fd_.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
          if (err == 0)
            state_ = State::kHello;
          else if (retryable(err))
            return retry(err);
          else
            return systemError(err, "connect(%s)", remote_.toString().c_str());
          net::setNoDelay(fd_.fd());
          break;
        }
        case State::kHello: {
          while (sent_ < sizeof hello_) {
            ssize_t n = ::send(fd_.fd(), reinterpret_cast<const char*>(&hello_) + sent_,
                               sizeof hello_ - sent_, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
              if (wouldBlock(errno)) return timeout();
              if (retryable(errno) || errno == EPIPE) return retry(errno);
              return systemError(errno, "hello to %s", remote_.toString().c_str());
            }
            sent_ += static_cast<size_t>(n);
          }
          state_ = State::kReply;
          break;
        }
        case State::kReply: {
          size_t want = sizeof(Reply) + (got_ >= sizeof(Reply) ? reply_.addrLen : 0);
          if (buf_.size() < want) buf_.resize(want);
          while (got_ < want) {
            ssize_t n = ::recv(fd_.fd(), buf_.data() + got_, want - got_, 0);
            if (n == 0)
              return remoteError(
                  "the listener at %s closed the setup connection (wrong or stale handle?)",
                  remote_.toString().c_str());
            if (n < 0)
              return wouldBlock(errno)
                         ? timeout()
                         : systemError(errno, "recv from %s", remote_.toString().c_str());
            got_ += static_cast<size_t>(n);
            if (got_ == sizeof(Reply)) {
              std::memcpy(&reply_, buf_.data(), sizeof reply_);
              if (reply_.magic != kReplyMagic)
                return remoteError("bad setup reply magic 0x%08x from %s", reply_.magic,
                                   remote_.toString().c_str());
              if (reply_.addrLen == 0 || reply_.addrLen > kMaxAddressBytes)
                return remoteError("worker address of %u bytes from %s", reply_.addrLen,
                                   remote_.toString().c_str());
              want = sizeof(Reply) + reply_.addrLen;
              buf_.resize(want);
            }
          }
          std::string desc = formatString(
              "ucx send comm -> %u at %s (%s)", reply_.commId, remote_.toString().c_str(),
              w_->netDevices.empty() ? "all devices" : w_->netDevices.c_str());
          Worker::Endpoint* ep = nullptr;
          {
            std::lock_guard<std::mutex> lock(w_->mu);
            TRELLIS_ASSIGN_OR_RETURN(ep,
                                     w_->endpointTo(buf_.data() + sizeof(Reply), reply_.addrLen));
          }
          *out = std::make_unique<UcxSendComm>(w_, ep, reply_.commId, std::move(fd_), desc,
                                               cfg_.maxRecvs);
          return Status::ok();
        }
      }
    }
  }

 private:
  enum class State { kIdle, kConnecting, kHello, kReply };
  static bool retryable(int err) {
    return err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH ||
           err == ECONNRESET || err == EAGAIN;
  }
  Status retry(int err) {
    fd_.close();
    state_ = State::kIdle;
    sent_ = 0;
    lastErr_ = err;
    retryAt_ = Clock::now() + std::chrono::milliseconds(backoffMs_);
    backoffMs_ = std::min(backoffMs_ * 2, 500);
    return timeout();
  }
  Status timeout() const {
    if (secondsSince(started_) > cfg_.connectTimeoutS)
      return timeoutError(
          "cannot connect to %s within %.0f s (TRELLIS_NCCL_NET_CONNECT_TIMEOUT_S); last error: %s",
          remote_.toString().c_str(), cfg_.connectTimeoutS,
          lastErr_ ? strerror(lastErr_) : "none (still in progress)");
    return Status::ok();
  }

  net::SockAddr remote_;
  Worker* w_;
  CommonParams cfg_;
  Clock::time_point started_;
  State state_ = State::kIdle;
  net::Socket fd_;
  Hello hello_{};
  size_t sent_ = 0, got_ = 0;
  Reply reply_{};
  std::vector<uint8_t> buf_;
  Clock::time_point retryAt_{};
  int backoffMs_ = 5;
  int lastErr_ = 0;
};

// ---- Backend ---------------------------------------------------------------------------------

class UcxBackend final : public Backend {
 public:
  UcxBackend(const ux::Api* u, std::vector<PhysDevice> devs, std::vector<std::string> ucxNames,
             std::vector<net::SockAddr> setup, std::string tls, const CommonParams& cfg)
      : u_(u),
        devs_(std::move(devs)),
        ucxNames_(std::move(ucxNames)),
        setup_(std::move(setup)),
        tls_(std::move(tls)),
        cfg_(cfg) {}

  const char* name() const override { return "ucx"; }
  const std::vector<PhysDevice>& devices() const override { return devs_; }
  int maxRecvs() const override { return cfg_.maxRecvs; }

  /// The worker of a device set, created on first use (UCX_NET_DEVICES = the members).
  Result<Worker*> workerFor(const std::vector<int>& devs) {
    std::string names;
    for (int d : devs) names += (names.empty() ? "" : ",") + ucxNames_[d];
    std::lock_guard<std::mutex> lock(mu_);
    auto it = workers_.find(names);
    if (it != workers_.end()) return it->second.get();
    TRELLIS_ASSIGN_OR_RETURN(std::unique_ptr<Worker> w, Worker::create(u_, names, tls_));
    NCCLNET_INFO(nccl_abi::kFlagNet | nccl_abi::kFlagInit,
                 "ucx worker for %s: UCX %s, TLS %s, address %zu bytes", names.c_str(),
                 u_->ucp_get_version_string(), tls_.empty() ? "(UCX default)" : tls_.c_str(),
                 w->address.size());
    Worker* raw = w.get();
    workers_.emplace(names, std::move(w));
    return raw;
  }

  Status listen(const std::vector<int>& devs, const CommOptions& opt, void* handle,
                std::unique_ptr<ListenComm>* out) override {
    (void)opt;  // UCX picks its own lanes and traffic class (UCX_IB_TRAFFIC_CLASS)
    TRELLIS_ASSIGN_OR_RETURN(Worker * w, workerFor(devs));
    net::SockAddr bound;
    TRELLIS_ASSIGN_OR_RETURN(net::Socket s, net::listenOn(setup_[devs[0]], &bound));
    Handle h{};
    h.magic = kHandleMagic;
    h.version = kVersion;
    h.backend = tcpwire::kBackendUcx;
    TRELLIS_TRY(net::randomBytes(&h.token, sizeof h.token));
    h.addr = tcpwire::toCompact(bound);
    std::memcpy(handle, &h, sizeof h);
    *out = std::make_unique<UcxListenComm>(std::move(s), bound, h.token, w, cfg_);
    return Status::ok();
  }

  Status connect(const std::vector<int>& devs, const CommOptions& /*opt*/, const void* handle,
                 std::unique_ptr<Connector>* out) override {
    Handle h;
    std::memcpy(&h, handle, sizeof h);
    if (h.magic != kHandleMagic || h.backend != tcpwire::kBackendUcx)
      return invalidArgument(
          "the handle (magic 0x%08x, backend %u) was not made by this plugin's UCX backend",
          h.magic, h.backend);
    if (h.version != kVersion)
      return invalidArgument("handle of protocol version %u; this side speaks %u", h.version,
                             kVersion);
    TRELLIS_ASSIGN_OR_RETURN(net::SockAddr remote, tcpwire::fromCompact(h.addr));
    TRELLIS_ASSIGN_OR_RETURN(Worker * w, workerFor(devs));
    *out = std::make_unique<UcxConnector>(remote, h.token, w, cfg_);
    return Status::ok();
  }

 private:
  const ux::Api* u_;
  std::vector<PhysDevice> devs_;
  std::vector<std::string> ucxNames_;  // UCX_NET_DEVICES name per device
  std::vector<net::SockAddr> setup_;   // address of each device's setup listener
  std::string tls_;
  CommonParams cfg_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Worker>> workers_;
};

}  // namespace

Result<std::unique_ptr<Backend>> createUcxBackend() {
  TRELLIS_ASSIGN_OR_RETURN(const ux::Api* u, ux::load());
  CommonParams cfg = commonParams();
  std::string tls = transport::ucxOptionsFromParams().tls;
  TRELLIS_ASSIGN_OR_RETURN(std::vector<NetdevDevice> netdevs, netdevDevices());
  std::vector<PhysDevice> devs;
  std::vector<std::string> names;
  std::vector<net::SockAddr> setup;
  const TopoView& topo = TopoView::get();
  // RDMA ports when the node has them (UCX drives them itself), else the network interfaces.
  for (const std::string& port : topo.rdmaPorts()) {
    std::string dev = port.substr(0, port.rfind(':'));
    int num = std::atoi(port.c_str() + port.rfind(':') + 1);
    std::optional<NicFacts> f = topo.forRdmaPort(dev, num);
    PhysDevice d;
    d.name = dev;
    d.port = num;
    if (f) {
      d.pciPath = f->pciPath;
      d.guid = f->guid;
      d.railGroup = f->railGroup;
      d.speedKnown = f->speedMbps > 0;
    }
    d.speedMbps = d.speedKnown ? static_cast<int>(f->speedMbps) : defaultSpeedMbps();
    d.maxComms = 65536;
    d.describe = formatString("%s (UCX device %s, %d Mbps%s)", port.c_str(), port.c_str(),
                              d.speedMbps, d.speedKnown ? "" : " assumed");
    devs.push_back(d);
    names.push_back(port);
    setup.push_back(netdevs[0].addr);
  }
  if (devs.empty())
    for (NetdevDevice& n : netdevs) {
      n.dev.maxComms = 65536;
      n.dev.describe += " via UCX";
      devs.push_back(n.dev);
      names.push_back(n.dev.name);
      setup.push_back(n.addr);
    }
  auto backend = std::make_unique<UcxBackend>(u, std::move(devs), std::move(names),
                                              std::move(setup), tls, cfg);
  // A context and worker on the first device now, so that a UCX that cannot start fails init.
  TRELLIS_ASSIGN_OR_RETURN(Worker * w, backend->workerFor({0}));
  (void)w;
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace trellis::ncclnet
