// Internal state of the verbs transport, shared by its set-up (verbs_setup.cc) and its data path
// (verbs_transport.cc). See verbs_transport.h for the protocol.
#pragma once

#include <infiniband/verbs.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/socket.h"
#include "transport/verbs/device.h"
#include "transport/verbs/gpu_direct.h"
#include "transport/verbs/reg_cache.h"
#include "transport/verbs/verbs_transport.h"

namespace trellis::transport::verbs {

constexpr int kMaxNics = 4;
constexpr int kMaxQps = 16;
constexpr uint32_t kMsgMagic = 0x7e11ab1e;
constexpr int kCreditReserve = 2;  // credits per QP that only clear-to-sends may spend
constexpr int kSignalEvery = 16;   // at least every 16th control message asks for a completion
constexpr int kMaxCtsAhead =
    4096;  // clear-to-sends outstanding per peer (keeps seq mod 2^16 unique)
// A large send whose clear-to-send has not come after this long announces its size, so that a
// receive too small for it (which sends no clear-to-send) fails instead of waiting.
constexpr auto kAnnounceAfter = std::chrono::milliseconds(300);

enum class MsgKind : uint16_t { kEager = 1, kCts = 2, kRts = 3 };

/// Header of every SEND (eager data or clear-to-send).
struct MsgHeader {
  uint32_t magic;
  uint16_t kind;
  uint16_t reserved;
  uint64_t seq;
  uint64_t
      bytes;  // eager: payload bytes that follow; cts: capacity of the receive; rts: message size
  uint64_t addr;             // cts: receive buffer address
  uint32_t rkeys[kMaxNics];  // cts: the buffer's rkey on each of the receiver's NICs
};
static_assert(sizeof(MsgHeader) == 48);

/// Work-request ids: kind in the low 4 bits, a value above.
enum WrKind : uint64_t { kWrRecv = 1, kWrSlot = 2, kWrWrite = 3, kWrCredit = 4 };
inline uint64_t wrId(WrKind k, uint64_t v) { return (v << 4) | k; }

/// One opened port.
struct Nic {
  PortInfo info;
  ibv_context* ctx = nullptr;
  ibv_pd* pd = nullptr;
  ibv_comp_channel* channel = nullptr;
  ibv_cq* cq = nullptr;
  bool armed = false;
  uint32_t maxInline = 0;
  std::unique_ptr<Registrar> registrar;
  std::unique_ptr<RegCache> cache;
  std::unordered_map<uint32_t, std::pair<int, int>> qpOwner;  // qp_num -> (peer, qp index)
};

struct Qp {
  ibv_qp* qp = nullptr;
  int nic = 0;        // local NIC index
  int remoteNic = 0;  // the peer's NIC index of the other end
  uint32_t psn = 0;
  // Sending.
  int sqOut = 0;  // send work requests not completed
  // Send work requests in posted order (their wr_id and whether they ask for a completion). Most
  // control messages are posted unsignaled (fewer completions, fewer wake-ups); a signaled
  // completion retires everything posted before it on the QP.
  std::deque<std::pair<uint64_t, bool>> sendFifo;
  int sinceSignal = 0;
  uint64_t consumed = 0;  // SENDs and WRITE-with-immediates posted (each takes one peer receive)
  std::vector<int> freeSlots;
  // Receiving.
  uint64_t posted = 0;    // receives posted, cumulative
  uint64_t received = 0;  // receive completions, cumulative
  uint64_t reported = 0;  // last count written to the peer's mailbox
  bool creditInFlight = false;
};

struct Cts {
  uint64_t addr = 0, capacity = 0;
  uint32_t rkeys[kMaxNics] = {};
};

struct SendOp {
  Request* req = nullptr;
  const char* data = nullptr;
  size_t bytes = 0;
  uint64_t seq = 0;
  bool eager = false;
  bool done = false;
  bool haveCts = false;
  bool announced = false;  // size sent to the receiver (kRts)
  net::Clock::time_point postedAt;
  Cts cts;
  int parts = 0, partsDone = 0;
  size_t partBytes = 0;
  RegCache::Entry* mr[kMaxNics] = {};
};

struct RecvOp {
  Request* req = nullptr;
  char* buf = nullptr;
  size_t cap = 0;
  uint64_t seq = 0;
  bool done = false;
  bool ctsSent = false;
  int parts = -1, partsGot = 0;
  size_t got = 0;
  RegCache::Entry* mr[kMaxNics] = {};
};

/// An eager message that arrived before its receive was posted (its bounce buffer is held).
struct Held {
  int qp = 0, slot = 0;
  uint32_t len = 0;
};

struct Work {
  enum class Kind : uint8_t { kEager, kRts, kCts, kWrite } kind;
  uint64_t seq;
  int part;
};

struct Conn {
  int peer = -1;
  std::vector<Qp> qps;
  std::vector<PortInfo> remotePorts;  // the peer's NICs (address facts only)
  // Registered memory: recv slots [qp][recvDepth], send slots [qp][sendSlots], mailbox[qp] (the
  // peer writes its posted-receive counts here), credit sources[qp] (what we write to the peer).
  char* slab = nullptr;
  size_t slabBytes = 0;
  ibv_mr* slabMr[kMaxNics] = {};
  uint64_t remoteSlab = 0;
  uint32_t remoteSlabRkey[kMaxNics] = {};
  size_t recvArea = 0, sendArea = 0;
  // Sequencing.
  uint64_t nextSendSeq = 0, sendBase = 0;
  std::deque<SendOp> sends;
  std::map<uint64_t, Cts> earlyCts;
  uint64_t nextRecvSeq = 0, recvBase = 0;
  std::deque<RecvOp> recvs;
  std::map<uint64_t, Held> unexpected;
  std::map<uint64_t, uint64_t>
      announced;  // sizes of large messages whose receive is not posted yet
  std::deque<Work> outbox;
  int nextQp = 0;
  int awaitingCts = 0;  // large sends with neither a clear-to-send nor an announcement yet
  // Liveness: the set-up socket stays open; its end of stream means the peer process is gone.
  int fd = -1;
  bool closed = false;
  net::Clock::time_point closedAt;
  std::string broken;  // first connection error (reported when a transfer needs this peer)
  std::string desc;

