// The TCP backend: devices are the network interfaces Trellis would use (TRELLIS_SOCKET_IFNAME),
// described from the Trellis topology; listen/connect/accept build a comm of 1 + K streams
// without ever blocking (tcp_wire.h has the protocol, tcp_comm.cc the data path).
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>

#include "abi/nccl_abi.h"
#include "core/backend.h"
#include "core/devices.h"
#include "core/params.h"
#include "core/plugin_log.h"
#include "core/topo_view.h"
#include "tcp/tcp_comm.h"
#include "tcp/tcp_wire.h"

namespace trellis::ncclnet {

static Param<int64_t> kSockets(
    "TRELLIS_NCCL_NET_SOCKETS", 4,
    "TCP data streams per NCCL comm (1..16), spread over the NICs of the device");
static Param<int64_t> kChunkBytes(
    "TRELLIS_NCCL_NET_CHUNK_BYTES", 512 * 1024,
    "bytes per chunk when the TCP backend stripes a message over its streams "
    "(4K..64M)");
namespace {

using Clock = std::chrono::steady_clock;
using tcpwire::CompactAddr;
using tcpwire::fromCompact;
using tcpwire::Handle;
using tcpwire::Hello;
using tcpwire::toCompact;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---- Listen / accept -------------------------------------------------------------------------

class TcpListenComm final : public ListenComm {
 public:
  TcpListenComm(std::vector<net::Socket> fds, std::vector<net::SockAddr> addrs, uint64_t token,
                int dataSockets, int trafficClass, const TcpConfig& cfg)
      : fds_(std::move(fds)),
        addrs_(std::move(addrs)),
        token_(token),
        streams_(dataSockets + 1),
        trafficClass_(trafficClass),
        cfg_(cfg) {}

  Status accept(std::unique_ptr<RecvComm>* out) override {
    for (size_t i = 0; i < fds_.size(); ++i) {
      for (;;) {
        net::SockAddr from;
        from.len = sizeof from.storage;
        int fd = ::accept4(fds_[i].fd(), reinterpret_cast<sockaddr*>(&from.storage), &from.len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
            break;
          return systemError(errno, "accept on %s", addrs_[i].toString().c_str());
        }
        tuneStream(fd, from.family(), trafficClass_);
        pending_.push_back(Pending{net::Socket(fd), from, i, Hello{}, 0, Clock::now()});
      }
    }
    for (size_t p = 0; p < pending_.size();) {
      Pending& pe = pending_[p];
      bool drop = false;
      ssize_t n = ::recv(pe.fd.fd(), reinterpret_cast<char*>(&pe.hello) + pe.got,
                         sizeof pe.hello - pe.got, 0);
      if (n > 0) pe.got += static_cast<size_t>(n);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        NCCLNET_INFO(nccl_abi::kFlagNet, "accept: %s closed before sending its hello (%s)",
                     pe.from.toString().c_str(), n == 0 ? "EOF" : strerror(errno));
        drop = true;
      } else if (pe.got == sizeof pe.hello) {
        std::string why = validate(pe.hello);
        if (!why.empty()) {
          NCCLNET_WARN(nccl_abi::kFlagNet, "accept on %s: dropping connection from %s: %s",
                       addrs_[pe.listener].toString().c_str(), pe.from.toString().c_str(),
                       why.c_str());
          drop = true;
        } else {
          Group& gr = groups_[pe.hello.connId];
          if (gr.fds.empty()) {
            gr.fds.resize(streams_);
            gr.started = Clock::now();
          }
          if (gr.fds[pe.hello.index].valid()) {
            NCCLNET_WARN(nccl_abi::kFlagNet,
                         "accept: duplicate stream %u of connection %016llx from %s; dropped",
                         pe.hello.index, static_cast<unsigned long long>(pe.hello.connId),
                         pe.from.toString().c_str());
          } else {
            gr.fds[pe.hello.index] = std::move(pe.fd);
            gr.from.resize(streams_);
            gr.from[pe.hello.index] = pe.from;
            ++gr.have;
          }
          drop = true;  // moved into the group (or a duplicate)
        }
      } else if (secondsSince(pe.since) > cfg_.connectTimeoutS) {
        NCCLNET_WARN(nccl_abi::kFlagNet,
                     "accept: %s sent %zu of %zu hello bytes in %.0f s; dropped",
                     pe.from.toString().c_str(), pe.got, sizeof pe.hello, cfg_.connectTimeoutS);
        drop = true;
      }
      if (drop) {
        pending_[p] = std::move(pending_.back());
        pending_.pop_back();
      } else {
        ++p;
      }
    }
    for (auto it = groups_.begin(); it != groups_.end();) {
      Group& gr = it->second;
      if (gr.have == streams_) {
        std::vector<net::Socket> data;
        for (int s = 1; s < streams_; ++s) data.push_back(std::move(gr.fds[s]));
        std::string desc =
            formatString("tcp recv %s <- %s (1+%d streams)", addrs_[0].toString().c_str(),
                         gr.from[0].toString().c_str(), streams_ - 1);
        *out = std::make_unique<TcpRecvComm>(std::move(gr.fds[0]), std::move(data), desc, cfg_);
        groups_.erase(it);
        return Status::ok();
      }
      if (secondsSince(gr.started) > 2 * cfg_.connectTimeoutS) {
        NCCLNET_WARN(nccl_abi::kFlagNet,
                     "accept: connection %016llx brought %d of %d streams in %.0f s; dropped",
                     static_cast<unsigned long long>(it->first), gr.have, streams_,
                     2 * cfg_.connectTimeoutS);
        it = groups_.erase(it);
        continue;
      }
      ++it;
    }
    return Status::ok();
  }

