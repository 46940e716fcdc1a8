// Core pieces on their own: Status/Result, the params registry, unique-id encoding, TRELLIS_ALGO
// parsing and the TCP and shared-memory transports without any collective on top.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <thread>

#include "core/bootstrap.h"
#include "core/params.h"
#include "transport/shm/shm_transport.h"
#include "transport/tcp/tcp_transport.h"
#include "tuner/select.h"

namespace trellis {
namespace {

Status failsWith(int v) {
  if (v < 0) return invalidArgument("value %d is negative", v);
  return Status::ok();
}
Status chain(int v) {
  TRELLIS_TRY_CTX(failsWith(v), "checking the input");
  return Status::ok();
}

TEST(Status, ContextAndCodes) {
  Status s = chain(-4);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "checking the input: value -4 is negative");
  EXPECT_EQ(s.toC(), trellisInvalidArgument);
  EXPECT_TRUE(chain(3).isOk());
  Result<int> r = 5;
  EXPECT_EQ(r.value(), 5);
  Result<int> bad = timeoutError("waited %d s", 3);
  EXPECT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), Code::kTimeout);
}

Param<int64_t> kTestInt("TRELLIS_TEST_INT_PARAM", 42, "a test parameter");
Param<bool> kTestBool("TRELLIS_TEST_BOOL_PARAM", false, "a test parameter");

TEST(Params, DefaultsEnvOverridesAndErrors) {
  unsetenv("TRELLIS_TEST_INT_PARAM");
  kTestInt.reset();
  EXPECT_EQ(kTestInt.get(), 42);
  EXPECT_EQ(kTestInt.source(), ParamSource::kDefault);
  setenv("TRELLIS_TEST_INT_PARAM", "64K", 1);
  kTestInt.reset();
  EXPECT_EQ(kTestInt.get(), 65536);
  EXPECT_EQ(kTestInt.source(), ParamSource::kEnv);
  setenv("TRELLIS_TEST_INT_PARAM", "12x", 1);
  kTestInt.reset();
  EXPECT_EQ(kTestInt.get(), 42);  // invalid: default, with an error naming the value
  EXPECT_NE(kTestInt.error().find("TRELLIS_TEST_INT_PARAM='12x'"), std::string::npos) << kTestInt.error();
  EXPECT_TRUE(kTestInt.setOverride("7").isOk());
  EXPECT_EQ(kTestInt.get(), 7);
  EXPECT_EQ(kTestInt.source(), ParamSource::kOverride);
  EXPECT_FALSE(kTestInt.setOverride("seven").isOk());
  EXPECT_TRUE(kTestInt.setOverride("").isOk());
  unsetenv("TRELLIS_TEST_INT_PARAM");
  kTestInt.reset();
  EXPECT_EQ(kTestInt.get(), 42);
  setenv("TRELLIS_TEST_BOOL_PARAM", "yes", 1);
  kTestBool.reset();
  EXPECT_TRUE(kTestBool.get());
  EXPECT_NE(findParam("TRELLIS_TEST_BOOL_PARAM"), nullptr);
  EXPECT_EQ(findParam("TRELLIS_NO_SUCH_PARAM"), nullptr);
  EXPECT_EQ(parseSize("2G").value(), int64_t{2} << 30);
  EXPECT_EQ(parseSize("3MiB").value(), int64_t{3} << 20);
  EXPECT_FALSE(parseSize("").isOk());
  EXPECT_FALSE(parseSize("9999999999999G").isOk());
}

