// Strangers: while a 4-rank job runs (create, AllReduces checked element by element, a split with
// its own rendezvous, destroy), a thread of the test connects to every TCP port the job's
// processes listen on (found in /proc: the rendezvous root, each rank's bootstrap listener, the TCP
// transport's listeners while connections are set up) and sends what a stranger might: nothing,
// random bytes, short headers, forged headers with huge lengths, join requests and hellos with a
// wrong secret. The job must finish correctly and promptly, and the drops must be logged. Also:
// no listener of the job is bound to a wildcard address.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "../support/harness.h"
#include "core/log.h"
#include "core/params.h"

namespace trellis::test {
namespace {

const int kEnvInit = (setenv("TRELLIS_TIMEOUT_S", "60", 0), 0);

struct Listener {
  sockaddr_storage addr{};
  socklen_t len = 0;
  bool wildcard = false;
  std::string text;
};

std::set<unsigned long> socketInodes(pid_t pid) {
  std::set<unsigned long> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char link[128];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), link, sizeof link - 1);
    if (n <= 0) continue;
    link[n] = '\0';
    unsigned long ino;
    if (std::sscanf(link, "socket:[%lu]", &ino) == 1) out.insert(ino);
  }
  closedir(d);
  return out;
}

std::vector<pid_t> selfAndChildren() {
  std::vector<pid_t> pids{getpid()};
  DIR* d = opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = readdir(d)) {
    char* end;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::ifstream st("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    std::getline(st, line);
    size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state;
    long ppid;
    if (std::sscanf(line.c_str() + close + 1, " %c %ld", &state, &ppid) == 2 && ppid == getpid())
      pids.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return pids;
}

// Listening TCP sockets of the given processes.
std::vector<Listener> listeners(const std::vector<pid_t>& pids) {
  std::set<unsigned long> inodes;
  for (pid_t p : pids) {
    auto s = socketInodes(p);
    inodes.insert(s.begin(), s.end());
  }
  std::vector<Listener> out;
  for (int v6 = 0; v6 < 2; ++v6) {
    std::ifstream f(v6 ? "/proc/net/tcp6" : "/proc/net/tcp");
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string sl, local, remote, st, q, tr, retr, uid, timeout;
      unsigned long inode = 0;
      in >> sl >> local >> remote >> st >> q >> tr >> retr >> uid >> timeout >> inode;
      if (st != "0A" || !inodes.count(inode)) continue;
      size_t colon = local.find(':');
      unsigned port = static_cast<unsigned>(std::stoul(local.substr(colon + 1), nullptr, 16));
      Listener l;
      if (!v6) {
        auto* a = reinterpret_cast<sockaddr_in*>(&l.addr);
        a->sin_family = AF_INET;
        a->sin_port = htons(static_cast<uint16_t>(port));
        a->sin_addr.s_addr = static_cast<uint32_t>(std::stoul(local.substr(0, colon), nullptr, 16));
        l.len = sizeof(sockaddr_in);
        l.wildcard = a->sin_addr.s_addr == 0;
      } else {
        auto* a = reinterpret_cast<sockaddr_in6*>(&l.addr);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(static_cast<uint16_t>(port));
        uint32_t w[4];
        for (int i = 0; i < 4; ++i) w[i] = static_cast<uint32_t>(std::stoul(local.substr(8 * i, 8), nullptr, 16));
        std::memcpy(&a->sin6_addr, w, 16);
        l.len = sizeof(sockaddr_in6);
        l.wildcard = IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr);
      }
      l.text = local;
      out.push_back(l);
    }
  }
  return out;
}

// The wire layouts a stranger would copy from a packet capture (magic numbers of the bootstrap
// join, bootstrap message header, TCP hello and TCP chunk header).
constexpr uint32_t kBootMagic = 0x7e11b007, kHelloMagic = 0x7e11c0de, kChunkMagic = 0x7e11da7a;

