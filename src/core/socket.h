// TCP socket helpers shared by the bootstrap and the TCP transport: interface selection
// (TRELLIS_SOCKET_IFNAME with NCCL's syntax), listening, connecting with retries until a deadline,
// and blocking-with-deadline send/receive of whole buffers. Every wait is bounded.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace trellis::net {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

/// Deadline `seconds` from now.
inline Deadline deadlineIn(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

/// An IPv4 or IPv6 socket address.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  int family() const { return storage.ss_family; }
  uint16_t port() const;
  void setPort(uint16_t port);
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
  /// "10.0.0.5:41234" or "[fe80::1]:41234".
  std::string toString() const;
  bool operator==(const SockAddr& o) const;
};

/// Fixed-size wire form of an address (28 bytes): family, port (network order), 16 address bytes.
struct WireAddr {
  uint16_t family;
  uint16_t portBe;
  uint32_t scopeId;
  uint8_t addr[16];
  uint32_t reserved;
};
static_assert(sizeof(WireAddr) == 28, "WireAddr is part of the bootstrap protocol");
WireAddr toWire(const SockAddr& a);
/// Validates the family before converting (wire data is untrusted).
Result<SockAddr> fromWire(const WireAddr& w);

/// An interface chosen for Trellis traffic.
struct Interface {
  std::string name;
  SockAddr addr;  // port 0
};

/// Interfaces matching TRELLIS_SOCKET_IFNAME (prefix list; "^" excludes; "=" exact names), in the
/// order found. Default: every up, non-loopback interface except docker/virtual bridges; loopback
/// when nothing else exists. TRELLIS_SOCKET_FAMILY=AF_INET|AF_INET6 restricts the family.
Result<std::vector<Interface>> findInterfaces();
/// The first interface of findInterfaces().
Result<Interface> selectInterface();

/// Parses "host:port", "[v6]:port", "v4addr:port" (numeric hosts or names resolved by getaddrinfo).
Result<SockAddr> parseHostPort(const std::string& text);

/// Owning file descriptor.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { close(); }
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept {
    if (this != &o) { close(); fd_ = o.fd_; o.fd_ = -1; }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void close();

 private:
  int fd_ = -1;
};

/// Listens on `addr` (port 0: ephemeral). Returns the socket and the bound address.
Result<Socket> listenOn(const SockAddr& addr, SockAddr* bound);
/// Connects, retrying refused/unreachable attempts until `deadline`. The socket is non-blocking
/// with TCP_NODELAY on return. `local` (port 0), when given, is bound first: the connection's
/// source address, so its traffic leaves through that interface where source routing is set up.
Result<Socket> connectTo(const SockAddr& addr, Deadline deadline, const std::atomic<bool>* abort,
                         const SockAddr* local = nullptr);
/// Accepts one connection before `deadline` (non-blocking socket with TCP_NODELAY on return).
Result<Socket> acceptOne(int listenFd, Deadline deadline, const std::atomic<bool>* abort, SockAddr* peer);
/// Accepts one connection on whichever of `listenFds` has one first, before `deadline`.
Result<Socket> acceptAny(const std::vector<int>& listenFds, Deadline deadline, const std::atomic<bool>* abort,
                         SockAddr* peer);
/// Sends/receives exactly `bytes` before `deadline` on a non-blocking socket. A closed connection
/// is a remote error.
Status sendAll(int fd, const void* data, size_t bytes, Deadline deadline, const std::atomic<bool>* abort);
Status recvAll(int fd, void* data, size_t bytes, Deadline deadline, const std::atomic<bool>* abort);
Status setNonBlocking(int fd);
void setNoDelay(int fd);

/// Constant-time comparison (secrets).
bool constantTimeEqual(const void* a, const void* b, size_t n);
/// Fills `out` with cryptographically random bytes (getrandom).
Status randomBytes(void* out, size_t n);

}  // namespace trellis::net
