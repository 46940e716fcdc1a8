#include "core/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstring>

#include "core/log.h"
#include "core/params.h"

namespace trellis::net {

static Param<std::string> kIfname("TRELLIS_SOCKET_IFNAME", "",
                                  "interfaces for Trellis TCP traffic: prefixes (eth,ib), ^ to exclude "
                                  "(^docker,lo), = for exact names (=eth0); empty: automatic");
static Param<std::string> kFamily("TRELLIS_SOCKET_FAMILY", "",
                                  "restrict to AF_INET or AF_INET6 (empty: both, IPv4 first)");

uint16_t SockAddr::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

void SockAddr::setPort(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
}

std::string SockAddr::toString() const {
  char host[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(port());
  }
  return "<no address>";
}

bool SockAddr::operator==(const SockAddr& o) const {
  return len == o.len && std::memcmp(&storage, &o.storage, len) == 0;
}

WireAddr toWire(const SockAddr& a) {
  WireAddr w{};
  w.family = static_cast<uint16_t>(a.family());
  w.portBe = htons(a.port());
  if (a.family() == AF_INET) {
    std::memcpy(w.addr, &reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr, 4);
  } else if (a.family() == AF_INET6) {
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    std::memcpy(w.addr, &s6->sin6_addr, 16);
    w.scopeId = s6->sin6_scope_id;
  }
  return w;
}

Result<SockAddr> fromWire(const WireAddr& w) {
  SockAddr a;
  if (w.family == AF_INET) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    s4->sin_family = AF_INET;
    s4->sin_port = w.portBe;
    std::memcpy(&s4->sin_addr, w.addr, 4);
    a.len = sizeof(sockaddr_in);
  } else if (w.family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = w.portBe;
    std::memcpy(&s6->sin6_addr, w.addr, 16);
    s6->sin6_scope_id = w.scopeId;
    a.len = sizeof(sockaddr_in6);
  } else {
    return invalidArgument("address family %u is neither AF_INET nor AF_INET6", w.family);
  }
  return a;
}

namespace {
struct IfFilter {
  bool exclude = false;
  bool exact = false;
  std::vector<std::string> names;
  bool matches(const std::string& ifname) const {
    bool hit = false;
    for (const auto& n : names)
      if (exact ? ifname == n : ifname.compare(0, n.size(), n) == 0) hit = true;
    return exclude ? !hit : hit;
  }
};

IfFilter parseFilter(std::string spec) {
  IfFilter f;
  if (!spec.empty() && spec[0] == '^') { f.exclude = true; spec.erase(0, 1); }
  if (!spec.empty() && spec[0] == '=') { f.exact = true; spec.erase(0, 1); }
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    if (comma > pos) f.names.push_back(spec.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return f;
}
}  // namespace

Result<std::vector<Interface>> findInterfaces() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return systemError(errno, "getifaddrs");
  std::string spec = kIfname.get();
  std::string fam = kFamily.get();
  int wantFamily = fam == "AF_INET" ? AF_INET : fam == "AF_INET6" ? AF_INET6 : AF_UNSPEC;
  bool automatic = spec.empty();
  IfFilter filter = parseFilter(automatic ? "^docker,lo,virbr" : spec);
  std::vector<Interface> found, loopback;
  for (int pass = 0; pass < 2; ++pass) {  // IPv4 first, then IPv6
    int family = pass == 0 ? AF_INET : AF_INET6;
    if (wantFamily != AF_UNSPEC && wantFamily != family) continue;
    for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
      if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != family) continue;
      if (!(it->ifa_flags & IFF_UP)) continue;
      if (family == AF_INET6) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(it->ifa_addr);
        if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)) continue;  // needs scope ids across hosts
      }
      Interface i;
      i.name = it->ifa_name;
      i.addr.len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      std::memcpy(&i.addr.storage, it->ifa_addr, i.addr.len);
      i.addr.setPort(0);
      if (filter.matches(i.name)) found.push_back(i);
      else if (automatic && (it->ifa_flags & IFF_LOOPBACK)) loopback.push_back(i);
    }
  }
  freeifaddrs(list);
  if (found.empty() && automatic) found = loopback;
  if (found.empty())
    return invalidArgument("no up interface matches TRELLIS_SOCKET_IFNAME='%s'%s%s", spec.c_str(),
                           fam.empty() ? "" : " with TRELLIS_SOCKET_FAMILY=", fam.c_str());
  return found;
}

