// The verbs transport alone, on a real verbs device (Soft-RoCE in the qemu guest of
// tests/rdma/qemu_guest.sh: rxe0 on dummy0 10.77.1.1, rxe1 on dummy1 10.77.2.1). Two ranks as
// threads of this process (or a forked child when one must die): connection, 1 B..16 MiB checked
// byte for byte, many messages in flight, credit flow control under a slow receiver, size
// mismatches, a peer killed mid-transfer, progress timeouts, NIC selection and striping.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>

#include "core/bootstrap.h"
#include "core/params.h"
#include "transport/verbs/device.h"
#include "transport/verbs/gpu_direct.h"
#include "transport/verbs/verbs_transport.h"

namespace trellis::transport {
namespace {

using Clock = std::chrono::steady_clock;
using Body = std::function<std::string(VerbsTransport& t, int rank, Bootstrap& bs)>;

VerbsOptions defaults() {
  auto o = verbsOptionsFromParams();
  EXPECT_TRUE(o.isOk());
  VerbsOptions v = o.value();
  v.timeoutS = 30;
  return v;
}

// Runs `body` on two ranks (threads), each with its own bootstrap and transport; both ranks wait
// for each other before tearing down. Returns the failures ("" if none).
std::string runPair(const Body& body, const VerbsOptions& opt = defaults()) {
  auto root = startBootstrapRoot(0, 60);
  if (!root) return root.status().message();
  std::string errs[2];
  auto one = [&](int rank) -> std::string {
    Bootstrap bs;
    std::atomic<bool> abort{false};
    Status s = bs.init(root.value(), rank, 2, 30, &abort);
    if (!s.isOk()) return s.message();
    auto t = VerbsTransport::create(bs, {1 - rank}, opt, &abort);
    if (!t) return t.status().message();
    if (!t.value()->reaches(1 - rank))
      return "rank " + std::to_string(rank) + ": no verbs connection";
    std::string e = body(*t.value(), rank, bs);
    Status b = bs.barrier();
    return e.empty() ? b.message() : e;
  };
  std::thread a([&] { errs[0] = one(0); });
  errs[1] = one(1);
  a.join();
  std::string out;
  for (int r = 0; r < 2; ++r)
    if (!errs[r].empty()) out += "rank " + std::to_string(r) + ": " + errs[r] + "\n";
  return out;
}

// Progresses until every request is done; an error or `seconds` passing is a failure.
std::string waitAll(VerbsTransport& t, std::vector<Request>& reqs, double seconds = 60) {
  auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    bool all = true;
    for (auto& r : reqs) all = all && r.isDone();
    if (all) return "";
    if (Clock::now() > deadline) return "timed out";
    bool did = false;
    Status s = t.progress(10, &did);
    if (!s.isOk()) return s.message();
  }
}

uint8_t pattern(size_t i, size_t size, int from) {
  return static_cast<uint8_t>(i * 131 + size * 7 + from * 29 + (i >> 12));
}

std::string check(const std::vector<uint8_t>& buf, size_t off, size_t size, int from,
                  uint8_t guard) {
  for (size_t i = 0; i < size; ++i)
    if (buf[off + i] != pattern(i, size, from))
      return "byte " + std::to_string(i) + " of a " + std::to_string(size) +
             "-byte message differs";
  if (buf[off + size] != guard) return "wrote past a " + std::to_string(size) + "-byte message";
  return "";
}

int numPorts() { return static_cast<int>(verbs::listActivePorts(-1, nullptr).size()); }

class Verbs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (numPorts() == 0)
      GTEST_SKIP() << "no active RDMA port (run through tests/rdma/qemu_guest.sh)";
  }
};

TEST_F(Verbs, ConnectsOverEveryActivePort) {
  std::string err = runPair([](VerbsTransport& t, int rank, Bootstrap&) -> std::string {
    if (t.devices().empty()) return "no devices";
    if (t.queuePairs(1 - rank) < 2) return "fewer than 2 QPs";
    std::string d = t.describePeer(1 - rank);
    if (d.find("verbs ") != 0 || d.find("<->") == std::string::npos) return "describePeer: " + d;
    if (std::string(t.name()) != "verbs") return "name";
    return "";
  });
  EXPECT_EQ(err, "");
}

