#include "tcp/tcp_comm.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstring>

#include "abi/nccl_abi.h"

namespace trellis::ncclnet {

using tcpwire::ChunkHeader;
using tcpwire::CtsEntry;
using tcpwire::CtsHeader;

void tuneStream(int fd, int family, int trafficClass) {
  net::setNoDelay(fd);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  int idle = 60, intvl = 10, cnt = 6;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  if (trafficClass >= 0) {
    int tc = trafficClass & 0xff;
    if (family == AF_INET6)
      setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tc, sizeof tc);
    else
      setsockopt(fd, IPPROTO_IP, IP_TOS, &tc, sizeof tc);
  }
}

namespace {
bool wouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }
bool peerGone(int err) {
  return err == EPIPE || err == ECONNRESET || err == ETIMEDOUT || err == EHOSTUNREACH;
}
}  // namespace

// ==== Send side ===============================================================================

TcpSendComm::TcpSendComm(net::Socket ctrl, std::vector<net::Socket> data, std::string desc,
                         const TcpConfig& cfg)
    : ctrl_(std::move(ctrl)),
      data_(std::move(data)),
      queues_(data_.size()),
      desc_(std::move(desc)),
      cfg_(cfg) {
  rx_.resize(64 * 1024);
  size_t nReqs = static_cast<size_t>(nccl_abi::kMaxRequests) * static_cast<size_t>(cfg_.maxRecvs);
  reqs_ = std::make_unique<Req[]>(nReqs);
  for (size_t i = nReqs; i-- > 0;) {
    reqs_[i].magic = 0;
    free_.push_back(&reqs_[i]);
  }
}

Status TcpSendComm::setError(Status s) {
  if (error_.isOk()) error_ = s;
  return error_;
}

Status TcpSendComm::readControl() {
  for (;;) {
    if (rxLen_ == rx_.size()) rx_.resize(rx_.size() * 2);
    ssize_t n = ::recv(ctrl_.fd(), rx_.data() + rxLen_, rx_.size() - rxLen_, 0);
    if (n > 0) {
      rxLen_ += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      peerClosed_ = true;
      break;
    }
    if (wouldBlock(errno)) break;
    if (peerGone(errno)) {
      peerClosed_ = true;
      break;
    }
    return setError(systemError(errno, "control stream recv"));
  }
  size_t off = 0;
  while (rxLen_ - off >= sizeof(CtsHeader)) {
    CtsHeader h;
    std::memcpy(&h, rx_.data() + off, sizeof h);
    if (h.magic != tcpwire::kCtsMagic)
      return setError(
          remoteError("control stream: bad message magic 0x%08x (peer is not this plugin's TCP "
                      "backend, or of another byte order)",
                      h.magic));
    if (h.n < 1 || h.n > cfg_.maxRecvs)
      return setError(
          remoteError("control stream: receive #%llu has %u buffers; this side allows 1..%d "
                      "(TRELLIS_NCCL_NET_MAX_RECVS differs between the peers?)",
                      static_cast<unsigned long long>(h.seq), h.n, cfg_.maxRecvs));
    size_t need = sizeof h + h.n * sizeof(CtsEntry);
    if (rxLen_ - off < need) break;
    if (h.seq != nextCts_)
      return setError(remoteError(
          "control stream: receive #%llu announced where #%llu was expected",
          static_cast<unsigned long long>(h.seq), static_cast<unsigned long long>(nextCts_)));
    Cts c{};
    c.seq = h.seq;
    c.slot = h.slot;
    c.n = h.n;
    for (int i = 0; i < c.n; ++i) {
      CtsEntry e;
      std::memcpy(&e, rx_.data() + off + sizeof h + i * sizeof e, sizeof e);
      c.sizes[i] = e.size;
      c.tags[i] = e.tag;
    }
    fifo_.push_back(c);
    ++nextCts_;
    off += need;
  }
  if (off > 0) {
    std::memmove(rx_.data(), rx_.data() + off, rxLen_ - off);
    rxLen_ -= off;
  }
  return Status::ok();
}