TEST(UniqueId, RoundTripsThroughHex) {
  UniqueIdData d;
  ASSERT_TRUE(net::parseHostPort("127.0.0.1:4242").isOk());
  d.root = net::parseHostPort("127.0.0.1:4242").value();
  for (int i = 0; i < 16; ++i) d.secret[i] = static_cast<uint8_t>(i * 17);
  trellisUniqueId id;
  d.encode(&id);
  std::string hex = UniqueIdData::toHex(id);
  EXPECT_EQ(hex.size(), 256u);
  auto back = UniqueIdData::fromHex(hex);
  ASSERT_TRUE(back.isOk());
  auto dd = UniqueIdData::decode(back.value());
  ASSERT_TRUE(dd.isOk());
  EXPECT_EQ(dd->root.toString(), "127.0.0.1:4242");
  EXPECT_EQ(std::memcmp(dd->secret, d.secret, 16), 0);
  EXPECT_FALSE(UniqueIdData::fromHex("abc").isOk());
  EXPECT_FALSE(UniqueIdData::fromHex(std::string(256, 'z')).isOk());
  trellisUniqueId zero{};
  EXPECT_FALSE(UniqueIdData::decode(zero).isOk());
}

TEST(Tuner, AlgoOverrideParsing) {
  auto ok = tuner::parseAlgoOverrides("allreduce:ring,broadcast:binomial");
  ASSERT_TRUE(ok.isOk());
  EXPECT_STREQ(ok.value()[static_cast<size_t>(algos::Coll::kAllReduce)]->name, "ring");
  auto badColl = tuner::parseAlgoOverrides("allreduse:ring");
  ASSERT_FALSE(badColl.isOk());
  EXPECT_NE(badColl.status().message().find("unknown collective 'allreduse'"), std::string::npos);
  auto badAlgo = tuner::parseAlgoOverrides("allreduce:tree");
  ASSERT_FALSE(badAlgo.isOk());
  EXPECT_NE(badAlgo.status().message().find("valid: ring, rd, oneshot, rabenseifner"), std::string::npos)
      << badAlgo.status().message();
  EXPECT_FALSE(tuner::parseAlgoOverrides("ring").isOk());
  // Automatic choices by the cost model: tests/tuner.
}

// Rank `rank` of two sends messages of `sizes` bytes to the other and receives as many (receive
// buffers 3 bytes larger), all posted at once, then checks every byte and that nothing was written
// past a message. "" when all is well, else what went wrong.
std::string exchangeOrdered(transport::Transport& t, int rank, const std::vector<size_t>& sizes) {
  std::vector<std::vector<uint8_t>> out, in;
  for (size_t sz : sizes) {
    std::vector<uint8_t> o(sz);
    for (size_t i = 0; i < sz; ++i) o[i] = static_cast<uint8_t>(i * 31 + sz + rank);
    out.push_back(o);
    in.emplace_back(sz + 3, 0xee);
  }
  std::vector<transport::Request> sreq(sizes.size()), rreq(sizes.size());
  for (size_t k = 0; k < sizes.size(); ++k) {
    Status q = t.postRecv(1 - rank, in[k].data(), in[k].size(), &rreq[k]);
    if (!q.isOk()) return q.message();
    Status p = t.postSend(1 - rank, out[k].data(), out[k].size(), &sreq[k]);
    if (!p.isOk()) return p.message();
  }
  auto deadline = net::deadlineIn(20);
  for (;;) {
    bool all = true;
    for (size_t k = 0; k < sizes.size(); ++k) all = all && sreq[k].isDone() && rreq[k].isDone();
    if (all) break;
    if (net::Clock::now() > deadline) return "timed out";
    bool did = false;
    Status p = t.progress(10, &did);
    if (!p.isOk()) return p.message();
  }
  for (size_t k = 0; k < sizes.size(); ++k) {
    if (rreq[k].received != sizes[k]) return "size mismatch at message " + std::to_string(k);
    for (size_t i = 0; i < sizes[k]; ++i)
      if (in[k][i] != static_cast<uint8_t>(i * 31 + sizes[k] + (1 - rank)))
        return "byte mismatch in message " + std::to_string(k) + " at " + std::to_string(i);
    for (size_t i = sizes[k]; i < sizes[k] + 3; ++i)
      if (in[k][i] != 0xee) return "wrote past message " + std::to_string(k);
  }
  return "";
}