 private:
  struct Pending {
    net::Socket fd;
    net::SockAddr from;
    size_t listener;
    Hello hello;
    size_t got;
    Clock::time_point since;
  };
  struct Group {
    std::vector<net::Socket> fds;
    std::vector<net::SockAddr> from;
    int have = 0;
    Clock::time_point started;
  };

  std::string validate(const Hello& h) const {
    if (h.magic != tcpwire::kHelloMagic)
      return formatString("bad hello magic 0x%08x (not a Trellis plugin peer)", h.magic);
    if (h.version != tcpwire::kVersion)
      return formatString("protocol version %u, this side speaks %u", h.version, tcpwire::kVersion);
    if (!net::constantTimeEqual(&h.token, &token_, sizeof token_))
      return "wrong listen token (a handle of another listen comm)";
    if (h.streams != streams_)
      return formatString("%u streams announced, this listen comm expects %d", h.streams, streams_);
    if (h.index >= streams_) return formatString("stream index %u out of range", h.index);
    return "";
  }

  std::vector<net::Socket> fds_;
  std::vector<net::SockAddr> addrs_;
  uint64_t token_;
  int streams_;
  int trafficClass_;
  TcpConfig cfg_;
  std::vector<Pending> pending_;
  std::map<uint64_t, Group> groups_;
};

// ---- Connect ---------------------------------------------------------------------------------

class TcpConnector final : public Connector {
 public:
  TcpConnector(std::vector<net::SockAddr> local, std::vector<net::SockAddr> remote, const Handle& h,
               uint64_t connId, int trafficClass, const TcpConfig& cfg)
      : cfg_(cfg), trafficClass_(trafficClass), started_(Clock::now()) {
    int streams = h.dataSockets + 1;
    for (int i = 0; i < streams; ++i) {
      Stream s;
      s.remote = remote[static_cast<size_t>(i) % remote.size()];
      // Bind to the local NIC of the same family so that the stream leaves through it.
      for (size_t k = 0; k < local.size(); ++k) {
        const net::SockAddr& l = local[(static_cast<size_t>(i) + k) % local.size()];
        if (l.family() == s.remote.family()) {
          s.local = l;
          s.bind = true;
          break;
        }
      }
      s.hello = Hello{tcpwire::kHelloMagic,
                      tcpwire::kVersion,
                      static_cast<uint16_t>(i),
                      static_cast<uint16_t>(streams),
                      0,
                      0,
                      h.token,
                      connId};
      streams_.push_back(std::move(s));
    }
  }

  Status progress(std::unique_ptr<SendComm>* out) override {
    bool all = true;
    for (size_t i = 0; i < streams_.size(); ++i) {
      TRELLIS_TRY(step(streams_[i], i));
      all = all && streams_[i].state == State::kDone;
    }
    if (!all) {
      if (secondsSince(started_) > cfg_.connectTimeoutS) {
        for (const Stream& s : streams_)
          if (s.state != State::kDone)
            return timeoutError(
                "cannot connect to %s within %.0f s (TRELLIS_NCCL_NET_CONNECT_TIMEOUT_S); last "
                "error: %s",
                s.remote.toString().c_str(), cfg_.connectTimeoutS,
                s.lastErr ? strerror(s.lastErr) : "none (still in progress)");
      }
      return Status::ok();
    }
    std::vector<net::Socket> data;
    for (size_t i = 1; i < streams_.size(); ++i) data.push_back(std::move(streams_[i].fd));
    std::string desc = formatString("tcp send %s -> %s (1+%zu streams)",
                                    streams_[0].bind ? streams_[0].local.toString().c_str() : "*",
                                    streams_[0].remote.toString().c_str(), streams_.size() - 1);
    *out = std::make_unique<TcpSendComm>(std::move(streams_[0].fd), std::move(data), desc, cfg_);
    return Status::ok();
  }

