// trellis-nccl-net-bench: speed of the NCCL net plugin's backends between two processes on this
// host, driven through ncclNetPlugin_v11 as NCCL's proxy would (post, retry a NULL request, poll
// test). Configurations are tcp with each data-stream count of --sockets, and ucx; each runs in a
// fresh pair of processes (the plugin reads its parameters once per process), configurations
// interleaved over the repetitions. Prints medians (min-max): 8-byte half round-trip latency, and
// one-way bandwidth with a window of messages in flight. Every received message is checked (first
// and last 8 bytes of each).
//
//   trellis-nccl-net-bench [--plugin PATH] [--transports tcp,ucx] [--sockets 1,4] [--reps 3]
//                          [--window 8] [--min 64K] [--max 64M] [--bytes-per-point 256M] [--mbps]
// A transport named NAME+yield (e.g. verbs+yield) runs NAME with ranks that call sched_yield()
// whenever a poll finds nothing (a proxy that gives its core away while idle: on an
// oversubscribed machine the kernel's share of the work then gets CPU time). --mbps prints
// bandwidth in MB/s (10^6 bytes/s) instead of GB/s; --lat-iters N times N ping-pongs (2000).
#include <dlfcn.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "abi/nccl_abi.h"

namespace {

namespace abi = trellis::nccl_abi;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
  fprintf(stderr, "trellis-nccl-net-bench: %s\n", what);
  _exit(2);
}

void xfer(int fd, void* p, size_t n, bool send) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t k = send ? ::write(fd, c, n) : ::read(fd, c, n);
    if (k <= 0) die("socketpair closed");
    c += k;
    n -= static_cast<size_t>(k);
  }
}

size_t parseSize(const char* s) {
  char* end = nullptr;
  double v = strtod(s, &end);
  if (*end == 'K' || *end == 'k') v *= 1024;
  if (*end == 'M' || *end == 'm') v *= 1024 * 1024;
  if (*end == 'G' || *end == 'g') v *= 1024.0 * 1024 * 1024;
  return static_cast<size_t>(v);
}

void check(abi::Result r, const char* call) {
  if (r != abi::kSuccess) {
    fprintf(stderr, "%s returned %d\n", call, r);
    _exit(2);
  }
}

struct Net {
  abi::NetV11* n;
  void* ctx = nullptr;
  void* sc = nullptr;
  void* rc = nullptr;
};

bool gYield = false;  // sched_yield() after every poll that found nothing
int gLatIters = 2000;  // timed ping-pongs (after a tenth as many for warm-up)

void waitReq(Net& net, void* req) {
  int done = 0;
  for (;;) {
    check(net.n->test(req, &done, nullptr), "test");
    if (done) return;
    if (gYield) sched_yield();
  }
}

void* post(Net& net, bool send, void* buf, size_t size, void* mh) {
  void* req = nullptr;
  int tag = 0;
  while (req == nullptr) {
    if (send)
      check(net.n->isend(net.sc, buf, size, tag, mh, nullptr, &req), "isend");
    else
      check(net.n->irecv(net.rc, 1, &buf, &size, &tag, &mh, nullptr, &req), "irecv");
    if (req == nullptr && gYield) sched_yield();
  }
  return req;
}

