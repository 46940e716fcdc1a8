#include "core/acceptor.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "core/log.h"

namespace trellis::net {

GreetingAcceptor::GreetingAcceptor(int listenFd, size_t greetingBytes, double graceS, std::string what,
                                   size_t maxPending)
    : GreetingAcceptor(std::vector<int>{listenFd}, greetingBytes, graceS, std::move(what), maxPending) {}

GreetingAcceptor::GreetingAcceptor(std::vector<int> listenFds, size_t greetingBytes, double graceS,
                                   std::string what, size_t maxPending)
    : listenFds_(std::move(listenFds)), greetingBytes_(greetingBytes), graceS_(graceS), what_(std::move(what)),
      maxPending_(std::max<size_t>(maxPending, 1)) {}

void GreetingAcceptor::drop(Pending& p, const char* why) {
  TRELLIS_WARN(kNet, "%s: dropped a connection from %s: %s (%zu of %zu greeting bytes received)", what_.c_str(),
               p.from.toString().c_str(), why, p.got, greetingBytes_);
  p.sock.close();
}

void GreetingAcceptor::acceptAll(int listenFd) {
  for (;;) {
    SockAddr from;
    from.len = sizeof from.storage;
    int fd = ::accept4(listenFd, reinterpret_cast<sockaddr*>(&from.storage), &from.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        TRELLIS_WARN(kNet, "%s: accept failed: %s", what_.c_str(), strerror(errno));  // EMFILE and the like
      return;
    }
    setNoDelay(fd);
    if (pending_.size() >= maxPending_) {
      drop(pending_.front(), "too many connections still silent");
      pending_.pop_front();
    }
    Pending p;
    p.sock = Socket(fd);
    p.from = from;
    p.buf.resize(greetingBytes_);
    p.expires = deadlineIn(graceS_);
    pending_.push_back(std::move(p));
  }
}

Result<GreetingAcceptor::Arrival> GreetingAcceptor::next(Deadline deadline, const std::atomic<bool>* abort) {
  std::vector<pollfd> fds;
  for (;;) {
    if (abort != nullptr && abort->load(std::memory_order_relaxed)) return remoteError("%s: accept aborted", what_.c_str());
    // Complete greetings first (one call returns one; the rest wait for the next call).
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (it->got < greetingBytes_) continue;
      Arrival out{std::move(it->sock), it->from, std::move(it->buf)};
      pending_.erase(it);
      return out;
    }
    Deadline now = Clock::now();
    // Expire the silent ones; note when the next one will.
    Deadline wake = std::min(deadline, now + std::chrono::milliseconds(100));
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->expires <= now) {
        drop(*it, "no complete greeting within the grace period");
        it = pending_.erase(it);
        continue;
      }
      wake = std::min(wake, it->expires);
      ++it;
    }
    if (now >= deadline) return timeoutError("%s: accept timed out", what_.c_str());
    fds.clear();
    for (int l : listenFds_) fds.push_back({l, POLLIN, 0});
    for (auto& p : pending_) fds.push_back({p.sock.fd(), POLLIN, 0});
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count()) + 1;
    int rc = ::poll(fds.data(), fds.size(), ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return systemError(errno, "%s: poll", what_.c_str());
    }
    if (rc == 0) continue;
    // Read from the connections polled (fds[L..] match pending_ until it changes below).
    const size_t L = listenFds_.size(), n = pending_.size();
    std::vector<bool> gone(n, false);
    for (size_t i = 0; i < n; ++i) {
      if (fds[L + i].revents == 0) continue;
      Pending& p = pending_[i];
      while (p.got < greetingBytes_) {
        ssize_t r = ::recv(p.sock.fd(), p.buf.data() + p.got, greetingBytes_ - p.got, 0);
        if (r > 0) {
          p.got += static_cast<size_t>(r);
          continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        drop(p, r == 0 ? "closed before completing its greeting" : strerror(errno));
        gone[i] = true;
        break;
      }
    }
    for (size_t i = n; i-- > 0;)
      if (gone[i]) pending_.erase(pending_.begin() + static_cast<long>(i));
    for (size_t l = 0; l < L; ++l)
      if (fds[l].revents != 0) acceptAll(listenFds_[l]);
  }
}

}  // namespace trellis::net