 private:
  enum class State { kIdle, kConnecting, kHello, kDone };
  struct Stream {
    State state = State::kIdle;
    net::Socket fd;
    net::SockAddr remote, local;
    bool bind = false;
    Hello hello{};
    size_t sent = 0;
    Clock::time_point retryAt{};
    int backoffMs = 5;
    int lastErr = 0;
  };

  static bool retryable(int err) {
    return err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH ||
           err == ECONNRESET || err == EAGAIN || err == EADDRNOTAVAIL;
  }

  void scheduleRetry(Stream& s, int err) {
    s.fd.close();
    s.state = State::kIdle;
    s.lastErr = err;
    s.sent = 0;
    s.retryAt = Clock::now() + std::chrono::milliseconds(s.backoffMs);
    s.backoffMs = std::min(s.backoffMs * 2, 500);
  }

  Status step(Stream& s, size_t i) {
    if (s.state == State::kIdle) {
      if (Clock::now() < s.retryAt) return Status::ok();
      s.fd =
          net::Socket(::socket(s.remote.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!s.fd.valid())
        return systemError(errno, "socket() for stream %zu to %s", i, s.remote.toString().c_str());
      tuneStream(s.fd.fd(), s.remote.family(), trafficClass_);
      if (s.bind && ::bind(s.fd.fd(), s.local.sa(), s.local.len) != 0)
        return systemError(errno, "bind(%s) for stream %zu", s.local.toString().c_str(), i);
      int rc = ::connect(s.fd.fd(), s.remote.sa(), s.remote.len);
      int err = rc == 0 ? 0 : errno;
      if (err == 0)
        s.state = State::kHello;
      else if (err == EINPROGRESS || err == EINTR)
        s.state = State::kConnecting;
      else if (retryable(err)) {
        scheduleRetry(s, err);
        return Status::ok();
      } else
        return systemError(err, "connect(%s) for stream %zu", s.remote.toString().c_str(), i);
    }
    if (s.state == State::kConnecting) {
      pollfd p{s.fd.fd(), POLLOUT, 0};
      int rc = ::poll(&p, 1, 0);
      if (rc == 0 || (rc < 0 && errno == EINTR)) return Status::ok();
      if (rc < 0) return systemError(errno, "poll");
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(s.fd.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0)
        s.state = State::kHello;
      else if (retryable(err)) {
        scheduleRetry(s, err);
        return Status::ok();
      } else
        return systemError(err, "connect(%s) for stream %zu", s.remote.toString().c_str(), i);
    }
    if (s.state == State::kHello) {
      while (s.sent < sizeof s.hello) {
        ssize_t n = ::send(s.fd.fd(), reinterpret_cast<const char*>(&s.hello) + s.sent,
                           sizeof s.hello - s.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Status::ok();
          if (retryable(errno) || errno == EPIPE) {
            scheduleRetry(s, errno);
            return Status::ok();
          }
          return systemError(errno, "hello to %s on stream %zu", s.remote.toString().c_str(), i);
        }
        s.sent += static_cast<size_t>(n);
      }
      s.state = State::kDone;
    }
    return Status::ok();
  }

  TcpConfig cfg_;
  int trafficClass_;
  Clock::time_point started_;
  std::vector<Stream> streams_;
};

// ---- Backend ---------------------------------------------------------------------------------

class TcpBackend final : public Backend {
 public:
  TcpBackend(std::vector<PhysDevice> devs, std::vector<net::SockAddr> addrs, const TcpConfig& cfg)
      : devs_(std::move(devs)), addrs_(std::move(addrs)), cfg_(cfg) {}

  const char* name() const override { return "tcp"; }
  const std::vector<PhysDevice>& devices() const override { return devs_; }
  int maxRecvs() const override { return cfg_.maxRecvs; }