// One rank's part; rank 0 writes "latency_us bw_1 bw_2 ..." to `out`.
void rankMain(int rank, int ch, int out, const std::string& plugin,
              const std::vector<size_t>& sizes, int window, size_t perPoint) {
  void* lib = dlopen(plugin.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) die(dlerror());
  Net net{static_cast<abi::NetV11*>(dlsym(lib, "ncclNetPlugin_v11"))};
  if (net.n == nullptr) die("no ncclNetPlugin_v11");
  abi::NetCommConfig cfg{-1};
  check(net.n->init(&net.ctx, 1, &cfg, nullptr, nullptr), "init");
  char mine[abi::kHandleMaxSize], peer[abi::kHandleMaxSize];
  void* lc = nullptr;
  check(net.n->listen(net.ctx, 0, mine, &lc), "listen");
  xfer(ch, mine, sizeof mine, true);
  xfer(ch, peer, sizeof peer, false);
  while (net.sc == nullptr || net.rc == nullptr) {
    if (net.sc == nullptr) check(net.n->connect(net.ctx, 0, peer, &net.sc, nullptr), "connect");
    if (net.rc == nullptr) check(net.n->accept(lc, &net.rc, nullptr), "accept");
  }
  size_t maxSize = *std::max_element(sizes.begin(), sizes.end());
  std::vector<std::vector<char>> bufs(window, std::vector<char>(std::max<size_t>(maxSize, 8)));
  std::vector<void*> mh(window);
  for (int w = 0; w < window; ++w)
    check(net.n->regMr(w % 2 ? net.rc : net.sc, bufs[w].data(), bufs[w].size(), abi::kPtrHost,
                       &mh[w]),
          "regMr");
  char ack[8] = {};
  void* ackMh = nullptr;
  check(net.n->regMr(net.sc, ack, sizeof ack, abi::kPtrHost, &ackMh), "regMr");
  std::string result;
  // Latency: 8-byte ping-pong.
  {
    const int iters = gLatIters, warm = std::max(1, gLatIters / 10);
    Clock::time_point t0;
    for (int i = 0; i < iters + warm; ++i) {
      if (i == warm) t0 = Clock::now();
      if (rank == 0) {
        waitReq(net, post(net, true, bufs[0].data(), 8, mh[0]));
        waitReq(net, post(net, false, bufs[1].data(), 8, mh[1]));
      } else {
        waitReq(net, post(net, false, bufs[1].data(), 8, mh[1]));
        waitReq(net, post(net, true, bufs[0].data(), 8, mh[0]));
      }
    }
    double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / iters / 2;
    result += std::to_string(us);
  }
  // Bandwidth: rank 0 sends `window` messages at a time, rank 1 receives; an 8-byte ack ends a
  // point.
  for (size_t size : sizes) {
    int msgs = static_cast<int>(
        std::max<size_t>(static_cast<size_t>(window), perPoint / std::max<size_t>(size, 1)));
    msgs = (msgs + window - 1) / window * window;
    Clock::time_point t0 = Clock::now();
    for (int m = 0; m < msgs; m += window) {
      std::vector<void*> reqs;
      for (int w = 0; w < window; ++w) {
        char* b = bufs[w].data();
        if (rank == 0) {
          uint64_t stamp = static_cast<uint64_t>(m + w) * 2654435761u + size;
          std::memcpy(b, &stamp, 8);
          std::memcpy(b + size - 8, &stamp, 8);
          reqs.push_back(post(net, true, b, size, mh[w]));
        } else {
          reqs.push_back(post(net, false, b, size, mh[w]));
        }
      }
      for (size_t w = 0; w < reqs.size(); ++w) {
        waitReq(net, reqs[w]);
        if (rank == 1) {
          uint64_t want = static_cast<uint64_t>(m + static_cast<int>(w)) * 2654435761u + size, a, z;
          std::memcpy(&a, bufs[w].data(), 8);
          std::memcpy(&z, bufs[w].data() + size - 8, 8);
          if (a != want || z != want) die("wrong data received");
        }
      }
    }
    if (rank == 1)
      waitReq(net, post(net, true, ack, 8, ackMh));
    else
      waitReq(net, post(net, false, ack, 8, ackMh));
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    result += " " + std::to_string(static_cast<double>(size) * msgs / s / 1e9);
  }
  for (int w = 0; w < window; ++w) check(net.n->deregMr(nullptr, mh[w]), "deregMr");
  check(net.n->deregMr(nullptr, ackMh), "deregMr");
  check(net.n->closeSend(net.sc), "closeSend");
  check(net.n->closeRecv(net.rc), "closeRecv");
  check(net.n->closeListen(lc), "closeListen");
  check(net.n->finalize(net.ctx), "finalize");
  if (rank == 0) {
    result += "\n";
    xfer(out, result.data(), result.size(), true);
  }
}

struct Config {
  std::string transport;
  int sockets;  // tcp only
  bool yield = false;
  std::string name() const {
    return (transport == "tcp"
                ? "tcp, " + std::to_string(sockets) + " stream" + (sockets > 1 ? "s" : "")
                : transport) +
           (yield ? ", yielding" : "");
  }
};

