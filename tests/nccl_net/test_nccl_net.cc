// The NCCL net plugin driven as NCCL drives it, without NCCL: two processes dlopen the plugin, look
// up ncclNetPlugin_vN for every N in 6..11, swap 128-byte listen handles over a socketpair, poll
// connect/accept until both comms exist, and run sends/receives with NCCL's rules (isend/irecv may
// return no request: post again later; test never blocks; at most 32 receives in flight per comm;
// the sender may have 32 x maxRecvs sends in flight). Every received byte is checked.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <tuple>

#include "harness.h"
#include "net_api.h"
#include "trellis_nccl_net.h"

namespace nccltest {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kOpTimeoutS = 60;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

uint8_t patternByte(uint64_t seed, size_t i) {
  return static_cast<uint8_t>(seed * 131 + i * 7 + (i >> 9) + 1);
}
void fill(void* p, size_t n, uint64_t seed) {
  auto* b = static_cast<uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) b[i] = patternByte(seed, i);
}
// Index of the first wrong byte, or -1.
long long firstMismatch(const void* p, size_t n, uint64_t seed) {
  auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i)
    if (b[i] != patternByte(seed, i)) return static_cast<long long>(i);
  return -1;
}

trellisNcclNetStats_t stats(void* lib) {
  auto fn = reinterpret_cast<int (*)(trellisNcclNetStats_t*)>(dlsym(lib, "trellisNcclNetGetStats"));
  trellisNcclNetStats_t s{};
  EXPECT_NE(fn, nullptr);
  if (fn != nullptr) {
    EXPECT_EQ(fn(&s), 0);
  }
  return s;
}

/// One rank's view of the plugin: loaded, initialised, device 0's properties read.
struct Rank {
  void* lib = nullptr;
  std::unique_ptr<NetApi> net;
  void* ctx = nullptr;
  int ndev = 0;
  Props props;

