#include "transport/tcp/tcp_transport.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "core/acceptor.h"
#include "core/crc32c.h"
#include "core/log.h"
#include "core/params.h"

namespace trellis::transport {

static Param<int64_t> kSocketsPerPeer("TRELLIS_SOCKETS_PER_PEER", 2,
                                      "TCP sockets per peer; large messages are striped over them");
static Param<int64_t> kChunkBytes("TRELLIS_TCP_CHUNK_BYTES", 512 * 1024,
                                  "bytes per TCP chunk when a message is striped over sockets");
static Param<bool> kChecksum("TRELLIS_CHECKSUM", false,
                             "CRC32C over every TCP chunk, checked by the receiver (reports the peer and byte "
                             "offset of a corrupted chunk)");

namespace testing {
namespace {
std::atomic<uint64_t> gCorruptAt{0};  // 1-based index of the chunk to corrupt; 0: none
std::atomic<uint64_t> gChunksStarted{0};
}  // namespace
void corruptNthTcpChunk(uint64_t n) {
  gChunksStarted = 0;
  gCorruptAt = n;
}
}  // namespace testing

TcpOptions tcpOptionsFromParams() {
  TcpOptions o;
  int64_t n = kSocketsPerPeer.get();
  o.socketsPerPeer = static_cast<int>(n < 1 ? 1 : n > 16 ? 16 : n);
  int64_t c = kChunkBytes.get();
  o.chunkBytes = static_cast<size_t>(c < 4096 ? 4096 : c > (64 << 20) ? (64 << 20) : c);
  o.checksum = kChecksum.get();
  return o;
}

namespace {
constexpr uint32_t kHelloMagic = 0x7e11c0de;
constexpr uint32_t kChunkMagic = 0x7e11da7a;

struct Hello {
  uint32_t magic;
  int32_t from;
  int32_t socketIndex;
  int32_t reserved;
  uint8_t secret[16];
};

// Header flags. The sender decides whether to checksum; the receiver checks whatever is flagged.
constexpr uint32_t kFlagCrc = 1;  // `crc` is the CRC32C of the payload

struct WireHeader {
  uint32_t magic;
  uint32_t len;     // payload bytes in this chunk
  uint64_t seq;     // message sequence number on this (sender, receiver) pair
  uint64_t offset;  // where the payload goes in the message
  uint64_t total;   // message size
  uint32_t crc;
  uint32_t flags;
};
static_assert(sizeof(WireHeader) == 40);

struct SendChunk {
  Request* req;
  const char* data;
  WireHeader hdr;
  size_t sent = 0;  // header + payload bytes written so far
  bool started = false;  // checksum computed (done once, before the first byte goes out)
  std::shared_ptr<std::vector<char>> corrupted;  // test hook: the altered payload sent instead
};

struct RecvSlot {
  Request* req;
  char* buf;
  size_t cap;
  uint64_t total = UINT64_MAX;
  size_t got = 0;
};

struct Sock {
  int fd = -1;
  int peer = -1;
  int index = 0;
  std::deque<SendChunk> sendq;
  WireHeader hdr{};
  size_t hdrGot = 0;
  size_t payloadGot = 0;
  bool paused = false;    // a header arrived for a receive not posted yet
  bool eof = false;       // the peer closed this socket (all its data has been read)
  bool inEpoll = true;
  uint32_t events = 0;
};

struct Peer {
  std::vector<int> socks;  // indices into Impl::socks
  uint64_t nextSendSeq = 0;
  uint64_t recvBase = 0;  // sequence number of recvs.front()
  std::deque<RecvSlot> recvs;
  std::string addr;
};
}  // namespace

struct TcpTransport::Impl {
  int rank = -1;
  int nranks = 0;
  TcpOptions opt;
  int epfd = -1;
  std::vector<Sock> socks;
  std::vector<Peer> peers;  // indexed by rank; empty socks for ranks not reached
  Status error;