Result<Interface> selectInterface() {
  TRELLIS_ASSIGN_OR_RETURN(auto all, findInterfaces());
  TRELLIS_INFO(kBoot, "using interface %s (%s)", all[0].name.c_str(), all[0].addr.toString().c_str());
  return all[0];
}

Result<SockAddr> parseHostPort(const std::string& text) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return invalidArgument("'%s' is not [ipv6]:port", text.c_str());
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return invalidArgument("'%s' has no :port", text.c_str());
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535)
    return invalidArgument("port '%s' in '%s' is not in [0, 65535]", port.c_str(), text.c_str());
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr)
    return invalidArgument("cannot resolve host '%s' in '%s': %s", host.c_str(), text.c_str(), gai_strerror(rc));
  SockAddr a;
  a.len = res->ai_addrlen;
  std::memcpy(&a.storage, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  a.setPort(static_cast<uint16_t>(p));
  return a;
}

void Socket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status setNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return systemError(errno, "fcntl(O_NONBLOCK)");
  return Status::ok();
}

void setNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Result<Socket> listenOn(const SockAddr& addr, SockAddr* bound) {
  Socket s(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return systemError(errno, "socket()");
  int one = 1;
  setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s.fd(), addr.sa(), addr.len) != 0) return systemError(errno, "bind(%s)", addr.toString().c_str());
  if (::listen(s.fd(), SOMAXCONN) != 0) return systemError(errno, "listen(%s)", addr.toString().c_str());
  TRELLIS_TRY(setNonBlocking(s.fd()));
  if (bound != nullptr) {
    bound->len = sizeof(bound->storage);
    if (getsockname(s.fd(), reinterpret_cast<sockaddr*>(&bound->storage), &bound->len) != 0)
      return systemError(errno, "getsockname");
  }
  return s;
}

static int msUntil(Deadline deadline, int cap) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left < 0) return 0;
  return static_cast<int>(left < cap ? left : cap);
}

static Status waitFd(int fd, short events, Deadline deadline, const std::atomic<bool>* abort,
                     const char* what) {
  for (;;) {
    if (abort != nullptr && abort->load(std::memory_order_relaxed)) return remoteError("%s aborted", what);
    if (Clock::now() >= deadline) return timeoutError("%s timed out", what);
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, msUntil(deadline, 100));
    if (rc > 0) return Status::ok();
    if (rc < 0 && errno != EINTR) return systemError(errno, "poll");
  }
}

Result<Socket> connectTo(const SockAddr& addr, Deadline deadline, const std::atomic<bool>* abort,
                         const SockAddr* local) {
  int delayMs = 5;
  for (;;) {
    Socket s(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s.valid()) return systemError(errno, "socket()");
    if (local != nullptr && ::bind(s.fd(), local->sa(), local->len) != 0)
      return systemError(errno, "bind(%s) before connecting to %s", local->toString().c_str(),
                         addr.toString().c_str());
    int rc = ::connect(s.fd(), addr.sa(), addr.len);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      Status w = waitFd(s.fd(), POLLOUT, deadline, abort, "connect");
      if (!w.isOk()) return w.withContext("connecting to " + addr.toString());
      socklen_t len = sizeof err;
      getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
    }
    if (err == 0) {
      setNoDelay(s.fd());
      return s;
    }
    bool retry = err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH ||
                 err == ENETUNREACH || err == ECONNRESET || err == EAGAIN;
    if (!retry) return systemError(err, "connect(%s)", addr.toString().c_str());
    if (abort != nullptr && abort->load()) return remoteError("connect(%s) aborted", addr.toString().c_str());
    if (Clock::now() + std::chrono::milliseconds(delayMs) >= deadline)
      return timeoutError("cannot connect to %s before the deadline (last error: %s)",
                          addr.toString().c_str(), strerror(err));
    ::usleep(delayMs * 1000);
    delayMs = delayMs < 200 ? delayMs * 2 : 200;
  }
}

