// Helpers of the NCCL net plugin tests (test_nccl_net*.cc): a rank's view of the plugin, NCCL's
// connection setup, posting and polling operations as NCCL's proxy does, registered buffers, data
// patterns, and the parameterized fixture (ABI version x backend).
#pragma once

#include <dirent.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "harness.h"
#include "net_api.h"
#include "trellis_nccl_net.h"

namespace nccltest {

using Clock = std::chrono::steady_clock;
constexpr double kOpTimeoutS = 60;

inline double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

inline uint8_t patternByte(uint64_t seed, size_t i) {
  return static_cast<uint8_t>(seed * 131 + i * 7 + (i >> 9) + 1);
}
inline void fill(void* p, size_t n, uint64_t seed) {
  auto* b = static_cast<uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) b[i] = patternByte(seed, i);
}
// Index of the first wrong byte, or -1.
inline long long firstMismatch(const void* p, size_t n, uint64_t seed) {
  auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i)
    if (b[i] != patternByte(seed, i)) return static_cast<long long>(i);
  return -1;
}

inline trellisNcclNetStats_t stats(void* lib) {
  auto fn = reinterpret_cast<int (*)(trellisNcclNetStats_t*)>(dlsym(lib, "trellisNcclNetGetStats"));
  trellisNcclNetStats_t s{};
  EXPECT_NE(fn, nullptr);
  if (fn != nullptr) {
    EXPECT_EQ(fn(&s), 0);
  }
  return s;
}

/// The backend of a test transport name ("ucx_tcp" is the ucx backend on UCX's TCP transport).
inline std::string backendOf(const std::string& transport) {
  return transport.rfind("ucx", 0) == 0 ? "ucx" : transport;
}

/// One rank's view of the plugin: loaded, initialised, device 0's properties read.
struct Rank {
  void* lib = nullptr;
  std::unique_ptr<NetApi> net;
  void* ctx = nullptr;
  int ndev = 0;
  Props props;

  bool open(int version, const std::string& transport) {
    // Read when the plugin initialises.
    setenv("TRELLIS_NCCL_NET_TRANSPORT", backendOf(transport).c_str(), 1);
    if (transport == "ucx_tcp") setenv("TRELLIS_UCX_TLS", "tcp", 1);
    lib = openPlugin();
    if (lib == nullptr) return false;
    std::string why;
    net = loadNet(lib, version, &why);
    if (!net) {
      ADD_FAILURE() << why;
      return false;
    }
    EXPECT_STREQ(net->name(), "Trellis");
    Result r = net->init(&ctx);
    if (r != abi::kSuccess) {
      ADD_FAILURE() << "init (v" << version << ") returned " << r;
      return false;
    }
    EXPECT_EQ(net->devices(&ndev), abi::kSuccess);
    if (ndev < 1) {
      ADD_FAILURE() << "no devices";
      return false;
    }
    EXPECT_EQ(net->getProperties(0, &props), abi::kSuccess);
    return !::testing::Test::HasFailure();
  }
  void close() {
    if (net) {
      EXPECT_EQ(net->finalize(ctx), abi::kSuccess);
    }
  }
};

/// NCCL's connection setup: listen, swap handles, then poll connect and accept (never blocking)
/// until both comms exist.
inline void connectPair(NetApi& net, void* ctx, int dev, Channel& ch, void** sc, void** rc) {
  char mine[abi::kHandleMaxSize], peer[abi::kHandleMaxSize];
  void* lc = nullptr;
  ASSERT_EQ(net.listen(ctx, dev, mine, &lc), abi::kSuccess);
  ASSERT_NE(lc, nullptr);
  ch.send(mine, sizeof mine);
  ch.recv(peer, sizeof peer);
  *sc = *rc = nullptr;
  auto t0 = Clock::now();
  while (*sc == nullptr || *rc == nullptr) {
    if (*sc == nullptr) {
      ASSERT_EQ(net.connect(ctx, dev, peer, sc), abi::kSuccess);
    }
    if (*rc == nullptr) {
      ASSERT_EQ(net.accept(lc, rc), abi::kSuccess);
    }
    ASSERT_LT(since(t0), kOpTimeoutS) << "connect/accept did not complete";
  }
  EXPECT_EQ(net.closeListen(lc), abi::kSuccess);
}

/// A send or a (multi-)receive to post and complete, NCCL style.
struct Op {
  bool isSend = false;
  void* comm = nullptr;
  int n = 1;
  void* data[8] = {};
  size_t sizes[8] = {};
  int tags[8] = {};
  void* mh[8] = {};
  void* req = nullptr;
  bool posted = false, done = false;
  bool optionalCompletion = false;  // irecv: NCCL's LL/LL128 hint in *request (v9+)
  int got[8] = {};
  Result error = abi::kSuccess;
};