  ~Impl() {
    for (auto& s : socks)
      if (s.fd >= 0) ::close(s.fd);
    if (epfd >= 0) ::close(epfd);
  }

  Status fail(Status s) {
    if (error.isOk()) error = s;
    return error;
  }

  // Once every socket is in `socks` and listed under its peer.
  Status startPolling() {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return systemError(errno, "epoll_create1");
    for (size_t i = 0; i < socks.size(); ++i) {
      Sock& s = socks[i];
      s.events = EPOLLIN;
      epoll_event e{EPOLLIN, {.u32 = static_cast<uint32_t>(i)}};
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, s.fd, &e) != 0) return systemError(errno, "epoll_ctl");
    }
    return Status::ok();
  }

  void setEvents(Sock& s) {
    if (s.eof) return;
    uint32_t ev = (s.paused ? 0u : static_cast<uint32_t>(EPOLLIN)) | (s.sendq.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
    if (!s.inEpoll) {
      if (ev == 0) return;
      epoll_event e{ev, {.u32 = static_cast<uint32_t>(&s - socks.data())}};
      epoll_ctl(epfd, EPOLL_CTL_ADD, s.fd, &e);
      s.inEpoll = true;
      s.events = ev;
      return;
    }
    if (ev == s.events) return;
    epoll_event e{ev, {.u32 = static_cast<uint32_t>(&s - socks.data())}};
    epoll_ctl(epfd, EPOLL_CTL_MOD, s.fd, &e);
    s.events = ev;
  }

  // A peer closes all its sockets together (destroy, exit or death). Data it sent before closing
  // is read before the end of stream, so a peer is gone for us only when every socket has ended
  // and a receive from it is still incomplete.
  bool peerGone(const Peer& p) const {
    for (int si : p.socks)
      if (!socks[si].eof) return false;
    return !p.socks.empty();
  }
  Status checkPeer(int peer) {
    Peer& p = peers[peer];
    if (peerGone(p) && !p.recvs.empty())
      return fail(remoteError("rank %d: rank %d (tcp %s) closed its connections with %zu receive(s) from it "
                              "incomplete (%zu of %zu bytes of the first arrived): it exited, crashed or destroyed "
                              "its communicator", rank, peer, p.addr.c_str(), p.recvs.size(), p.recvs.front().got,
                              p.recvs.front().cap));
    return Status::ok();
  }
  Status endOfStream(Sock& s) {
    s.eof = true;
    if (s.inEpoll) epoll_ctl(epfd, EPOLL_CTL_DEL, s.fd, nullptr);
    s.inEpoll = false;
    if (s.hdrGot != 0)
      return fail(remoteError("rank %d: rank %d (tcp %s, socket %d) closed the connection in the middle of a "
                              "message", rank, s.peer, peers[s.peer].addr.c_str(), s.index));
    return checkPeer(s.peer);
  }
  Status connectionLost(Sock& s, const char* what, int err) {
    return fail(remoteError("rank %d: connection to rank %d (tcp %s, socket %d) %s%s%s", rank, s.peer,
                            peers[s.peer].addr.c_str(), s.index, what, err ? ": " : "", err ? strerror(err) : ""));
  }

  // Called once per chunk, just before its first byte goes out (so the checksum is computed while
  // the data is about to be read anyway, and the first chunk is not delayed by the others).
  void startChunk(SendChunk& c, int peer) {
    c.started = true;
    if (opt.checksum) {
      c.hdr.crc = crc32c(0, c.data, c.hdr.len);
      c.hdr.flags |= kFlagCrc;
    }
    uint64_t at = testing::gCorruptAt.load(std::memory_order_relaxed);
    if (at != 0 && c.hdr.len > 0 && testing::gChunksStarted.fetch_add(1) + 1 == at) {
      c.corrupted = std::make_shared<std::vector<char>>(c.data, c.data + c.hdr.len);
      (*c.corrupted)[c.hdr.len / 2] ^= 0x10;
      c.data = c.corrupted->data();
      TRELLIS_WARN(kNet, "rank %d: test hook: flipped bit 4 of byte %lu of a chunk to rank %d", rank,
                   static_cast<unsigned long>(c.hdr.offset + c.hdr.len / 2), peer);
    }
  }

  Status flush(Sock& s, bool* didWork) {
    while (!s.sendq.empty()) {
      SendChunk& c = s.sendq.front();
      if (!c.started) startChunk(c, s.peer);
      iovec iov[2];
      int n = 0;
      size_t hdrLeft = c.sent < sizeof c.hdr ? sizeof c.hdr - c.sent : 0;
      if (hdrLeft) iov[n++] = {reinterpret_cast<char*>(&c.hdr) + c.sent, hdrLeft};
      size_t payOff = c.sent > sizeof c.hdr ? c.sent - sizeof c.hdr : 0;
      if (c.hdr.len > payOff) iov[n++] = {const_cast<char*>(c.data) + payOff, c.hdr.len - payOff};
      msghdr m{};
      m.msg_iov = iov;
      m.msg_iovlen = n;
      ssize_t w = ::sendmsg(s.fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return connectionLost(s, "failed while sending", errno);
      }
      *didWork = true;
      c.sent += static_cast<size_t>(w);
      if (c.sent == sizeof c.hdr + c.hdr.len) {
        Request* r = c.req;
        r->done += c.hdr.len;
        if (--r->pendingParts == 0) r->state = ReqState::kDone;
        s.sendq.pop_front();
      }
    }
    setEvents(s);
    return Status::ok();
  }

  // Reads as much as possible from one socket into posted receives.
  Status drain(Sock& s, bool* didWork) {
    Peer& p = peers[s.peer];
    for (;;) {
      if (s.hdrGot < sizeof s.hdr) {
        ssize_t r = ::recv(s.fd, reinterpret_cast<char*>(&s.hdr) + s.hdrGot, sizeof s.hdr - s.hdrGot, MSG_DONTWAIT);
        if (r == 0) return endOfStream(s);
        if (r < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == EINTR) continue;
          if (errno == ECONNRESET) return endOfStream(s);
          return connectionLost(s, "failed while receiving", errno);
        }
        *didWork = true;
        s.hdrGot += static_cast<size_t>(r);
        if (s.hdrGot < sizeof s.hdr) continue;
        const WireHeader& h = s.hdr;
        if (h.magic != kChunkMagic || h.len > opt.chunkBytes || h.offset > h.total || h.len > h.total - h.offset ||
            h.seq < p.recvBase || (h.flags & ~kFlagCrc) != 0)
          return fail(remoteError("rank %d: malformed chunk header from rank %d (tcp %s): magic 0x%08x len %u "
                                  "seq %lu offset %lu total %lu flags 0x%x", rank, s.peer, p.addr.c_str(), h.magic,
                                  h.len, static_cast<unsigned long>(h.seq), static_cast<unsigned long>(h.offset),
                                  static_cast<unsigned long>(h.total), h.flags));
        s.payloadGot = 0;
      }
      uint64_t idx = s.hdr.seq - p.recvBase;
      if (idx >= p.recvs.size()) {  // its receive is not posted yet: leave the data in the kernel
        s.paused = true;
        setEvents(s);
        return Status::ok();
      }
      RecvSlot& slot = p.recvs[idx];
      if (slot.total == UINT64_MAX) {
        if (s.hdr.total > slot.cap)
          return fail(invalidUsage("rank %d: rank %d sent a %lu-byte message but the matching receive is %zu bytes",
                                   rank, s.peer, static_cast<unsigned long>(s.hdr.total), slot.cap));
        slot.total = s.hdr.total;
        slot.req->received = slot.total;
      } else if (slot.total != s.hdr.total) {
        return fail(remoteError("rank %d: inconsistent chunk from rank %d (total %lu, expected %lu)", rank, s.peer,
                                static_cast<unsigned long>(s.hdr.total), static_cast<unsigned long>(slot.total)));
      }
      while (s.payloadGot < s.hdr.len) {
        ssize_t r = ::recv(s.fd, slot.buf + s.hdr.offset + s.payloadGot, s.hdr.len - s.payloadGot, MSG_DONTWAIT);
        if (r == 0) return endOfStream(s);
        if (r < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) {
            setEvents(s);
            return Status::ok();
          }
          if (errno == EINTR) continue;
          return connectionLost(s, "failed while receiving", errno);
        }
        *didWork = true;
        s.payloadGot += static_cast<size_t>(r);
      }
      if (s.hdr.flags & kFlagCrc) {
        uint32_t got = crc32c(0, slot.buf + s.hdr.offset, s.hdr.len);
        if (got != s.hdr.crc)
          return fail(remoteError("rank %d: corrupted data from rank %d (tcp %s, socket %d): the chunk at byte "
                                  "offset %lu (%u bytes) of a %lu-byte message (#%lu from that rank) has CRC32C "
                                  "0x%08x, the sender computed 0x%08x", rank, s.peer, p.addr.c_str(), s.index,
                                  static_cast<unsigned long>(s.hdr.offset), s.hdr.len,
                                  static_cast<unsigned long>(s.hdr.total), static_cast<unsigned long>(s.hdr.seq),
                                  got, s.hdr.crc));
      }
      slot.got += s.hdr.len;
      slot.req->done = slot.got;
      s.hdrGot = 0;
      if (slot.got == slot.total) {
        slot.req->state = ReqState::kDone;
        while (!p.recvs.empty() && p.recvs.front().req->state == ReqState::kDone) {
          p.recvs.pop_front();
          ++p.recvBase;
        }
      }
    }
    setEvents(s);
    return Status::ok();
  }
};

