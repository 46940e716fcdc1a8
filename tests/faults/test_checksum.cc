// TRELLIS_CHECKSUM=1: CRC32C per TCP chunk. The CRC itself against published vectors (RFC 3720
// B.4) and hardware against software; a chunk corrupted on the wire (test hook) is reported by the
// receiver naming the peer and the chunk's byte offset, and without the checksum the same
// corruption goes through unnoticed (so the test hook really corrupts); collectives with the
// checksum on give correct results.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../support/harness.h"
#include "core/crc32c.h"
#include "core/params.h"
#include "transport/tcp/tcp_transport.h"

namespace trellis::test {
namespace {

const int kEnvInit = (setenv("TRELLIS_TIMEOUT_S", "60", 0), 0);

TEST(Crc32c, PublishedVectors) {
  const char* digits = "123456789";
  EXPECT_EQ(crc32c(0, digits, 9), 0xe3069283u);
  EXPECT_EQ(crc32cSoftware(0, digits, 9), 0xe3069283u);
  unsigned char buf[32];
  std::memset(buf, 0, sizeof buf);
  EXPECT_EQ(crc32c(0, buf, 32), 0x8a9136aau);
  std::memset(buf, 0xff, sizeof buf);
  EXPECT_EQ(crc32c(0, buf, 32), 0x62a8ab43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(crc32c(0, buf, 32), 0x46dd794eu);
  EXPECT_EQ(crc32cSoftware(0, buf, 32), 0x46dd794eu);
  EXPECT_EQ(crc32c(0, buf, 0), 0u);
}

TEST(Crc32c, HardwareMatchesSoftwareAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::vector<unsigned char> data(4096 + 16);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  for (size_t off = 0; off < 9; ++off)
    for (size_t len = 0; len < 300; len += 1 + len / 16) {
      ASSERT_EQ(crc32c(0, data.data() + off, len), crc32cSoftware(0, data.data() + off, len)) << off << " " << len;
      // Extending in two pieces equals one pass.
      size_t cut = len / 3;
      ASSERT_EQ(crc32c(crc32c(0, data.data() + off, cut), data.data() + off + cut, len - cut),
                crc32c(0, data.data() + off, len));
    }
  EXPECT_EQ(crc32c(0, data.data(), 4096), crc32cSoftware(0, data.data(), 4096));
  std::printf("crc32c uses the %s path on this CPU\n", crc32cHardware() ? "SSE4.2" : "table");
}

constexpr size_t kMsg = 1 << 20;  // two 512 KiB chunks at the default TRELLIS_TCP_CHUNK_BYTES

// Rank 0 sends 1 MiB to rank 1 with its 2nd TCP chunk (byte offset 512 Ki) corrupted on the wire.
std::string corruptedSend(RankMode mode, bool checksum, std::string* rank1Error, size_t* badBytes) {
  if (!findParam("TRELLIS_CHECKSUM")->setOverride(checksum ? "1" : "0").isOk()) return "cannot set the param";
  std::string err = runRanksOver(Wire::kTcp, 2, mode, [&](trellisComm_t c, int r, int) -> std::string {
    std::vector<unsigned char> buf(kMsg);
    for (size_t i = 0; i < kMsg; ++i) buf[i] = static_cast<unsigned char>(i * 7 + 3);
    if (r == 0) {
      transport::testing::corruptNthTcpChunk(2);
      trellisResult_t res = trellisSend(buf.data(), kMsg, trellisUint8, 1, c, nullptr);
      transport::testing::corruptNthTcpChunk(0);
      // The receiver may fail and close before the sender has written everything.
      if (res != trellisSuccess && res != trellisRemoteError)
        return std::string("rank 0: send: ") + trellisGetLastError(c);
      return "";
    }
    std::vector<unsigned char> got(kMsg, 0);
    trellisResult_t res = trellisRecv(got.data(), kMsg, trellisUint8, 0, c, nullptr);
    if (res != trellisSuccess) {
      std::string m = trellisGetLastError(c);
      if (mode == RankMode::kThreads) *rank1Error = m;
      if (res != trellisRemoteError) return "rank 1: unexpected code: " + m;
      const char* want = "the chunk at byte offset 524288 (524288 bytes) of a 1048576-byte message";
      if (m.find("corrupted data from rank 0 (tcp ") == std::string::npos || m.find(want) == std::string::npos)
        return "rank 1: the error does not name rank 0 and the chunk's offset: " + m;
      return "";
    }
    size_t bad = 0;
    for (size_t i = 0; i < kMsg; ++i) bad += got[i] != buf[i];
    if (mode == RankMode::kThreads) *badBytes = bad;
    return checksum ? "rank 1: the corrupted message was received without error (" + std::to_string(bad) +
                          " bytes differ)"
                    : "rank 1: " + std::to_string(bad) + " bytes differ";
  }, 120);
  (void)findParam("TRELLIS_CHECKSUM")->setOverride("");
  return err;
}

TEST(Checksum, CorruptedChunkIsReportedWithPeerAndOffset) {
  std::string msg;
  size_t bad = 0;
  EXPECT_EQ(corruptedSend(RankMode::kThreads, true, &msg, &bad), "");
  EXPECT_NE(msg.find("corrupted data from rank 0 (tcp "), std::string::npos) << msg;
  EXPECT_NE(msg.find("the chunk at byte offset 524288 (524288 bytes) of a 1048576-byte message"), std::string::npos)
      << msg;
}

TEST(Checksum, CorruptedChunkIsReportedAcrossProcesses) {
  std::string unused;
  size_t bad = 0;
  EXPECT_EQ(corruptedSend(RankMode::kProcesses, true, &unused, &bad), "");
}

// Without the checksum the same hook changes exactly one byte and nothing notices: the hook works,
// and detection above is the CRC's doing.
TEST(Checksum, WithoutChecksumTheCorruptionGoesUnnoticed) {
  std::string msg;
  size_t bad = 0;
  std::string err = corruptedSend(RankMode::kThreads, false, &msg, &bad);
  EXPECT_EQ(err, "rank 1: 1 bytes differ\n");
  EXPECT_EQ(bad, 1u);
}

TEST(Checksum, CollectivesOverTcpStayCorrect) {
  ASSERT_TRUE(findParam("TRELLIS_CHECKSUM")->setOverride("1").isOk());
  std::string err = runRanksOver(Wire::kTcp, 3, RankMode::kProcesses, [](trellisComm_t c, int r, int n) -> std::string {
    for (size_t count : {size_t{0}, size_t{1}, size_t{1000}, size_t{300000}, size_t{1} << 20}) {
      std::vector<int32_t> in(count, r + 1), out(count, -1);
      if (trellisAllReduce(in.data(), out.data(), count, trellisInt32, trellisSum, c, nullptr) != trellisSuccess)
        return "rank " + std::to_string(r) + ": " + trellisGetLastError(c);
      for (int32_t v : out)
        if (v != n * (n + 1) / 2) return "rank " + std::to_string(r) + ": wrong sum " + std::to_string(v);
    }
    return "";
  });
  (void)findParam("TRELLIS_CHECKSUM")->setOverride("");
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace trellis::test