  bool open(int version, const std::string& transport) {
    setenv("TRELLIS_NCCL_NET_TRANSPORT", transport.c_str(), 1);  // read when the plugin initialises
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
void connectPair(NetApi& net, void* ctx, int dev, Channel& ch, void** sc, void** rc) {
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
Result runOps(NetApi& net, std::vector<Op>& ops, double timeoutS = kOpTimeoutS,
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

// Every case runs for each ABI version and each backend built into the plugin (the verbs backend
// joins this list when it exists). UCX runs with its default transports (shared memory here).
using Case = std::tuple<int, std::string>;
class NetTest : public ::testing::TestWithParam<Case> {};
const std::vector<std::string> kTransports = {"tcp", "ucx"};

std::string caseName(const ::testing::TestParamInfo<Case>& info) {
  return "v" + std::to_string(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
}

// ---- Properties ------------------------------------------------------------------------------

TEST_P(NetTest, InitDevicesProperties) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runOne([v, tr] {
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    for (int d = 0; d < r.ndev; ++d) {
      Props p;
      ASSERT_EQ(r.net->getProperties(d, &p), abi::kSuccess);
      EXPECT_FALSE(p.name.empty());
      EXPECT_EQ(p.ptrSupport, abi::kPtrHost) << "host memory only: no GPUDirect path here";
      EXPECT_GT(p.speed, 0);
      EXPECT_GE(p.port, 1);
      EXPECT_GT(p.maxComms, 0);
      EXPECT_EQ(p.maxRecvs, 8);
      EXPECT_NE(p.guid, 0u);
      if (!p.pciPathNull) {
        EXPECT_EQ(p.pciPath.rfind("/sys/devices/", 0), 0u) << p.pciPath;
      }
      if (v >= 7) {
        EXPECT_EQ(p.netDeviceType, abi::kDeviceHost);
      }
      if (v >= 8) {
        EXPECT_EQ(p.regIsGlobal, 1);
      }
      if (v >= 9) {
        EXPECT_EQ(p.forceFlush, 0);
        EXPECT_EQ(p.vNdevs, 1);
        EXPECT_EQ(p.vDevs[0], d);
        EXPECT_EQ(p.maxP2pBytes, size_t{1} << 30);
        EXPECT_EQ(p.maxCollBytes, size_t{1} << 30);
      }
      if (v >= 11) {
        EXPECT_EQ(p.maxMultiRequestSize, 1);
      }
    }
    Props bad;
    EXPECT_EQ(r.net->getProperties(r.ndev, &bad), abi::kInvalidArgument);
    // The logger got an INFO line with NCCL's NET flag naming the backend.
    bool found = false;
    for (const LogLine& l : logLines())
      found = found || (l.level == abi::kLogInfo && (l.flags & abi::kFlagNet) &&
                        l.text.find("using the " + tr + " backend") != std::string::npos);
    EXPECT_TRUE(found) << "no INFO/NET line 'using the " << tr << " backend'";
    r.close();
  });
}

TEST_P(NetTest, InitTwiceAndContexts) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runOne([v, tr] {
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    void* ctx2 = nullptr;
    ASSERT_EQ(r.net->init(&ctx2), abi::kSuccess);
    trellisNcclNetStats_t s = stats(r.lib);
    EXPECT_EQ(s.backendInits, 1u) << "the backend is created once per process";
    if (v == 11) {
      EXPECT_NE(ctx2, nullptr);
      EXPECT_NE(ctx2, r.ctx);
      EXPECT_EQ(s.contexts, 2u);
      abi::NetAttr attr{{-1, -1, -1, -1}, {-1, -1, 2, -1}, 0, 0, 0};
      EXPECT_EQ(r.net->setNetAttr(ctx2, &attr), abi::kSuccess);
      EXPECT_EQ(r.net->finalize(ctx2), abi::kSuccess);
      EXPECT_EQ(stats(r.lib).contexts, 1u);
      EXPECT_EQ(r.net->finalize(nullptr), abi::kSuccess)
          << "NCCL finalizes after a failed init too";
    } else {
      EXPECT_EQ(ctx2, nullptr);
      EXPECT_EQ(s.contexts, 0u);
      EXPECT_EQ(s.legacyInits, 2u);
    }
    r.close();
  });
}

// Nothing usable (no interface matches): init fails with one line saying why, devices() too.
TEST_P(NetTest, InitFailsClearlyWhenNothingIsUsable) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runOne([v, tr] {
    setenv("TRELLIS_NCCL_NET_TRANSPORT", tr.c_str(), 1);
    setenv("TRELLIS_SOCKET_IFNAME", "=no-such-if0", 1);
    void* lib = openPlugin();
    ASSERT_NE(lib, nullptr);
    std::string why;
    auto net = loadNet(lib, v, &why);
    ASSERT_TRUE(net) << why;
    void* ctx = nullptr;
    EXPECT_NE(net->init(&ctx), abi::kSuccess);
    EXPECT_EQ(ctx, nullptr);
    bool found = false;
    for (const LogLine& l : logLines())
      found = found || (l.level == abi::kLogWarn &&
                        l.text.find("NCCL will use its own nets") != std::string::npos &&
                        l.text.find("no-such-if0") != std::string::npos);
    EXPECT_TRUE(found) << "no WARN line naming the interface filter";
    EXPECT_EQ(net->finalize(ctx), abi::kSuccess) << "NCCL finalizes after a failed init";
    int n = -1;
    EXPECT_NE(net->devices(&n), abi::kSuccess)
        << "devices() after a failed init must fail, not report 0 silently";
  });
}

// A backend this build does not have (verbs, UCX: not merged yet) is refused by name.
class VersionTest : public ::testing::TestWithParam<int> {};
TEST_P(VersionTest, InitFailsClearlyForABackendNotBuilt) {
  const int v = GetParam();
  runOne([v] {
    setenv("TRELLIS_NCCL_NET_TRANSPORT", "verbs", 1);
    void* lib = openPlugin();
    ASSERT_NE(lib, nullptr);
    std::string why;
    auto net = loadNet(lib, v, &why);
    ASSERT_TRUE(net) << why;
    void* ctx = nullptr;
    EXPECT_EQ(net->init(&ctx), abi::kInvalidUsage);
    bool found = false;
    for (const LogLine& l : logLines())
      found =
          found ||
          l.text.find(
              "TRELLIS_NCCL_NET_TRANSPORT=verbs: this build of the plugin has no verbs backend") !=
              std::string::npos;
    EXPECT_TRUE(found);
  });
}
INSTANTIATE_TEST_SUITE_P(Versions, VersionTest, ::testing::Values(6, 7, 8, 9, 10, 11),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "v" + std::to_string(i.param);
                         });

// ---- Transfers -------------------------------------------------------------------------------

// Sizes 0 B .. 8 MiB; every receive is larger than its send (slack bytes must stay untouched).
TEST_P(NetTest, TransfersBothDirections) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runTwo([v, tr](int rank, std::vector<Channel>& ch) {
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    void *sc, *rc;
    connectPair(*r.net, r.ctx, 0, ch[0], &sc, &rc);
    const size_t sizes[] = {0, 1, 7, 64, 4096, 65539, 1 << 20, (8 << 20) - 5, 8 << 20};
    const size_t slack = 4096;
    for (size_t size : sizes) {
      Buffers sb{r.net.get(), sc}, rb{r.net.get(), rc};
      void *smh, *rmh;
      void* sbuf = sb.add(size, &smh);
      void* rbuf = rb.add(size + slack, &rmh);
      fill(sbuf, size, size * 2 + rank);
      std::memset(rbuf, 0x5a, size + slack);
      std::vector<Op> ops(2);
      ops[0].comm = rc;
      ops[0].data[0] = rbuf;
      ops[0].sizes[0] = size + slack;
      ops[0].tags[0] = 3;
      ops[0].mh[0] = rmh;
      ops[0].optionalCompletion = (size & 1) != 0;  // as NCCL does for LL/LL128 receives
      ops[1].isSend = true;
      ops[1].comm = sc;
      ops[1].data[0] = sbuf;
      ops[1].sizes[0] = size;
      ops[1].tags[0] = 3;
      ops[1].mh[0] = smh;
      ASSERT_EQ(runOps(*r.net, ops), abi::kSuccess) << "size " << size;
      EXPECT_EQ(static_cast<size_t>(ops[0].got[0]), size);
      EXPECT_EQ(static_cast<size_t>(ops[1].got[0]), size);
      EXPECT_EQ(firstMismatch(rbuf, size, size * 2 + (1 - rank)), -1) << "size " << size;
      auto* tail = static_cast<uint8_t*>(rbuf) + size;
      for (size_t i = 0; i < slack; ++i)
        ASSERT_EQ(tail[i], 0x5a) << "byte " << size + i << " beyond the message";
    }
    ch[0].barrier();
    EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
    EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
    r.close();
  });
}