/// Posts the ops in order per comm (an op is posted once the ones before it on its comm are),
/// retrying when the plugin hands back no request, and tests what is in flight until all are done
/// or one fails. Returns the first error (the failing op has `error` set).
/// With `mayTimeOut`, running out of time returns kInProgress instead of failing the test.
inline Result runOps(NetApi& net, std::vector<Op>& ops, double timeoutS = kOpTimeoutS,
                     bool mayTimeOut = false) {
  auto t0 = Clock::now();
  for (;;) {
    bool all = true;
    std::vector<void*> blocked;  // comms with an op not posted yet (later ops wait)
    for (Op& op : ops) {
      if (op.done) continue;
      all = false;
      if (!op.posted) {
        bool wait = false;
        for (void* b : blocked) wait = wait || b == op.comm;
        if (wait) continue;
        if (!op.isSend && op.optionalCompletion && net.version() >= 9)
          op.req = reinterpret_cast<void*>(abi::kNetOptionalRecvCompletion);
        Result r = op.isSend
                       ? net.isend(op.comm, op.data[0], op.sizes[0], op.tags[0], op.mh[0], &op.req)
                       : net.irecv(op.comm, op.n, op.data, op.sizes, op.tags, op.mh, &op.req);
        if (r != abi::kSuccess) return op.error = r;
        if (op.req == reinterpret_cast<void*>(abi::kNetOptionalRecvCompletion)) {
          ADD_FAILURE() << "irecv returned NCCL's optional-completion hint as its request";
          return op.error = abi::kInternalError;
        }
        if (op.req == nullptr) {
          blocked.push_back(op.comm);
          continue;
        }
        op.posted = true;
      }
      int done = 0;
      Result r = net.test(op.req, &done, op.got);
      if (r != abi::kSuccess) return op.error = r;
      if (done) op.done = true;
    }
    if (all) return abi::kSuccess;
    if (since(t0) > timeoutS) {
      if (mayTimeOut) return abi::kInProgress;
      size_t pending = 0, unposted = 0;
      for (Op& op : ops) {
        pending += !op.done;
        unposted += !op.posted;
      }
      ADD_FAILURE() << pending << " operations still pending (" << unposted << " not posted) after "
                    << timeoutS << " s";
      return abi::kInternalError;
    }
  }
}

/// Registered buffers that free themselves.
struct Buffers {
  Buffers(NetApi* n, void* c) : net(n), comm(c) {}
  Buffers(const Buffers&) = delete;
  NetApi* net;
  void* comm;
  std::vector<std::vector<char>> bufs;
  std::vector<void*> mhs;
  void* add(size_t n, void** mh) {
    bufs.emplace_back(std::max<size_t>(n, 1));
    void* h = nullptr;
    EXPECT_EQ(net->regMr(comm, bufs.back().data(), n, abi::kPtrHost, &h), abi::kSuccess);
    mhs.push_back(h);
    *mh = h;
    return bufs.back().data();
  }
  ~Buffers() {
    for (void* h : mhs) EXPECT_EQ(net->deregMr(comm, h), abi::kSuccess);
  }
};

/// Whether this machine has an RDMA device (/sys/class/infiniband is not empty).
/// TRELLIS_TEST_NCCL_VERBS=1 or 0 overrides (the qemu Soft-RoCE guest sets 1, so that a guest
/// whose devices went missing fails instead of running no verbs case).
inline bool haveRdmaDevice() {
  const char* force = getenv("TRELLIS_TEST_NCCL_VERBS");
  if (force != nullptr && *force != 0) return std::strcmp(force, "0") != 0;
  DIR* d = opendir("/sys/class/infiniband");
  if (d == nullptr) return false;
  bool any = false;
  while (dirent* e = readdir(d)) any = any || e->d_name[0] != '.';
  closedir(d);
  return any;
}

// Every case runs for each ABI version and each backend built into the plugin: tcp; ucx with its
// default transports (shared memory between these processes); ucx_tcp, UCX restricted to its TCP
// transport (TRELLIS_UCX_TLS=tcp); and verbs where the machine has an RDMA device (the qemu
// Soft-RoCE guest of tests/rdma runs the verbs cases: `--gtest_filter=*_verbs*`).
using Case = std::tuple<int, std::string>;
class NetTest : public ::testing::TestWithParam<Case> {};
inline std::vector<std::string> transports() {
  std::vector<std::string> t = {"tcp", "ucx", "ucx_tcp"};
  if (haveRdmaDevice()) t.push_back("verbs");
  return t;
}
inline const std::vector<std::string> kTransports = transports();

inline std::string caseName(const ::testing::TestParamInfo<Case>& info) {
  return "v" + std::to_string(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
}

class VdevTest : public NetTest {};  // makeVDevice exists from v9

}  // namespace nccltest
