#include "harness.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

// LeakSanitizer's check runs at exit(); forked ranks leave with _exit(), so they ask for it
// explicitly when the runtime is there (a leak then exits non-zero and fails the test).
extern "C" int __lsan_do_recoverable_leak_check() __attribute__((weak));

namespace nccltest {

namespace {
using Clock = std::chrono::steady_clock;

[[noreturn]] void leaveRank(int code) {
  fflush(stdout);
  fflush(stderr);
  if (code == 0 && __lsan_do_recoverable_leak_check != nullptr &&
      __lsan_do_recoverable_leak_check() != 0)
    code = 23;
  _exit(code);
}

void waitFd(int fd, short events) {
  pollfd p{fd, events, 0};
  int rc;
  do rc = ::poll(&p, 1, 30000);
  while (rc < 0 && errno == EINTR);
  if (rc == 0) {
    fprintf(stderr, "[pid %d] channel: no progress in 30 s; the other rank is stuck or gone\n",
            getpid());
    _exit(3);
  }
}
}  // namespace

void Channel::send(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    waitFd(fd_, POLLOUT);
    ssize_t k = ::send(fd_, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (k <= 0) {
      fprintf(stderr, "[pid %d] channel send: %s\n", getpid(), strerror(errno));
      _exit(3);
    }
    p += k;
    n -= static_cast<size_t>(k);
  }
}

void Channel::recv(void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    waitFd(fd_, POLLIN);
    ssize_t k = ::recv(fd_, p, n, MSG_DONTWAIT);
    if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (k <= 0) {
      fprintf(stderr, "[pid %d] channel recv: the other rank closed its end (%s)\n", getpid(),
              k == 0 ? "EOF" : strerror(errno));
      _exit(3);
    }
    p += k;
    n -= static_cast<size_t>(k);
  }
}

std::string pluginPath() { return TRELLIS_NCCL_PLUGIN_PATH; }

void* openPlugin() {
  void* lib = dlopen(pluginPath().c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) ADD_FAILURE() << "dlopen(" << pluginPath() << "): " << dlerror();
  return lib;
}

namespace {

// Waits for every pid until the deadline; kills the rest then. Returns a message per failed rank;
// *skipped says whether a rank exited with kSkipExit.
std::vector<std::string> reap(std::vector<pid_t> pids, double timeoutS, bool* skipped) {
  *skipped = false;
  std::vector<std::string> errors;
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(timeoutS));
  std::vector<bool> done(pids.size(), false);
  size_t left = pids.size();
  while (left > 0) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (done[i]) continue;
      int status = 0;
      pid_t r = waitpid(pids[i], &status, WNOHANG);
      if (r == 0) continue;
      done[i] = true;
      --left;
      if (WIFEXITED(status) && WEXITSTATUS(status) == kSkipExit)
        *skipped = true;
      else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        errors.push_back("rank " + std::to_string(i) + " exited with " +
                         std::to_string(WEXITSTATUS(status)));
      else if (WIFSIGNALED(status))
        errors.push_back("rank " + std::to_string(i) + " died of signal " +
                         std::to_string(WTERMSIG(status)));
    }
    if (left == 0) break;
    if (Clock::now() > deadline) {
      for (size_t i = 0; i < pids.size(); ++i)
        if (!done[i]) {
          kill(pids[i], SIGKILL);
          waitpid(pids[i], nullptr, 0);
          errors.push_back("rank " + std::to_string(i) + " still running after " +
                           std::to_string(timeoutS) + " s: killed");
        }
      break;
    }
    usleep(2000);
  }
  return errors;
}

}  // namespace

void skipRank(const char* why) {
  fprintf(stderr, "[pid %d] skipping: %s\n", getpid(), why);
  fflush(stdout);
  fflush(stderr);
  _exit(kSkipExit);
}

bool runTwo(const std::function<void(int, std::vector<Channel>&)>& body, double timeoutS,
            int nChannels, bool maySkip) {
  std::vector<int> ends[2];
  for (int c = 0; c < nChannels; ++c) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      ADD_FAILURE() << "socketpair: " << strerror(errno);
      return false;
    }
    ends[0].push_back(sv[0]);
    ends[1].push_back(sv[1]);
  }
  fflush(stdout);
  fflush(stderr);
  std::vector<pid_t> pids;
  for (int rank = 0; rank < 2; ++rank) {
    pid_t pid = fork();
    if (pid < 0) {
      ADD_FAILURE() << "fork: " << strerror(errno);
      for (pid_t p : pids) kill(p, SIGKILL);
      return false;
    }
    if (pid == 0) {
      for (int fd : ends[1 - rank]) close(fd);
      std::vector<Channel> channels;
      for (int fd : ends[rank]) channels.emplace_back(fd);
      body(rank, channels);
      leaveRank(::testing::Test::HasFailure() ? 1 : 0);
    }
    pids.push_back(pid);
  }
  for (int r = 0; r < 2; ++r)
    for (int fd : ends[r]) close(fd);
  bool skipped = false;
  for (const std::string& e : reap(pids, timeoutS, &skipped)) ADD_FAILURE() << e;
  if (skipped && !maySkip) ADD_FAILURE() << "a rank skipped a case that must run everywhere";
  return skipped;
}

bool runOne(const std::function<void()>& body, double timeoutS, bool maySkip) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << strerror(errno);
    return false;
  }
  if (pid == 0) {
    body();
    leaveRank(::testing::Test::HasFailure() ? 1 : 0);
  }
  bool skipped = false;
  for (const std::string& e : reap({pid}, timeoutS, &skipped)) ADD_FAILURE() << e;
  if (skipped && !maySkip) ADD_FAILURE() << "the process skipped a case that must run everywhere";
  return skipped;
}

}  // namespace nccltest
