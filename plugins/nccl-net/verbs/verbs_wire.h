// The verbs backend's own protocol (RC queue pairs; set up over a small TCP exchange).
//
// Set-up. The listen handle holds the listener's TCP address and a random token. A connect opens a
// TCP connection to it and the two sides exchange, without ever blocking:
//   connector -> acceptor  Hello   token, the connector's NICs (GID/LID, port, MTU, link layer)
//   acceptor  -> connector Reply   the number of QPs (one per NIC of the wider end, at most 4), the
//                                  acceptor's QP numbers and PSNs, its NIC behind each QP, and the
//                                  address + rkeys of its size slots (or a refusal with a reason)
//   connector -> acceptor  Qps     the connector's QP numbers and PSNs (its QPs are at RTR/RTS and
//                                  its clear-to-send receives are posted)
//   acceptor  -> connector Ack     the acceptor's QPs are at RTR/RTS with their receives posted
// QP j pairs local NIC j mod n_local with the peer's NIC j mod n_peer (two-rail ends pair rail with
// rail). The TCP connection then stays open as a liveness signal: end of stream = the peer closed
// its comm (or died).
//
// Data (one direction per comm: the send comm writes into the receive comm's memory).
//  - irecv: the receiver registers its buffers and SENDs a clear-to-send (Cts) on QP 0: sequence
//    number, request slot, and per buffer its address, size, tag and rkey on each QP's NIC.
//  - isend: a send takes the oldest Cts with an unmatched buffer of its tag (NCCL's matching). It
//    RDMA-WRITEs its payload into that buffer (striped over the QPs when large), then on each QP it
//    used a WRITE-with-immediate of the 8-byte message size into the receiver's size slot
//    [slot][buffer]; the immediate (Imm) names the slot, buffer, part count and sequence. The
//    receiver's buffer is complete when every part's immediate has arrived (RC ordering: a part's
//    payload is placed before its immediate completes).
//  - A send larger than its buffer is refused at the sender, which also sends an immediate with the
//    error flag (and its size in the size slot), so the receive fails too instead of waiting.
//  - Flow control: a sender writes only into buffers a Cts granted; a Cts is sent only for a free
//    request slot (at most 32 per comm). So the receiver's QPs need at most 32 x 8 immediates'
//    worth of posted receives and the sender's QP 0 at most 32 Cts receives: both are posted up
//    front and re-posted as each completion is polled, so no message ever finds no receive.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tcp/tcp_wire.h"

namespace trellis::ncclnet::ibwire {

constexpr uint32_t kHandleMagic = 0x54524e49u;  // "TRNI"
constexpr uint32_t kHelloMagic = 0x54524e4au;   // "TRNJ"
constexpr uint32_t kReplyMagic = 0x54524e4bu;   // "TRNK"
constexpr uint32_t kQpsMagic = 0x54524e4du;     // "TRNM"
constexpr uint32_t kAckMagic = 0x54524e4fu;     // "TRNO"
constexpr uint32_t kCtsMagic = 0x54524e50u;     // "TRNP"
constexpr uint8_t kVersion = 1;
constexpr uint8_t kBackendVerbs = 3;
constexpr int kMaxQps = 4;        // NCCL fuses at most 4 NICs into a virtual device
constexpr int kMaxRecvs = 8;      // buffers per receive
constexpr int kMaxRequests = 32;  // receives in flight per comm (NCCL_NET_MAX_REQUESTS)

struct Handle {
  uint32_t magic;
  uint8_t version;
  uint8_t backend;
  uint16_t reserved;
  uint64_t token;
  tcpwire::CompactAddr addr;  // the listener's set-up socket
};

/// A NIC port as a peer needs it to address a QP there.
struct NicAddr {
  uint8_t gid[16];
  uint16_t lid;
  uint8_t port;
  uint8_t infiniband;  // link layer: 1 InfiniBand, 0 Ethernet (RoCE)
  uint8_t mtu;         // enum ibv_mtu
  uint8_t reserved[3];
};
static_assert(sizeof(NicAddr) == 24);

struct Hello {
  uint32_t magic;
  uint16_t version;
  uint16_t nNics;
  uint64_t token;
  NicAddr nics[kMaxQps];
};

struct Reply {
  uint32_t magic;
  int32_t status;  // 0: accepted; else `why` says why not
  uint16_t nQps;
  uint16_t reserved[3];
  uint32_t qpn[kMaxQps];
  uint32_t psn[kMaxQps];
  NicAddr nics[kMaxQps];  // the acceptor's NIC behind QP j
  uint64_t sizesAddr;     // size slots: uint64_t [kMaxRequests][kMaxRecvs]
  uint32_t sizesRkey[kMaxQps];
  char why[96];
};

struct Qps {
  uint32_t magic;
  uint32_t reserved;
  uint32_t qpn[kMaxQps];
  uint32_t psn[kMaxQps];
};

struct Ack {
  uint32_t magic;
  uint32_t reserved;
};

struct CtsEntry {
  uint64_t addr;
  uint64_t size;
  int32_t tag;
  uint32_t rkey[kMaxQps];  // rkey of the buffer on the receiver's NIC of QP j
  uint32_t reserved;
};
struct Cts {
  uint32_t magic;
  uint16_t n;
  uint16_t slot;
  uint64_t seq;
  CtsEntry e[kMaxRecvs];
};
static_assert(sizeof(CtsEntry) == 40 && sizeof(Cts) == 16 + 8 * 40);

/// The 32-bit immediate of a size write: [slot:5][buffer:3][parts-1:2][error:1][seq:21].
struct Imm {
  uint32_t slot, index, parts;
  bool error;
  uint32_t seq;  // the receive's sequence number mod 2^21
};
constexpr uint32_t kImmSeqMask = (1u << 21) - 1;
inline uint32_t encodeImm(const Imm& m) {
  return (m.slot & 31u) | (m.index & 7u) << 5 | ((m.parts - 1) & 3u) << 8 |
         (m.error ? 1u : 0u) << 10 | (m.seq & kImmSeqMask) << 11;
}
inline Imm decodeImm(uint32_t v) {
  return Imm{v & 31u, (v >> 5) & 7u, ((v >> 8) & 3u) + 1, ((v >> 10) & 1u) != 0, v >> 11};
}

}  // namespace trellis::ncclnet::ibwire
