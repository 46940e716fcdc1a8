#include "transport/ucx/ucx_transport.h"

#include <errno.h>
#include <poll.h>
#include <ucp/api/ucp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <set>

#include "core/log.h"
#include "core/params.h"
#include "transport/ucx/ucx_api.h"

namespace trellis::transport {

static Param<std::string> kUcxTls("TRELLIS_UCX_TLS", "",
                                  "UCX transports used by TRELLIS_TRANSPORT=ucx, in UCX_TLS syntax "
                                  "(tcp; sm; tcp,self; ^ib); empty: UCX's own choice (which reads "
                                  "UCX_TLS)");

UcxOptions ucxOptionsFromParams() {
  UcxOptions o;
  o.tls = kUcxTls.get();
  return o;
}

namespace {
constexpr int kSeqBits = 40;
constexpr uint64_t kSeqMask = (uint64_t{1} << kSeqBits) - 1;
constexpr ucp_tag_t kFullMask = ~ucp_tag_t{0};

ucp_tag_t makeTag(int sender, uint64_t seq) {
  return (static_cast<uint64_t>(sender) << kSeqBits) | (seq & kSeqMask);
}

// One posted send or receive as UCX's callbacks see it. Ops belong to the transport, never to the
// caller: cancelAll() detaches the caller's Request (req = nullptr) while UCX may still hold the
// op.
struct Op {
  UcxTransport::Impl* owner = nullptr;
  Request* req = nullptr;
  void* handle = nullptr;  // UCX request while pending
  int peer = -1;
  bool isSend = false;
  bool posting = false;    // inside ucp_tag_recv_nbx, whose callback may run before it returns
  bool completed = false;  // the completion callback ran
  size_t bytes = 0;        // posted size
  size_t live = SIZE_MAX;  // index in Impl::live
};

struct Peer {
  UcxTransport::Impl* owner = nullptr;
  int id = -1;
  ucp_ep_h ep = nullptr;
  uint64_t sendSeq = 0;
  uint64_t recvSeq = 0;
  int pending = 0;               // ops to or from this peer not completed yet
  ucs_status_t failed = UCS_OK;  // status the endpoint error handler reported
};
}  // namespace

struct UcxTransport::Impl {
  const ucx::Api* u = nullptr;
  int self = -1;
  UcxOptions opt;
  ucp_context_h context = nullptr;
  ucp_worker_h worker = nullptr;
  int efd = -1;
  std::vector<uint8_t> address;
  std::vector<std::unique_ptr<Peer>> peers;  // indexed by peer id; null where not connected
  std::deque<Op> ops;                        // storage (stable addresses)
  std::vector<Op*> freeOps;
  std::vector<Op*> live;  // ops UCX has not completed
  uint64_t completions = 0;
  bool cancelled = false;
  Status error;

  // Teardown. When nothing is pending, the worker is flushed first (UCX may still hold data of
  // sends that completed locally). Then every request is detached and endpoints close by force, and
  // the worker is destroyed without being progressed again: progress could write a detached
  // receive's data into a buffer its caller has freed, or answer a peer that wires up anew after
  // our endpoints closed, and UCX 1.13 asserts in ucp_worker_destroy when such an answer is still
  // queued (a check removed in later UCX, openucx/ucx#8175).
  ~Impl() {
    if (worker != nullptr) {
      if (!cancelled) {
        if (live.empty())
          flushWorker();
        else
          TRELLIS_INFO(kNet, "rank %d: ucx transport closed with %zu request(s) pending", self,
                       live.size());
        detachAll();
        closeEndpoints();
      }
      u->ucp_worker_destroy(worker);
    }
    if (context != nullptr) u->ucp_cleanup(context);
  }

  Status fail(Status s) {
    if (error.isOk()) error = std::move(s);
    return error;
  }
  // In UCX callbacks, which have no caller to return to: the next call returns the error.
  void record(Status s) { (void)fail(std::move(s)); }

  Peer* find(int peer) {
    if (peer < 0 || static_cast<size_t>(peer) >= peers.size()) return nullptr;
    return peers[peer].get();
  }