// Two ranks as threads, each with its own bootstrap: body(bootstrap, rank, abort flag) returns ""
// or what went wrong; both must succeed, then they meet at a barrier.
void runTwoRanks(const std::function<std::string(Bootstrap&, int, std::atomic<bool>&)>& body) {
  auto root = startBootstrapRoot(0, 30);
  ASSERT_TRUE(root.isOk()) << root.status().message();
  std::string errs[2];
  auto run = [&](int rank) -> std::string {
    Bootstrap bs;
    std::atomic<bool> abort{false};
    Status s = bs.init(root.value(), rank, 2, 20, &abort);
    if (!s.isOk()) return s.message();
    std::string e = body(bs, rank, abort);
    return e.empty() ? bs.barrier().message() : e;
  };
  std::thread a([&] { errs[0] = run(0); });
  errs[1] = run(1);
  a.join();
  EXPECT_EQ(errs[0], "");
  EXPECT_EQ(errs[1], "");
}

// The TCP transport alone: two bootstraps in two threads, messages matched in order, sizes from
// 0 to 8 MiB striped over sockets, checked byte for byte.
TEST(TcpTransport, OrderedMessagesByteForByte) {
  runTwoRanks([](Bootstrap& bs, int rank, std::atomic<bool>& abort) -> std::string {
    transport::TcpOptions opt;
    opt.socketsPerPeer = 3;
    opt.chunkBytes = 64 * 1024;
    auto t = transport::TcpTransport::create(bs, {1 - rank}, opt, &abort);
    if (!t) return t.status().message();
    const std::string e = exchangeOrdered(*t.value(), rank, {0, 1, 31, 4096, 65536, 65537, 1 << 20, (8 << 20) + 5});
    if (!e.empty()) return e;
    return "";
  });
}

// The shared-memory transport alone, two ranks as threads: every framing of a message (inline in
// the slot's first cache line up to 40 bytes, one slot, several slots, single copy) with sizes on
// each boundary, a ring smaller than the messages in flight (3 slots, rounded up to 4), receive
// buffers larger than the message, and a message larger than its receive reported as such.
TEST(ShmTransport, EveryFramingByteForByte) {
  runTwoRanks([](Bootstrap& bs, int rank, std::atomic<bool>&) -> std::string {
    transport::ShmOptions opt;
    opt.slotBytes = 4096;
    opt.slots = 3;
    opt.cmaMinBytes = 256 * 1024;
    auto t = transport::ShmTransport::create(bs, {1 - rank}, opt);
    if (!t) return t.status().message();
    const size_t slotPayload = 4096 - 56;
    const std::string e = exchangeOrdered(
        *t.value(), rank,
        {0, 1, 8, 9, 39, 40, 41, 63, 64, 65, slotPayload - 1, slotPayload, slotPayload + 1, 5 * slotPayload + 7,
         256 * 1024 - 1, 256 * 1024, (1 << 20) + 3, 40, 0, 17});
    if (!e.empty()) return e;
    // A 30-byte (inline) message into a 20-byte receive: an error naming both sizes.
    std::vector<uint8_t> big(30, 1), small(20);
    transport::Request sr, rr;
    if (rank == 0) {
      Status p = t.value()->postSend(1, big.data(), big.size(), &sr);
      if (!p.isOk()) return p.message();
    } else {
      Status q = t.value()->postRecv(0, small.data(), small.size(), &rr);
      auto deadline = net::deadlineIn(20);
      while (q.isOk() && !rr.isDone() && net::Clock::now() < deadline) {
        bool did = false;
        q = t.value()->progress(10, &did);
      }
      if (q.isOk()) return "an oversized message was accepted";
      if (q.message().find("30-byte message") == std::string::npos ||
          q.message().find("20 bytes") == std::string::npos)
        return "unexpected error: " + q.message();
    }
    return "";
  });
}

}  // namespace
}  // namespace trellis