// 32 receives in flight, each of maxRecvs buffers, against 32 x maxRecvs sends in flight.
TEST_P(NetTest, ManyRequestsInFlight) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runTwo([v, tr](int rank, std::vector<Channel>& ch) {
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    const int m = r.props.maxRecvs;
    void *sc, *rc;
    connectPair(*r.net, r.ctx, 0, ch[0], &sc, &rc);
    Buffers sb{r.net.get(), sc}, rb{r.net.get(), rc};
    const int kGroups = abi::kMaxRequests;
    auto sizeOf = [](int g, int t) { return static_cast<size_t>(1000 + 37 * g + 4099 * t); };
    std::vector<Op> ops;
    for (int g = 0; g < kGroups; ++g) {  // every receive posted before any send: all in flight
      Op op;
      op.comm = rc;
      op.n = m;
      for (int t = 0; t < m; ++t) {
        op.sizes[t] = sizeOf(g, t) + 100;
        op.tags[t] = t;
        op.data[t] = rb.add(op.sizes[t], &op.mh[t]);
      }
      ops.push_back(op);
    }
    for (int g = 0; g < kGroups; ++g)
      for (int t = 0; t < m; ++t) {
        Op op;
        op.isSend = true;
        op.comm = sc;
        op.sizes[0] = sizeOf(g, t);
        op.tags[0] = t;
        op.data[0] = sb.add(op.sizes[0], &op.mh[0]);
        fill(op.data[0], op.sizes[0], static_cast<uint64_t>(rank * 100000 + g * 100 + t));
        ops.push_back(op);
      }
    ASSERT_EQ(runOps(*r.net, ops), abi::kSuccess);
    for (int g = 0; g < kGroups; ++g)
      for (int t = 0; t < m; ++t) {
        ASSERT_EQ(static_cast<size_t>(ops[g].got[t]), sizeOf(g, t))
            << "group " << g << " tag " << t;
        ASSERT_EQ(firstMismatch(ops[g].data[t], sizeOf(g, t), (1 - rank) * 100000 + g * 100 + t),
                  -1)
            << "group " << g << " tag " << t;
      }
    ch[0].barrier();
    EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
    EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
    r.close();
  });
}

// One receive of 4 tagged buffers; the sends come in another tag order with other sizes: each must
// land in the buffer of its tag, and test() reports the sizes in the receive's buffer order.
TEST_P(NetTest, GroupedReceiveMatchesTags) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runTwo([v, tr](int rank, std::vector<Channel>& ch) {
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    ASSERT_GE(r.props.maxRecvs, 4);
    void *sc, *rc;
    connectPair(*r.net, r.ctx, 0, ch[0], &sc, &rc);
    Buffers sb{r.net.get(), sc}, rb{r.net.get(), rc};
    const int tags[4] = {7, 3, 11, 5};
    auto sizeOfTag = [](int tag) { return static_cast<size_t>(tag * 1000 + 1); };
    for (int round = 0; round < 3; ++round) {
      std::vector<Op> ops(1);
      ops[0].comm = rc;
      ops[0].n = 4;
      for (int i = 0; i < 4; ++i) {
        ops[0].tags[i] = tags[i];
        ops[0].sizes[i] = 20000;
        ops[0].data[i] = rb.add(20000, &ops[0].mh[i]);
      }
      for (int tag : {11, 5, 7, 3}) {
        Op s;
        s.isSend = true;
        s.comm = sc;
        s.tags[0] = tag;
        s.sizes[0] = sizeOfTag(tag) + round;
        s.data[0] = sb.add(s.sizes[0], &s.mh[0]);
        fill(s.data[0], s.sizes[0], static_cast<uint64_t>(rank * 1000 + tag * 10 + round));
        ops.push_back(s);
      }
      ASSERT_EQ(runOps(*r.net, ops), abi::kSuccess);
      for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(static_cast<size_t>(ops[0].got[i]), sizeOfTag(tags[i]) + round) << "buffer " << i;
        EXPECT_EQ(firstMismatch(ops[0].data[i], sizeOfTag(tags[i]) + round,
                                (1 - rank) * 1000 + tags[i] * 10 + round),
                  -1)
            << "buffer " << i << " (tag " << tags[i] << ")";
      }
    }
    ch[0].barrier();
    EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
    EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
    r.close();
  });
}