// Every size class: empty, tiny, around the eager limit, striped, 16 MiB; unaligned buffers.
TEST_F(Verbs, SizesOneByteTo16MiBByteForByte) {
  const VerbsOptions opt = defaults();
  const size_t e = opt.eagerBytes;
  const std::vector<size_t> sizes = {0,     1,     31,      4095,          e - 1,   e,
                                     e + 1, 65537, 1 << 20, (1 << 20) + 3, 16 << 20};
  std::string err = runPair([&](VerbsTransport& t, int rank, Bootstrap&) -> std::string {
    const int peer = 1 - rank;
    std::vector<std::vector<uint8_t>> out, in;
    for (size_t k = 0; k < sizes.size(); ++k) {
      std::vector<uint8_t> o(sizes[k] + 1);
      for (size_t i = 0; i < sizes[k]; ++i) o[1 + i] = pattern(i, sizes[k], rank);
      out.push_back(std::move(o));
      in.emplace_back(sizes[k] + 8, 0xa5);
    }
    std::vector<Request> reqs(2 * sizes.size());
    for (size_t k = 0; k < sizes.size(); ++k) {
      const size_t off = k % 2;  // odd addresses too
      Status r = t.postRecv(peer, in[k].data() + off, sizes[k] + 4, &reqs[2 * k]);
      if (!r.isOk()) return r.message();
      Status s = t.postSend(peer, out[k].data() + 1, sizes[k], &reqs[2 * k + 1]);
      if (!s.isOk()) return s.message();
    }
    std::string w = waitAll(t, reqs);
    if (!w.empty()) return w;
    for (size_t k = 0; k < sizes.size(); ++k) {
      if (reqs[2 * k].received != sizes[k])
        return "received " + std::to_string(reqs[2 * k].received) + " of " +
               std::to_string(sizes[k]);
      std::string c = check(in[k], k % 2, sizes[k], peer, 0xa5);
      if (!c.empty()) return c;
    }
    return "";
  });
  EXPECT_EQ(err, "");
}

// Hundreds of messages of mixed sizes in flight at once, in both directions; one side posts its
// receives before its sends, the other after (unexpected eager messages, early clear-to-sends).
// The messages sit at odd offsets of one buffer per direction, as a collective's chunks do, with a
// guard byte after each: the registration cache covers many of them per registration (a fresh
// buffer per message made this test register 360 times per rank, ~0.3 s each in the emulated guest,
// which was most of the guest run).
TEST_F(Verbs, ManyMessagesInFlight) {
  const std::vector<size_t> cycle = {8, 1000, 16384, 40000, 300000, 0, 70000};
  const int n = 210;
  std::vector<size_t> offs(n);
  size_t total = 0;
  for (int k = 0; k < n; ++k) {
    offs[k] = total + static_cast<size_t>(k % 3);
    total = offs[k] + cycle[k % cycle.size()] + 1;
  }
  std::string err = runPair([&](VerbsTransport& t, int rank, Bootstrap&) -> std::string {
    const int peer = 1 - rank;
    std::vector<uint8_t> out(total), in(total, 0x3c);
    std::vector<Request> reqs(2 * n);
    auto postRecvs = [&]() -> std::string {
      for (int k = 0; k < n; ++k) {
        Status s = t.postRecv(peer, in.data() + offs[k], cycle[k % cycle.size()], &reqs[k]);
        if (!s.isOk()) return s.message();
      }
      return "";
    };
    auto postSends = [&]() -> std::string {
      for (int k = 0; k < n; ++k) {
        const size_t sz = cycle[k % cycle.size()];
        for (size_t i = 0; i < sz; ++i) out[offs[k] + i] = pattern(i, sz + k, rank);
        Status s = t.postSend(peer, out.data() + offs[k], sz, &reqs[n + k]);
        if (!s.isOk()) return s.message();
      }
      return "";
    };
    std::string e = rank == 0 ? postRecvs() : postSends();
    if (e.empty()) e = rank == 0 ? postSends() : postRecvs();
    if (!e.empty()) return e;
    std::string w = waitAll(t, reqs);
    if (!w.empty()) return w;
    for (int k = 0; k < n; ++k) {
      const size_t sz = cycle[k % cycle.size()];
      if (reqs[k].received != sz) return "message " + std::to_string(k) + ": wrong size";
      for (size_t i = 0; i < sz; ++i)
        if (in[offs[k] + i] != pattern(i, sz + k, peer))
          return "message " + std::to_string(k) + ": byte " + std::to_string(i);
      if (in[offs[k] + sz] != 0x3c) return "message " + std::to_string(k) + ": wrote past its end";
    }
    const auto st = t.cacheStats();
    if (st.registrations > 60)  // 180 large receives and sends over 2 NICs; was 360
      return "registrations " + std::to_string(st.registrations) + " for 180 large messages";
    return "";
  });
  EXPECT_EQ(err, "");
}

