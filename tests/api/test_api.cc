// C API behaviour: invalid arguments are rejected with a message naming the values, bootstrap
// rejects strangers and does not hang, split/multi-communicator/group semantics.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "../support/harness.h"
#include "core/bootstrap.h"
#include "core/params.h"
#include "trellis/trellis.h"

namespace trellis::test {
namespace {

const int kEnvInit = (setenv("TRELLIS_TIMEOUT_S", "30", 0), setenv("TRELLIS_BOOTSTRAP_TIMEOUT_S", "20", 0), 0);

TEST(Api, VersionAndErrorStrings) {
  int v = 0;
  ASSERT_EQ(trellisGetVersion(&v), trellisSuccess);
  EXPECT_EQ(v, TRELLIS_VERSION_CODE);
  EXPECT_STREQ(trellisGetErrorString(trellisInvalidArgument), "invalid argument");
  EXPECT_STREQ(trellisGetErrorString(trellisTimeout), "timeout");
  EXPECT_STREQ(trellisGetErrorString(static_cast<trellisResult_t>(99)), "unknown result code");
  EXPECT_EQ(trellisGetVersion(nullptr), trellisInvalidArgument);
}

TEST(Api, InvalidArgumentsNameTheValues) {
  std::string err = runRanks(2, RankMode::kThreads, [](trellisComm_t comm, int rank, int n) -> std::string {
    float buf[16] = {};
    auto expect = [&](trellisResult_t got, trellisResult_t want, const char* needle) -> std::string {
      std::string msg = trellisGetLastError(comm);
      if (got != want) return std::string("got ") + trellisGetErrorString(got) + " for " + needle + ": " + msg;
      if (msg.find(needle) == std::string::npos) return "message '" + msg + "' lacks '" + needle + "'";
      return "";
    };
    std::string e;
    if (!(e = expect(trellisAllReduce(nullptr, buf, 4, trellisFloat32, trellisSum, comm, nullptr),
                     trellisInvalidArgument, "sendbuff is NULL with count 4")).empty()) return e;
    if (!(e = expect(trellisAllReduce(buf, nullptr, 4, trellisFloat32, trellisSum, comm, nullptr),
                     trellisInvalidArgument, "recvbuff is NULL")).empty()) return e;
    if (!(e = expect(trellisAllReduce(buf, buf, 4, static_cast<trellisDataType_t>(42), trellisSum, comm, nullptr),
                     trellisInvalidArgument, "datatype 42")).empty()) return e;
    if (!(e = expect(trellisAllReduce(buf, buf, 4, trellisFloat32, static_cast<trellisRedOp_t>(-3), comm, nullptr),
                     trellisInvalidArgument, "op -3")).empty()) return e;
    if (!(e = expect(trellisBroadcast(buf, buf, 4, trellisFloat32, 7, comm, nullptr), trellisInvalidArgument,
                     "root 7 out of range [0, 2)")).empty()) return e;
    if (!(e = expect(trellisReduce(buf, buf, 4, trellisFloat32, trellisSum, -1, comm, nullptr),
                     trellisInvalidArgument, "root -1")).empty()) return e;
    if (!(e = expect(trellisSend(buf, 4, trellisFloat32, 5, comm, nullptr), trellisInvalidArgument,
                     "peer 5 out of range")).empty()) return e;
    if (!(e = expect(trellisAlltoAll(buf, buf, 4, trellisFloat32, comm, nullptr), trellisInvalidArgument,
                     "in-place")).empty()) return e;
    // A pointer that is not a communicator, and a NULL one.
    trellisComm_t bogus = reinterpret_cast<trellisComm_t>(buf);
    if (trellisAllReduce(buf, buf, 4, trellisFloat32, trellisSum, bogus, nullptr) != trellisInvalidArgument)
      return "bogus comm accepted";
    if (std::string(trellisGetLastError(nullptr)).find("not a live Trellis communicator") == std::string::npos)
      return std::string("bogus comm message: ") + trellisGetLastError(nullptr);
    if (trellisAllReduce(buf, buf, 4, trellisFloat32, trellisSum, nullptr, nullptr) != trellisInvalidArgument)
      return "NULL comm accepted";
    // count 0 with NULL buffers is fine, and the communicator still works after rejected calls.
    if (trellisAllReduce(nullptr, nullptr, 0, trellisFloat32, trellisSum, comm, nullptr) != trellisSuccess)
      return std::string("count 0 rejected: ") + trellisGetLastError(comm);
    float x = static_cast<float>(rank + 1), y = 0;
    if (trellisAllReduce(&x, &y, 1, trellisFloat32, trellisSum, comm, nullptr) != trellisSuccess || y != 3.0f)
      return "allreduce after errors failed";
    int count = 0, me = -1;
    if (trellisCommCount(comm, &count) != trellisSuccess || count != n) return "count";
    if (trellisCommUserRank(comm, &me) != trellisSuccess || me != rank) return "rank";
    trellisResult_t async = trellisInternalError;
    if (trellisCommGetAsyncError(comm, &async) != trellisSuccess || async != trellisSuccess) return "async error set";
    return "";
  });
  EXPECT_EQ(err, "");
}

// A collective with count 0 communicates nothing: rank 0 alone makes a run of such calls (rank 1
// makes none), each returns at once, and the ranks still agree afterwards. A call that waited for
// its peer would time out here (TRELLIS_TIMEOUT_S is 30 s) instead.
TEST(Api, ZeroCountCollectivesDoNotCommunicate) {
  std::string err = runRanks(2, RankMode::kThreads, [](trellisComm_t comm, int rank, int) -> std::string {
    float buf[4] = {};
    if (rank == 0) {
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < 100; ++i) {
        if (trellisAllReduce(buf, buf, 0, trellisFloat32, trellisSum, comm, nullptr) != trellisSuccess ||
            trellisBroadcast(buf, buf, 0, trellisFloat32, 1, comm, nullptr) != trellisSuccess ||
            trellisReduce(buf, buf, 0, trellisFloat32, trellisMax, 1, comm, nullptr) != trellisSuccess ||
            trellisAllGather(buf, buf + 1, 0, trellisFloat32, comm, nullptr) != trellisSuccess ||
            trellisReduceScatter(buf, buf + 1, 0, trellisFloat32, trellisSum, comm, nullptr) != trellisSuccess ||
            trellisAlltoAll(buf, buf + 1, 0, trellisFloat32, comm, nullptr) != trellisSuccess)
          return std::string("zero-count call failed: ") + trellisGetLastError(comm);
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (s > 5.0) return "600 zero-count calls took " + std::to_string(s) + " s";
      // Arguments are still checked.
      if (trellisBroadcast(buf, buf, 0, trellisFloat32, 9, comm, nullptr) != trellisInvalidArgument)
        return "zero-count broadcast with root 9 accepted";
    }
    float x = static_cast<float>(rank + 1), y = 0;
    if (trellisAllReduce(&x, &y, 1, trellisFloat32, trellisSum, comm, nullptr) != trellisSuccess || y != 3.0f)
      return std::string("allreduce after the zero-count calls: ") + trellisGetLastError(comm);
    return "";
  });
  EXPECT_EQ(err, "");
}

// trellisCommRegister/Deregister on transports with nothing to register (shm, tcp, ucx): the calls
// validate their arguments, track handles (a bad or repeated deregister names the handle), and
// collectives on registered buffers work as on any other. The verbs side: tests/rdma.
TEST(Api, RegisterAndDeregisterBuffers) {
  for (Wire wire : {Wire::kShm, Wire::kTcp, Wire::kUcxTcp}) {
    std::string err = runRanksOver(wire, 2, RankMode::kThreads, [](trellisComm_t comm, int rank, int n) -> std::string {
      std::vector<float> buf(1 << 16, static_cast<float>(rank + 1));
      auto expect = [&](trellisResult_t got, trellisResult_t want, const std::string& needle) -> std::string {
        std::string msg = trellisGetLastError(comm);
        if (got != want) return std::string("got ") + trellisGetErrorString(got) + " for " + needle + ": " + msg;
        if (msg.find(needle) == std::string::npos) return "message '" + msg + "' lacks '" + needle + "'";
        return "";
      };
      std::string e;
      void* h = nullptr;
      if (!(e = expect(trellisCommRegister(comm, nullptr, 64, &h), trellisInvalidArgument,
                       "trellisCommRegister: buff is NULL (size 64)")).empty()) return e;
      if (!(e = expect(trellisCommRegister(comm, buf.data(), 0, &h), trellisInvalidArgument, "size is 0")).empty())
        return e;
      if (!(e = expect(trellisCommRegister(comm, buf.data(), 64, nullptr), trellisInvalidArgument,
                       "handle is NULL")).empty()) return e;
      if (!(e = expect(trellisCommRegister(comm, reinterpret_cast<void*>(UINTPTR_MAX - 10), 64, &h),
                       trellisInvalidArgument, "runs past the end of the address space")).empty()) return e;
      if (trellisCommRegister(nullptr, buf.data(), 64, &h) != trellisInvalidArgument) return "NULL comm accepted";
      if (!(e = expect(trellisCommDeregister(comm, nullptr), trellisInvalidArgument,
                       "trellisCommDeregister: handle is NULL")).empty()) return e;
      // Two registrations, one overlapping the other; collectives on the buffer, several calls.
      void* whole = nullptr;
      void* half = nullptr;
      if (trellisCommRegister(comm, buf.data(), buf.size() * sizeof(float), &whole) != trellisSuccess)
        return std::string("register: ") + trellisGetLastError(comm);
      if (trellisCommRegister(comm, buf.data() + 100, 4000, &half) != trellisSuccess)
        return std::string("register half: ") + trellisGetLastError(comm);
      if (whole == nullptr || half == nullptr || whole == half) return "handles not distinct";
      for (int call = 0; call < 3; ++call) {
        std::fill(buf.begin(), buf.end(), static_cast<float>(rank + 1 + call));
        if (trellisAllReduce(buf.data(), buf.data(), buf.size(), trellisFloat32, trellisSum, comm, nullptr) !=
            trellisSuccess)
          return std::string("allreduce: ") + trellisGetLastError(comm);
        const float want = static_cast<float>(n * (n + 1) / 2 + n * call);
        for (float x : buf)
          if (x != want) return "allreduce on a registered buffer: " + std::to_string(x) + " != " + std::to_string(want);
      }
      if (trellisCommDeregister(comm, half) != trellisSuccess) return std::string("dereg: ") + trellisGetLastError(comm);
      char hs[32];
      std::snprintf(hs, sizeof hs, "%p", half);
      if (!(e = expect(trellisCommDeregister(comm, half), trellisInvalidArgument,
                       std::string("handle ") + hs + " was deregistered already")).empty()) return e;
      void* bogus = buf.data();
      std::snprintf(hs, sizeof hs, "%p", bogus);
      if (!(e = expect(trellisCommDeregister(comm, bogus), trellisInvalidArgument,
                       std::string("handle ") + hs + " is not a registration of this communicator")).empty())
        return e;
      // The communicator still works; `whole` is left registered: destroy releases it.
      float x = 1, y = 0;
      if (trellisAllReduce(&x, &y, 1, trellisFloat32, trellisSum, comm, nullptr) != trellisSuccess || y != n)
        return "allreduce after registration errors failed";
      (void)whole;
      return "";
    });
    EXPECT_EQ(err, "") << wireName(wire);
  }
}

// A handle belongs to the communicator that made it.
TEST(Api, DeregisterWithAnotherCommunicatorIsAnError) {
  trellisUniqueId a, b;
  ASSERT_EQ(trellisGetUniqueId(&a), trellisSuccess);
  ASSERT_EQ(trellisGetUniqueId(&b), trellisSuccess);
  trellisComm_t ca = nullptr, cb = nullptr;
  ASSERT_EQ(trellisCommInitRank(&ca, 1, a, 0), trellisSuccess) << trellisGetLastError(nullptr);
  ASSERT_EQ(trellisCommInitRank(&cb, 1, b, 0), trellisSuccess) << trellisGetLastError(nullptr);
  std::vector<char> buf(4096);
  void* h = nullptr;
  ASSERT_EQ(trellisCommRegister(ca, buf.data(), buf.size(), &h), trellisSuccess);
  EXPECT_EQ(trellisCommDeregister(cb, h), trellisInvalidArgument);
  EXPECT_NE(std::string(trellisGetLastError(cb)).find("is not a registration of this communicator"), std::string::npos)
      << trellisGetLastError(cb);
  EXPECT_EQ(trellisCommDeregister(ca, h), trellisSuccess) << trellisGetLastError(ca);
  EXPECT_EQ(trellisCommDestroy(ca), trellisSuccess);
  EXPECT_EQ(trellisCommDestroy(cb), trellisSuccess);
  // A destroyed communicator is reported, not used.
  EXPECT_EQ(trellisCommDeregister(ca, h), trellisInvalidArgument);
  EXPECT_NE(std::string(trellisGetLastError(nullptr)).find("not a live Trellis communicator"), std::string::npos);
}

TEST(Api, InitRejectsBadArguments) {
  trellisUniqueId id;
  std::memset(&id, 0, sizeof id);
  trellisComm_t comm;
  EXPECT_EQ(trellisCommInitRank(&comm, 2, id, 0), trellisInvalidArgument);  // zero id: bad magic
  EXPECT_NE(std::string(trellisGetLastError(nullptr)).find("magic"), std::string::npos);
  ASSERT_EQ(trellisGetUniqueId(&id), trellisSuccess);
  EXPECT_EQ(trellisCommInitRank(&comm, 2, id, 2), trellisInvalidArgument);
  EXPECT_NE(std::string(trellisGetLastError(nullptr)).find("rank 2 out of range [0, 2)"), std::string::npos);
  EXPECT_EQ(trellisCommInitRank(&comm, 0, id, 0), trellisInvalidArgument);
  trellisConfig_t cfg;
  std::memset(&cfg, 0, sizeof cfg);
  EXPECT_EQ(trellisCommInitRankConfig(&comm, 1, id, 0, &cfg), trellisInvalidArgument);
  EXPECT_NE(std::string(trellisGetLastError(nullptr)).find("TRELLIS_CONFIG_INITIALIZER"), std::string::npos);
}

TEST(Api, SingleRankWithConfig) {
  trellisUniqueId id;
  ASSERT_EQ(trellisGetUniqueId(&id), trellisSuccess);
  trellisConfig_t cfg = TRELLIS_CONFIG_INITIALIZER;
  cfg.commName = "solo";
  cfg.timeoutSeconds = 5;
  trellisComm_t comm = nullptr;
  ASSERT_EQ(trellisCommInitRankConfig(&comm, 1, id, 0, &cfg), trellisSuccess) << trellisGetLastError(nullptr);
  double in[3] = {1, 2, 3}, out[3] = {};
  ASSERT_EQ(trellisAllReduce(in, out, 3, trellisFloat64, trellisAvg, comm, nullptr), trellisSuccess);
  EXPECT_EQ(out[2], 3.0);
  EXPECT_EQ(trellisCommDestroy(comm), trellisSuccess);
  // The handle is gone: using it again is reported, not a crash.
  EXPECT_EQ(trellisCommDestroy(comm), trellisInvalidArgument);
}

// A stranger that connects to the bootstrap root without the secret is dropped; the job completes.
TEST(Bootstrap, WrongSecretRejectedAndJobCompletes) {
  trellisUniqueId id;
  ASSERT_EQ(trellisGetUniqueId(&id), trellisSuccess);
  auto data = UniqueIdData::decode(id);
  ASSERT_TRUE(data.isOk());
  // Stranger: a join request with a wrong secret, then garbage.
  std::thread stranger([&] {
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto s = net::connectTo(data->root, net::deadlineIn(5), nullptr);
      if (!s) return;
      char junk[120];
      std::memset(junk, attempt ? 0x41 : 0, sizeof junk);
      (void)net::sendAll(s->fd(), junk, sizeof junk, net::deadlineIn(2), nullptr);
    }
  });
  stranger.join();
  std::vector<std::string> errs(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      trellisComm_t c = nullptr;
      if (trellisCommInitRank(&c, 2, id, r) != trellisSuccess) { errs[r] = trellisGetLastError(nullptr); return; }
      int x = 1, y = 0;
      if (trellisAllReduce(&x, &y, 1, trellisInt32, trellisSum, c, nullptr) != trellisSuccess || y != 2) errs[r] = "allreduce";
      trellisCommDestroy(c);
    });
  for (auto& t : ranks) t.join();
  EXPECT_EQ(errs[0], "");
  EXPECT_EQ(errs[1], "");
}