TcpTransport::TcpTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TcpTransport::~TcpTransport() = default;

namespace {
constexpr int kMaxNics = 8;

// Every rank's listening addresses, all-gathered (fixed size).
struct NicAddrs {
  int32_t count;
  int32_t bound;  // 1: sockets opened by this rank are bound to its NIC addresses
  int32_t rails[kMaxNics];
  net::WireAddr addrs[kMaxNics];
};

struct LocalNic {
  std::string ifname;
  int rail = -1;
  net::SockAddr addr;  // port 0
};

// Addresses of this rank's NICs, of the bootstrap's family and allowed by TRELLIS_SOCKET_IFNAME.
std::vector<LocalNic> resolveNics(const std::vector<TcpNic>& nics, int family, int rank) {
  std::vector<LocalNic> out;
  if (nics.empty()) return out;
  auto all = net::findInterfaces();
  for (const TcpNic& n : nics) {
    bool found = false;
    if (all)
      for (const net::Interface& i : all.value())
        if (i.name == n.ifname && i.addr.family() == family) {
          if (static_cast<int>(out.size()) < kMaxNics) out.push_back({n.ifname, n.rail, i.addr});
          found = true;
          break;
        }
    if (!found)
      TRELLIS_INFO(kNet, "rank %d: NIC interface %s (rail %d) has no usable address (down, excluded by "
                   "TRELLIS_SOCKET_IFNAME, or no address of the bootstrap's family): not used for TCP",
                   rank, n.ifname.c_str(), n.rail);
  }
  return out;
}
}  // namespace

