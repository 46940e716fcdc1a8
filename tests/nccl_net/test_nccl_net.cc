// The NCCL net plugin driven as NCCL drives it, without NCCL: two processes dlopen the plugin, look
// up ncclNetPlugin_vN for every N in 6..11, swap 128-byte listen handles over a socketpair, poll
// connect/accept until both comms exist, and run sends/receives with NCCL's rules (isend/irecv may
// return no request: post again later; test never blocks; at most 32 receives in flight per comm;
// the sender may have 32 x maxRecvs sends in flight). Every received byte is checked.
// This file: init, devices and properties, connections, closing, threads, virtual devices; the data
// path cases are in test_nccl_net_data.cc.
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

#include "net_test_util.h"

namespace nccltest {
namespace {

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
      found =
          found || (l.level == abi::kLogInfo && (l.flags & abi::kFlagNet) &&
                    l.text.find("using the " + backendOf(tr) + " backend") != std::string::npos);
    EXPECT_TRUE(found) << "no INFO/NET line 'using the " << backendOf(tr) << " backend'";
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
    setenv("TRELLIS_NCCL_NET_TRANSPORT", backendOf(tr).c_str(), 1);
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

// TRELLIS_NCCL_NET_TRANSPORT=verbs where no RDMA port is usable fails init with one clear line
// (NCCL then uses its own nets). On a machine with RDMA devices (the qemu guest), a TRELLIS_IB_HCA
// that matches none of them stands in for "no device".
class VersionTest : public ::testing::TestWithParam<int> {};
TEST_P(VersionTest, VerbsWithoutAnRdmaDeviceFailsClearly) {
  const int v = GetParam();
  runOne([v] {
    setenv("TRELLIS_NCCL_NET_TRANSPORT", "verbs", 1);
    const bool rdma = haveRdmaDevice();
    if (rdma) setenv("TRELLIS_IB_HCA", "=no_such_hca0", 1);
    void* lib = openPlugin();
    ASSERT_NE(lib, nullptr);
    std::string why;
    auto net = loadNet(lib, v, &why);
    ASSERT_TRUE(net) << why;
    void* ctx = nullptr;
    EXPECT_EQ(net->init(&ctx), abi::kInvalidUsage);
    EXPECT_EQ(ctx, nullptr);
    const std::string want = rdma ? "no active RDMA port matches TRELLIS_IB_HCA='=no_such_hca0'"
                                  : "TRELLIS_NCCL_NET_TRANSPORT=verbs: no RDMA device";
    bool found = false;
    for (const LogLine& l : logLines())
      found = found || (l.level == abi::kLogWarn &&
                        l.text.find("NCCL will use its own nets") != std::string::npos &&
                        l.text.find(want) != std::string::npos);
    EXPECT_TRUE(found) << "no WARN line containing '" << want << "'";
    int n = -1;
    EXPECT_NE(net->devices(&n), abi::kSuccess);
    EXPECT_EQ(net->finalize(ctx), abi::kSuccess);
  });
}

// TRELLIS_NCCL_NET_TRANSPORT=auto: the verbs backend on a machine with an RDMA device (the qemu
// guest); elsewhere TCP, with one INFO line saying why verbs was not used.
TEST_P(VersionTest, AutoPicksVerbsWhereAnRdmaDeviceExists) {
  const int v = GetParam();
  runOne([v] {
    setenv("TRELLIS_NCCL_NET_TRANSPORT", "auto", 1);
    const bool rdma = haveRdmaDevice();
    void* lib = openPlugin();
    ASSERT_NE(lib, nullptr);
    std::string why;
    auto net = loadNet(lib, v, &why);
    ASSERT_TRUE(net) << why;
    void* ctx = nullptr;
    ASSERT_EQ(net->init(&ctx), abi::kSuccess);
    bool said = false, chosen = false;
    const std::string want = rdma ? "using the verbs backend (ncclNet" : "using the tcp backend (ncclNet";
    for (const LogLine& l : logLines()) {
      said = said || (l.level == abi::kLogInfo &&
                      l.text.find("verbs backend not used: no RDMA device") != std::string::npos);
      chosen = chosen || l.text.find(want) != std::string::npos;
    }
    EXPECT_TRUE(chosen) << "no line '" << want << "'";
    if (!rdma) {
      EXPECT_TRUE(said) << "no INFO line saying why verbs is not used";
    }
    EXPECT_EQ(net->finalize(ctx), abi::kSuccess);
  });
}
INSTANTIATE_TEST_SUITE_P(Versions, VersionTest, ::testing::Values(6, 7, 8, 9, 10, 11),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "v" + std::to_string(i.param);
                         });

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

// ---- Virtual devices (v9+) ----------------------------------------------------------------------

// By default only NICs of one rail group fuse; a virtual interface (loopback) is in none.

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