// A rank with a forged id (right address, wrong secret) cannot join: it times out with a message.
TEST(Bootstrap, ForgedSecretCannotJoin) {
  trellisUniqueId id;
  ASSERT_EQ(trellisGetUniqueId(&id), trellisSuccess);
  trellisUniqueId forged = id;
  forged.internal[30] ^= 0x5a;
  trellisConfig_t cfg = TRELLIS_CONFIG_INITIALIZER;
  cfg.timeoutSeconds = 2;
  trellisComm_t c = nullptr;
  auto t0 = std::chrono::steady_clock::now();
  trellisResult_t r = trellisCommInitRankConfig(&c, 2, forged, 0, &cfg);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r, trellisSuccess);
  EXPECT_LT(s, 10.0);
  EXPECT_NE(std::string(trellisGetLastError(nullptr)).find("rank 0 of 2"), std::string::npos) << trellisGetLastError(nullptr);
}

// Root unreachable: a clear error within the timeout, not a hang.
TEST(Bootstrap, RootUnreachableTimesOut) {
  // An id pointing at a port nobody listens on.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);  // port now closed
  UniqueIdData d;
  d.root.len = sizeof a;
  std::memcpy(&d.root.storage, &a, sizeof a);
  trellisUniqueId id;
  d.encode(&id);
  trellisConfig_t cfg = TRELLIS_CONFIG_INITIALIZER;
  cfg.timeoutSeconds = 2;
  trellisComm_t c = nullptr;
  auto t0 = std::chrono::steady_clock::now();
  trellisResult_t r = trellisCommInitRankConfig(&c, 2, id, 1, &cfg);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r, trellisTimeout);
  EXPECT_LT(s, 6.0);
  std::string msg = trellisGetLastError(nullptr);
  EXPECT_NE(msg.find("cannot reach the bootstrap root"), std::string::npos) << msg;
  EXPECT_NE(msg.find(d.root.toString()), std::string::npos) << msg;
}

