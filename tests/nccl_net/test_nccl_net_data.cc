// The NCCL net plugin's data path driven as NCCL drives it (see test_nccl_net.cc): transfers of
// 0 B .. 8 MiB into larger receives, 32 x maxRecvs requests in flight, tagged multi-receives, sends
// larger than their receive or with a tag the receive lacks, and the registration cache.
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
  if (backendOf(tr) == "ucx")
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


// ---- Verbs only ------------------------------------------------------------------------------

// A peer process that dies (its QPs go with it) makes the next RDMA write fail at the sender: the
// work-completion error becomes ncclRemoteError with a WARN line naming the status. The close
// grace is raised so that the QP error, not the closed set-up socket, is what ends the wait.
TEST(NetPluginVerbs, DeadPeerFailsTheQpWithAClearLine) {
  if (!haveRdmaDevice()) GTEST_SKIP() << "no RDMA device here (the qemu Soft-RoCE guest runs this)";
  runTwo([](int rank, std::vector<Channel>& ch) {
    setenv("TRELLIS_NCCL_NET_IB_CLOSE_GRACE_S", "60", 1);
    setenv("TRELLIS_IB_TIMEOUT", "12", 1);  // 4.096 us * 2^12 = 17 ms per try
    setenv("TRELLIS_IB_RETRY_CNT", "2", 1);
    Rank r;
    ASSERT_TRUE(r.open(11, "verbs"));
    void *sc, *rc;
    connectPair(*r.net, r.ctx, 0, ch[0], &sc, &rc);
    std::vector<char> buf(1 << 20);
    void* mh = nullptr;
    ASSERT_EQ(r.net->regMr(rank == 0 ? sc : rc, buf.data(), buf.size(), abi::kPtrHost, &mh),
              abi::kSuccess);
    void* data = buf.data();
    size_t size = buf.size();
    int tag = 0;
    if (rank == 1) {
      // Two receives: their clear-to-sends reach rank 0. The first takes a 0-byte message; then
      // this rank dies without closing anything, with the second still posted.
      void* reqs[2] = {};
      for (void*& q : reqs) {
        ASSERT_EQ(r.net->irecv(rc, 1, &data, &size, &tag, &mh, &q), abi::kSuccess);
        ASSERT_NE(q, nullptr);
      }
      int done = 0, got = -1;
      auto t0 = Clock::now();
      while (!done) {
        ASSERT_EQ(r.net->test(reqs[0], &done, &got), abi::kSuccess);
        ASSERT_LT(since(t0), kOpTimeoutS);
      }
      EXPECT_EQ(got, 0);
      usleep(300 * 1000);  // the second clear-to-send has long left
      ch[0].sendU64(1);
      fflush(stdout);
      fflush(stderr);
      _exit(::testing::Test::HasFailure() ? 1 : 0);
    }
    void* req = nullptr;
    int done = 0, got = -1;
    auto t0 = Clock::now();
    while (req == nullptr) {
      ASSERT_EQ(r.net->isend(sc, buf.data(), 0, 0, mh, &req), abi::kSuccess);
      ASSERT_LT(since(t0), kOpTimeoutS);
    }
    while (!done) ASSERT_EQ(r.net->test(req, &done, &got), abi::kSuccess);
    ch[0].recvU64();     // rank 1 is about to exit
    usleep(500 * 1000);  // and has (its QPs are gone with its process)
    req = nullptr;
    Result res = abi::kSuccess;
    while (req == nullptr && res == abi::kSuccess && since(t0) < kOpTimeoutS)
      res = r.net->isend(sc, buf.data(), buf.size(), 0, mh, &req);
    ASSERT_EQ(res, abi::kSuccess) << "the second clear-to-send had arrived before rank 1 died";
    ASSERT_NE(req, nullptr);
    done = 0;
    t0 = Clock::now();
    while (!done && res == abi::kSuccess && since(t0) < 30) res = r.net->test(req, &done, &got);
    EXPECT_EQ(res, abi::kRemoteError) << "a write to a dead peer's QP must fail, not " << res;
    bool said = false;
    for (const LogLine& l : logLines())
      said = said || (l.level == abi::kLogWarn &&
                      l.text.find("transport retry counter exceeded") != std::string::npos);
    EXPECT_TRUE(said) << "no WARN line with the work completion's status";
    EXPECT_EQ(r.net->closeSend(sc), abi::kSuccess);
    EXPECT_EQ(r.net->closeRecv(rc), abi::kSuccess);
    EXPECT_EQ(r.net->deregMr(sc, mh), abi::kSuccess);
    r.close();
  });
}

}  // namespace
}  // namespace nccltest