// A send larger than its receive is an error on one side or the other: the TCP backend knows the
// receive's size before it sends and fails the send; UCX learns it at the receiver (truncation).
// Never does the receive succeed.
TEST_P(NetTest, SendLargerThanReceiveIsAnError) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runTwo([v, tr](int rank, std::vector<Channel>& ch) {
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    void *sc, *rc;
    connectPair(*r.net, r.ctx, 0, ch[0], &sc, &rc);
    Buffers b{r.net.get(), rank == 0 ? sc : rc};
    std::vector<Op> ops(1);
    void* mh;
    ops[0].data[0] = b.add(2000, &mh);
    ops[0].mh[0] = mh;
    if (rank == 0) {
      ops[0].isSend = true;
      ops[0].comm = sc;
      ops[0].sizes[0] = 2000;
      Result sendResult = runOps(*r.net, ops, 5, /*mayTimeOut=*/true);
      ch[0].sendU64(static_cast<uint64_t>(sendResult));
      uint64_t recvResult = ch[0].recvU64();
      EXPECT_TRUE(sendResult == abi::kInvalidUsage || recvResult == abi::kInvalidUsage)
          << "send returned " << sendResult << ", receive " << recvResult;
    } else {
      ops[0].comm = rc;
      ops[0].sizes[0] = 1000;
      void* req = nullptr;
      ASSERT_EQ(r.net->irecv(rc, 1, ops[0].data, ops[0].sizes, ops[0].tags, ops[0].mh, &req),
                abi::kSuccess);
      ASSERT_NE(req, nullptr);
      // Poll the receive until it fails, or until the sender reports its own failure.
      Result recvResult = abi::kInProgress;
      bool gotSender = false;
      uint64_t sendResult = 0;
      auto t0 = Clock::now();
      while (recvResult == abi::kInProgress && !(gotSender && sendResult != abi::kSuccess) &&
             since(t0) < 20) {
        int done = 0, size = 0;
        Result t = r.net->test(req, &done, &size);
        if (t != abi::kSuccess) recvResult = t;
        EXPECT_FALSE(done) << "a 2000-byte message completed a 1000-byte receive (" << size
                           << " bytes)";
        if (done) break;
        pollfd p{ch[0].fd(), POLLIN, 0};
        if (!gotSender && ::poll(&p, 1, 0) == 1) {
          sendResult = ch[0].recvU64();
          gotSender = true;
        }
      }
      if (!gotSender) sendResult = ch[0].recvU64();
      ch[0].sendU64(static_cast<uint64_t>(recvResult));
      if (sendResult == abi::kSuccess) {
        EXPECT_EQ(recvResult, abi::kInvalidUsage) << "the send went through: the receive must fail";
      }
    }
    ch[0].barrier();
    EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
    EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
    r.close();
  });
}

// A send whose tag the receive does not have is an error, not an endless retry.
TEST_P(NetTest, SendWithUnknownTagIsAnError) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  if (tr == "ucx")
    GTEST_SKIP() << "UCX tag matching cannot tell a send with a wrong tag from one whose receive "
                    "comes later";
  runTwo([v, tr](int rank, std::vector<Channel>& ch) {
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    void *sc, *rc;
    connectPair(*r.net, r.ctx, 0, ch[0], &sc, &rc);
    Buffers b{r.net.get(), rank == 0 ? sc : rc};
    std::vector<Op> ops(1);
    ops[0].data[0] = b.add(100, &ops[0].mh[0]);
    ops[0].sizes[0] = 100;
    if (rank == 0) {
      ops[0].isSend = true;
      ops[0].comm = sc;
      ops[0].tags[0] = 9;
      EXPECT_EQ(runOps(*r.net, ops, 20), abi::kInvalidUsage) << "tag 9 into a receive of tag 4";
      bool said = false;
      for (const LogLine& l : logLines())
        said = said || l.text.find("matches no buffer") != std::string::npos;
      EXPECT_TRUE(said);
    } else {
      ops[0].comm = rc;
      ops[0].tags[0] = 4;
      void* req = nullptr;
      ASSERT_EQ(r.net->irecv(rc, 1, ops[0].data, ops[0].sizes, ops[0].tags, ops[0].mh, &req),
                abi::kSuccess);
      ASSERT_NE(req, nullptr);
    }
    ch[0].barrier();
    EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
    EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
    r.close();
  });
}

// A connect to a listener that is gone keeps retrying until the connect timeout, then fails
// naming the address, instead of leaving NCCL polling forever.
TEST_P(NetTest, ConnectToAClosedListenerTimesOut) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runOne([v, tr] {
    setenv("TRELLIS_NCCL_NET_CONNECT_TIMEOUT_S", "1", 1);
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    char handle[abi::kHandleMaxSize];
    void* lc = nullptr;
    ASSERT_EQ(r.net->listen(r.ctx, 0, handle, &lc), abi::kSuccess);
    ASSERT_EQ(r.net->closeListen(lc), abi::kSuccess);
    void* sc = nullptr;
    Result res = abi::kSuccess;
    auto t0 = Clock::now();
    while (sc == nullptr && res == abi::kSuccess && since(t0) < 20)
      res = r.net->connect(r.ctx, 0, handle, &sc);
    EXPECT_EQ(res, abi::kRemoteError);
    EXPECT_EQ(sc, nullptr);
    EXPECT_GE(since(t0), 0.9);
    bool said = false;
    for (const LogLine& l : logLines())
      said = said ||
             l.text.find("within 1 s (TRELLIS_NCCL_NET_CONNECT_TIMEOUT_S)") != std::string::npos;
    EXPECT_TRUE(said);
    r.close();
  });
}

// ---- Connections -----------------------------------------------------------------------------