TEST(Api, SplitByParity) {
  std::string err = runRanks(5, RankMode::kThreads, [](trellisComm_t comm, int rank, int) -> std::string {
    trellisComm_t sub = nullptr;
    int color = rank == 4 ? TRELLIS_SPLIT_NOCOLOR : rank % 2;
    if (trellisCommSplit(comm, color, -rank, &sub, nullptr) != trellisSuccess)
      return std::string("split: ") + trellisGetLastError(comm);
    if (rank == 4) return sub == nullptr ? "" : "NOCOLOR got a communicator";
    int n = 0, me = -1;
    trellisCommCount(sub, &n);
    trellisCommUserRank(sub, &me);
    // Keys are -rank: higher old ranks come first.
    int expectN = 2, expectMe = rank < 2 ? 1 : 0;
    if (n != expectN || me != expectMe) return "rank " + std::to_string(rank) + ": sub rank/size " + std::to_string(me) + "/" + std::to_string(n);
    int x = rank, y = 0;
    if (trellisAllReduce(&x, &y, 1, trellisInt32, trellisSum, sub, nullptr) != trellisSuccess) return "sub allreduce";
    int want = rank % 2 == 0 ? 0 + 2 : 1 + 3;
    trellisCommDestroy(sub);
    return y == want ? "" : "sub allreduce result " + std::to_string(y);
  });
  EXPECT_EQ(err, "");
}