  Op* allocOp(Request* req, int peer, bool isSend, size_t bytes) {
    Op* op;
    if (freeOps.empty()) {
      ops.emplace_back();
      op = &ops.back();
    } else {
      op = freeOps.back();
      freeOps.pop_back();
    }
    *op = Op{};
    op->owner = this;
    op->req = req;
    op->peer = peer;
    op->isSend = isSend;
    op->bytes = bytes;
    op->live = live.size();
    live.push_back(op);
    ++peers[peer]->pending;
    return op;
  }

  void releaseOp(Op* op) {
    Op* last = live.back();
    live[op->live] = last;
    last->live = op->live;
    live.pop_back();
    op->live = SIZE_MAX;
    freeOps.push_back(op);
  }

  // Records the outcome of an op; `length` is the message size for receives (valid when the status
  // is UCS_OK or UCS_ERR_MESSAGE_TRUNCATED).
  void finish(Op* op, ucs_status_t status, size_t length) {
    op->completed = true;
    op->handle = nullptr;
    ++completions;
    if (Peer* p = find(op->peer)) --p->pending;
    if (Request* r = op->req) {
      if (status == UCS_OK) {
        r->done = op->isSend ? r->bytes : length;
        if (!op->isSend) r->received = length;
        r->state = ReqState::kDone;
      } else {
        r->state = ReqState::kError;
        if (status == UCS_ERR_MESSAGE_TRUNCATED)
          record(
              invalidUsage("rank %d: rank %d sent a %zu-byte message but the matching receive "
                           "is %zu bytes (ucx)",
                           self, op->peer, length, op->bytes));
        else
          record(remoteError("rank %d: ucx %s rank %d failed: %s (%zu bytes)", self,
                             op->isSend ? "send to" : "receive from", op->peer,
                             u->ucs_status_string(status), op->bytes));
      }
    }
    if (!op->posting) releaseOp(op);
  }

  void peerFailed(Peer& p, ucs_status_t status) {
    p.failed = status;
    TRELLIS_INFO(kNet, "rank %d: ucx endpoint to rank %d failed: %s (%d request(s) pending)", self,
                 p.id, u->ucs_status_string(status), p.pending);
    record(checkPeer(p));
  }

  // A failed peer is an error only while something still waits for it: a peer that closed after its
  // last message is how every job ends.
  Status checkPeer(Peer& p) {
    if (p.failed == UCS_OK || p.pending == 0) return Status::ok();
    const Op* first = nullptr;
    for (const Op* op : live)
      if (op->peer == p.id && op->req != nullptr) {
        first = op;
        break;
      }
    return fail(remoteError(
        "rank %d: ucx connection to rank %d failed (%s) with %d request(s) to or from it pending%s",
        self, p.id, u->ucs_status_string(p.failed), p.pending,
        first == nullptr ? ""
                         : formatString(" (first: %s of %zu bytes)",
                                        first->isSend ? "a send" : "a receive", first->bytes)
                               .c_str()));
  }

  // Progresses until UCX reports nothing more to do (bounded so that a stream of arrivals cannot
  // keep the caller here forever).
  bool drain() {
    bool any = false;
    for (int i = 0; i < 64 && u->ucp_worker_progress(worker) != 0; ++i) any = true;
    return any;
  }

  // Detaches every op from its caller's Request and cancels the receives UCX has not matched yet
  // (their callbacks run at once, with UCS_ERR_CANCELED). No progress.
  void detachAll() {
    std::vector<void*> handles;
    for (Op* op : live) {
      op->req = nullptr;
      if (!op->isSend && op->handle != nullptr) handles.push_back(op->handle);
    }
    for (void* h : handles) u->ucp_request_cancel(worker, h);
  }

  // Waits (at most closeTimeoutS) for UCX to have handed every completed send to the wire or to the
  // peer's shared memory: a send completes locally, possibly still in UCX's own buffers.
  void flushWorker() {
    ucp_request_param_t prm{};
    void* r = u->ucp_worker_flush_nbx(worker, &prm);
    if (!UCS_PTR_IS_PTR(r)) return;
    auto deadline = net::deadlineIn(opt.closeTimeoutS);
    ucs_status_t st;
    while ((st = u->ucp_request_check_status(r)) == UCS_INPROGRESS &&
           net::Clock::now() < deadline) {
      if (!drain()) (void)pollWorker(1);
    }
    if (st == UCS_INPROGRESS)
      TRELLIS_WARN(kNet, "rank %d: ucx worker did not flush within %g s; closing anyway", self,
                   opt.closeTimeoutS);
    u->ucp_request_free(r);  // an unfinished flush is released when UCX completes it
  }