  Status listen(const std::vector<int>& devs, const CommOptions& opt, void* handle,
                std::unique_ptr<ListenComm>* out) override {
    int k = cfg_.dataSockets;
    if (opt.maxFlowsPerPeer > 0) k = std::min(k, opt.maxFlowsPerPeer);
    k = std::max(k, static_cast<int>(devs.size()));  // at least one stream per member NIC
    k = std::min(k, tcpwire::kMaxDataSockets);
    Handle h{};
    h.magic = tcpwire::kHandleMagic;
    h.version = tcpwire::kVersion;
    h.backend = tcpwire::kBackendTcp;
    h.dataSockets = static_cast<uint8_t>(k);
    TRELLIS_TRY(net::randomBytes(&h.token, sizeof h.token));
    std::vector<net::Socket> fds;
    std::vector<net::SockAddr> bound;
    for (int d : devs) {
      if (h.nAddrs == tcpwire::kMaxAddrs) break;
      net::SockAddr b;
      TRELLIS_ASSIGN_OR_RETURN(net::Socket s, net::listenOn(addrs_[d], &b));
      h.addrs[h.nAddrs++] = toCompact(b);
      fds.push_back(std::move(s));
      bound.push_back(b);
    }
    std::memcpy(handle, &h, sizeof h);
    NCCLNET_TRACE(nccl_abi::kFlagNet, "listening on %s (+%zu more), %d data streams",
                  bound[0].toString().c_str(), bound.size() - 1, k);
    *out = std::make_unique<TcpListenComm>(std::move(fds), std::move(bound), h.token, k,
                                           opt.trafficClass, cfg_);
    return Status::ok();
  }

  Status connect(const std::vector<int>& devs, const CommOptions& opt, const void* handle,
                 std::unique_ptr<Connector>* out) override {
    Handle h;
    std::memcpy(&h, handle, sizeof h);
    if (h.magic != tcpwire::kHandleMagic)
      return invalidArgument("the handle (magic 0x%08x) was not made by this plugin's TCP backend",
                             h.magic);
    if (h.version != tcpwire::kVersion || h.backend != tcpwire::kBackendTcp)
      return invalidArgument(
          "handle of protocol version %u / backend %u; this side speaks version %u of backend %u",
          h.version, h.backend, tcpwire::kVersion, tcpwire::kBackendTcp);
    if (h.nAddrs < 1 || h.nAddrs > tcpwire::kMaxAddrs || h.dataSockets < 1 ||
        h.dataSockets > tcpwire::kMaxDataSockets)
      return invalidArgument("handle with %u addresses and %u data streams is malformed", h.nAddrs,
                             h.dataSockets);
    std::vector<net::SockAddr> remote;
    for (int i = 0; i < h.nAddrs; ++i) {
      TRELLIS_ASSIGN_OR_RETURN(net::SockAddr a, fromCompact(h.addrs[i]));
      remote.push_back(a);
    }
    std::vector<net::SockAddr> local;
    for (int d : devs) local.push_back(addrs_[d]);
    uint64_t connId = 0;
    TRELLIS_TRY(net::randomBytes(&connId, sizeof connId));
    *out = std::make_unique<TcpConnector>(std::move(local), std::move(remote), h, connId,
                                          opt.trafficClass, cfg_);
    return Status::ok();
  }

 private:
  std::vector<PhysDevice> devs_;
  std::vector<net::SockAddr> addrs_;  // port 0
  TcpConfig cfg_;
};

}  // namespace

Result<std::unique_ptr<Backend>> createTcpBackend() {
  TcpConfig cfg;
  cfg.dataSockets =
      static_cast<int>(std::clamp<int64_t>(kSockets.get(), 1, tcpwire::kMaxDataSockets));
  cfg.chunkBytes =
      static_cast<size_t>(std::clamp<int64_t>(kChunkBytes.get(), 4096, int64_t{64} << 20));
  CommonParams common = commonParams();
  cfg.maxRecvs = common.maxRecvs;
  cfg.connectTimeoutS = common.connectTimeoutS;
  TRELLIS_ASSIGN_OR_RETURN(std::vector<NetdevDevice> netdevs, netdevDevices());
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  // A send comm and a receive comm each hold 1 + K descriptors.
  int64_t byFds = nofile.rlim_cur == RLIM_INFINITY
                      ? 65536
                      : static_cast<int64_t>(nofile.rlim_cur) / (cfg.dataSockets + 1);
  int maxComms = static_cast<int>(std::clamp<int64_t>(byFds, 1, 65536));
  std::vector<PhysDevice> devs;
  std::vector<net::SockAddr> addrs;
  for (NetdevDevice& n : netdevs) {
    n.dev.maxComms = maxComms;
    devs.push_back(n.dev);
    addrs.push_back(n.addr);
  }
  return std::unique_ptr<Backend>(new TcpBackend(std::move(devs), std::move(addrs), cfg));
}

}  // namespace trellis::ncclnet