// One listen comm accepts several connections made with its handle: three in sequence, then three
// started at once from separate copies of the handle (each copy carries its own connect state).
TEST_P(NetTest, ListenCommReuse) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runTwo([v, tr](int rank, std::vector<Channel>& ch) {
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    constexpr int kConns = 6;
    std::vector<void*> comms;
    if (rank == 1) {
      char handle[abi::kHandleMaxSize];
      void* lc = nullptr;
      ASSERT_EQ(r.net->listen(r.ctx, 0, handle, &lc), abi::kSuccess);
      ch[0].send(handle, sizeof handle);
      auto t0 = Clock::now();
      while (comms.size() < kConns) {
        void* rc = nullptr;
        ASSERT_EQ(r.net->accept(lc, &rc), abi::kSuccess);
        if (rc != nullptr) comms.push_back(rc);
        ASSERT_LT(since(t0), kOpTimeoutS);
      }
      EXPECT_EQ(r.net->closeListen(lc), abi::kSuccess);
      // Each connection carries its index; all six arrive, each once. Receives are posted on
      // every comm at once: which accepted comm pairs with which connect is not ordered.
      std::vector<bool> seen(kConns, false);
      Buffers b{r.net.get(), comms[0]};
      std::vector<Op> ops(comms.size());
      for (size_t i = 0; i < comms.size(); ++i) {
        ops[i].comm = comms[i];
        ops[i].sizes[0] = 64;
        ops[i].data[0] = b.add(64, &ops[i].mh[0]);
      }
      ASSERT_EQ(runOps(*r.net, ops), abi::kSuccess);
      for (Op& op : ops) {
        ASSERT_EQ(op.got[0], 8);
        uint64_t idx;
        std::memcpy(&idx, op.data[0], 8);
        ASSERT_LT(idx, static_cast<uint64_t>(kConns));
        EXPECT_FALSE(seen[idx]) << "connection " << idx << " twice";
        seen[idx] = true;
      }
      for (void* rc : comms) EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
    } else {
      char handle[abi::kHandleMaxSize];
      ch[0].recv(handle, sizeof handle);
      for (int i = 0; i < kConns / 2; ++i) {  // in sequence, one handle buffer
        void* sc = nullptr;
        auto t0 = Clock::now();
        while (sc == nullptr) {
          ASSERT_EQ(r.net->connect(r.ctx, 0, handle, &sc), abi::kSuccess);
          ASSERT_LT(since(t0), kOpTimeoutS);
        }
        comms.push_back(sc);
      }
      char copies[kConns / 2][abi::kHandleMaxSize];  // at once, one copy each
      for (auto& c : copies) std::memcpy(c, handle, sizeof handle);
      std::vector<void*> pending(kConns / 2, nullptr);
      auto t0 = Clock::now();
      for (size_t done = 0; done < pending.size();) {
        done = 0;
        for (size_t i = 0; i < pending.size(); ++i) {
          if (pending[i] == nullptr) {
            ASSERT_EQ(r.net->connect(r.ctx, 0, copies[i], &pending[i]), abi::kSuccess);
          }
          done += pending[i] != nullptr;
        }
        ASSERT_LT(since(t0), kOpTimeoutS);
      }
      comms.insert(comms.end(), pending.begin(), pending.end());
      Buffers b{r.net.get(), comms[0]};
      std::vector<Op> ops(comms.size());
      for (size_t i = 0; i < comms.size(); ++i) {
        ops[i].isSend = true;
        ops[i].comm = comms[i];
        ops[i].sizes[0] = 8;
        ops[i].data[0] = b.add(8, &ops[i].mh[0]);
        uint64_t idx = i;
        std::memcpy(ops[i].data[0], &idx, 8);
      }
      ASSERT_EQ(runOps(*r.net, ops), abi::kSuccess);
      ch[0].barrier();  // the receiver has everything
      for (void* sc : comms) EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
    }
    if (rank == 1) ch[0].barrier();
    EXPECT_EQ(stats(r.lib).listens, rank == 1 ? 1u : 0u);
    r.close();
  });
}

TEST_P(NetTest, BadHandleIsRejected) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runOne([v, tr] {
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    char handle[abi::kHandleMaxSize];
    std::memset(handle, 0x11, sizeof handle);
    void* sc = nullptr;
    EXPECT_EQ(r.net->connect(r.ctx, 0, handle, &sc), abi::kInvalidArgument);
    EXPECT_EQ(sc, nullptr);
    void* lc = nullptr;
    EXPECT_EQ(r.net->listen(r.ctx, r.ndev + 3, handle, &lc), abi::kInvalidArgument);
    EXPECT_EQ(lc, nullptr);
    r.close();
  });
}