Result<std::unique_ptr<TcpTransport>> TcpTransport::create(Bootstrap& bs, const std::vector<int>& peerList,
                                                           const TcpOptions& opt, const std::atomic<bool>* abort) {
  auto impl = std::make_unique<Impl>();
  impl->rank = bs.rank();
  impl->nranks = bs.nranks();
  impl->opt = opt;
  impl->peers.resize(bs.nranks());
  std::vector<LocalNic> nics = resolveNics(opt.nics, bs.listenAddr().family(), bs.rank());
  const bool bindSource = !nics.empty();
  if (nics.empty()) {
    net::SockAddr a = bs.listenAddr();
    a.setPort(0);
    nics.push_back({"bootstrap interface", -1, a});
  }
  std::vector<net::Socket> listeners;
  std::vector<int> listenFds;
  NicAddrs mine{};
  mine.count = static_cast<int32_t>(nics.size());
  mine.bound = bindSource ? 1 : 0;
  std::string where;
  for (size_t k = 0; k < nics.size(); ++k) {
    net::SockAddr bound;
    auto l = net::listenOn(nics[k].addr, &bound);
    if (!l) return l.status().withContext(formatString("rank %d: tcp listen on %s", bs.rank(), nics[k].ifname.c_str()));
    listenFds.push_back(l->fd());
    listeners.push_back(std::move(l.value()));
    mine.rails[k] = nics[k].rail;
    mine.addrs[k] = net::toWire(bound);
    where += formatString("%s%s %s (rail %d)", k ? ", " : "", nics[k].ifname.c_str(), bound.toString().c_str(),
                          nics[k].rail);
  }
  std::vector<NicAddrs> all(bs.nranks());
  all[bs.rank()] = mine;
  TRELLIS_TRY_CTX(bs.allGather(all.data(), sizeof(NicAddrs)), "exchanging TCP listen addresses");
  std::vector<bool> want_peer(bs.nranks(), false);
  for (int p : peerList)
    if (p != bs.rank()) want_peer[p] = true;
  // Sockets per pair: enough for every NIC of either side (the same number on both sides).
  std::vector<int> nsock(bs.nranks(), 0);
  for (int p = 0; p < bs.nranks(); ++p) {
    if (!want_peer[p]) continue;
    if (all[p].count < 1 || all[p].count > kMaxNics)
      return remoteError("rank %d: rank %d sent %d TCP listen addresses (1..%d)", bs.rank(), p, all[p].count, kMaxNics);
    nsock[p] = std::max({opt.socketsPerPeer, static_cast<int>(all[p].count), mine.count});
  }
  net::Deadline deadline = net::deadlineIn(opt.timeoutS);
  int expectAccepts = 0;
  std::vector<std::vector<int>> slots(bs.nranks());
  for (int p = 0; p < bs.nranks(); ++p) slots[p].assign(nsock[p], -1);
  auto addSock = [&](int fd, int peer, int index) {
    Sock s;
    s.fd = fd;
    s.peer = peer;
    s.index = index;
    impl->socks.push_back(std::move(s));
    slots[peer][index] = static_cast<int>(impl->socks.size() - 1);
  };
  // Lower ranks connect to higher ones; the kernel completes the handshakes in the listen backlog,
  // so all connects finish before anyone accepts and there is no ordering deadlock.
  for (int p = 0; p < bs.nranks(); ++p) {
    if (!want_peer[p]) continue;
    const NicAddrs& theirs = all[p];
    std::vector<net::SockAddr> paddrs;
    for (int k = 0; k < theirs.count; ++k) {
      TRELLIS_ASSIGN_OR_RETURN(net::SockAddr a, net::fromWire(theirs.addrs[k]));
      impl->peers[p].addr += (k ? "," : "") + a.toString();
      paddrs.push_back(a);
    }
    if (p < bs.rank()) {
      expectAccepts += nsock[p];
      continue;
    }
    for (int i = 0; i < nsock[p]; ++i) {
      // My NIC i mod mine; the peer's address on the same rail (spread over several), else i mod theirs.
      const int a = i % mine.count;
      std::vector<int> same;
      for (int k = 0; k < theirs.count; ++k)
        if (nics[a].rail >= 0 && theirs.rails[k] == nics[a].rail) same.push_back(k);
      const int b = same.empty() ? i % theirs.count : same[(i / mine.count) % same.size()];
      auto sock = net::connectTo(paddrs[b], deadline, abort, bindSource ? &nics[a].addr : nullptr);
      if (!sock)
        return sock.status().withContext(formatString("rank %d: tcp connect from %s to rank %d", bs.rank(),
                                                      nics[a].ifname.c_str(), p));
      Hello h{kHelloMagic, bs.rank(), i, 0, {}};
      std::memcpy(h.secret, bs.secret(), sizeof h.secret);
      TRELLIS_TRY_CTX(net::sendAll(sock->fd(), &h, sizeof h, deadline, abort),
                      formatString("rank %d: tcp hello to rank %d (%s)", bs.rank(), p, paddrs[b].toString().c_str()));
      addSock(sock->release(), p, i);
    }
  }
  net::GreetingAcceptor acceptor(listenFds, sizeof(Hello), 5.0, formatString("rank %d: tcp listener %s", bs.rank(),
                                                                              where.c_str()));
  while (expectAccepts > 0) {
    auto got = acceptor.next(deadline, abort);
    if (!got)
      return got.status().withContext(formatString("rank %d: waiting for %d tcp connections from lower ranks",
                                                   bs.rank(), expectAccepts));
    Hello h;
    std::memcpy(&h, got->greeting.data(), sizeof h);
    if (h.magic != kHelloMagic || !net::constantTimeEqual(h.secret, bs.secret(), sizeof h.secret)) {
      TRELLIS_WARN(kNet, "rank %d: dropped a tcp connection from %s: not a hello with the job's secret", bs.rank(),
                   got->from.toString().c_str());
      continue;
    }
    if (h.from < 0 || h.from >= bs.rank() || !want_peer[h.from] || h.socketIndex < 0 ||
        h.socketIndex >= nsock[h.from] || slots[h.from][h.socketIndex] >= 0) {
      TRELLIS_WARN(kNet, "rank %d: dropped a tcp connection from %s: hello from rank %d socket %d is not one "
                   "expected (lower ranks only, each socket once)", bs.rank(), got->from.toString().c_str(), h.from,
                   h.socketIndex);
      continue;
    }
    addSock(got->sock.release(), h.from, h.socketIndex);
    --expectAccepts;
  }
  for (int p = 0; p < bs.nranks(); ++p)
    for (int i = 0; i < nsock[p]; ++i) impl->peers[p].socks.push_back(slots[p][i]);
  TRELLIS_TRY(impl->startPolling());
  TRELLIS_INFO(kNet, "rank %d: tcp transport up: %zu peers, chunk %zu bytes, listening on %s%s", bs.rank(),
               peerList.size(), opt.chunkBytes, where.c_str(), bindSource ? ", sockets bound to these NICs" : "");
  return std::unique_ptr<TcpTransport>(new TcpTransport(std::move(impl)));
}