// The receiver neither posts nor progresses for a while: the sender may complete only as many
// eager messages as the receiver pre-posted buffers for (its credits), and no large message.
TEST_F(Verbs, FlowControlHoldsASenderBackUntilTheReceiverCatchesUp) {
  const VerbsOptions opt = defaults();
  const int small = 400, large = 4;
  const size_t smallBytes = 2048, largeBytes = 1 << 20;
  std::atomic<bool> receiverStarted{false}, senderCounted{false};
  std::atomic<int> doneBeforeStart{-1}, largeBeforeStart{-1}, qps{0};
  std::string err = runPair([&](VerbsTransport& t, int rank, Bootstrap&) -> std::string {
    const int peer = 1 - rank;
    std::vector<std::vector<uint8_t>> bufs(small + large);
    std::vector<Request> reqs(small + large);
    for (int k = 0; k < small + large; ++k) {
      size_t sz = k < small ? smallBytes : largeBytes;
      bufs[k].assign(sz, 0);
      if (rank == 0)
        for (size_t i = 0; i < sz; ++i) bufs[k][i] = pattern(i, sz + k, 0);
    }
    if (rank == 0) {
      qps = t.queuePairs(peer);
      for (int k = 0; k < small + large; ++k) {
        Status s = t.postSend(peer, bufs[k].data(), bufs[k].size(), &reqs[k]);
        if (!s.isOk()) return s.message();
      }
      // Progress until the receiver wakes up; count what completed meanwhile.
      while (!receiverStarted.load()) {
        bool did = false;
        Status s = t.progress(5, &did);
        if (!s.isOk()) return s.message();
      }
      int done = 0, largeDone = 0;
      for (int k = 0; k < small; ++k) done += reqs[k].isDone();
      for (int k = small; k < small + large; ++k) largeDone += reqs[k].isDone();
      doneBeforeStart = done;
      largeBeforeStart = largeDone;
      senderCounted = true;  // the receiver starts only now, so the count is not racing it
      return waitAll(t, reqs);
    }
    // The slow receiver: two seconds without touching the transport (not a synchronisation: the
    // sender's checks hold whenever it looks).
    std::this_thread::sleep_for(std::chrono::seconds(2));
    receiverStarted = true;
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!senderCounted.load())
      if (Clock::now() > deadline)
        return std::string("the sender never counted");
      else
        std::this_thread::yield();
    for (int k = 0; k < small + large; ++k) {
      Status s = t.postRecv(peer, bufs[k].data(), bufs[k].size(), &reqs[k]);
      if (!s.isOk()) return s.message();
    }
    std::string w = waitAll(t, reqs);
    if (!w.empty()) return w;
    for (int k = 0; k < small + large; ++k)
      for (size_t i = 0; i < bufs[k].size(); ++i)
        if (bufs[k][i] != pattern(i, bufs[k].size() + k, 0))
          return "message " + std::to_string(k) + " corrupted";
    return "";
  });
  EXPECT_EQ(err, "");
  // Each QP starts with recvDepth credits, of which 2 are kept for clear-to-sends.
  const int credits = qps.load() * (opt.recvDepth - 2);
  std::printf("  %d of %d eager messages completed before the receiver posted (credits %d)\n",
              doneBeforeStart.load(), small, credits);
  EXPECT_GT(doneBeforeStart.load(), 0);
  EXPECT_LE(doneBeforeStart.load(), credits)
      << "the sender overran the receiver's " << credits << " buffers";
  EXPECT_EQ(largeBeforeStart.load(), 0)
      << "a large message completed before its receive was posted";
}

// Rank 0 fills every bounce buffer of rank 1 with eager messages rank 1 has no receive for yet;
// rank 1 first needs its own large message to rank 0 done, which takes rank 0's clear-to-send:
// that control message must get past rank 0's blocked data.
TEST_F(Verbs, ClearToSendPassesBlockedData) {
  const int eager = 300;
  std::string err = runPair([&](VerbsTransport& t, int rank, Bootstrap& bs) -> std::string {
    const int peer = 1 - rank;
    std::vector<uint8_t> small(eager * 1000), large(1 << 20);
    std::vector<Request> eagerReqs(eager);
    std::vector<Request> largeReq(1);
    if (rank == 0) {
      for (int k = 0; k < eager; ++k) {
        for (int i = 0; i < 1000; ++i) small[k * 1000 + i] = pattern(i, 1000 + k, 0);
        Status s = t.postSend(peer, small.data() + k * 1000, 1000, &eagerReqs[k]);
        if (!s.isOk()) return s.message();
      }
    }
    (void)bs.barrier();  // rank 0's eager messages are posted (and partly on their way)
    if (rank == 0) {
      Status r = t.postRecv(peer, large.data(), large.size(), &largeReq[0]);
      if (!r.isOk()) return r.message();
      std::string w = waitAll(t, largeReq);
      if (!w.empty()) return "large receive: " + w;
      for (size_t i = 0; i < large.size(); ++i)
        if (large[i] != pattern(i, large.size(), 1)) return "large message corrupted";
      return waitAll(t, eagerReqs);
    }
    for (size_t i = 0; i < large.size(); ++i) large[i] = pattern(i, large.size(), 1);
    Status s = t.postSend(peer, large.data(), large.size(), &largeReq[0]);
    if (!s.isOk()) return s.message();
    std::string w = waitAll(t, largeReq, 30);
    if (!w.empty()) return "large send (waits for rank 0's clear-to-send): " + w;
    for (int k = 0; k < eager; ++k) {
      Status r = t.postRecv(peer, small.data() + k * 1000, 1000, &eagerReqs[k]);
      if (!r.isOk()) return r.message();
    }
    w = waitAll(t, eagerReqs);
    if (!w.empty()) return w;
    for (int k = 0; k < eager; ++k)
      for (int i = 0; i < 1000; ++i)
        if (small[k * 1000 + i] != pattern(i, 1000 + k, 0))
          return "eager message " + std::to_string(k) + " corrupted";
    return "";
  });
  EXPECT_EQ(err, "");
}