// Closing comms with requests in flight frees them without crashing or hanging; a peer waiting
// on a receive from a closed send comm gets an error instead of waiting forever; the plugin keeps
// working for new connections.
TEST_P(NetTest, CloseWithRequestsInFlight) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runTwo([v, tr](int rank, std::vector<Channel>& ch) {
    setenv("TRELLIS_NCCL_NET_UCX_CLOSE_GRACE_S", "0.5", 1);  // UCX: how long a closed peer may lag
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    {
      void *sc, *rc;
      connectPair(*r.net, r.ctx, 0, ch[0], &sc, &rc);
      std::vector<std::vector<char>> bufs(16, std::vector<char>(1 << 20));
      void* mh[16];
      for (int i = 0; i < 16; ++i)
        ASSERT_EQ(
            r.net->regMr(i < 8 ? rc : sc, bufs[i].data(), bufs[i].size(), abi::kPtrHost, &mh[i]),
            abi::kSuccess);
      for (int i = 0; i < 8; ++i) {
        void* req = nullptr;
        size_t size = bufs[i].size();
        int tag = 0;
        void* data = bufs[i].data();
        ASSERT_EQ(r.net->irecv(rc, 1, &data, &size, &tag, &mh[i], &req), abi::kSuccess);
        ASSERT_NE(req, nullptr);
      }
      // Post what sends can be posted (some may find no receive yet), then close everything.
      for (int i = 8; i < 16 && rank == 0; ++i) {
        void* req = nullptr;
        ASSERT_EQ(r.net->isend(sc, bufs[i].data(), bufs[i].size(), 0, mh[i], &req), abi::kSuccess);
      }
      ch[0].barrier();
      EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
      EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
      for (int i = 0; i < 16; ++i) EXPECT_EQ(r.net->deregMr(nullptr, mh[i]), abi::kSuccess);
    }
    ch[0].barrier();
    {  // rank 0 waits on a receive; rank 1 closes its send comm without sending
      void *sc, *rc;
      connectPair(*r.net, r.ctx, 0, ch[0], &sc, &rc);
      std::vector<char> buf(4096);
      void* mh = nullptr;
      ASSERT_EQ(r.net->regMr(rc, buf.data(), buf.size(), abi::kPtrHost, &mh), abi::kSuccess);
      if (rank == 0) {
        std::vector<Op> ops(1);
        ops[0].comm = rc;
        ops[0].sizes[0] = buf.size();
        ops[0].data[0] = buf.data();
        ops[0].mh[0] = mh;
        ch[0].sendU64(1);  // receive posting starts now
        EXPECT_EQ(runOps(*r.net, ops, 20), abi::kRemoteError) << "the peer closed its send comm";
      } else {
        ch[0].recvU64();
        EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
        sc = nullptr;
      }
      ch[0].barrier();
      if (sc != nullptr) {
        EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
      }
      EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
      EXPECT_EQ(r.net->deregMr(nullptr, mh), abi::kSuccess);
    }
    ch[0].barrier();
    {  // still healthy
      void *sc, *rc;
      connectPair(*r.net, r.ctx, 0, ch[0], &sc, &rc);
      Buffers sb{r.net.get(), sc}, rb{r.net.get(), rc};
      std::vector<Op> ops(2);
      ops[0].comm = rc;
      ops[0].sizes[0] = 100000;
      ops[0].data[0] = rb.add(100000, &ops[0].mh[0]);
      ops[1].isSend = true;
      ops[1].comm = sc;
      ops[1].sizes[0] = 99999;
      ops[1].data[0] = sb.add(99999, &ops[1].mh[0]);
      fill(ops[1].data[0], 99999, 42 + rank);
      ASSERT_EQ(runOps(*r.net, ops), abi::kSuccess);
      EXPECT_EQ(ops[0].got[0], 99999);
      EXPECT_EQ(firstMismatch(ops[0].data[0], 99999, 43 - rank), -1);
      ch[0].barrier();
      EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
      EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
    }
    EXPECT_EQ(stats(r.lib).liveRegistrations, 0u);
    r.close();
  });
}

// Four threads per process, each with its own context (v11) and comms, moving data at once.
TEST_P(NetTest, ThreadsWithOwnComms) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  constexpr int kThreads = 4;
  runTwo(
      [v, tr](int rank, std::vector<Channel>& ch) {
        Rank r;
        ASSERT_TRUE(r.open(v, tr));
        std::atomic<int> failures{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t)
          threads.emplace_back([&, t] {
            void* ctx = nullptr;
            if (r.net->init(&ctx) != abi::kSuccess) {
              ++failures;
              return;
            }
            void *sc = nullptr, *rc = nullptr;
            connectPair(*r.net, ctx, 0, ch[t], &sc, &rc);
            if (sc == nullptr || rc == nullptr) {
              ++failures;
              return;
            }
            for (size_t size : {size_t{1}, size_t{3000}, size_t{1} << 20, size_t{3} << 20}) {
              Buffers sb{r.net.get(), sc}, rb{r.net.get(), rc};
              std::vector<Op> ops(2);
              ops[0].comm = rc;
              ops[0].sizes[0] = size;
              ops[0].tags[0] = t;
              ops[0].data[0] = rb.add(size, &ops[0].mh[0]);
              ops[1].isSend = true;
              ops[1].comm = sc;
              ops[1].sizes[0] = size;
              ops[1].tags[0] = t;
              ops[1].data[0] = sb.add(size, &ops[1].mh[0]);
              fill(ops[1].data[0], size, static_cast<uint64_t>(rank * 10 + t) * size);
              if (runOps(*r.net, ops) != abi::kSuccess ||
                  static_cast<size_t>(ops[0].got[0]) != size ||
                  firstMismatch(ops[0].data[0], size,
                                static_cast<uint64_t>((1 - rank) * 10 + t) * size) != -1)
                ++failures;
            }
            ch[t].barrier();
            if (r.net->closeSend(sc) != abi::kSuccess || r.net->closeRecv(rc) != abi::kSuccess)
              ++failures;
            if (r.net->finalize(ctx) != abi::kSuccess) ++failures;
          });
        for (auto& th : threads) th.join();
        EXPECT_EQ(failures.load(), 0);
        EXPECT_EQ(stats(r.lib).connects, static_cast<uint64_t>(kThreads));
        r.close();
      },
      120, kThreads);
}