std::vector<char> attackBytes(int kind, std::mt19937_64& rng) {
  auto put = [](std::vector<char>& v, auto x) {
    const char* p = reinterpret_cast<const char*>(&x);
    v.insert(v.end(), p, p + sizeof x);
  };
  std::vector<char> v;
  switch (kind) {
    case 0:  // random bytes, random length
      v.resize(1 + rng() % 600);
      for (auto& c : v) c = static_cast<char>(rng());
      break;
    case 1:  // a short header: the right magic, then nothing
      put(v, kBootMagic);
      put(v, uint32_t{3});
      break;
    case 2: {  // bootstrap message header, wrong secret, huge length
      put(v, kBootMagic);
      put(v, uint32_t{3});
      for (int i = 0; i < 2; ++i) put(v, rng());
      put(v, int32_t{0});
      put(v, uint32_t{0x1000});
      put(v, ~uint64_t{0});
      break;
    }
    case 3: {  // join request with a wrong secret, claiming rank 0 of 4
      put(v, kBootMagic);
      put(v, uint32_t{1});
      for (int i = 0; i < 2; ++i) put(v, rng());
      put(v, int32_t{4});
      put(v, int32_t{0});
      for (int i = 0; i < 7; ++i) put(v, uint32_t{0x02000000});
      break;
    }
    case 4: {  // TCP hello from "rank 0" with a wrong secret
      put(v, kHelloMagic);
      put(v, int32_t{0});
      put(v, int32_t{0});
      put(v, int32_t{0});
      for (int i = 0; i < 2; ++i) put(v, rng());
      break;
    }
    case 5: {  // a TCP chunk header with huge lengths (no hello first)
      put(v, kChunkMagic);
      put(v, ~uint32_t{0});
      put(v, uint64_t{0});
      put(v, ~uint64_t{0} - 5);
      put(v, ~uint64_t{0});
      put(v, uint64_t{0});
      break;
    }
    default:  // 6: connect and close; 7: connect and stay silent
      break;
  }
  return v;
}
constexpr int kKinds = 8;

