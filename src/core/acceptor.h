// Accepting connections that must introduce themselves: a listener plus every accepted connection
// still sending its fixed-size greeting (join request, message header, hello), read concurrently.
// A stranger that connects and stays silent, trickles bytes or closes early costs only its own
// slot until its grace period ends; it never delays the peers behind it. Callers validate the
// greeting (secret, ranks, lengths) and drop what fails; drops are logged with the address.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "core/socket.h"

namespace trellis::net {

class GreetingAcceptor {
 public:
  /// `listenFd` stays owned by the caller. `what` names the listener in log lines ("bootstrap root
  /// 10.0.0.1:5000"). At most `maxPending` connections wait for their greeting at once (the oldest
  /// is dropped to make room).
  GreetingAcceptor(int listenFd, size_t greetingBytes, double graceS, std::string what, size_t maxPending = 256);
  /// The same over several listeners (one per NIC), served alike.
  GreetingAcceptor(std::vector<int> listenFds, size_t greetingBytes, double graceS, std::string what,
                   size_t maxPending = 256);

  struct Arrival {
    Socket sock;
    SockAddr from;
    std::vector<char> greeting;
  };
  /// The next connection whose whole greeting arrived, accepted before `deadline`.
  Result<Arrival> next(Deadline deadline, const std::atomic<bool>* abort);
  /// Connections currently waiting for their greeting.
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    Socket sock;
    SockAddr from;
    std::vector<char> buf;
    size_t got = 0;
    Deadline expires;
  };
  void acceptAll(int listenFd);
  void drop(Pending& p, const char* why);

  std::vector<int> listenFds_;
  size_t greetingBytes_;
  double graceS_;
  std::string what_;
  size_t maxPending_;
  std::deque<Pending> pending_;
};

}  // namespace trellis::net