Result<std::unique_ptr<TcpTransport>> TcpTransport::fromSockets(int rank, const std::vector<std::vector<int>>& peerSocks,
                                                                const TcpOptions& opt) {
  auto impl = std::make_unique<Impl>();
  impl->rank = rank;
  impl->nranks = static_cast<int>(peerSocks.size());
  impl->opt = opt;
  impl->peers.resize(peerSocks.size());
  for (size_t p = 0; p < peerSocks.size(); ++p) {
    impl->peers[p].addr = "test-peer-" + std::to_string(p);
    for (size_t i = 0; i < peerSocks[p].size(); ++i) {
      Sock s;
      s.fd = peerSocks[p][i];
      s.peer = static_cast<int>(p);
      s.index = static_cast<int>(i);
      impl->socks.push_back(std::move(s));
      impl->peers[p].socks.push_back(static_cast<int>(impl->socks.size() - 1));
    }
  }
  TRELLIS_TRY(impl->startPolling());
  return std::unique_ptr<TcpTransport>(new TcpTransport(std::move(impl)));
}

bool TcpTransport::reaches(int peer) const {
  return peer >= 0 && peer < impl_->nranks && !impl_->peers[peer].socks.empty();
}

std::string TcpTransport::describePeer(int peer) const {
  if (!reaches(peer)) return "tcp (not connected)";
  return formatString("tcp %s (%zu sockets)", impl_->peers[peer].addr.c_str(), impl_->peers[peer].socks.size());
}