TEST_F(Verbs, ReceiveSmallerThanTheMessageFailsOnBothSides) {
  // A receive above the eager limit (it sends a clear-to-send) and one below it (it does not: the
  // sender announces the size after a while), posted before or after the send.
  for (size_t cap : {size_t{50000}, size_t{8000}})
    for (bool receiverFirst : {true, false}) {
      std::string msgs[2];
      std::string err = runPair([&](VerbsTransport& t, int rank, Bootstrap& bs) -> std::string {
        std::vector<uint8_t> buf(100000);
        Request r;
        Status s;
        // The receive posted before or after the send: the size check happens on the clear-to-send
        // (sender) and on the size announcement (receiver) either way.
        if (rank == (receiverFirst ? 1 : 0))
          s = rank == 1 ? t.postRecv(0, buf.data(), cap, &r)
                        : t.postSend(1, buf.data(), buf.size(), &r);
        (void)bs.barrier();
        if (rank == (receiverFirst ? 0 : 1))
          s = rank == 1 ? t.postRecv(0, buf.data(), cap, &r)
                        : t.postSend(1, buf.data(), buf.size(), &r);
        auto deadline = Clock::now() + std::chrono::seconds(20);
        while (s.isOk() && !r.isDone() && Clock::now() < deadline) {
          bool did = false;
          s = t.progress(10, &did);
        }
        msgs[rank] = s.message();
        return "";
      });
      EXPECT_EQ(err, "");
      const std::string c = std::to_string(cap);
      EXPECT_NE(msgs[0].find("100000-byte message to rank 1 is larger than its matching receive (" +
                             c + " bytes)"),
                std::string::npos)
          << "receive of " << c << (receiverFirst ? " first: " : " last: ") << msgs[0];
      EXPECT_NE(msgs[1].find("rank 0 sends a 100000-byte message but the matching receive is " + c +
                             " bytes"),
                std::string::npos)
          << "receive of " << c << (receiverFirst ? " first: " : " last: ") << msgs[1];
    }
}

TEST_F(Verbs, ProgressHonoursItsTimeout) {
  std::string err = runPair([](VerbsTransport& t, int, Bootstrap&) -> std::string {
    bool did = false;
    auto t0 = Clock::now();
    Status s = t.progress(300, &did);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!s.isOk()) return s.message();
    if (ms < 250 || ms > 2000) return "progress(300) took " + std::to_string(ms) + " ms";
    t0 = Clock::now();
    for (int i = 0; i < 100; ++i) (void)t.progress(0, &did);
    ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (ms > 1000) return "100 x progress(0) took " + std::to_string(ms) + " ms";
    return "";
  });
  EXPECT_EQ(err, "");
}

// Within a call one registration serves every chunk of a buffer; releaseCallerMemory forgets it.
TEST_F(Verbs, RegistrationCacheReusesAndForgets) {
  std::string err = runPair([](VerbsTransport& t, int rank, Bootstrap&) -> std::string {
    const int peer = 1 - rank;
    std::vector<uint8_t> out(4 << 20, static_cast<uint8_t>(rank)), in(4 << 20);
    const size_t chunk = 256 * 1024;
    std::vector<Request> reqs(2 * (out.size() / chunk));
    for (size_t k = 0; k < out.size() / chunk; ++k) {
      Status r = t.postRecv(peer, in.data() + k * chunk, chunk, &reqs[2 * k]);
      if (!r.isOk()) return r.message();
      Status s = t.postSend(peer, out.data() + k * chunk, chunk, &reqs[2 * k + 1]);
      if (!s.isOk()) return s.message();
    }
    std::string w = waitAll(t, reqs);
    if (!w.empty()) return w;
    for (uint8_t b : in)
      if (b != static_cast<uint8_t>(peer)) return "wrong data";
    auto st = t.cacheStats();
    // 16 chunks of each buffer per NIC; misses are bounded by the 1 MiB regions covering them.
    if (st.hits < st.misses)
      return "hits " + std::to_string(st.hits) + " < misses " + std::to_string(st.misses);
    if (st.entries == 0) return "nothing cached";
    t.releaseCallerMemory();
    if (t.cacheStats().entries != 0) return "registrations survived releaseCallerMemory";
    return "";
  });
  EXPECT_EQ(err, "");
}