// Runs one pair with the configuration; returns latency then one bandwidth per size.
std::vector<double> runPair(const Config& cfg, const std::string& plugin,
                            const std::vector<size_t>& sizes, int window, size_t perPoint) {
  int sv[2], pipefd[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || pipe(pipefd) != 0) die("socketpair/pipe");
  pid_t pids[2];
  for (int rank = 0; rank < 2; ++rank) {
    pids[rank] = fork();
    if (pids[rank] == 0) {
      setenv("TRELLIS_NCCL_NET_TRANSPORT", cfg.transport.c_str(), 1);
      setenv("TRELLIS_NCCL_NET_SOCKETS", std::to_string(cfg.sockets).c_str(), 1);
      gYield = cfg.yield;
      close(sv[1 - rank]);
      close(pipefd[0]);
      rankMain(rank, sv[rank], pipefd[1], plugin, sizes, window, perPoint);
      _exit(0);
    }
  }
  close(sv[0]);
  close(sv[1]);
  close(pipefd[1]);
  std::string text;
  char buf[4096];
  ssize_t k;
  while ((k = read(pipefd[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(k));
  close(pipefd[0]);
  for (pid_t p : pids) {
    int st = 0;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("a rank failed");
  }
  std::vector<double> v;
  char* p = text.data();
  char* end = nullptr;
  for (double d = strtod(p, &end); end != p; d = strtod(p, &end)) {
    v.push_back(d);
    p = end;
  }
  if (v.size() != sizes.size() + 1) die("short result");
  return v;
}

std::string cell(std::vector<double> v, const char* fmt) {
  std::sort(v.begin(), v.end());
  char b[128];
  char med[32], lo[32], hi[32];
  snprintf(med, sizeof med, fmt, v[v.size() / 2]);
  snprintf(lo, sizeof lo, fmt, v.front());
  snprintf(hi, sizeof hi, fmt, v.back());
  snprintf(b, sizeof b, "%s (%s-%s)", med, lo, hi);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::string plugin = TRELLIS_NCCL_PLUGIN_PATH;
  std::vector<int> sockets = {1, 4};
  std::vector<std::string> transports = {"tcp", "ucx"};
  int reps = 3, window = 8;
  bool mbps = false;
  size_t minB = 64 << 10, maxB = 64 << 20, perPoint = 256 << 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--help" || a == "-h") {
      printf(
          "usage: %s [--plugin PATH] [--transports tcp,ucx] [--sockets 1,4] [--reps 3] [--window "
          "8] [--min 64K] [--max "
          "64M] "
          "[--bytes-per-point 256M] [--mbps] [--lat-iters 2000]\n",
          argv[0]);
      return 0;
    }
    if (a == "--mbps") {
      mbps = true;
      continue;
    }
    if (v == nullptr) die(("missing value after " + a).c_str());
    ++i;
    if (a == "--plugin")
      plugin = v;
    else if (a == "--lat-iters")
      gLatIters = std::max(1, atoi(v));
    else if (a == "--reps")
      reps = atoi(v);
    else if (a == "--window")
      window = atoi(v);
    else if (a == "--min")
      minB = parseSize(v);
    else if (a == "--max")
      maxB = parseSize(v);
    else if (a == "--bytes-per-point")
      perPoint = parseSize(v);
    else if (a == "--transports") {
      transports.clear();
      for (char* t = strtok(const_cast<char*>(v), ","); t; t = strtok(nullptr, ","))
        transports.push_back(t);
    } else if (a == "--sockets") {
      sockets.clear();
      for (char* t = strtok(const_cast<char*>(v), ","); t; t = strtok(nullptr, ","))
        sockets.push_back(atoi(t));
    } else {
      die(("unknown option " + a).c_str());
    }
  }
  if (reps < 1 || window < 1 || window > abi::kMaxRequests || minB < 16 || maxB < minB ||
      sockets.empty())
    die("bad arguments (window 1..32, sizes >= 16 bytes)");
  std::vector<size_t> sizes;
  for (size_t s = minB; s <= maxB; s *= 4) sizes.push_back(s);
  std::vector<Config> configs;
  for (std::string t : transports) {
    bool yield = t.size() > 6 && t.compare(t.size() - 6, 6, "+yield") == 0;
    if (yield) t.resize(t.size() - 6);
    if (t == "tcp")
      for (int k : sockets) configs.push_back({t, k, yield});
    else
      configs.push_back({t, 4, yield});
  }
  std::vector<std::vector<std::vector<double>>> runs(configs.size());  // config -> reps x values
  for (int r = 0; r < reps; ++r)
    for (size_t c = 0; c < configs.size(); ++c)
      runs[c].push_back(runPair(configs[c], plugin, sizes, window, perPoint));
  printf(
      "# %s, ncclNetPlugin_v11, 2 processes on this host, window %d, %d repetitions "
      "(configurations interleaved): median (min-max)\n\n",
      plugin.c_str(), window, reps);
  printf("| | ");
  for (const Config& c : configs) printf("%s | ", c.name().c_str());
  printf("\n|---|");
  for (size_t i = 0; i < configs.size(); ++i) printf("---|");
  printf("\n| 8 B latency (us, half round trip) | ");
  for (size_t c = 0; c < configs.size(); ++c) {
    std::vector<double> v;
    for (auto& run : runs[c]) v.push_back(run[0]);
    printf("%s | ", cell(v, "%.1f").c_str());
  }
  printf("\n");
  for (size_t k = 0; k < sizes.size(); ++k) {
    const char* unit = mbps ? "MB/s" : "GB/s";
    if (sizes[k] >= (1 << 20))
      printf("| %zu MiB (%s) | ", sizes[k] >> 20, unit);
    else
      printf("| %zu KiB (%s) | ", sizes[k] >> 10, unit);
    for (size_t c = 0; c < configs.size(); ++c) {
      std::vector<double> v;
      for (auto& run : runs[c]) v.push_back(mbps ? run[k + 1] * 1000 : run[k + 1]);
      printf("%s | ", cell(v, mbps ? "%.1f" : "%.2f").c_str());
    }
    printf("\n");
  }
  return 0;
}
