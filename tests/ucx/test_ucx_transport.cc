// The UCX transport alone, over UCX's tcp and over its shared-memory transports: two ranks
// connected through the bootstrap (threads, or forked processes where a rank must die), messages
// from 0 B to 16 MiB checked byte for byte, hundreds in flight with receives posted before and
// after their messages arrive, order kept per peer, a too-small receive reported with both sizes,
// and a peer that dies or closes mid-transfer reported as an error naming it, not a hang.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/bootstrap.h"
#include "transport/ucx/ucx_transport.h"

namespace trellis {
namespace {

// UCX's shared-memory transports notice a dead peer at their keepalive round (20 s by default); one
// second keeps the peer-loss tests short.
const int kEnvInit = (setenv("UCX_KEEPALIVE_INTERVAL", "1s", 0), 0);

using transport::Request;
using transport::UcxTransport;

// Polls until every request is done; "" or the transport's error / a timeout message.
std::string waitAll(UcxTransport& t, const std::vector<Request*>& reqs, double timeoutS = 30) {
  auto deadline = net::deadlineIn(timeoutS);
  for (;;) {
    bool all = true;
    for (const Request* r : reqs) all = all && r->isDone();
    if (all) return "";
    if (net::Clock::now() > deadline) return "timed out after " + std::to_string(timeoutS) + " s";
    bool did = false;
    Status s = t.progress(50, &did);
    if (!s.isOk()) return s.message();
  }
}

uint8_t pattern(size_t i, size_t msg, int from) {
  return static_cast<uint8_t>(i * 131 + msg * 7 + from * 29 + (i >> 13));
}

// A rank's test body; it owns the transport (and may destroy it).
using OwningBody = std::function<std::string(Bootstrap& bs, std::unique_ptr<UcxTransport>& t)>;
using Body = std::function<std::string(Bootstrap& bs, UcxTransport& t)>;

// Runs `body` on two ranks (threads of this process) over UCX with `tls`.
void runPair(const std::string& tls, const OwningBody& body) {
  auto root = startBootstrapRoot(0, 30);
  ASSERT_TRUE(root.isOk()) << root.status().message();
  std::string errs[2];
  auto rank = [&](int r) -> std::string {
    Bootstrap bs;
    std::atomic<bool> abort{false};
    Status s = bs.init(root.value(), r, 2, 20, &abort);
    if (!s.isOk()) return s.message();
    transport::UcxOptions opt;
    opt.tls = tls;
    auto t = UcxTransport::create(bs, {1 - r}, opt);
    if (!t) return t.status().message();
    std::string e = body(bs, t.value());
    if (!e.empty()) return "rank " + std::to_string(r) + ": " + e;
    Status b = bs.barrier();  // neither side tears down while the other still needs it
    return b.isOk() ? "" : b.message();
  };
  std::thread a([&] { errs[0] = rank(0); });
  errs[1] = rank(1);
  a.join();
  EXPECT_EQ(errs[0], "");
  EXPECT_EQ(errs[1], "");
}
void runPair(const std::string& tls, const Body& body) {
  runPair(tls, [&](Bootstrap& bs, std::unique_ptr<UcxTransport>& t) { return body(bs, *t); });
}

class UcxTransportTest : public ::testing::TestWithParam<const char*> {};

TEST_P(UcxTransportTest, SizesUpTo16MiBByteForByte) {
  runPair(GetParam(), [&](Bootstrap& bs, UcxTransport& t) -> std::string {
    const int me = bs.rank(), peer = 1 - me;
    const size_t sizes[] = {0, 1, 31, 4096, 8191, 65536, 65537, 1 << 20, (1 << 20) + 3, 16 << 20};
    const size_t n = std::size(sizes);
    std::vector<std::vector<uint8_t>> out(n), in(n);
    for (size_t k = 0; k < n; ++k) {
      out[k].resize(sizes[k]);
      for (size_t i = 0; i < sizes[k]; ++i) out[k][i] = pattern(i, k, me);
      in[k].assign(sizes[k] + 64,
                   0xee);  // room past the message: nothing may land there
    }
    std::vector<Request> sreq(n), rreq(n);
    std::vector<Request*> all;
    for (size_t k = 0; k < n; ++k) {
      Status s = t.postRecv(peer, in[k].data(), in[k].size(), &rreq[k]);
      if (!s.isOk()) return s.message();
      s = t.postSend(peer, out[k].data(), out[k].size(), &sreq[k]);
      if (!s.isOk()) return s.message();
      all.push_back(&sreq[k]);
      all.push_back(&rreq[k]);
    }
    std::string e = waitAll(t, all);
    if (!e.empty()) return e;
    // The lanes UCX chose are the transports asked for.
    std::string where = t.describePeer(peer);
    const bool tcp = std::string(GetParam()) == "tcp";
    bool right =
        tcp ? where.find(" tcp/") != std::string::npos
            : where.find("posix/") != std::string::npos || where.find("sysv/") != std::string::npos;
    if (!right || (!tcp && where.find("tcp/") != std::string::npos))
      return "unexpected lanes: " + where;
    for (size_t k = 0; k < n; ++k) {
      if (rreq[k].received != sizes[k] || rreq[k].done != sizes[k])
        return "message " + std::to_string(k) + ": received " + std::to_string(rreq[k].received) +
               " bytes, sent " + std::to_string(sizes[k]);
      if (sreq[k].done != sizes[k])
        return "send " + std::to_string(k) + " reports " + std::to_string(sreq[k].done);
      for (size_t i = 0; i < sizes[k]; ++i)
        if (in[k][i] != pattern(i, k, peer))
          return "message " + std::to_string(k) + ": byte " + std::to_string(i) + " wrong";
      for (size_t i = sizes[k]; i < in[k].size(); ++i)
        if (in[k][i] != 0xee) return "message " + std::to_string(k) + ": written past its end";
    }
    return "";
  });
}

// 600 messages each way in flight at once, eager and rendezvous sizes interleaved. Rank 0 posts
// every send before any receive (its messages reach rank 1 before their receives exist); rank 1
// posts every receive first. Each message names its index, so a receive that took another message,
// or a reordering, shows.
TEST_P(UcxTransportTest, ManyInFlightKeepOrder) {
  runPair(GetParam(), [](Bootstrap& bs, UcxTransport& t) -> std::string {
    const int me = bs.rank(), peer = 1 - me;
    const int n = 600;
    auto sizeOf = [](int k) -> size_t {
      return k % 50 == 7 ? 300000 + k : k % 3 == 0 ? 8 : 100 + 37 * k;
    };
    std::vector<std::vector<uint8_t>> out(n), in(n);
    std::vector<Request> sreq(n), rreq(n);
    std::vector<Request*> all;
    for (int k = 0; k < n; ++k) {
      out[k].resize(sizeOf(k));
      for (size_t i = 0; i < out[k].size(); ++i) out[k][i] = pattern(i, k, me);
      std::memcpy(out[k].data(), &k, sizeof k);
      in[k].assign(sizeOf(k), 0);
    }
    auto postSends = [&]() -> Status {
      for (int k = 0; k < n; ++k) {
        TRELLIS_TRY(t.postSend(peer, out[k].data(), out[k].size(), &sreq[k]));
        all.push_back(&sreq[k]);
      }
      return Status::ok();
    };
    auto postRecvs = [&]() -> Status {
      for (int k = 0; k < n; ++k) {
        TRELLIS_TRY(t.postRecv(peer, in[k].data(), in[k].size(), &rreq[k]));
        all.push_back(&rreq[k]);
      }
      return Status::ok();
    };
    Status s = me == 0 ? postSends() : postRecvs();
    if (!s.isOk()) return s.message();
    // Rank 1's first sends land before rank 0 has posted a receive, and the other way round.
    for (int i = 0; i < 20; ++i) {
      bool did = false;
      if (!(s = t.progress(1, &did)).isOk()) return s.message();
    }
    s = me == 0 ? postRecvs() : postSends();
    if (!s.isOk()) return s.message();
    std::string e = waitAll(t, all);
    if (!e.empty()) return e;
    for (int k = 0; k < n; ++k) {
      int idx = -1;
      std::memcpy(&idx, in[k].data(), sizeof idx);
      if (idx != k) return "receive " + std::to_string(k) + " took message " + std::to_string(idx);
      if (rreq[k].received != sizeOf(k)) return "receive " + std::to_string(k) + ": wrong size";
      for (size_t i = sizeof idx; i < in[k].size(); ++i)
        if (in[k][i] != pattern(i, k, peer))
          return "message " + std::to_string(k) + ": byte " + std::to_string(i) + " wrong";
    }
    return "";
  });
}

// A receive smaller than its message fails with both sizes and the sender named, for a message sent
// eagerly and one sent by rendezvous, whether the receive was posted before or after the message
// arrived.
TEST_P(UcxTransportTest, TooSmallReceiveNamesPeerAndSizes) {
  for (size_t bytes : {size_t{1000}, size_t{4} << 20}) {
    for (bool recvFirst : {true, false}) {
      SCOPED_TRACE(std::to_string(bytes) +
                   (recvFirst ? " bytes, receive posted first" : " bytes, message first"));
      runPair(GetParam(), [&](Bootstrap& bs, UcxTransport& t) -> std::string {
        std::vector<uint8_t> buf(bytes, 1);
        Request req;
        const size_t small = bytes / 2;
        if (bs.rank() == 1) {
          std::string e;
          if (recvFirst) {
            Status s = t.postRecv(0, buf.data(), small, &req);
            if (!s.isOk()) return "post: " + s.message();
          }
          if (Status b = bs.barrier(); !b.isOk()) return b.message();
          if (!recvFirst) {
            for (int i = 0; i < 50; ++i) {  // let the message arrive (unexpected) if it can
              bool did = false;
              if (Status p = t.progress(2, &did); !p.isOk())
                return "error before the receive: " + p.message();
            }
            Status s = t.postRecv(0, buf.data(), small,
                                  &req);  // may fail at once: the message is here
            if (!s.isOk()) e = s.message();
          }
          if (e.empty()) e = waitAll(t, {&req}, 20);
          std::string want = "rank 0 sent a " + std::to_string(bytes) +
                             "-byte message but the matching receive is " + std::to_string(small) +
                             " bytes";
          if (e.find(want) == std::string::npos)
            return "expected \"" + want + "\", got \"" + e + "\"";
          return "";
        }
        if (Status b = bs.barrier(); !b.isOk()) return b.message();
        Status s = t.postSend(1, buf.data(), bytes, &req);
        if (!s.isOk()) return s.message();
        // A rendezvous send never completes when the receiver refuses it; an eager one does.
        (void)waitAll(t, {&req}, bytes > 100000 ? 1 : 10);
        return "";
      });
    }
  }
}

// A peer that dies (SIGKILL) or closes its transport in the middle of a transfer: the survivor
// sends (or receives) two 32 MiB messages, the peer posts its side of the first only, progresses a
// little (the first message may be partly or entirely through) and goes. The survivor's progress()
// must fail within seconds with an error naming the peer (UCX's endpoint error handler), never wait
// for its own timeout. The peer is a forked process, forked before this process starts any thread.
enum class Loss { kKilled, kClosed };
struct LossCase {
  const char* tls;
  Loss how;
  bool survivorSends;  // the survivor sends the message (else it receives it)
};

class UcxPeerLossTest : public ::testing::TestWithParam<LossCase> {};

TEST_P(UcxPeerLossTest, SurvivorGetsAnErrorNamingThePeer) {
  const LossCase c = GetParam();
  const size_t bytes = 32u << 20;  // each of the two messages
  transport::UcxOptions opt;
  opt.tls = c.tls;
  opt.closeTimeoutS = 2;
  int idPipe[2];
  ASSERT_EQ(pipe(idPipe), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(idPipe[1]);
    UniqueIdData id;
    if (read(idPipe[0], &id, sizeof id) != static_cast<ssize_t>(sizeof id)) _exit(3);
    Bootstrap bs;
    std::atomic<bool> abort{false};
    if (!bs.init(id, 1, 2, 20, &abort).isOk()) _exit(4);
    auto t = UcxTransport::create(bs, {0}, opt);
    if (!t) _exit(5);
    std::vector<uint8_t> buf(bytes, 7);
    Request req;
    Status s = c.survivorSends ? t.value()->postRecv(0, buf.data(), bytes, &req)
                               : t.value()->postSend(0, buf.data(), bytes, &req);
    if (!s.isOk() || !bs.barrier().isOk()) _exit(6);
    for (int i = 0; i < 5; ++i) {  // the transfer starts
      bool did = false;
      if (!t.value()->progress(1, &did).isOk()) break;
    }
    if (c.how == Loss::kKilled) raise(SIGKILL);
    t.value().reset();  // closed with the message still in flight
    _exit(0);
  }
  close(idPipe[0]);
  // Reap the peer as soon as it exits, as a launcher would: UCX's shared-memory keepalive sees a
  // dead peer by its pid, and an unreaped zombie still has one.
  int status = 0;
  std::thread reaper([&] { waitpid(child, &status, 0); });
  std::string err;
  double took = -1;
  std::string setup = [&]() -> std::string {
    auto root = startBootstrapRoot(0, 30);
    if (!root) return root.status().message();
    UniqueIdData id = root.value();
    if (write(idPipe[1], &id, sizeof id) != static_cast<ssize_t>(sizeof id))
      return "write to the peer failed";
    close(idPipe[1]);
    Bootstrap bs;
    std::atomic<bool> abort{false};
    Status s = bs.init(id, 0, 2, 20, &abort);
    if (!s.isOk()) return s.message();
    auto t = UcxTransport::create(bs, {1}, opt);
    if (!t) return t.status().message();
    std::vector<uint8_t> buf(2 * bytes, 9);
    Request req[2];
    for (int k = 0; k < 2; ++k) {
      s = c.survivorSends ? t.value()->postSend(1, buf.data() + k * bytes, bytes, &req[k])
                          : t.value()->postRecv(1, buf.data() + k * bytes, bytes, &req[k]);
      if (!s.isOk()) return s.message();
    }
    if (!(s = bs.barrier()).isOk()) return s.message();
    auto t0 = std::chrono::steady_clock::now();
    err = waitAll(*t.value(), {&req[0], &req[1]}, 60);
    took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t.value()->cancelAll();
    return "";
  }();
  if (!setup.empty()) kill(child, SIGKILL);
  reaper.join();
  ASSERT_EQ(setup, "");
  if (c.how == Loss::kKilled)
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  else
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(err.find("rank 1"), std::string::npos) << err;
  EXPECT_EQ(err.find("timed out"), std::string::npos) << err;
  EXPECT_LT(took, 30) << err;
  std::printf("error after %.2f s: %s\n", took, err.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, UcxPeerLossTest,
    ::testing::Values(LossCase{"tcp", Loss::kKilled, false}, LossCase{"tcp", Loss::kKilled, true},
                      LossCase{"tcp", Loss::kClosed, false}, LossCase{"tcp", Loss::kClosed, true},
                      LossCase{"sm", Loss::kKilled, false}, LossCase{"sm", Loss::kKilled, true},
                      LossCase{"sm", Loss::kClosed, false}, LossCase{"sm", Loss::kClosed, true}),
    [](const ::testing::TestParamInfo<LossCase>& i) {
      return std::string(i.param.tls) + (i.param.how == Loss::kKilled ? "_killed" : "_closed") +
             (i.param.survivorSends ? "_survivor_sends" : "_survivor_receives");
    });

// progress(timeoutMs) sleeps in the worker's event fd: with nothing to do it returns within its
// timeout (and does sleep, not spin back at once), and a message arriving wakes it long before a
// 5 s timeout would end.
TEST_P(UcxTransportTest, ProgressHonoursItsTimeoutAndWakesOnArrival) {
  runPair(GetParam(), [](Bootstrap& bs, UcxTransport& t) -> std::string {
    using Clock = std::chrono::steady_clock;
    auto secondsSince = [](Clock::time_point t0) {
      return std::chrono::duration<double>(Clock::now() - t0).count();
    };
    uint8_t ping = 1, pong = 0;  // connect first (UCX wires up on first use)
    Request pr[2];
    if (Status s = t.postRecv(1 - bs.rank(), &pong, 1, &pr[0]); !s.isOk()) return s.message();
    if (Status s = t.postSend(1 - bs.rank(), &ping, 1, &pr[1]); !s.isOk()) return s.message();
    if (std::string e = waitAll(t, {&pr[0], &pr[1]}); !e.empty()) return e;
    if (Status s = bs.barrier(); !s.isOk()) return s.message();
    if (bs.rank() == 1) {
      auto t0 = Clock::now();
      for (int i = 0; i < 5; ++i) {
        auto t1 = Clock::now();
        bool did = false;
        if (Status s = t.progress(100, &did); !s.isOk()) return s.message();
        if (secondsSince(t1) > 0.6)
          return "progress(100) took " + std::to_string(secondsSince(t1)) + " s";
      }
      if (secondsSince(t0) < 0.25)
        return "5 x progress(100) returned in " + std::to_string(secondsSince(t0)) + " s";
    }
    if (Status s = bs.barrier(); !s.isOk()) return s.message();
    std::vector<uint8_t> buf(100000, 5);
    Request req;
    if (bs.rank() == 0) {
      if (Status s = t.postSend(1, buf.data(), buf.size(), &req); !s.isOk()) return s.message();
      return waitAll(t, {&req});
    }
    if (Status s = t.postRecv(0, buf.data(), buf.size(), &req); !s.isOk()) return s.message();
    auto t0 = Clock::now();
    while (!req.isDone()) {
      bool did = false;
      if (Status s = t.progress(5000, &did); !s.isOk()) return s.message();
      if (secondsSince(t0) > 3) return "a message arriving did not wake progress(5000)";
    }
    return "";
  });
}

// cancelAll() detaches everything from UCX: afterwards the caller's Requests and buffers may be
// reused at once. Rank 1 has a receive waiting for an eager message, one for a rendezvous message
// and a rendezvous send its peer never takes; it cancels, overwrites the Requests and buffers,
// then rank 0 sends the two messages those receives would have matched, and rank 1 destroys its
// transport (which progresses UCX one last time). Nothing may have written to the Requests or
// buffers, and every call after cancelAll returns the error.
TEST_P(UcxTransportTest, CancelAllDetachesRequestsAndBuffers) {
  runPair(GetParam(), [](Bootstrap& bs, std::unique_ptr<UcxTransport>& t) -> std::string {
    const size_t small = 100, big = 1 << 20;
    uint8_t ping = 1, pong = 0;  // connect first (UCX wires up on first use)
    Request pr[2];
    if (Status s = t->postRecv(1 - bs.rank(), &pong, 1, &pr[0]); !s.isOk()) return s.message();
    if (Status s = t->postSend(1 - bs.rank(), &ping, 1, &pr[1]); !s.isOk()) return s.message();
    if (std::string e = waitAll(*t, {&pr[0], &pr[1]}); !e.empty()) return e;
    if (Status s = bs.barrier(); !s.isOk()) return s.message();
    std::vector<uint8_t> a(small, 1), b(big, 2), c(big, 3);
    if (bs.rank() == 1) {
      Request req[3];
      if (Status s = t->postRecv(0, a.data(), small, &req[0]); !s.isOk()) return s.message();
      if (Status s = t->postRecv(0, b.data(), big, &req[1]); !s.isOk()) return s.message();
      if (Status s = t->postSend(0, c.data(), big, &req[2]); !s.isOk()) return s.message();
      for (int i = 0; i < 10; ++i) {  // the send's rendezvous request reaches rank 0
        bool did = false;
        if (Status s = t->progress(1, &did); !s.isOk()) return "before cancelAll: " + s.message();
      }
      t->cancelAll();
      std::memset(static_cast<void*>(req), 0x5a, sizeof req);
      std::fill(a.begin(), a.end(), 0x5a);
      std::fill(b.begin(), b.end(), 0x5a);
      std::fill(c.begin(), c.end(), 0x5a);
      if (Status s = bs.barrier(); !s.isOk()) return s.message();  // rank 0 sends now
      if (Status s = bs.barrier(); !s.isOk()) return s.message();
      bool did = false;
      Request later;
      if (t->progress(10, &did).isOk() || t->postRecv(0, a.data(), small, &later).isOk())
        return "calls after cancelAll succeeded";
      t.reset();
      const uint8_t* r = reinterpret_cast<const uint8_t*>(req);
      for (size_t i = 0; i < sizeof req; ++i)
        if (r[i] != 0x5a) return "a cancelled Request was written after cancelAll";
      for (const auto* v : {&a, &b, &c})
        for (uint8_t x : *v)
          if (x != 0x5a) return "a buffer was written after cancelAll";
      return "";
    }
    if (Status s = bs.barrier(); !s.isOk()) return s.message();
    Request req[2];
    // Rank 1 closed its endpoints: these may fail or go nowhere; only rank 1's side is checked.
    if (t->postSend(1, a.data(), small, &req[0]).isOk() &&
        t->postSend(1, b.data(), big, &req[1]).isOk())
      (void)waitAll(*t, {&req[0], &req[1]}, 0.3);
    t->cancelAll();
    return bs.barrier().message();
  });
}

// Teardown neither loses what was sent nor waits for the peer: once connected, rank 0 sends 16
// messages, waits for them to complete (locally) and destroys its transport while rank 1 does not
// progress at all; only then does rank 1 post its receives, and every message must arrive intact,
// with no error (rank 0 closed after its last message, which is how every job ends).
TEST_P(UcxTransportTest, TeardownKeepsSentDataAndDoesNotWaitForThePeer) {
  runPair(GetParam(), [](Bootstrap& bs, std::unique_ptr<UcxTransport>& t) -> std::string {
    // Within what UCX buffers without the receiver's help (a shared-memory FIFO holds 64 entries,
    // a socket some 100 KiB).
    const int n = 16;
    const size_t bytes = 4000;
    std::vector<std::vector<uint8_t>> buf(n, std::vector<uint8_t>(bytes));
    std::vector<Request> req(n);
    std::vector<Request*> all;
    const uint32_t tag = bs.nextTag();
    // One message each way first: UCX wires an endpoint up on first use, which takes both sides.
    uint8_t ping = 1, pong = 0;
    Request pr[2];
    if (Status s = t->postRecv(1 - bs.rank(), &pong, 1, &pr[0]); !s.isOk()) return s.message();
    if (Status s = t->postSend(1 - bs.rank(), &ping, 1, &pr[1]); !s.isOk()) return s.message();
    if (std::string e = waitAll(*t, {&pr[0], &pr[1]}); !e.empty()) return e;
    if (Status s = bs.barrier(); !s.isOk()) return s.message();
    if (bs.rank() == 0) {
      for (int k = 0; k < n; ++k) {
        for (size_t i = 0; i < bytes; ++i) buf[k][i] = pattern(i, k, 0);
        Status s = t->postSend(1, buf[k].data(), bytes, &req[k]);
        if (!s.isOk()) return s.message();
        all.push_back(&req[k]);
      }
      std::string e = waitAll(*t, all);
      if (!e.empty()) return e;
      auto t0 = std::chrono::steady_clock::now();
      t.reset();
      double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (took > 2) return "destroying the transport took " + std::to_string(took) + " s";
      char done = 1;
      return bs.send(1, tag, &done, 1).message();
    }
    char done = 0;
    if (Status s = bs.recv(0, tag, &done, 1); !s.isOk()) return s.message();
    for (int k = 0; k < n; ++k) {
      Status s = t->postRecv(0, buf[k].data(), bytes, &req[k]);
      if (!s.isOk()) return s.message();
      all.push_back(&req[k]);
    }
    std::string e = waitAll(*t, all, 20);
    if (!e.empty()) return e;
    for (int k = 0; k < n; ++k)
      for (size_t i = 0; i < bytes; ++i)
        if (buf[k][i] != pattern(i, k, 0))
          return "message " + std::to_string(k) + ": byte " + std::to_string(i) + " wrong";
    return "";
  });
}

INSTANTIATE_TEST_SUITE_P(Tls, UcxTransportTest, ::testing::Values("tcp", "sm"),
                         [](const ::testing::TestParamInfo<const char*>& i) {
                           return std::string(i.param);
                         });

}  // namespace
}  // namespace trellis