// ---- Registration ----------------------------------------------------------------------------

TEST_P(NetTest, RegistrationCache) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  runTwo([v, tr](int rank, std::vector<Channel>& ch) {
    Rank r;
    ASSERT_TRUE(r.open(v, tr));
    void *sc, *rc;
    connectPair(*r.net, r.ctx, 0, ch[0], &sc, &rc);
    std::vector<char> a(1 << 20), b(1 << 16);
    void *h1, *h2, *h3, *h4;
    trellisNcclNetStats_t s0 = stats(r.lib);
    ASSERT_EQ(r.net->regMr(sc, a.data(), a.size(), abi::kPtrHost, &h1), abi::kSuccess);
    ASSERT_EQ(r.net->regMr(rc, a.data(), a.size(), abi::kPtrHost, &h2),
              abi::kSuccess);  // another comm
    ASSERT_EQ(r.net->regMr(sc, a.data() + 4096, 65536, abi::kPtrHost, &h3),
              abi::kSuccess);  // inside a
    ASSERT_EQ(r.net->regMr(sc, b.data(), b.size(), abi::kPtrHost, &h4), abi::kSuccess);
    EXPECT_EQ(h1, h2) << "registrations are global: the same range gives the same handle";
    EXPECT_EQ(h1, h3) << "a range inside a registration reuses it";
    EXPECT_NE(h1, h4);
    trellisNcclNetStats_t s1 = stats(r.lib);
    EXPECT_EQ(s1.registrations - s0.registrations, 4u);
    EXPECT_EQ(s1.registrationHits - s0.registrationHits, 2u);
    EXPECT_EQ(s1.liveRegistrations, 2u);
    // A buffer outside its handle's range is refused; CUDA memory is refused (host-only device).
    void* req = nullptr;
    EXPECT_EQ(r.net->isend(sc, a.data(), 100, 0, h4, &req), abi::kInvalidArgument);
    EXPECT_EQ(req, nullptr);
    void* hc = nullptr;
    EXPECT_NE(r.net->regMr(sc, a.data(), a.size(), abi::kPtrCuda, &hc), abi::kSuccess);
    EXPECT_EQ(hc, nullptr);
    // A cached handle moves data.
    std::vector<Op> ops(2);
    ops[0].comm = rc;
    ops[0].sizes[0] = 65536;
    ops[0].data[0] = a.data() + 8192;
    ops[0].mh[0] = h2;
    ops[1].isSend = true;
    ops[1].comm = sc;
    ops[1].sizes[0] = 65536;
    ops[1].data[0] = b.data();
    ops[1].mh[0] = h4;
    fill(b.data(), b.size(), 7 + rank);
    ASSERT_EQ(runOps(*r.net, ops), abi::kSuccess);
    EXPECT_EQ(firstMismatch(a.data() + 8192, 65536, 8 - rank), -1);
    for (void* h : {h1, h2, h3, h4}) EXPECT_EQ(r.net->deregMr(sc, h), abi::kSuccess);
    EXPECT_NE(r.net->deregMr(sc, h1), abi::kSuccess)
        << "a handle whose last reference went is gone";
    EXPECT_EQ(stats(r.lib).liveRegistrations, 0u);
    ch[0].barrier();
    EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
    EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
    r.close();
  });
}

// ---- Virtual devices (v9+) ----------------------------------------------------------------------

// By default only NICs of one rail group fuse; a virtual interface (loopback) is in none.
class VdevTest : public NetTest {};  // makeVDevice exists from v9

TEST_P(VdevTest, FusionFollowsRailGroups) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  bool skipped = runOne(
      [v, tr] {
        setenv("TRELLIS_SOCKET_IFNAME", "^docker,virbr",
               1);  // this machine's interfaces and loopback
        Rank r;
        ASSERT_TRUE(r.open(v, tr));
        ASSERT_TRUE(r.net->hasMakeVDevice());
        if (r.ndev < 2) skipRank("fewer than two interfaces: nothing to fuse");
        Props p0, p1;
        ASSERT_EQ(r.net->getProperties(0, &p0), abi::kSuccess);
        ASSERT_EQ(r.net->getProperties(1, &p1), abi::kSuccess);
        ASSERT_TRUE(p0.pciPathNull || p1.pciPathNull) << "expected loopback among the devices";
        abi::NetVDeviceProps vp{2, {0, 1, 0, 0}};
        int d = -1;
        EXPECT_EQ(r.net->makeVDevice(&d, &vp), abi::kInvalidUsage);
        bool said = false;
        for (const LogLine& l : logLines())
          said =
              said || l.text.find("is in no rail group (a virtual interface)") != std::string::npos;
        EXPECT_TRUE(said);
        int n = 0;
        ASSERT_EQ(r.net->devices(&n), abi::kSuccess);
        EXPECT_EQ(n, r.ndev) << "a refused fusion adds no device";
        r.close();
      },
      60, /*maySkip=*/true);
  if (skipped) GTEST_SKIP() << "this machine has fewer than two interfaces";
}