// One thread drives two ranks of the same job through a group: must not deadlock.
TEST(Api, OneThreadTwoRanksInAGroup) {
  trellisUniqueId id;
  ASSERT_EQ(trellisGetUniqueId(&id), trellisSuccess);
  trellisComm_t comms[2] = {nullptr, nullptr};
  ASSERT_EQ(trellisGroupStart(), trellisSuccess);
  std::thread other([&] { ASSERT_EQ(trellisCommInitRank(&comms[1], 2, id, 1), trellisSuccess); });
  ASSERT_EQ(trellisCommInitRank(&comms[0], 2, id, 0), trellisSuccess);
  other.join();
  ASSERT_EQ(trellisGroupEnd(), trellisSuccess);
  std::vector<float> in0(100000, 1.0f), in1(100000, 2.0f), out0(100000), out1(100000);
  ASSERT_EQ(trellisGroupStart(), trellisSuccess);
  ASSERT_EQ(trellisAllReduce(in0.data(), out0.data(), in0.size(), trellisFloat32, trellisSum, comms[0], nullptr), trellisSuccess);
  ASSERT_EQ(trellisAllReduce(in1.data(), out1.data(), in1.size(), trellisFloat32, trellisSum, comms[1], nullptr), trellisSuccess);
  ASSERT_EQ(trellisGroupEnd(), trellisSuccess) << trellisGetLastError(nullptr);
  EXPECT_EQ(out0[99999], 3.0f);
  EXPECT_EQ(out1[0], 3.0f);
  trellisCommDestroy(comms[0]);
  trellisCommDestroy(comms[1]);
}

