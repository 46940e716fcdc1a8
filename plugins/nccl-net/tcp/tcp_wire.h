// The TCP backend's own small protocol. All integers are in host byte order; the magics make a
// peer of the other endianness (or anything that is not this plugin) fail with a clear error.
//
// A comm is 1 control stream + K data streams (K = TRELLIS_NCCL_NET_SOCKETS, chosen by the
// listener), spread over the member NICs of the devices at both ends.
//   connect:  each stream opens with a Hello (listen token, connection id, stream index).
//   receive:  irecv sends a Cts on the control stream (receiver -> sender): sequence number, and
//             per buffer its size and tag. Nothing moves before its receive is posted, so data
//             lands straight in the user's buffer.
//   send:     a matched isend is cut into chunks of TRELLIS_NCCL_NET_CHUNK_BYTES spread over the
//             data streams; each chunk is a ChunkHeader + payload. The header names the receive
//             (sequence, buffer index), the offset, and the message's total size, so chunks
//             of one message may arrive on any stream in any order. A 0-byte message is one header.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/socket.h"

namespace trellis::ncclnet::tcpwire {

constexpr uint32_t kHandleMagic = 0x54524e48u;  // "TRNH"
constexpr uint32_t kHelloMagic = 0x54524e4cu;   // "TRNL"
constexpr uint32_t kCtsMagic = 0x54524e43u;     // "TRNC"
constexpr uint32_t kChunkMagic = 0x54524e44u;   // "TRND"
constexpr uint8_t kVersion = 1;
constexpr uint8_t kBackendTcp = 1;
constexpr uint8_t kBackendUcx = 2;
constexpr int kMaxAddrs = 4;
constexpr int kMaxDataSockets = 16;
constexpr int kMaxRecvs = 8;

/// An IPv4/IPv6 address and port in 24 bytes.
struct CompactAddr {
  uint8_t family;  // 4, 6; 0: none
  uint8_t reserved;
  uint16_t portBe;
  uint32_t scopeId;
  uint8_t addr[16];
};
static_assert(sizeof(CompactAddr) == 24);

inline CompactAddr toCompact(const net::SockAddr& a) {
  net::WireAddr w = net::toWire(a);
  CompactAddr c{};
  c.family = a.family() == AF_INET ? 4 : 6;
  c.portBe = w.portBe;
  c.scopeId = w.scopeId;
  std::memcpy(c.addr, w.addr, sizeof c.addr);
  return c;
}

inline Result<net::SockAddr> fromCompact(const CompactAddr& c) {
  if (c.family != 4 && c.family != 6)
    return invalidArgument("handle address family %u is neither 4 nor 6", c.family);
  net::WireAddr w{};
  w.family = static_cast<uint16_t>(c.family == 4 ? AF_INET : AF_INET6);
  w.portBe = c.portBe;
  w.scopeId = c.scopeId;
  std::memcpy(w.addr, c.addr, sizeof w.addr);
  return net::fromWire(w);
}

/// The backend part of the NCCL listen handle (the core keeps the last 16 of the 128 bytes).
struct Handle {
  uint32_t magic;
  uint8_t version;
  uint8_t backend;
  uint8_t nAddrs;       // listening addresses, one per member NIC of the listening device
  uint8_t dataSockets;  // K
  uint64_t token;       // random per listen comm; connections must present it
  CompactAddr addrs[kMaxAddrs];
};
static_assert(sizeof(Handle) == 112);

struct Hello {
  uint32_t magic;
  uint16_t version;
  uint16_t index;    // 0: control, 1..K: data
  uint16_t streams;  // K + 1
  uint16_t reserved;
  uint32_t reserved2;
  uint64_t token;
  uint64_t connId;  // random per connect: groups the streams of one comm
};
static_assert(sizeof(Hello) == 32);

struct CtsHeader {
  uint32_t magic;
  uint16_t n;     // buffers in the receive
  uint16_t slot;  // receiver's request slot, echoed in every ChunkHeader
  uint64_t seq;   // receives are numbered from 0 in posted order
};
struct CtsEntry {
  uint64_t size;
  int32_t tag;
  uint32_t reserved;
};
static_assert(sizeof(CtsHeader) == 16 && sizeof(CtsEntry) == 16);

struct ChunkHeader {
  uint32_t magic;
  uint16_t index;  // buffer of the receive
  uint16_t slot;   // from the Cts
  uint32_t len;    // payload bytes after this header
  uint32_t reserved2;
  uint64_t seq;     // receive sequence number
  uint64_t offset;  // of the payload in the message
  uint64_t total;   // message size
};
static_assert(sizeof(ChunkHeader) == 40);

}  // namespace trellis::ncclnet::tcpwire