// TRELLIS_NCCL_NET_FUSION=any fuses two interfaces into one virtual device whose comms stripe
// their streams over both.
TEST_P(VdevTest, VirtualDeviceFusesNics) {
  const int v = std::get<0>(GetParam());
  const std::string tr = std::get<1>(GetParam());
  bool skipped = runTwo(
      [v, tr](int rank, std::vector<Channel>& ch) {
        setenv("TRELLIS_SOCKET_IFNAME", "^docker,virbr", 1);
        setenv("TRELLIS_NCCL_NET_FUSION", "any", 1);
        Rank r;
        ASSERT_TRUE(r.open(v, tr));
        if (r.ndev < 2) skipRank("fewer than two interfaces: nothing to fuse");
        abi::NetVDeviceProps vp{2, {0, 1, 0, 0}};
        int d = -1;
        Props p0, p1;
        ASSERT_EQ(r.net->getProperties(0, &p0), abi::kSuccess);
        ASSERT_EQ(r.net->getProperties(1, &p1), abi::kSuccess);
        abi::NetVDeviceProps bad{2, {0, 0, 0, 0}};
        EXPECT_EQ(r.net->makeVDevice(&d, &bad), abi::kInvalidArgument) << "a device twice";
        abi::NetVDeviceProps five{5, {0, 1, 0, 1}};
        EXPECT_EQ(r.net->makeVDevice(&d, &five), abi::kInvalidArgument) << "more than 4 members";
        ASSERT_EQ(r.net->makeVDevice(&d, &vp), abi::kSuccess);
        EXPECT_EQ(d, r.ndev);
        int again = -1;
        ASSERT_EQ(r.net->makeVDevice(&again, &vp), abi::kSuccess);
        EXPECT_EQ(again, d) << "the same fusion gives the same device";
        int n = 0;
        ASSERT_EQ(r.net->devices(&n), abi::kSuccess);
        EXPECT_EQ(n, r.ndev + 1);
        Props pv;
        ASSERT_EQ(r.net->getProperties(d, &pv), abi::kSuccess);
        EXPECT_EQ(pv.vNdevs, 2);
        EXPECT_EQ(pv.vDevs[0], 0);
        EXPECT_EQ(pv.vDevs[1], 1);
        EXPECT_EQ(pv.speed, p0.speed + p1.speed);
        EXPECT_EQ(pv.name, p0.name + "+" + p1.name);
        EXPECT_EQ(stats(r.lib).virtualDevices, 1u);
        void *sc, *rc;
        connectPair(*r.net, r.ctx, d, ch[0], &sc, &rc);
        Buffers sb{r.net.get(), sc}, rb{r.net.get(), rc};
        std::vector<Op> ops(2);
        const size_t size = (6 << 20) + 11;
        ops[0].comm = rc;
        ops[0].sizes[0] = size;
        ops[0].data[0] = rb.add(size, &ops[0].mh[0]);
        ops[1].isSend = true;
        ops[1].comm = sc;
        ops[1].sizes[0] = size;
        ops[1].data[0] = sb.add(size, &ops[1].mh[0]);
        fill(ops[1].data[0], size, 77 + rank);
        ASSERT_EQ(runOps(*r.net, ops), abi::kSuccess);
        EXPECT_EQ(firstMismatch(ops[0].data[0], size, 78 - rank), -1);
        ch[0].barrier();
        EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
        EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
        r.close();
      },
      120, 1, /*maySkip=*/true);
  if (skipped) GTEST_SKIP() << "this machine has fewer than two interfaces";
}

INSTANTIATE_TEST_SUITE_P(Versions, NetTest,
                         ::testing::Combine(::testing::Values(6, 7, 8, 9, 10, 11),
                                            ::testing::ValuesIn(kTransports)),
                         caseName);
INSTANTIATE_TEST_SUITE_P(Versions, VdevTest,
                         ::testing::Combine(::testing::Values(9, 10, 11),
                                            ::testing::ValuesIn(kTransports)),
                         caseName);

TEST(NetPlugin, ExportsEveryVersionAndTheTuner) {
  runOne([] {
    void* lib = openPlugin();
    ASSERT_NE(lib, nullptr);
    for (const char* sym :
         {"ncclNetPlugin_v6", "ncclNetPlugin_v7", "ncclNetPlugin_v8", "ncclNetPlugin_v9",
          "ncclNetPlugin_v10", "ncclNetPlugin_v11", "ncclTunerPlugin_v4", "ncclTunerPlugin_v5"})
      EXPECT_NE(dlsym(lib, sym), nullptr) << sym;
    EXPECT_EQ(dlsym(lib, "ncclNetPlugin_v5"), nullptr) << "NCCL 2.28 refuses v5 and older";
    EXPECT_EQ(dlsym(lib, "ncclCollNetPlugin_v11"), nullptr) << "no CollNet";
  });
}

}  // namespace
}  // namespace nccltest