  // Closes every endpoint by force (UCP_EP_CLOSE_FLAG_FORCE), which also completes, with an error,
  // what UCX still holds on it. (Closing in flush mode would wait for every peer to progress: each
  // rank's teardown would wait for its slowest peer to reach its own.)
  void closeEndpoints() {
    for (auto& p : peers) {
      if (!p || p->ep == nullptr) continue;
      ucp_request_param_t prm{};
      prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      prm.flags = UCP_EP_CLOSE_FLAG_FORCE;
      void* r = u->ucp_ep_close_nbx(p->ep, &prm);
      p->ep = nullptr;
      if (UCS_PTR_IS_PTR(r))
        u->ucp_request_free(r);  // released when UCX completes it
      else if (UCS_PTR_IS_ERR(r))
        TRELLIS_DEBUG(kNet, "rank %d: closing the ucx endpoint to rank %d: %s", self, p->id,
                      u->ucs_status_string(UCS_PTR_STATUS(r)));
    }
  }

  // Sleeps until the worker has an event or `ms` passed.
  Status pollWorker(int ms) {
    ucs_status_t st = u->ucp_worker_arm(worker);
    if (st == UCS_ERR_BUSY) return Status::ok();  // events are waiting: no sleep
    if (st != UCS_OK)
      return internalError("rank %d: ucp_worker_arm: %s", self, u->ucs_status_string(st));
    pollfd pfd{efd, POLLIN, 0};
    if (::poll(&pfd, 1, ms) < 0 && errno != EINTR)
      return systemError(errno, "rank %d: poll on the ucx worker", self);
    return Status::ok();
  }

  // The transports of an endpoint's lanes, from ucp_ep_print_info ("tcp/lo.0", "sysv/memory.0").
  std::string lanes(ucp_ep_h ep) const {
    char* text = nullptr;
    size_t len = 0;
    FILE* f = open_memstream(&text, &len);
    if (f == nullptr) return "";
    u->ucp_ep_print_info(ep, f);
    std::fclose(f);
    std::set<std::string> seen;
    std::string out;
    for (const char* line = text; line != nullptr && *line != '\0';) {
      const char* eol = std::strchr(line, '\n');
      std::string l(line, eol == nullptr ? std::strlen(line) : static_cast<size_t>(eol - line));
      line = eol == nullptr ? nullptr : eol + 1;
      size_t lane = l.find("lane[");
      if (lane == std::string::npos) continue;
      size_t colon = l.find(':', lane);
      if (colon == std::string::npos) continue;
      size_t b = l.find_first_not_of(" 0123456789:", colon);
      if (b == std::string::npos) continue;
      std::string tl = l.substr(b, l.find(' ', b) - b);
      if (tl.find('/') != std::string::npos && seen.insert(tl).second)
        out += (out.empty() ? "" : " ") + tl;
    }
    std::free(text);
    return out;
  }
};

namespace {
// UCX_TLS as this context will use it (UCX_TLS, or TRELLIS_UCX_TLS applied on top of it).
std::string effectiveTls(const ucx::Api* u, const ucp_config_t* config) {
  char* text = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&text, &len);
  if (f == nullptr) return "all";
  u->ucp_config_print(config, f, nullptr, UCS_CONFIG_PRINT_CONFIG);
  std::fclose(f);
  std::string all(text == nullptr ? "" : text);
  std::free(text);
  size_t at = all.find("UCX_TLS=");
  if (at == std::string::npos || (at > 0 && all[at - 1] != '\n')) return "all";
  at += 8;
  return all.substr(at, all.find('\n', at) - at);
}

// Whether a UCX_TLS list can select posix or sysv shared memory.
bool mayUseSharedMemory(const std::string& tls) {
  bool exclude = !tls.empty() && tls[0] == '^';
  std::set<std::string> names;
  size_t pos = exclude ? 1 : 0;
  while (pos <= tls.size()) {
    size_t end = std::min(tls.find(',', pos), tls.size());
    std::string name = tls.substr(pos, end - pos);
    names.insert(name.substr(0, name.find(':')));  // "tcp:aux" names tcp
    pos = end + 1;
  }
  auto has = [&](const char* n) { return names.count(n) != 0; };
  bool anyMm = has("sm") || has("shm") || has("mm") || has("posix") || has("sysv");
  bool allMm = has("sm") || has("shm") || has("mm") || (has("posix") && has("sysv"));
  return exclude ? !allMm : (has("all") || anyMm);
}

void onSend(void* request, ucs_status_t status, void* user) {
  Op* op = static_cast<Op*>(user);
  const ucx::Api* u = op->owner->u;
  op->owner->finish(op, status, op->bytes);
  u->ucp_request_free(request);
}

void onRecv(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info, void* user) {
  Op* op = static_cast<Op*>(user);
  const ucx::Api* u = op->owner->u;
  bool sized = status == UCS_OK || status == UCS_ERR_MESSAGE_TRUNCATED;
  op->owner->finish(op, status, sized && info != nullptr ? info->length : 0);
  u->ucp_request_free(request);
}

void onEndpointError(void* arg, ucp_ep_h /*ep*/, ucs_status_t status) {
  Peer* p = static_cast<Peer*>(arg);
  p->owner->peerFailed(*p, status);
}
}  // namespace