struct Stranger {
  std::string readyFile;  // created once the rendezvous root has had kRootAttacks connections
  static constexpr int kRootAttacks = 32;
  std::atomic<bool> stop{false};
  std::atomic<int> attacks{0};
  std::set<std::string> ports;
  std::vector<std::string> wildcards;
  std::thread t;
  void start() {
    t = std::thread([this] {
      std::mt19937_64 rng(12345);
      std::vector<int> silent;  // connections held open without a word
      int kind = 0;
      while (!stop) {
        for (const Listener& l : listeners(selfAndChildren())) {
          ports.insert(l.text);
          if (l.wildcard) wildcards.push_back(l.text);
          int fd = socket(l.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
          if (fd < 0) continue;
          if (connect(fd, reinterpret_cast<const sockaddr*>(&l.addr), l.len) != 0) {
            close(fd);
            continue;
          }
          ++attacks;
          int k = kind++ % kKinds;
          std::vector<char> bytes = attackBytes(k, rng);
          if (!bytes.empty()) (void)!send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          if (k == 1 || k == 7) {
            silent.push_back(fd);
            if (silent.size() > 64) {
              close(silent.front());
              silent.erase(silent.begin());
            }
          } else {
            close(fd);
          }
        }
        if (attacks >= kRootAttacks && !readyFile.empty()) {
          std::ofstream(readyFile) << "ready\n";
          readyFile.clear();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      for (int fd : silent) close(fd);
    });
  }
  void finish() {
    stop = true;
    if (t.joinable()) t.join();
  }
};

class StrangerTest : public ::testing::TestWithParam<std::tuple<Wire, RankMode>> {};

TEST_P(StrangerTest, JobFinishesCorrectlyAndDropsAreLogged) {
#if defined(__SANITIZE_THREAD__)
  // The rank processes are forked while the stranger's thread runs and then start threads of their
  // own, which ThreadSanitizer does not support ("dup thread with used id", or it kills the child
  // with die_after_fork). The thread variants run.
  if (std::get<1>(GetParam()) == RankMode::kProcesses)
    GTEST_SKIP() << "ThreadSanitizer cannot follow threads started after a multithreaded fork";
#endif
#if defined(__SANITIZE_ADDRESS__)
  // The same fork, under AddressSanitizer: its allocator's locks are not reset in the child, so a
  // rank forked while the stranger's thread is inside malloc blocks forever in its first
  // allocation (seen in 1 of 3-8 runs: rank 0 in the allocator's mutex, the others waiting for it
  // at the rendezvous; gdb backtraces). glibc's malloc has fork handlers; ASan's does not. The
  // thread variants run, and the process variants in the normal build.
  if (std::get<1>(GetParam()) == RankMode::kProcesses)
    GTEST_SKIP() << "AddressSanitizer's allocator is not fork-safe while another thread allocates";
#endif
  char dir[] = "/tmp/trellis-stranger-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_TRUE(findParam("TRELLIS_DEBUG_FILE")->setOverride(std::string(dir) + "/log-%p.txt").isOk());
  reloadLogConfig();
  // Ranks join only after the stranger has hit the rendezvous root (the only listener then) with
  // every kind of attack several times, leaving silent connections queued ahead of the joins.
  Stranger stranger;
  stranger.readyFile = std::string(dir) + "/ready";
  std::string ready = stranger.readyFile;
  setBeforeInitHook([ready](int) {
    for (int i = 0; i < 3000 && access(ready.c_str(), F_OK) != 0; ++i) usleep(10000);
  });
  stranger.start();
  auto t0 = std::chrono::steady_clock::now();
  std::string err = runRanksOver(std::get<0>(GetParam()), 4, std::get<1>(GetParam()),
                                 [](trellisComm_t c, int r, int n) -> std::string {
    std::string who = "rank " + std::to_string(r) + ": ";
    for (int it = 0; it < 100; ++it) {
      size_t count = 1 + (static_cast<size_t>(it) * 7919) % 70000;
      std::vector<int32_t> in(count), out(count, -1);
      for (size_t i = 0; i < count; ++i) in[i] = (r + 1) * static_cast<int32_t>(i % 13);
      if (trellisAllReduce(in.data(), out.data(), count, trellisInt32, trellisSum, c, nullptr) != trellisSuccess)
        return who + "AllReduce: " + trellisGetLastError(c);
      for (size_t i = 0; i < count; ++i)
        if (out[i] != n * (n + 1) / 2 * static_cast<int32_t>(i % 13)) return who + "wrong AllReduce result";
    }
    trellisComm_t sub = nullptr;
    if (trellisCommSplit(c, r % 2, r, &sub, nullptr) != trellisSuccess) return who + "split: " + trellisGetLastError(c);
    int32_t one = 1, sum = 0;
    trellisResult_t res = trellisAllReduce(&one, &sum, 1, trellisInt32, trellisSum, sub, nullptr);
    std::string e = res != trellisSuccess ? who + "AllReduce on the split: " + trellisGetLastError(sub)
                    : sum != n / 2 ? who + "split AllReduce gave " + std::to_string(sum) : "";
    trellisCommDestroy(sub);
    return e;
  }, 120);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stranger.finish();
  setBeforeInitHook(nullptr);
  (void)findParam("TRELLIS_DEBUG_FILE")->setOverride("");
  reloadLogConfig();
  EXPECT_EQ(err, "");
  // A silent stranger costs no one time: well under the 5 s grace one of them used to cost each.
  EXPECT_LT(secs, 20.0);
  EXPECT_GE(stranger.attacks.load(), Stranger::kRootAttacks) << "ports seen: " << stranger.ports.size();
  EXPECT_GE(stranger.ports.size(), 5u) << "the root and four bootstrap listeners at least";
  EXPECT_TRUE(stranger.wildcards.empty()) << "a listener bound to a wildcard address: " << stranger.wildcards[0];
  // The drops were logged.
  int dropped = 0;
  if (DIR* d = opendir(dir)) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      if (std::string(e->d_name) == "ready") {
        unlink((std::string(dir) + "/ready").c_str());
        continue;
      }
      std::string path = std::string(dir) + "/" + e->d_name;
      std::ifstream f(path);
      std::string line;
      while (std::getline(f, line)) dropped += line.find("dropped") != std::string::npos;
      unlink(path.c_str());
    }
    closedir(d);
  }
  rmdir(dir);
  EXPECT_GT(dropped, 0);
  std::printf("%.1f s, %d stranger connections to %zu ports, %d drops logged\n", secs, stranger.attacks.load(),
              stranger.ports.size(), dropped);
}

INSTANTIATE_TEST_SUITE_P(Modes, StrangerTest,
                         ::testing::Combine(::testing::Values(Wire::kShm, Wire::kTcp),
                                            ::testing::Values(RankMode::kThreads, RankMode::kProcesses)),
                         [](const auto& i) {
                           return std::string(wireName(std::get<0>(i.param))) + "_" + modeName(std::get<1>(i.param));
                         });

}  // namespace
}  // namespace trellis::test