// Buffers registered with registerMemory (trellisCommRegister) keep their registrations across
// calls: every transfer inside them is a hit on the pinned region, no registration is made after
// the first, and deregisterMemory releases them (the next call registers per call again).
TEST_F(Verbs, RegisteredBuffersHitTheCacheAcrossCalls) {
  std::string err = runPair([](VerbsTransport& t, int rank, Bootstrap&) -> std::string {
    const int peer = 1 - rank;
    const size_t bytes = 3 << 20;
    std::vector<uint8_t> out(bytes + 64), in(bytes + 64);
    auto regOut = t.registerMemory(out.data(), out.size());
    auto regIn = t.registerMemory(in.data(), in.size());
    if (!regOut || !regIn) return regOut.status().message() + regIn.status().message();
    if (regOut.value() == 0 || regIn.value() == 0) return "registerMemory kept nothing";
    const std::string devs = t.devices();
    const size_t nics = static_cast<size_t>(std::count(devs.begin(), devs.end(), ',')) + 1;
    const auto st0 = t.cacheStats();
    if (st0.pinned != 2 * nics)
      return "pinned " + std::to_string(st0.pinned) + " != 2 x " + std::to_string(nics) + " NICs";
    // Send and receive one message inside the buffers at `off`, checked byte for byte.
    auto exchange = [&](size_t off, size_t size, int salt) -> std::string {
      for (size_t i = 0; i < size; ++i) out[off + i] = pattern(i, size + salt, rank);
      std::fill(in.begin(), in.end(), 0x5a);
      std::vector<Request> reqs(2);
      Status r = t.postRecv(peer, in.data() + off, size, &reqs[0]);
      if (!r.isOk()) return r.message();
      Status s = t.postSend(peer, out.data() + off, size, &reqs[1]);
      if (!s.isOk()) return s.message();
      std::string w = waitAll(t, reqs);
      if (!w.empty()) return w;
      if (reqs[0].received != size) return "received " + std::to_string(reqs[0].received);
      for (size_t i = 0; i < size; ++i)
        if (in[off + i] != pattern(i, size + salt, peer))
          return "byte " + std::to_string(i) + " of a " + std::to_string(size) +
                 "-byte message differs";
      if (in[off + size] != 0x5a || (off > 0 && in[off - 1] != 0x5a))
        return "wrote outside the message";
      return "";
    };
    // Five "calls" (releaseCallerMemory between them), messages above the eager limit (RDMA-written
    // into the registered receive buffer) at several offsets: all pinned hits, no registration.
    const std::vector<size_t> sizes = {65537, 1 << 20, bytes};
    for (int call = 0; call < 5; ++call) {
      for (size_t size : sizes) {
        std::string e = exchange(static_cast<size_t>(call) * 7, size, call);
        if (!e.empty()) return "call " + std::to_string(call) + ": " + e;
      }
      t.releaseCallerMemory();
    }
    const auto st1 = t.cacheStats();
    if (st1.registrations != st0.registrations)
      return "registrations " + std::to_string(st0.registrations) + " -> " +
             std::to_string(st1.registrations) + " on registered buffers";
    // Each message acquires a region per NIC for its send buffer and one for its receive buffer.
    if (st1.pinnedHits - st0.pinnedHits != 2 * 5 * sizes.size() * nics)
      return "pinned hits " + std::to_string(st1.pinnedHits - st0.pinnedHits) + ", expected " +
             std::to_string(2 * 5 * sizes.size() * nics);
    if (st1.misses != st0.misses) return "misses on registered buffers";
    if (st1.entries != 0) return "unpinned regions cached";
    // Deregistered: released at once; the next message registers per call again.
    t.deregisterMemory(regOut.value());
    t.deregisterMemory(regIn.value());
    if (t.cacheStats().pinned != 0) return "pins survived deregisterMemory";
    std::string e = exchange(0, bytes, 9);
    if (!e.empty()) return "after deregistering: " + e;
    const auto st2 = t.cacheStats();
    if (st2.misses == st1.misses || st2.registrations == st1.registrations)
      return "no per-call registration after deregistering";
    if (st2.pinnedHits != st1.pinnedHits) return "pinned hit after deregistering";
    t.releaseCallerMemory();
    if (t.cacheStats().entries != 0) return "per-call registrations survived the call";
    t.deregisterMemory(regIn.value());  // unknown token: ignored
    return "";
  });
  EXPECT_EQ(err, "");
}