// Several threads, each with its own communicator of a different job, all at once.
TEST(Api, ConcurrentCommunicators) {
  std::vector<std::thread> jobs;
  std::vector<std::string> errs(3);
  for (int j = 0; j < 3; ++j)
    jobs.emplace_back([&, j] {
      errs[j] = runRanks(2 + j, RankMode::kThreads, [](trellisComm_t c, int r, int n) -> std::string {
        std::vector<int64_t> v(5000, r), out(5000);
        for (int it = 0; it < 20; ++it)
          if (trellisAllReduce(v.data(), out.data(), v.size(), trellisInt64, trellisSum, c, nullptr) != trellisSuccess)
            return trellisGetLastError(c);
        return out[4999] == static_cast<int64_t>(n) * (n - 1) / 2 ? "" : "wrong sum";
      });
    });
  for (auto& t : jobs) t.join();
  for (auto& e : errs) EXPECT_EQ(e, "");
}

// Grouped sends and receives in any order, to self too, with uneven sizes.
TEST(Api, GroupedSendRecvAnyOrder) {
  std::string err = runRanks(4, RankMode::kThreads, [](trellisComm_t c, int r, int n) -> std::string {
    std::vector<std::vector<int>> out(n), in(n);
    for (int p = 0; p < n; ++p) {
      out[p].assign(1000 * (p + 1) + r, r * 100 + p);
      in[p].assign(1000 * (r + 1) + p, -1);
    }
    trellisGroupStart();
    // Sends first in descending peer order; receives after in ascending order.
    for (int p = n - 1; p >= 0; --p) trellisSend(out[p].data(), out[p].size(), trellisInt32, p, c, nullptr);
    for (int p = 0; p < n; ++p) trellisRecv(in[p].data(), in[p].size(), trellisInt32, p, c, nullptr);
    if (trellisGroupEnd() != trellisSuccess) return trellisGetLastError(c);
    for (int p = 0; p < n; ++p)
      for (int v : in[p])
        if (v != p * 100 + r) return "rank " + std::to_string(r) + " wrong data from " + std::to_string(p);
    return "";
  });
  EXPECT_EQ(err, "");
}