Status TcpTransport::postSend(int peer, const void* data, size_t bytes, Request* req) {
  Impl& m = *impl_;
  if (!m.error.isOk()) return m.error;
  if (!reaches(peer)) return internalError("rank %d: tcp has no connection to rank %d", m.rank, peer);
  Peer& p = m.peers[peer];
  if (m.peerGone(p))
    return m.fail(remoteError("rank %d: cannot send to rank %d (tcp %s): it closed its connections", m.rank, peer,
                              p.addr.c_str()));
  uint64_t seq = p.nextSendSeq++;
  size_t nchunks = bytes == 0 ? 1 : (bytes + m.opt.chunkBytes - 1) / m.opt.chunkBytes;
  *req = Request{};
  req->state = ReqState::kPending;
  req->isSend = true;
  req->peer = peer;
  req->bytes = bytes;
  req->pendingParts = static_cast<uint32_t>(nchunks);
  const char* base = static_cast<const char*>(data);
  size_t nsock = p.socks.size();
  bool didWork = false;
  for (size_t c = 0; c < nchunks; ++c) {
    size_t off = c * m.opt.chunkBytes;
    size_t len = bytes == 0 ? 0 : std::min(m.opt.chunkBytes, bytes - off);
    Sock& s = m.socks[p.socks[(seq + c) % nsock]];
    SendChunk ch{req, base + off, {kChunkMagic, static_cast<uint32_t>(len), seq, off, bytes, 0, 0}, 0, false, nullptr};
    bool wasEmpty = s.sendq.empty();
    s.sendq.push_back(ch);
    if (wasEmpty) TRELLIS_TRY(m.flush(s, &didWork));  // inline write: no progress round-trip for small messages
  }
  return Status::ok();
}