// GPUDirect RDMA plumbing on a real verbs device, without a GPU: a fake CUDA driver
// (tests/rdma/fake_cuda.c, soname libcuda.so.1, loaded here first so the transport's RTLD_NOLOAD
// lookup finds it) declares a host buffer to be device memory of a GPU that a topology file puts
// under one PCIe switch with rxe0, and rxe1 behind another switch. Over rxe0 the transport takes
// the GPUDirect path: cuMemGetHandleForAddressRange (the fake's "dmabuf" is a memfd) and a real
// ibv_reg_dmabuf_mr call, which fails (not a dmabuf, and Soft-RoCE has no dmabuf support), then
// the peer-memory fallback (ibv_reg_mr of the "device" address: host pages here) registers it and
// the data arrives byte for byte. Over rxe1 the same buffer is refused: "stage it through host
// memory". What only a GPU can show (a dmabuf a NIC accepts, GPU pages) is not covered.
TEST_F(Verbs, GpuDirectPlumbingWithAFakeCudaDriver) {
  if (!verbs::gdrCompiled()) GTEST_SKIP() << "built without CUDA headers";
  bool have0 = false, have1 = false;
  for (const auto& p : verbs::listActivePorts(-1, nullptr)) {
    have0 = have0 || p.dev == "rxe0";
    have1 = have1 || p.dev == "rxe1";
  }
  if (!have0 || !have1) GTEST_SKIP() << "needs the guest's rxe0 and rxe1";
  if (dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD) != nullptr)
    GTEST_SKIP() << "a CUDA driver is loaded in this process already";
  void* lib = dlopen(TRELLIS_FAKE_CUDA, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto setAlloc =
      reinterpret_cast<void (*)(uintptr_t, size_t, int, int)>(dlsym(lib, "fakeCudaSetAllocation"));
  auto setBus = reinterpret_cast<void (*)(const char*)>(dlsym(lib, "fakeCudaSetBusId"));
  ASSERT_TRUE(setAlloc && setBus);
  const char* tmp = std::getenv("TMPDIR");
  const std::string topoFile = std::string(tmp && *tmp ? tmp : "/tmp") + "/gdr-plumbing-topo-" +
                               std::to_string(getpid()) + ".xml";
  {
    std::ofstream f(topoFile);
    f << R"(<system version="1">
  <cpu numaid="0" affinity="ffffffff" arch="x86_64" vendor="GenuineIntel" familyid="6" modelid="143">
    <pci busid="0000:10:00.0" class="0x060400" link_speed="16.0 GT/s PCIe" link_width="16">
      <pci busid="0000:11:00.0" class="0x030200" link_speed="16.0 GT/s PCIe" link_width="16"/>
      <pci busid="0000:12:00.0" class="0x020000" link_speed="16.0 GT/s PCIe" link_width="16">
        <nic><net name="rxe0" dev="0" speed="100000" port="1" guid="0x1" maxconn="65536" gdr="1"/></nic>
      </pci>
    </pci>
    <pci busid="0000:20:00.0" class="0x060400" link_speed="16.0 GT/s PCIe" link_width="16">
      <pci busid="0000:22:00.0" class="0x020000" link_speed="16.0 GT/s PCIe" link_width="16">
        <nic><net name="rxe1" dev="1" speed="100000" port="1" guid="0x2" maxconn="65536" gdr="1"/></nic>
      </pci>
    </pci>
  </cpu>
</system>
)";
  }
  ASSERT_TRUE(findParam("TRELLIS_TOPO_FILE")->setOverride(topoFile).isOk());
  // One "device allocation" holding both ranks' send and receive buffers (ranks are threads).
  const size_t region = 4 << 20, size = (3 << 20) + 5;
  std::vector<uint8_t> mem(4 * region + 4096);
  const uintptr_t base = (reinterpret_cast<uintptr_t>(mem.data()) + 4095) & ~uintptr_t{4095};
  setAlloc(base, 4 * region, 0, 0);
  setBus("00000000:11:00.0");  // CUDA's spelling of the topology's GPU 0000:11:00.0

  auto run = [&](const char* hca, bool direct) {
    VerbsOptions o = defaults();
    o.hca = hca;
    return runPair(
        [&](VerbsTransport& t, int rank, Bootstrap&) -> std::string {
          uint8_t* out = reinterpret_cast<uint8_t*>(base) + (2 * rank) * region;
          uint8_t* in = reinterpret_cast<uint8_t*>(base) + (2 * rank + 1) * region;
          for (size_t i = 0; i < size; ++i) out[i] = pattern(i, size, rank);
          std::memset(in, 0x5a, region);
          std::vector<Request> reqs(2);
          Status r = t.postRecv(1 - rank, in, size, &reqs[0]);
          Status s = r.isOk() ? t.postSend(1 - rank, out, size, &reqs[1]) : r;
          const auto st = t.cacheStats();
          if (!direct) {
            if (s.isOk()) return std::string("device memory on ") + hca + " was not refused";
            if (s.message().find("is not registered on " + std::string(hca) +
                                 " for GPUDirect RDMA") == std::string::npos ||
                s.message().find("do not share a PCIe switch") == std::string::npos ||
                s.message().find("stage it through host memory") == std::string::npos)
              return "refusal message: " + s.message();
            if (st.gdrRefused == 0) return "no refusal counted";
            return "";
          }
          if (!s.isOk()) return s.message();
          std::string w = waitAll(t, reqs);
          if (!w.empty()) return w;
          for (size_t i = 0; i < size; ++i)
            if (in[i] != pattern(i, size, 1 - rank))
              return "byte " + std::to_string(i) + " of the message into \"device\" memory differs";
          if (in[size] != 0x5a) return "wrote past the message";
          if (st.gdrPeerMemory < 2 || st.gdrDmabuf != 0 || st.gdrRefused != 0)
            return "GPUDirect registrations: dmabuf " + std::to_string(st.gdrDmabuf) +
                   ", peer memory " + std::to_string(st.gdrPeerMemory) + ", refused " +
                   std::to_string(st.gdrRefused) + " (expected 0, >= 2, 0)";
          return "";
        },
        o);
  };
  const std::string direct = run("rxe0", true);
  const std::string staged = run("rxe1", false);
  (void)findParam("TRELLIS_TOPO_FILE")->setOverride("");
  setAlloc(0, 0, 0, 0);
  dlclose(lib);  // later tests must not see a "CUDA driver" in this process
  unlink(topoFile.c_str());
  EXPECT_EQ(direct, "");
  EXPECT_EQ(staged, "");
}

