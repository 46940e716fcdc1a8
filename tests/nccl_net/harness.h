// Process harness for the plugin tests: two forked ranks joined by socketpairs (the "bootstrap"
// over which NCCL would exchange listen handles), each loading the plugin itself with dlopen, as a
// process running NCCL would. A rank that fails, dies or outlives the timeout fails the test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace nccltest {

/// One end of a socketpair; every wait is bounded (30 s) and a closed peer fails loudly.
class Channel {
 public:
  explicit Channel(int fd = -1) : fd_(fd) {}
  void send(const void* data, size_t n);
  void recv(void* data, size_t n);
  void sendU64(uint64_t v) { send(&v, sizeof v); }
  uint64_t recvU64() {
    uint64_t v = 0;
    recv(&v, sizeof v);
    return v;
  }
  /// Both ranks reach this point.
  void barrier() {
    sendU64(0xba55);
    recvU64();
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

/// Path of the plugin under test (the build's libnccl-net-trellis.so).
std::string pluginPath();
/// dlopen()s the plugin (RTLD_NOW | RTLD_LOCAL), failing the test if it cannot.
void* openPlugin();

/// A rank that cannot run its case on this machine calls skipRank(why): it exits with kSkipExit and
/// runTwo/runOne return true (the test then calls GTEST_SKIP, so a skip is never counted as a
/// pass).
constexpr int kSkipExit = 77;
[[noreturn]] void skipRank(const char* why);

/// Runs body(rank, channels) in two processes; `channels` has `nChannels` socketpair ends shared
/// with the other rank (one per thread for multi-threaded tests). Returns true when a rank skipped.
/// A skip where `maySkip` is false is a failure.
bool runTwo(const std::function<void(int rank, std::vector<Channel>& channels)>& body,
            double timeoutS = 120, int nChannels = 1, bool maySkip = false);
/// Runs body() in one forked process (a fresh plugin state). Returns true when it skipped.
bool runOne(const std::function<void()>& body, double timeoutS = 60, bool maySkip = false);

}  // namespace nccltest
