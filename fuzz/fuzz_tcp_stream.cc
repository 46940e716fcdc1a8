// The TCP transport's receive path: chunk headers (magic, length, sequence, offset, total, flags,
// CRC) and payloads arriving from a peer, parsed by the real transport into posted receives.
// Input: byte 0 = receives to post (1..4, bits 0-1) and the chunk size (4..32 KiB, bits 5-6); then 2 bytes per receive (its size
// in 61-byte units, so sizes from 0 to ~4 MB); byte k = where to split the rest between the two
// sockets to the peer; the rest is the byte stream. The writer ends are closed afterwards, so the
// transport sees the end of the stream too. Receive buffers are exactly the posted size, so ASan
// catches any write the header checks let through.
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "transport/tcp/tcp_transport.h"

using namespace trellis;
using namespace trellis::transport;

static void writeAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > (1 << 17)) return 0;
  const int nrecv = 1 + (data[0] & 3);
  TcpOptions opt;
  opt.chunkBytes = 4096 << (data[0] >> 5 & 3);
  size_t off = 1;
  std::vector<size_t> sizes;
  for (int i = 0; i < nrecv && off + 2 <= size; ++i, off += 2) sizes.push_back((data[off] | data[off + 1] << 8) * 61u);
  if (off >= size) return 0;
  size_t split = off + 1 + (size - off - 1) * data[off] / 256;
  ++off;
  int a[2], b[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, a) != 0) return 0;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, b) != 0) {
    close(a[0]);
    close(a[1]);
    return 0;
  }
  int big = 1 << 20;
  for (int fd : {a[1], b[1]}) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  for (int fd : {a[0], b[0]}) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  // The peer (rank 0) streams into both sockets (what does not fit in the socket buffers is cut
  // off: non-blocking writes); the writer ends close so the end of stream is seen.
  int wa = a[1], wb = b[1];
  writeAll(wa, data + off, split > off ? split - off : 0);
  writeAll(wb, data + split, size > split ? size - split : 0);
  close(wa);
  close(wb);
  auto t = TcpTransport::fromSockets(1, {{a[0], b[0]}, {}}, opt);
  if (!t) return 0;
  std::vector<std::unique_ptr<char[]>> bufs;
  std::vector<Request> reqs(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    bufs.emplace_back(new char[sizes[i] ? sizes[i] : 1]);
    if (!(*t)->postRecv(0, bufs.back().get(), sizes[i], &reqs[i]).isOk()) return 0;
  }
  for (int round = 0; round < 64; ++round) {
    bool did = false;
    if (!(*t)->progress(0, &did).isOk() || !did) break;
  }
  for (const Request& r : reqs)
    if (r.done > r.bytes || r.received > r.bytes) __builtin_trap();
  (*t)->cancelAll();
  return 0;
}