// A forked rank 1 that is killed while rank 0 sends to it or receives from it: rank 0 gets an
// error naming rank 1 within seconds, never a hang. Both sides stream 1 MiB messages, four in
// flight, far more than fit before the kill.
constexpr int kWindow = 4;
constexpr int kMessages = 100000;
constexpr size_t kMsgBytes = 1 << 20;

// Keeps up to kWindow messages in flight; returns the number completed so far, or sets *err.
struct Streamer {
  Streamer(VerbsTransport& tr, int p, bool s) : t(tr), peer(p), send(s) {}
  VerbsTransport& t;
  int peer;
  bool send;
  std::vector<uint8_t> buf = std::vector<uint8_t>(kWindow * kMsgBytes, 5);
  Request reqs[kWindow];
  bool busy[kWindow] = {};
  int posted = 0, done = 0;
  Status step() {
    for (int w = 0; w < kWindow; ++w) {
      if (busy[w] && reqs[w].isDone()) {
        busy[w] = false;
        ++done;
      }
      if (!busy[w] && posted < kMessages) {
        uint8_t* p = buf.data() + w * kMsgBytes;
        TRELLIS_TRY(send ? t.postSend(peer, p, kMsgBytes, &reqs[w])
                         : t.postRecv(peer, p, kMsgBytes, &reqs[w]));
        busy[w] = true;
        ++posted;
      }
    }
    bool did = false;
    return t.progress(10, &did);
  }
};