Status TcpSendComm::writeData() {
  for (size_t s = 0; s < data_.size(); ++s) {
    std::deque<Chunk>& q = queues_[s];
    while (!q.empty()) {
      Chunk& c = q.front();
      iovec iov[2];
      int niov = 0;
      size_t hdrLeft = c.sent < sizeof c.hdr ? sizeof c.hdr - c.sent : 0;
      if (hdrLeft > 0) iov[niov++] = {reinterpret_cast<char*>(&c.hdr) + c.sent, hdrLeft};
      size_t payDone = c.sent > sizeof c.hdr ? c.sent - sizeof c.hdr : 0;
      if (c.hdr.len > payDone)
        iov[niov++] = {const_cast<char*>(c.payload) + payDone, c.hdr.len - payDone};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(niov);
      ssize_t n = ::sendmsg(data_[s].fd(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (wouldBlock(errno)) break;
        if (peerGone(errno))
          return setError(remoteError(
              "data stream %zu: the peer closed its receive comm with a send of %zu bytes "
              "in flight (%s)",
              s + 1, c.req->size, strerror(errno)));
        return setError(systemError(errno, "data stream %zu: sendmsg", s + 1));
      }
      c.sent += static_cast<size_t>(n);
      if (c.sent < sizeof c.hdr + c.hdr.len) break;  // the socket buffer is full
      --c.req->chunksLeft;
      q.pop_front();
    }
  }
  return Status::ok();
}

Status TcpSendComm::progress() {
  TRELLIS_TRY(error_);
  TRELLIS_TRY(readControl());
  return writeData();
}

Status TcpSendComm::isend(const void* data, size_t size, int tag, Request** out) {
  *out = nullptr;
  TRELLIS_TRY(progress());
  if (fifo_.empty()) {
    if (peerClosed_)
      return setError(
          remoteError("send of %zu bytes (tag %d): the peer closed its receive comm", size, tag));
    return Status::ok();  // its receive is not posted yet
  }
  Cts& c = fifo_.front();
  int idx = -1;
  for (int i = 0; i < c.n && idx < 0; ++i)
    if (!c.used[i] && c.tags[i] == tag) idx = i;
  if (idx < 0) {
    bool hasTag = false;
    for (int i = 0; i < c.n; ++i) hasTag = hasTag || c.tags[i] == tag;
    // Its buffer in the oldest receive is taken: the send belongs to a later receive (retry).
    if (hasTag) return Status::ok();
    std::string tags;
    for (int i = 0; i < c.n; ++i) tags += (i ? "," : "") + std::to_string(c.tags[i]);
    return setError(
        invalidUsage("send of %zu bytes with tag %d matches no buffer of receive #%llu (tags %s)",
                     size, tag, static_cast<unsigned long long>(c.seq), tags.c_str()));
  }
  if (size > c.sizes[idx])
    return setError(invalidUsage(
        "send of %zu bytes (tag %d) is larger than the %zu-byte buffer %d of receive #%llu "
        "it matches",
        size, tag, c.sizes[idx], idx, static_cast<unsigned long long>(c.seq)));
  if (free_.empty()) return Status::ok();
  Req* r = free_.back();
  free_.pop_back();
  r->magic = Request::kMagic;
  r->owner = this;
  r->n = 1;
  r->size = size;
  c.used[idx] = true;
  ++c.nUsed;
  uint64_t seq = c.seq;
  uint16_t slot = c.slot;
  if (c.nUsed == c.n) fifo_.pop_front();

  size_t chunk = cfg_.chunkBytes;
  size_t nChunks = size == 0 ? 1 : (size + chunk - 1) / chunk;
  r->chunksLeft = nChunks;
  const char* p = static_cast<const char*>(data);
  for (size_t k = 0; k < nChunks; ++k) {
    Chunk ch{};
    ch.req = r;
    ch.hdr.magic = tcpwire::kChunkMagic;
    ch.hdr.index = static_cast<uint16_t>(idx);
    ch.hdr.slot = slot;
    ch.hdr.seq = seq;
    ch.hdr.offset = k * chunk;
    ch.hdr.len = static_cast<uint32_t>(size == 0 ? 0 : std::min(chunk, size - k * chunk));
    ch.hdr.total = size;
    ch.payload = p + k * chunk;
    queues_[rr_ % data_.size()].push_back(ch);
    ++rr_;
  }
  *out = r;
  return writeData();
}

Status TcpSendComm::test(Request* req, bool* done, size_t* sizes) {
  *done = false;
  TRELLIS_TRY(progress());
  auto* r = static_cast<Req*>(req);
  if (r->chunksLeft > 0) return Status::ok();
  *done = true;
  sizes[0] = r->size;
  r->magic = 0;
  free_.push_back(r);
  return Status::ok();
}

// ==== Receive side ============================================================================

TcpRecvComm::TcpRecvComm(net::Socket ctrl, std::vector<net::Socket> data, std::string desc,
                         const TcpConfig& cfg)
    : ctrl_(std::move(ctrl)),
      data_(std::move(data)),
      rx_(data_.size()),
      desc_(std::move(desc)),
      cfg_(cfg) {
  reqs_ = std::make_unique<Req[]>(nccl_abi::kMaxRequests);
  for (int i = nccl_abi::kMaxRequests; i-- > 0;) {
    reqs_[i].magic = 0;
    freeSlots_.push_back(i);
  }
}

Status TcpRecvComm::setError(Status s) {
  if (error_.isOk()) error_ = s;
  return error_;
}

Status TcpRecvComm::writeControl() {
  while (txSent_ < tx_.size()) {
    ssize_t n =
        ::send(ctrl_.fd(), tx_.data() + txSent_, tx_.size() - txSent_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (wouldBlock(errno)) return Status::ok();
      if (peerGone(errno))
        return setError(
            remoteError("control stream: the peer closed its send comm (%s)", strerror(errno)));
      return setError(systemError(errno, "control stream send"));
    }
    txSent_ += static_cast<size_t>(n);
  }
  tx_.clear();
  txSent_ = 0;
  return Status::ok();
}

Status TcpRecvComm::onHeader(Rx& rx) {
  const ChunkHeader& h = rx.hdr;
  if (h.magic != tcpwire::kChunkMagic)
    return remoteError(
        "bad chunk magic 0x%08x (peer is not this plugin's TCP backend, or of another byte order)",
        h.magic);
  if (h.slot >= nccl_abi::kMaxRequests || reqs_[h.slot].magic != Request::kMagic ||
      reqs_[h.slot].seq != h.seq)
    return remoteError("chunk for receive #%llu (slot %u), which is not posted",
                       static_cast<unsigned long long>(h.seq), h.slot);
  Req& r = reqs_[h.slot];
  if (h.index >= r.n)
    return remoteError("chunk for buffer %u of receive #%llu, which has %d buffers", h.index,
                       static_cast<unsigned long long>(h.seq), r.n);
  int i = h.index;
  if (h.total > r.cap[i])
    return invalidUsage(
        "a %llu-byte message arrived for the %zu-byte buffer %d (tag %d) of receive #%llu: the "
        "send "
        "is larger than the receive",
        static_cast<unsigned long long>(h.total), r.cap[i], i, r.tags[i],
        static_cast<unsigned long long>(h.seq));
  if (r.known[i] && r.total[i] != h.total)
    return remoteError(
        "chunks of buffer %d of receive #%llu disagree on the message size (%zu vs %llu)", i,
        static_cast<unsigned long long>(h.seq), r.total[i],
        static_cast<unsigned long long>(h.total));
  if (h.offset > h.total || h.len > h.total - h.offset || r.got[i] + h.len > h.total)
    return remoteError(
        "chunk [%llu, +%u) of buffer %d of receive #%llu overruns its %llu-byte message",
        static_cast<unsigned long long>(h.offset), h.len, i, static_cast<unsigned long long>(h.seq),
        static_cast<unsigned long long>(h.total));
  r.known[i] = true;
  r.total[i] = h.total;
  rx.req = &r;
  if (h.len == 0) {
    if (h.total == 0) ++r.subsDone;  // a 0-byte message is complete with its header
    return Status::ok();
  }
  rx.inPayload = true;
  rx.dst = r.data[i] + h.offset;
  rx.left = h.len;
  return Status::ok();
}

Status TcpRecvComm::readData(size_t s) {
  Rx& rx = rx_[s];
  int fd = data_[s].fd();
  while (!rx.eof) {
    ssize_t n;
    if (!rx.inPayload) {
      n = ::recv(fd, reinterpret_cast<char*>(&rx.hdr) + rx.hdrGot, sizeof rx.hdr - rx.hdrGot, 0);
    } else {
      n = ::recv(fd, rx.dst, rx.left, 0);
    }
    if (n == 0) {
      if (rx.inPayload || rx.hdrGot > 0)
        return setError(remoteError(
            "data stream %zu: the peer closed its send comm in the middle of a chunk", s + 1));
      rx.eof = true;
      ++eofs_;
      break;
    }
    if (n < 0) {
      if (wouldBlock(errno)) break;
      if (peerGone(errno)) {
        rx.eof = true;
        ++eofs_;
        break;
      }
      return setError(systemError(errno, "data stream %zu: recv", s + 1));
    }
    if (!rx.inPayload) {
      rx.hdrGot += static_cast<size_t>(n);
      if (rx.hdrGot < sizeof rx.hdr) continue;
      rx.hdrGot = 0;
      Status st = onHeader(rx);
      if (!st) return setError(st.withContext(formatString("data stream %zu", s + 1)));
    } else {
      rx.dst += n;
      rx.left -= static_cast<size_t>(n);
      if (rx.left > 0) continue;
      rx.inPayload = false;
      Req& r = *rx.req;
      int i = rx.hdr.index;
      r.got[i] += rx.hdr.len;
      if (r.got[i] == r.total[i]) ++r.subsDone;
    }
  }
  return Status::ok();
}

Status TcpRecvComm::progress() {
  TRELLIS_TRY(error_);
  TRELLIS_TRY(writeControl());
  for (size_t s = 0; s < data_.size(); ++s) TRELLIS_TRY(readData(s));
  return Status::ok();
}

Status TcpRecvComm::irecv(int n, void* const* data, const size_t* sizes, const int* tags,
                          Request** out) {
  *out = nullptr;
  TRELLIS_TRY(progress());
  if (n < 1 || n > cfg_.maxRecvs)
    return invalidArgument("irecv: %d buffers (1..%d)", n, cfg_.maxRecvs);
  if (freeSlots_.empty()) return Status::ok();  // NCCL_NET_MAX_REQUESTS in flight already
  if (eofs_ > 0)
    return setError(remoteError("receive #%llu: the peer closed its send comm",
                                static_cast<unsigned long long>(nextSeq_)));
  int slot = freeSlots_.back();
  freeSlots_.pop_back();
  Req& r = reqs_[slot];
  r.magic = Request::kMagic;
  r.owner = this;
  r.n = n;
  r.seq = nextSeq_++;
  r.subsDone = 0;
  CtsHeader h{tcpwire::kCtsMagic, static_cast<uint16_t>(n), static_cast<uint16_t>(slot), r.seq};
  const char* hp = reinterpret_cast<const char*>(&h);
  tx_.insert(tx_.end(), hp, hp + sizeof h);
  for (int i = 0; i < n; ++i) {
    r.data[i] = static_cast<char*>(data[i]);
    r.cap[i] = sizes[i];
    r.tags[i] = tags[i];
    r.total[i] = 0;
    r.got[i] = 0;
    r.known[i] = false;
    CtsEntry e{sizes[i], tags[i], 0};
    const char* ep = reinterpret_cast<const char*>(&e);
    tx_.insert(tx_.end(), ep, ep + sizeof e);
  }
  *out = &r;
  return writeControl();
}

Status TcpRecvComm::test(Request* req, bool* done, size_t* sizes) {
  *done = false;
  TRELLIS_TRY(progress());
  auto* r = static_cast<Req*>(req);
  if (r->subsDone < r->n) {
    if (eofs_ == data_.size())
      return setError(remoteError(
          "receive #%llu: the peer closed its send comm before sending all %d message(s)",
          static_cast<unsigned long long>(r->seq), r->n));
    return Status::ok();
  }
  *done = true;
  for (int i = 0; i < r->n; ++i) sizes[i] = r->total[i];
  r->magic = 0;
  freeSlots_.push_back(static_cast<int>(r - reqs_.get()));
  return Status::ok();
}

}  // namespace trellis::ncclnet