UcxTransport::UcxTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UcxTransport::~UcxTransport() = default;

Result<std::unique_ptr<UcxTransport>> UcxTransport::open(int selfId, const UcxOptions& opt) {
  if (selfId < 0 || selfId > kMaxPeerId)
    return invalidArgument("ucx: id %d out of range [0, %d]", selfId, kMaxPeerId);
  TRELLIS_ASSIGN_OR_RETURN(const ucx::Api* u, ucx::load());
  auto impl = std::make_unique<Impl>();
  impl->u = u;
  impl->self = selfId;
  impl->opt = opt;
  ucp_config_t* config = nullptr;
  ucs_status_t st = u->ucp_config_read(nullptr, nullptr, &config);
  if (st != UCS_OK)
    return internalError("rank %d: ucp_config_read: %s", selfId, u->ucs_status_string(st));
  if (!opt.tls.empty()) {
    st = u->ucp_config_modify(config, "TLS", opt.tls.c_str());
    if (st != UCS_OK) {
      u->ucp_config_release(config);
      return invalidArgument("TRELLIS_UCX_TLS='%s' rejected by UCX: %s", opt.tls.c_str(),
                             u->ucs_status_string(st));
    }
  }
  // UCP_ERR_HANDLING_MODE_PEER needs transports that detect a dead peer. UCX's shared-memory
  // transports can (their keepalive checks the peer's pid) but offer it only when asked; asked for
  // while none of them is enabled, UCX warns about an unused setting, hence the check.
  if (mayUseSharedMemory(effectiveTls(u, config))) {
    st = u->ucp_config_modify(config, "MM_ERROR_HANDLING", "y");
    if (st != UCS_OK)
      TRELLIS_DEBUG(kNet, "ucx: cannot set MM_ERROR_HANDLING=y: %s", u->ucs_status_string(st));
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP;
  params.mt_workers_shared = 0;
  st = u->ucp_init_version(UCP_API_MAJOR, UCP_API_MINOR, &params, config, &impl->context);
  u->ucp_config_release(config);
  if (st != UCS_OK)
    return internalError("rank %d: ucp_init (UCX %s, TLS '%s'): %s", selfId,
                         u->ucp_get_version_string(), opt.tls.empty() ? "default" : opt.tls.c_str(),
                         u->ucs_status_string(st));
  // Serialized: the communicator calls in from its users' threads and its progress thread, one at a
  // time.
  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_SERIALIZED;
  st = u->ucp_worker_create(impl->context, &wp, &impl->worker);
  if (st != UCS_OK)
    return internalError("rank %d: ucp_worker_create: %s", selfId, u->ucs_status_string(st));
  ucp_address_t* addr = nullptr;
  size_t len = 0;
  st = u->ucp_worker_get_address(impl->worker, &addr, &len);
  if (st != UCS_OK)
    return internalError("rank %d: ucp_worker_get_address: %s", selfId, u->ucs_status_string(st));
  impl->address.assign(reinterpret_cast<const uint8_t*>(addr),
                       reinterpret_cast<const uint8_t*>(addr) + len);
  u->ucp_worker_release_address(impl->worker, addr);
  st = u->ucp_worker_get_efd(impl->worker, &impl->efd);
  if (st != UCS_OK)
    return internalError("rank %d: ucp_worker_get_efd: %s", selfId, u->ucs_status_string(st));
  return std::unique_ptr<UcxTransport>(new UcxTransport(std::move(impl)));
}

Result<std::unique_ptr<UcxTransport>> UcxTransport::create(Bootstrap& bs,
                                                           const std::vector<int>& peerList,
                                                           const UcxOptions& opt) {
  TRELLIS_ASSIGN_OR_RETURN(std::unique_ptr<UcxTransport> t, open(bs.rank(), opt));
  // Worker addresses differ in length (one entry per device and transport): lengths first, then the
  // addresses padded to the longest.
  std::vector<uint32_t> lens(bs.nranks());
  lens[bs.rank()] = static_cast<uint32_t>(t->address().size());
  TRELLIS_TRY_CTX(bs.allGather(lens.data(), sizeof(uint32_t)), "exchanging ucx address lengths");
  size_t maxLen = *std::max_element(lens.begin(), lens.end());
  std::vector<uint8_t> all(maxLen * bs.nranks());
  std::memcpy(all.data() + maxLen * bs.rank(), t->address().data(), t->address().size());
  TRELLIS_TRY_CTX(bs.allGather(all.data(), maxLen), "exchanging ucx worker addresses");
  for (int p : peerList) {
    if (p == bs.rank()) continue;
    if (p < 0 || p >= bs.nranks())
      return invalidArgument("rank %d: ucx peer %d out of range", bs.rank(), p);
    TRELLIS_TRY(t->connect(p, all.data() + maxLen * p, lens[p]));
  }
  TRELLIS_INFO(kNet, "rank %d: ucx transport up: %zu peers, UCX %s, TLS %s, address %zu bytes",
               bs.rank(), peerList.size(), t->impl_->u->ucp_get_version_string(),
               opt.tls.empty() ? "(UCX default)" : opt.tls.c_str(), t->address().size());
  return t;
}

const std::vector<uint8_t>& UcxTransport::address() const { return impl_->address; }

Status UcxTransport::connect(int peer, const void* address, size_t bytes) {
  Impl& m = *impl_;
  const ucx::Api* u = m.u;
  if (peer < 0 || peer > kMaxPeerId)
    return invalidArgument("rank %d: ucx peer id %d out of range", m.self, peer);
  if (m.find(peer) != nullptr)
    return invalidUsage("rank %d: ucx is already connected to rank %d", m.self, peer);
  if (bytes == 0) return invalidArgument("rank %d: empty ucx address for rank %d", m.self, peer);
  if (static_cast<size_t>(peer) >= m.peers.size()) m.peers.resize(peer + 1);
  auto p = std::make_unique<Peer>();
  p->owner = &m;
  p->id = peer;
  ucp_ep_params_t ep{};
  ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                  UCP_EP_PARAM_FIELD_ERR_HANDLER;
  ep.address = static_cast<const ucp_address_t*>(address);
  ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  ep.err_handler.cb = onEndpointError;
  ep.err_handler.arg = p.get();
  ucs_status_t st = u->ucp_ep_create(m.worker, &ep, &p->ep);
  if (st != UCS_OK)
    return remoteError("rank %d: ucx cannot reach rank %d (%zu-byte address, TLS %s): %s", m.self,
                       peer, bytes, m.opt.tls.empty() ? "UCX default" : m.opt.tls.c_str(),
                       u->ucs_status_string(st));
  m.peers[peer] = std::move(p);
  return Status::ok();
}

bool UcxTransport::reaches(int peer) const {
  return peer >= 0 && static_cast<size_t>(peer) < impl_->peers.size() &&
         impl_->peers[peer] != nullptr;
}

std::string UcxTransport::describePeer(int peer) const {
  if (!reaches(peer)) return "ucx (not connected)";
  const Peer& p = *impl_->peers[peer];
  const ucx::Api* u = impl_->u;
  if (p.ep == nullptr) return formatString("ucx rank %d (closed)", peer);
  std::string lanes = impl_->lanes(p.ep);
  return formatString("ucx rank %d%s%s%s%s", peer, lanes.empty() ? "" : " via ", lanes.c_str(),
                      p.failed == UCS_OK ? "" : ", failed: ",
                      p.failed == UCS_OK ? "" : u->ucs_status_string(p.failed));
}

Status UcxTransport::postSend(int peer, const void* data, size_t bytes, Request* req) {
  Impl& m = *impl_;
  const ucx::Api* u = m.u;
  if (!m.error.isOk()) return m.error;
  Peer* p = m.find(peer);
  if (p == nullptr || p->ep == nullptr)
    return internalError("rank %d: ucx has no connection to rank %d", m.self, peer);
  if (p->failed != UCS_OK)
    return m.fail(
        remoteError("rank %d: cannot send %zu bytes to rank %d: its "
                    "ucx endpoint failed (%s)",
                    m.self, bytes, peer, u->ucs_status_string(p->failed)));
  *req = Request{};
  req->state = ReqState::kPending;
  req->isSend = true;
  req->peer = peer;
  req->bytes = bytes;
  Op* op = m.allocOp(req, peer, true, bytes);
  ucp_request_param_t prm{};
  prm.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_DATATYPE;
  prm.cb.send = onSend;
  prm.user_data = op;
  prm.datatype = ucp_dt_make_contig(1);
  void* r = u->ucp_tag_send_nbx(p->ep, data, bytes, makeTag(m.self, p->sendSeq++), &prm);
  if (r == nullptr)
    m.finish(op, UCS_OK, bytes);  // completed in place (no callback)
  else if (UCS_PTR_IS_ERR(r))
    m.finish(op, UCS_PTR_STATUS(r), bytes);
  else
    op->handle = r;
  return m.error;
}

Status UcxTransport::postRecv(int peer, void* data, size_t bytes, Request* req) {
  Impl& m = *impl_;
  const ucx::Api* u = m.u;
  if (!m.error.isOk()) return m.error;
  Peer* p = m.find(peer);
  if (p == nullptr || p->ep == nullptr)
    return internalError("rank %d: ucx has no connection to rank %d", m.self, peer);
  *req = Request{};
  req->state = ReqState::kPending;
  req->peer = peer;
  req->bytes = bytes;
  Op* op = m.allocOp(req, peer, false, bytes);
  ucp_request_param_t prm{};
  // No immediate completion: UCX 1.13 does not fill recv_info, so only the callback learns the size
  // of a message that was already waiting (it then runs before ucp_tag_recv_nbx returns).
  prm.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                     UCP_OP_ATTR_FIELD_DATATYPE | UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
  prm.cb.recv = onRecv;
  prm.user_data = op;
  prm.datatype = ucp_dt_make_contig(1);
  op->posting = true;
  void* r =
      u->ucp_tag_recv_nbx(m.worker, data, bytes, makeTag(peer, p->recvSeq++), kFullMask, &prm);
  op->posting = false;
  if (UCS_PTR_IS_ERR(r)) {
    m.finish(op, UCS_PTR_STATUS(r), 0);
  } else if (op->completed) {
    m.releaseOp(op);  // the callback ran (and freed the UCX request) inside the call
  } else {
    op->handle = r;
    TRELLIS_TRY(m.checkPeer(*p));  // its sender is gone: nothing will arrive
  }
  return m.error;
}

Status UcxTransport::progress(int timeoutMs, bool* didWork) {
  Impl& m = *impl_;
  if (!m.error.isOk()) return m.error;
  uint64_t before = m.completions;
  bool any = m.drain();
  if (!any && m.error.isOk() && timeoutMs > 0) {
    Status s = m.pollWorker(timeoutMs);
    if (!s.isOk()) return m.fail(s);
    any = m.drain();
  }
  if (any || m.completions != before) *didWork = true;
  return m.error;
}

void UcxTransport::cancelAll() {
  Impl& m = *impl_;
  if (m.cancelled) return;
  m.cancelled = true;
  m.detachAll();
  m.closeEndpoints();
  m.record(remoteError("rank %d: the ucx transport was cancelled after an error", m.self));
}

}  // namespace trellis::transport