Status TcpTransport::postRecv(int peer, void* data, size_t bytes, Request* req) {
  Impl& m = *impl_;
  if (!m.error.isOk()) return m.error;
  if (!reaches(peer)) return internalError("rank %d: tcp has no connection to rank %d", m.rank, peer);
  Peer& p = m.peers[peer];
  *req = Request{};
  req->state = ReqState::kPending;
  req->peer = peer;
  req->bytes = bytes;
  p.recvs.push_back(RecvSlot{req, static_cast<char*>(data), bytes});
  uint64_t seq = p.recvBase + p.recvs.size() - 1;
  bool didWork = false;
  for (int si : p.socks) {
    Sock& s = m.socks[si];
    if (s.paused && s.hdr.seq == seq) {
      s.paused = false;
      TRELLIS_TRY(m.drain(s, &didWork));
    }
  }
  return m.checkPeer(peer);
}

Status TcpTransport::progress(int timeoutMs, bool* didWork) {
  Impl& m = *impl_;
  if (!m.error.isOk()) return m.error;
  epoll_event evs[64];
  int n = epoll_wait(m.epfd, evs, 64, 0);
  if (n == 0 && timeoutMs > 0) n = epoll_wait(m.epfd, evs, 64, timeoutMs);
  if (n < 0) {
    if (errno == EINTR) return Status::ok();
    return m.fail(systemError(errno, "epoll_wait"));
  }
  for (int i = 0; i < n; ++i) {
    Sock& s = m.socks[evs[i].data.u32];
    if (evs[i].events & EPOLLOUT) TRELLIS_TRY(m.flush(s, didWork));
    if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      if (!s.paused) {
        TRELLIS_TRY(m.drain(s, didWork));
      } else if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
        // Paused and hung up: stop polling it; the data left is read when the receive is posted.
        epoll_ctl(m.epfd, EPOLL_CTL_DEL, s.fd, nullptr);
        s.inEpoll = false;
      }
    }
  }
  return Status::ok();
}

void TcpTransport::cancelAll() {
  for (auto& s : impl_->socks) s.sendq.clear();
  for (auto& p : impl_->peers) p.recvs.clear();
}

}  // namespace trellis::transport