  bool pending() const { return !sends.empty() || !recvs.empty(); }
};

/// Registers with a protection domain: host memory with ibv_reg_mr; with GPUDirect enabled, CUDA
/// device memory through `gdr` (dmabuf, else peer memory) where the topology allows it, and an
/// error saying to stage through host memory where it does not.
class PdRegistrar final : public Registrar {
 public:
  PdRegistrar(ibv_pd* pd, std::string dev) : pd_(pd), dev_(std::move(dev)) {}
  Result<Keys> reg(uintptr_t addr, size_t len) override;
  void dereg(void* handle) override;
  /// msync(MS_ASYNC) checks that a range is mapped without touching or pinning it.
  bool mapped(uintptr_t addr, size_t len) override;
  /// Device memory registered on this port goes through `gdr` (owned by the caller, outlives us).
  void enableGpuDirect(GdrContext* gdr, const PortInfo& port) {
    gdr_ = gdr;
    port_ = port;
  }

 private:
  ibv_pd* pd_;
  std::string dev_;
  GdrContext* gdr_ = nullptr;
  PortInfo port_;
};

}  // namespace trellis::transport::verbs

namespace trellis::transport {

struct VerbsTransport::Impl {
  int rank = -1;
  int nranks = 0;
  VerbsOptions opt;
  size_t slotBytes = 0;  // header + eagerBytes, rounded to 64
  int sendSlots = 0;     // per QP
  std::vector<verbs::Nic> nics;
  std::vector<std::unique_ptr<verbs::Conn>> conns;  // by rank; null when not connected
  Status error;
  uint64_t polls = 0;
  std::unique_ptr<verbs::GdrContext> gdr;  // GPUDirect RDMA state (null: built without CUDA)
  // registerMemory tokens: the pin id on each NIC's cache.
  std::map<uint64_t, std::vector<uint64_t>> userRegs;
  uint64_t nextUserReg = 1;

  ~Impl();
  Status fail(Status s) {
    if (error.isOk()) error = s;
    return error;
  }

  // Data path (verbs_transport.cc).
  char* recvSlot(verbs::Conn& c, int q, int i) const {
    return c.slab + (static_cast<size_t>(q) * opt.recvDepth + i) * slotBytes;
  }
  char* sendSlot(verbs::Conn& c, int q, int i) const {
    return c.slab + c.recvArea + (static_cast<size_t>(q) * sendSlots + i) * slotBytes;
  }
  uint64_t* mailbox(verbs::Conn& c, int q) const {
    return reinterpret_cast<uint64_t*>(c.slab + c.recvArea + c.sendArea) + q;
  }
  uint64_t* creditSrc(verbs::Conn& c, int q) const { return mailbox(c, 0) + c.qps.size() + q; }
  size_t mailboxOffset(const verbs::Conn& c) const { return c.recvArea + c.sendArea; }
  int64_t credits(verbs::Conn& c, int q) const;

  Status postRecvSlot(verbs::Conn& c, int q, int slot);
  Status pollCqs(bool* didWork);
  Status handleCompletion(verbs::Nic& nic, const ibv_wc& wc, bool* didWork);
  Status handleMessage(verbs::Conn& c, int q, int slot, uint32_t len, bool* didWork);
  Status handleImmediate(verbs::Conn& c, int q, int slot, uint32_t imm, uint32_t len);
  Status flushOutbox(verbs::Conn& c, bool* didWork);
  Status sendCredits(verbs::Conn& c, bool* didWork);
  Status service(bool* didWork);
  Status connError(verbs::Conn& c, const std::string& msg);
  Status checkConn(verbs::Conn& c);
  Status checkLiveness(int timeoutMs, bool block, bool* didWork);
  void completeSend(verbs::Conn& c, verbs::SendOp& op);
  void completeRecv(verbs::Conn& c, verbs::RecvOp& op, size_t bytes);
  void releaseMrs(verbs::RegCache::Entry* (&mr)[verbs::kMaxNics], const void* addr, size_t bytes);
  Status acquireMrs(verbs::Conn& c, const void* addr, size_t bytes,
                    verbs::RegCache::Entry* (&mr)[verbs::kMaxNics]);
  bool outboxBlocked = false;  // the last flush stopped for lack of credits or queue room
};

}  // namespace trellis::transport