void killedPeer(bool peerSends, const VerbsOptions& opt = defaults(),
                const char* expect = "rank 1") {
  auto root = startBootstrapRoot(0, 60);
  ASSERT_TRUE(root.isOk());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Bootstrap bs;
    std::atomic<bool> abort{false};
    if (!bs.init(root.value(), 1, 2, 30, &abort).isOk()) _exit(2);
    auto t = VerbsTransport::create(bs, {0}, defaults(), &abort);
    if (!t) _exit(3);
    Streamer st(*t.value(), 0, peerSends);
    for (;;)  // until killed
      if (!st.step().isOk()) _exit(4);
  }
  Bootstrap bs;
  std::atomic<bool> abort{false};
  ASSERT_TRUE(bs.init(root.value(), 0, 2, 30, &abort).isOk());
  auto t = VerbsTransport::create(bs, {1}, opt, &abort);
  ASSERT_TRUE(t.isOk()) << t.status().message();
  Streamer st(*t.value(), 1, !peerSends);
  // Let a few messages through, then kill the peer mid-stream.
  Status s;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (s.isOk() && st.done < 8 && Clock::now() < deadline) s = st.step();
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_GE(st.done, 8) << "the transfer did not start";
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  auto killedAt = Clock::now();
  while (s.isOk() && Clock::now() < killedAt + std::chrono::seconds(30)) s = st.step();
  double secs = std::chrono::duration<double>(Clock::now() - killedAt).count();
  ASSERT_FALSE(s.isOk()) << "no error 30 s after the peer was killed";
  EXPECT_EQ(s.code(), Code::kRemoteError) << s.message();
  EXPECT_NE(s.message().find("rank 1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(expect), std::string::npos) << s.message();
  EXPECT_LT(secs, 15) << s.message();
  std::printf("  peer killed while it %s (after %d messages): error after %.2f s: %s\n",
              peerSends ? "sent" : "received", st.done, secs, s.message().c_str());
  // Later calls report the same failure.
  Request r;
  EXPECT_FALSE(t.value()->postSend(1, st.buf.data(), 10, &r).isOk());
}

TEST_F(Verbs, PeerKilledWhileSendingToUs) { killedPeer(true); }
TEST_F(Verbs, PeerKilledWhileWeSendToIt) { killedPeer(false); }
// With a short ACK timeout our RDMA writes to the dead peer fail before its connection's end is
// taken as final: the error is the work completion's, named by ibv_wc_status_str.
TEST_F(Verbs, PeerKilledWorkCompletionErrorNamesTheStatus) {
  VerbsOptions opt = defaults();
  opt.ibTimeout = 13;  // 33 ms: 3 tries take well under the 0.5 s a closed connection is given,
  opt.retryCount = 2;  // and 3 missed ACKs in a row do not happen to a live peer, even here
  killedPeer(false, opt, "RDMA write to rank 1 failed on rxe");
}

uint64_t sentPackets(const std::string& dev) {
  std::ifstream in("/sys/class/infiniband/" + dev + "/ports/1/hw_counters/sent_pkts");
  uint64_t v = 0;
  in >> v;
  return v;
}

// Two devices (two rails): both are used, large messages striped over both; TRELLIS_IB_HCA
// narrows the choice.
TEST_F(Verbs, TwoRailsStripeAndHcaSelects) {
  auto ports = verbs::listActivePorts(-1, nullptr);
  if (ports.size() < 2) GTEST_SKIP() << "needs two RDMA devices";
  for (const auto& p : ports) {
    EXPECT_EQ(p.gidType, "RoCE v2") << p.describe();
    EXPECT_EQ(verbs::gidToString(p.gid).rfind("::ffff:10.77.", 0), 0u) << p.describe();
  }
  auto forced = verbs::listActivePorts(0, nullptr);
  ASSERT_EQ(forced.size(), ports.size());
  EXPECT_EQ(forced[0].gidIndex, 0);
  uint64_t before0 = sentPackets("rxe0"), before1 = sentPackets("rxe1");
  std::string err = runPair([](VerbsTransport& t, int rank, Bootstrap&) -> std::string {
    if (t.devices() != "rxe0:1,rxe1:1") return "devices " + t.devices();
    std::string d = t.describePeer(1 - rank);
    if (d.find("rxe0:1<->rxe0:1") == std::string::npos ||
        d.find("rxe1:1<->rxe1:1") == std::string::npos)
      return "rails not paired: " + d;
    std::vector<uint8_t> out(16 << 20, static_cast<uint8_t>(rank + 1)), in(16 << 20);
    std::vector<Request> reqs(2);
    Status r = t.postRecv(1 - rank, in.data(), in.size(), &reqs[0]);
    Status s = t.postSend(1 - rank, out.data(), out.size(), &reqs[1]);
    if (!r.isOk() || !s.isOk()) return r.message() + s.message();
    std::string w = waitAll(t, reqs);
    if (!w.empty()) return w;
    for (uint8_t b : in)
      if (b != static_cast<uint8_t>(2 - rank)) return "wrong data";
    return "";
  });
  EXPECT_EQ(err, "");
  // 2 x 16 MiB crossed the two devices: each carried a good share (MTU-sized packets).
  uint64_t d0 = sentPackets("rxe0") - before0, d1 = sentPackets("rxe1") - before1;
  std::printf("  packets sent: rxe0 %lu, rxe1 %lu\n", static_cast<unsigned long>(d0),
              static_cast<unsigned long>(d1));
  EXPECT_GT(d0, 2000u);
  EXPECT_GT(d1, 2000u);

  struct Sel {
    const char* hca;
    const char* devices;
  };
  for (const Sel& sel :
       {Sel{"rxe1", "rxe1:1"}, Sel{"^rxe1", "rxe0:1"}, Sel{"rxe1:1,rxe0:1", "rxe1:1,rxe0:1"}}) {
    VerbsOptions opt = defaults();
    opt.hca = sel.hca;
    std::string e = runPair(
        [&](VerbsTransport& t, int rank, Bootstrap&) -> std::string {
          if (t.devices() != sel.devices) return std::string(sel.hca) + ": devices " + t.devices();
          std::vector<uint8_t> out(100000, 1), in(100000);
          std::vector<Request> reqs(2);
          (void)t.postRecv(1 - rank, in.data(), in.size(), &reqs[0]);
          (void)t.postSend(1 - rank, out.data(), out.size(), &reqs[1]);
          return waitAll(t, reqs);
        },
        opt);
    EXPECT_EQ(e, "") << sel.hca;
  }
}

// A filter that matches nothing: no device here, so no connection (and no error).
TEST_F(Verbs, HcaMatchingNothingMeansNoConnection) {
  auto root = startBootstrapRoot(0, 60);
  ASSERT_TRUE(root.isOk());
  std::string errs[2];
  auto one = [&](int rank) {
    Bootstrap bs;
    std::atomic<bool> abort{false};
    if (!bs.init(root.value(), rank, 2, 30, &abort).isOk()) return std::string("bootstrap");
    VerbsOptions opt = defaults();
    if (rank == 0) opt.hca = "=rxe";  // exact: no device is called just "rxe"
    auto t = VerbsTransport::create(bs, {1 - rank}, opt, &abort);
    if (!t) return t.status().message();
    if (t.value()->reaches(1 - rank)) return std::string("connected without a device on rank 0");
    if (rank == 0 && !t.value()->devices().empty()) return "devices " + t.value()->devices();
    return bs.barrier().message();
  };
  std::thread a([&] { errs[0] = one(0); });
  errs[1] = one(1);
  a.join();
  EXPECT_EQ(errs[0], "");
  EXPECT_EQ(errs[1], "");
}

}  // namespace
}  // namespace trellis::transport