Result<Socket> acceptOne(int listenFd, Deadline deadline, const std::atomic<bool>* abort, SockAddr* peer) {
  for (;;) {
    SockAddr from;
    from.len = sizeof from.storage;
    int fd = ::accept4(listenFd, reinterpret_cast<sockaddr*>(&from.storage), &from.len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      setNoDelay(fd);
      if (peer != nullptr) *peer = from;
      return Socket(fd);
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
      return systemError(errno, "accept");
    TRELLIS_TRY(waitFd(listenFd, POLLIN, deadline, abort, "accept"));
  }
}

Result<Socket> acceptAny(const std::vector<int>& listenFds, Deadline deadline, const std::atomic<bool>* abort,
                        SockAddr* peer) {
  if (listenFds.size() == 1) return acceptOne(listenFds[0], deadline, abort, peer);
  std::vector<pollfd> pf;
  for (int fd : listenFds) pf.push_back({fd, POLLIN, 0});
  for (;;) {
    for (int fd : listenFds) {
      SockAddr from;
      from.len = sizeof from.storage;
      int c = ::accept4(fd, reinterpret_cast<sockaddr*>(&from.storage), &from.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c >= 0) {
        setNoDelay(c);
        if (peer != nullptr) *peer = from;
        return Socket(c);
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
        return systemError(errno, "accept");
    }
    if (abort != nullptr && abort->load(std::memory_order_relaxed)) return remoteError("accept aborted");
    if (Clock::now() >= deadline) return timeoutError("accept timed out");
    for (auto& p : pf) p.revents = 0;
    int rc = ::poll(pf.data(), pf.size(), msUntil(deadline, 100));
    if (rc < 0 && errno != EINTR) return systemError(errno, "poll");
  }
}

Status sendAll(int fd, const void* data, size_t bytes, Deadline deadline, const std::atomic<bool>* abort) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::send(fd, p, bytes, MSG_NOSIGNAL);
    if (n > 0) { p += n; bytes -= static_cast<size_t>(n); continue; }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      TRELLIS_TRY(waitFd(fd, POLLOUT, deadline, abort, "send"));
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return remoteError("connection closed by peer (%s)", strerror(errno));
    return systemError(errno, "send");
  }
  return Status::ok();
}

Status recvAll(int fd, void* data, size_t bytes, Deadline deadline, const std::atomic<bool>* abort) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    ssize_t n = ::recv(fd, p, bytes, 0);
    if (n > 0) { p += n; bytes -= static_cast<size_t>(n); continue; }
    if (n == 0) return remoteError("connection closed by peer with %zu bytes still expected", bytes);
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      TRELLIS_TRY(waitFd(fd, POLLIN, deadline, abort, "recv"));
      continue;
    }
    if (errno == ECONNRESET) return remoteError("connection reset by peer");
    return systemError(errno, "recv");
  }
  return Status::ok();
}

bool constantTimeEqual(const void* a, const void* b, size_t n) {
  const volatile unsigned char* x = static_cast<const volatile unsigned char*>(a);
  const volatile unsigned char* y = static_cast<const volatile unsigned char*>(b);
  unsigned char diff = 0;
  for (size_t i = 0; i < n; ++i) diff |= x[i] ^ y[i];
  return diff == 0;
}

Status randomBytes(void* out, size_t n) {
  char* p = static_cast<char*>(out);
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return systemError(errno, "getrandom");
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
  return Status::ok();
}

}  // namespace trellis::net