// A send larger than the matching receive is an error naming both sizes, not corruption.
TEST(Api, OversizedSendIsAnError) {
  std::string err = runRanks(2, RankMode::kThreads, [](trellisComm_t c, int r, int) -> std::string {
    std::vector<char> buf(4096);
    trellisResult_t res = r == 0 ? trellisSend(buf.data(), 4096, trellisUint8, 1, c, nullptr)
                                 : trellisRecv(buf.data(), 100, trellisUint8, 0, c, nullptr);
    if (r == 1) {
      std::string msg = trellisGetLastError(c);
      if (res == trellisSuccess) return "oversized message accepted";
      if (msg.find("4096-byte message") == std::string::npos || msg.find("100 bytes") == std::string::npos)
        return "message: " + msg;
    }
    return "";
  });
  EXPECT_EQ(err, "");
}

// A call stuck waiting for a peer that never comes is unblocked by trellisCommAbort from another
// thread within a second, and a short timeout turns a missing peer into `timeout` naming it.
TEST(Api, AbortUnblocksAndTimeoutNamesThePeer) {
  trellisUniqueId id;
  ASSERT_EQ(trellisGetUniqueId(&id), trellisSuccess);
  trellisComm_t comms[2] = {nullptr, nullptr};
  trellisConfig_t cfg = TRELLIS_CONFIG_INITIALIZER;
  cfg.timeoutSeconds = 3;
  std::thread t1([&] { ASSERT_EQ(trellisCommInitRankConfig(&comms[1], 2, id, 1, &cfg), trellisSuccess); });
  ASSERT_EQ(trellisCommInitRankConfig(&comms[0], 2, id, 0, &cfg), trellisSuccess);
  t1.join();
  // Timeout: rank 0 waits for rank 1, which never joins the collective.
  float x = 1, y = 0;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(trellisAllReduce(&x, &y, 1, trellisFloat32, trellisSum, comms[0], nullptr), trellisTimeout);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT(waited, 2.5);
  EXPECT_LT(waited, 6.0);
  std::string msg = trellisGetLastError(comms[0]);
  EXPECT_NE(msg.find("rank 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("timed out after 3 s"), std::string::npos) << msg;
  EXPECT_TRUE(msg.find("shm pid ") != std::string::npos || msg.find("tcp ") != std::string::npos) << msg;
  trellisResult_t async = trellisSuccess;
  ASSERT_EQ(trellisCommGetAsyncError(comms[0], &async), trellisSuccess);
  EXPECT_EQ(async, trellisTimeout);
  // Later calls report the earlier failure instead of running on a broken communicator.
  EXPECT_EQ(trellisAllReduce(&x, &y, 1, trellisFloat32, trellisSum, comms[0], nullptr), trellisTimeout);
  EXPECT_EQ(trellisCommDestroy(comms[0]), trellisSuccess);
  EXPECT_EQ(trellisCommDestroy(comms[1]), trellisSuccess);
  // Abort: in a fresh job, rank 1 blocks receiving from rank 0, which stays idle; another thread
  // aborts rank 1's communicator.
  ASSERT_EQ(trellisGetUniqueId(&id), trellisSuccess);
  std::thread t2([&] { ASSERT_EQ(trellisCommInitRank(&comms[1], 2, id, 1), trellisSuccess); });
  ASSERT_EQ(trellisCommInitRank(&comms[0], 2, id, 0), trellisSuccess);
  t2.join();
  std::thread aborter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    trellisCommAbort(comms[1]);
  });
  t0 = std::chrono::steady_clock::now();
  trellisResult_t r = trellisRecv(&y, 1, trellisFloat32, 0, comms[1], nullptr);
  waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  aborter.join();
  trellisCommDestroy(comms[0]);
  EXPECT_EQ(r, trellisRemoteError);
  EXPECT_LT(waited, 1.5);
}

}  // namespace
}  // namespace trellis::test
