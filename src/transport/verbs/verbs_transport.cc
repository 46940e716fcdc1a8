// Verbs transport data path: posting, completions, flow control, liveness. Protocol in
// verbs_transport.h; state in verbs_internal.h.
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "transport/verbs/verbs_internal.h"

namespace trellis::transport {

using namespace verbs;  // NOLINT: this file implements the verbs namespace's transport

namespace {
// How long a peer whose connection ended may still deliver completions already under way before
// its incomplete transfers become an error (its last writes can be acknowledged before our
// completion queue shows them).
constexpr auto kClosedGrace = std::chrono::milliseconds(500);
constexpr size_t kMaxPartBytes = size_t{1} << 30;
}  // namespace

int64_t VerbsTransport::Impl::credits(Conn& c, int q) const {
  uint64_t posted = __atomic_load_n(mailbox(c, q), __ATOMIC_ACQUIRE);
  return static_cast<int64_t>(posted - c.qps[q].consumed);
}

Status VerbsTransport::Impl::postRecvSlot(Conn& c, int q, int slot) {
  Qp& qp = c.qps[q];
  ibv_sge sge{};
  sge.addr = reinterpret_cast<uintptr_t>(recvSlot(c, q, slot));
  sge.length = static_cast<uint32_t>(slotBytes);
  sge.lkey = c.slabMr[qp.nic]->lkey;
  ibv_recv_wr wr{};
  wr.wr_id = wrId(kWrRecv, static_cast<uint64_t>(slot));
  wr.sg_list = &sge;
  wr.num_sge = 1;
  ibv_recv_wr* bad = nullptr;
  int rc = ibv_post_recv(qp.qp, &wr, &bad);
  if (rc != 0)
    return systemError(rc, "rank %d: verbs: ibv_post_recv on QP %u (rank %d, %s)", rank,
                       qp.qp->qp_num, c.peer, nics[qp.nic].info.dev.c_str());
  ++qp.posted;
  return Status::ok();
}

Status VerbsTransport::Impl::acquireMrs(Conn& c, const void* addr, size_t bytes,
                                        RegCache::Entry* (&mr)[kMaxNics]) {
  for (size_t i = 0; i < nics.size(); ++i) {
    Result<RegCache::Entry*> e = nics[i].cache->acquire(addr, bytes);
    if (!e) {
      releaseMrs(mr, addr, bytes);
      return e.status().withContext(formatString(
          "rank %d: verbs: registering a %zu-byte buffer for rank %d", rank, bytes, c.peer));
    }
    mr[i] = e.value();
  }
  return Status::ok();
}

void VerbsTransport::Impl::releaseMrs(RegCache::Entry* (&mr)[kMaxNics], const void* addr,
                                      size_t bytes) {
  for (size_t i = 0; i < nics.size(); ++i) {
    if (mr[i] == nullptr) continue;
    nics[i].cache->release(mr[i]);
    mr[i] = nullptr;
    if (opt.regMode == RegMode::kOff) nics[i].cache->invalidate(addr, bytes);
  }
}

void VerbsTransport::Impl::completeSend(Conn& c, SendOp& op) {
  op.done = true;
  releaseMrs(op.mr, op.data, op.bytes);
  op.req->done = op.bytes;
  op.req->state = ReqState::kDone;
  while (!c.sends.empty() && c.sends.front().done) {
    c.sends.pop_front();
    ++c.sendBase;
  }
}

void VerbsTransport::Impl::completeRecv(Conn& c, RecvOp& op, size_t bytes) {
  op.done = true;
  releaseMrs(op.mr, op.buf, op.cap);
  op.req->received = bytes;
  op.req->done = bytes;
  op.req->state = ReqState::kDone;
  while (!c.recvs.empty() && c.recvs.front().done) {
    c.recvs.pop_front();
    ++c.recvBase;
  }
}

Status VerbsTransport::Impl::connError(Conn& c, const std::string& msg) {
  if (c.broken.empty()) c.broken = msg;
  if (c.pending()) return fail(remoteError("%s", c.broken.c_str()));
  TRELLIS_DEBUG(kNet, "%s (nothing pending with rank %d: reported if it is used again)",
                msg.c_str(), c.peer);
  return Status::ok();
}

Status VerbsTransport::Impl::checkConn(Conn& c) {
  if (!c.broken.empty()) return fail(remoteError("%s", c.broken.c_str()));
  if (c.closed)
    return fail(remoteError(
        "rank %d: rank %d (%s) closed its connection: it exited, crashed or destroyed its "
        "communicator",
        rank, c.peer, c.desc.c_str()));
  return Status::ok();
}

// Tells the sender of message `seq` that our receive holds only `capacity` bytes (a clear-to-send
// without a buffer), so both ends fail instead of the sender waiting for a buffer. Best effort:
// without a credit the sender learns it from its own timeout.
static int pickQp(VerbsTransport::Impl& m, Conn& c, int64_t minCredits);
static Status sendSlotMsg(VerbsTransport::Impl& m, Conn& c, int q, const MsgHeader& h,
                          const void* payload, size_t bytes);
static void notifyTooSmall(VerbsTransport::Impl& m, Conn& c, uint64_t seq, size_t capacity) {
  int q = pickQp(m, c, 0);
  if (q < 0) return;
  MsgHeader h{kMsgMagic, static_cast<uint16_t>(MsgKind::kCts), 0, seq, capacity, 0, {}};
  (void)sendSlotMsg(m, c, q, h, nullptr, 0);
}
static void notifyTooLarge(VerbsTransport::Impl& m, Conn& c, uint64_t seq, size_t bytes) {
  int q = pickQp(m, c, 0);
  if (q < 0) return;
  MsgHeader h{kMsgMagic, static_cast<uint16_t>(MsgKind::kRts), 0, seq, bytes, 0, {}};
  (void)sendSlotMsg(m, c, q, h, nullptr, 0);
}

// Starts the RDMA writes of a large send once the receiver's buffer is known.
static Status startWrites(VerbsTransport::Impl& m, Conn& c, SendOp& op) {
  if (op.bytes > op.cts.capacity) {
    notifyTooLarge(m, c, op.seq, op.bytes);  // the receiver may not know the size yet
    return m.fail(invalidUsage(
        "rank %d: a %zu-byte message to rank %d is larger than its matching receive (%lu bytes)",
        m.rank, op.bytes, c.peer, static_cast<unsigned long>(op.cts.capacity)));
  }
  const size_t nq = c.qps.size();
  size_t parts = std::clamp<size_t>(op.bytes / m.opt.stripeMinBytes, 1, nq);
  parts = std::max(parts, (op.bytes + kMaxPartBytes - 1) / kMaxPartBytes);
  size_t partBytes = (op.bytes + parts - 1) / parts;
  partBytes = (partBytes + 4095) / 4096 * 4096;
  parts = (op.bytes + partBytes - 1) / partBytes;
  if (parts > 0xffff)
    return m.fail(invalidUsage("rank %d: a %zu-byte message is too large", m.rank, op.bytes));
  op.parts = static_cast<int>(parts);
  op.partBytes = partBytes;
  for (size_t k = 0; k < parts; ++k)
    c.outbox.push_back({Work::Kind::kWrite, op.seq, static_cast<int>(k)});
  return Status::ok();
}

Status VerbsTransport::Impl::handleMessage(Conn& c, int q, int slot, uint32_t len, bool* didWork) {
  (void)didWork;
  const char* buf = recvSlot(c, q, slot);
  MsgHeader h;
  if (len < sizeof h)
    return fail(
        remoteError("rank %d: verbs: a %u-byte message from rank %d is shorter than a header", rank,
                    len, c.peer));
  std::memcpy(&h, buf, sizeof h);
  if (h.magic != kMsgMagic)
    return fail(
        remoteError("rank %d: verbs: malformed message from rank %d (magic 0x%08x, kind %u)", rank,
                    c.peer, h.magic, h.kind));
  if (h.kind == static_cast<uint16_t>(MsgKind::kCts)) {
    Cts cts;
    cts.addr = h.addr;
    cts.capacity = h.bytes;
    std::memcpy(cts.rkeys, h.rkeys, sizeof cts.rkeys);
    Status s = postRecvSlot(c, q, slot);
    if (!s.isOk()) return fail(s);
    if (h.seq < c.sendBase) return Status::ok();  // that message went eagerly and is complete
    if (h.seq < c.nextSendSeq) {
      SendOp& op = c.sends[h.seq - c.sendBase];
      if (op.eager || op.done || op.haveCts) return Status::ok();
      op.cts = cts;
      op.haveCts = true;
      if (!op.announced) --c.awaitingCts;
      return startWrites(*this, c, op);
    }
    c.earlyCts[h.seq] = cts;
    return Status::ok();
  }
  if (h.kind == static_cast<uint16_t>(MsgKind::kRts)) {
    Status s = postRecvSlot(c, q, slot);
    if (!s.isOk()) return fail(s);
    if (h.seq < c.recvBase) return Status::ok();
    if (h.seq < c.nextRecvSeq) {
      const RecvOp& op = c.recvs[h.seq - c.recvBase];
      if (h.bytes > op.cap) {
        notifyTooSmall(*this, c, h.seq, op.cap);
        return fail(invalidUsage(
            "rank %d: rank %d sends a %lu-byte message but the matching receive is %zu bytes", rank,
            c.peer, static_cast<unsigned long>(h.bytes), op.cap));
      }
      return Status::ok();
    }
    c.announced[h.seq] = h.bytes;
    return Status::ok();
  }
  if (h.kind != static_cast<uint16_t>(MsgKind::kEager) || h.bytes != len - sizeof h)
    return fail(remoteError(
        "rank %d: verbs: malformed message from rank %d (kind %u, %lu bytes in a %u-byte message)",
        rank, c.peer, h.kind, static_cast<unsigned long>(h.bytes), len));
  if (h.seq < c.recvBase)
    return fail(remoteError("rank %d: verbs: rank %d sent message %lu twice", rank, c.peer,
                            static_cast<unsigned long>(h.seq)));
  if (h.seq >= c.nextRecvSeq) {  // its receive is not posted yet: keep the bounce buffer
    c.unexpected[h.seq] = Held{q, slot, static_cast<uint32_t>(h.bytes)};
    return Status::ok();
  }
  RecvOp& op = c.recvs[h.seq - c.recvBase];
  if (op.done)
    return fail(remoteError("rank %d: verbs: rank %d sent message %lu twice", rank, c.peer,
                            static_cast<unsigned long>(h.seq)));
  if (h.bytes > op.cap)
    return fail(invalidUsage(
        "rank %d: rank %d sent a %lu-byte message but the matching receive is %zu bytes", rank,
        c.peer, static_cast<unsigned long>(h.bytes), op.cap));
  if (h.bytes > 0) std::memcpy(op.buf, buf + sizeof h, h.bytes);
  Status s = postRecvSlot(c, q, slot);
  if (!s.isOk()) return fail(s);
  completeRecv(c, op, h.bytes);
  return Status::ok();
}

Status VerbsTransport::Impl::handleImmediate(Conn& c, int q, int slot, uint32_t imm, uint32_t len) {
  Status s = postRecvSlot(c, q, slot);
  if (!s.isOk()) return fail(s);
  const uint64_t low = imm >> 16, parts = imm & 0xffff;
  const uint64_t seq = c.recvBase + ((low - (c.recvBase & 0xffff)) & 0xffff);
  if (seq >= c.nextRecvSeq || c.recvs[seq - c.recvBase].done || !c.recvs[seq - c.recvBase].ctsSent)
    return fail(remoteError(
        "rank %d: verbs: rank %d wrote %u bytes for message %lu, which has no open receive", rank,
        c.peer, len, static_cast<unsigned long>(seq)));
  RecvOp& op = c.recvs[seq - c.recvBase];
  op.parts = static_cast<int>(parts);
  op.got += len;
  ++op.partsGot;
  if (op.got > op.cap)
    return fail(remoteError("rank %d: verbs: rank %d wrote %zu bytes into a %zu-byte receive", rank,
                            c.peer, op.got, op.cap));
  if (op.partsGot == op.parts) completeRecv(c, op, op.got);
  return Status::ok();
}

Status VerbsTransport::Impl::handleCompletion(Nic& nic, const ibv_wc& wc, bool* didWork) {
  auto it = nic.qpOwner.find(wc.qp_num);
  if (it == nic.qpOwner.end()) return Status::ok();
  Conn& c = *conns[it->second.first];
  const int q = it->second.second;
  Qp& qp = c.qps[q];
  const auto kind = static_cast<WrKind>(wc.wr_id & 15);
  const uint64_t v = wc.wr_id >> 4;
  if (kind != kWrRecv) {
    // Send completions come in posted order: this one retires every unsignaled request before it.
    while (!qp.sendFifo.empty()) {
      auto [id, signaled] = qp.sendFifo.front();
      qp.sendFifo.pop_front();
      --qp.sqOut;
      const auto k = static_cast<WrKind>(id & 15);
      if (k == kWrSlot) qp.freeSlots.push_back(static_cast<int>(id >> 4));
      if (k == kWrCredit) qp.creditInFlight = false;
      if (id == wc.wr_id && (signaled || wc.status != IBV_WC_SUCCESS)) break;
    }
  }
  if (wc.status != IBV_WC_SUCCESS) {
    if (wc.status == IBV_WC_WR_FLUSH_ERR && !c.broken.empty()) return Status::ok();
    const char* what = kind == kWrRecv     ? "receive from"
                       : kind == kWrWrite  ? "RDMA write to"
                       : kind == kWrCredit ? "credit write to"
                                           : "send to";
    return connError(
        c, formatString("rank %d: verbs %s rank %d failed on %s QP %u (%s): %s (status %d, vendor "
                        "error 0x%x)",
                        rank, what, c.peer, nic.info.dev.c_str(), wc.qp_num, c.desc.c_str(),
                        ibv_wc_status_str(wc.status), static_cast<int>(wc.status), wc.vendor_err));
  }
  switch (kind) {
    case kWrRecv:
      ++qp.received;
      if (wc.opcode == IBV_WC_RECV_RDMA_WITH_IMM)
        return handleImmediate(c, q, static_cast<int>(v), ntohl(wc.imm_data), wc.byte_len);
      if (wc.opcode == IBV_WC_RECV)
        return handleMessage(c, q, static_cast<int>(v), wc.byte_len, didWork);
      return fail(
          internalError("rank %d: verbs: unexpected receive completion opcode %d from rank %d",
                        rank, static_cast<int>(wc.opcode), c.peer));
    case kWrWrite: {
      if (v < c.sendBase || v - c.sendBase >= c.sends.size())
        return fail(
            internalError("rank %d: verbs: write completion for unknown message %lu to rank %d",
                          rank, static_cast<unsigned long>(v), c.peer));
      SendOp& op = c.sends[v - c.sendBase];
      if (++op.partsDone == op.parts) completeSend(c, op);
      return Status::ok();
    }
    default:
      return Status::ok();
  }
}

Status VerbsTransport::Impl::pollCqs(bool* didWork) {
  ibv_wc wcs[32];
  for (Nic& n : nics) {
    for (;;) {
      int k = ibv_poll_cq(n.cq, 32, wcs);
      if (k < 0)
        return fail(internalError("rank %d: verbs: ibv_poll_cq on %s failed (%d)", rank,
                                  n.info.dev.c_str(), k));
      if (k == 0) break;
      *didWork = true;
      for (int i = 0; i < k; ++i) TRELLIS_TRY(handleCompletion(n, wcs[i], didWork));
      if (k < 32) break;
    }
  }
  return Status::ok();
}

// A QP of `c` with more than `minCredits` credits, send-queue room and a free send slot; -1 if
// none.
static int pickQp(VerbsTransport::Impl& m, Conn& c, int64_t minCredits) {
  const int nq = static_cast<int>(c.qps.size());
  for (int i = 0; i < nq; ++i) {
    int q = (c.nextQp + i) % nq;
    const Qp& qp = c.qps[q];
    if (qp.sqOut < m.opt.sendDepth && !qp.freeSlots.empty() && m.credits(c, q) > minCredits) {
      c.nextQp = (q + 1) % nq;
      return q;
    }
  }
  return -1;
}

// Posts one send work request. RDMA writes of data always ask for a completion (a message is done
// when its parts are); control messages only every kSignalEvery-th, or when the send queue or the
// send slots run low, so that a completion always comes to recycle them.
static Status postSendWr(VerbsTransport::Impl& m, Conn& c, Qp& qp, ibv_send_wr& wr,
                         bool mustSignal) {
  const bool signal = mustSignal || qp.sinceSignal + 1 >= kSignalEvery ||
                      qp.sqOut + 1 >= m.opt.sendDepth / 2 ||
                      qp.freeSlots.size() < static_cast<size_t>(kSignalEvery);
  if (signal)
    wr.send_flags |= IBV_SEND_SIGNALED;
  else
    wr.send_flags &= ~static_cast<unsigned>(IBV_SEND_SIGNALED);
  ibv_send_wr* bad = nullptr;
  int rc = ibv_post_send(qp.qp, &wr, &bad);
  if (rc != 0)
    return m.fail(systemError(rc, "rank %d: verbs: ibv_post_send on QP %u to rank %d (%s)", m.rank,
                              qp.qp->qp_num, c.peer, m.nics[qp.nic].info.dev.c_str()));
  ++qp.sqOut;
  qp.sinceSignal = signal ? 0 : qp.sinceSignal + 1;
  qp.sendFifo.emplace_back(wr.wr_id, signal);
  return Status::ok();
}

// Posts a header (+ payload) SEND through a send slot of QP q.
static Status sendSlotMsg(VerbsTransport::Impl& m, Conn& c, int q, const MsgHeader& h,
                          const void* payload, size_t bytes) {
  Qp& qp = c.qps[q];
  int slot = qp.freeSlots.back();
  qp.freeSlots.pop_back();
  char* p = m.sendSlot(c, q, slot);
  std::memcpy(p, &h, sizeof h);
  if (bytes > 0) std::memcpy(p + sizeof h, payload, bytes);
  ibv_sge sge{};
  sge.addr = reinterpret_cast<uintptr_t>(p);
  sge.length = static_cast<uint32_t>(sizeof h + bytes);
  sge.lkey = c.slabMr[qp.nic]->lkey;
  ibv_send_wr wr{};
  wr.wr_id = wrId(kWrSlot, static_cast<uint64_t>(slot));
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.opcode = IBV_WR_SEND;
  wr.send_flags = sge.length <= m.nics[qp.nic].maxInline ? IBV_SEND_INLINE : 0;
  Status s = postSendWr(m, c, qp, wr, false);
  if (!s.isOk()) {
    qp.freeSlots.push_back(slot);
    return s;
  }
  ++qp.consumed;
  return Status::ok();
}

// Posts what the outbox holds, in order, as credits and queue room allow. Data (eager messages,
// write parts) stays in order behind a blocked data item, but control messages (clear-to-sends,
// announcements) may pass it: the peer may need our clear-to-send to free the very buffers our
// data waits for.
Status VerbsTransport::Impl::flushOutbox(Conn& c, bool* didWork) {
  bool dataBlocked = false;
  size_t i = 0;
  auto done = [&] {
    c.outbox.erase(c.outbox.begin() + static_cast<std::ptrdiff_t>(i));
    *didWork = true;
  };
  while (i < c.outbox.size()) {
    const Work w = c.outbox[i];
    const bool data = w.kind == Work::Kind::kEager || w.kind == Work::Kind::kWrite;
    if (data && dataBlocked) {
      ++i;
      continue;
    }
    if (w.kind == Work::Kind::kEager) {
      int q = pickQp(*this, c, kCreditReserve);
      if (q < 0) {
        dataBlocked = outboxBlocked = true;
        ++i;
        continue;
      }
      SendOp& op = c.sends[w.seq - c.sendBase];
      MsgHeader h{kMsgMagic, static_cast<uint16_t>(MsgKind::kEager), 0, op.seq, op.bytes, 0, {}};
      TRELLIS_TRY(sendSlotMsg(*this, c, q, h, op.data, op.bytes));
      done();
      completeSend(c, op);  // the payload is in our registered slot: the caller's buffer is free
    } else if (w.kind == Work::Kind::kRts) {
      if (w.seq < c.sendBase || c.sends[w.seq - c.sendBase].haveCts) {
        done();  // the receiver already answered: nothing to announce
        continue;
      }
      int q = pickQp(*this, c, 0);
      if (q < 0) {
        outboxBlocked = true;
        return Status::ok();  // no credit at all: nothing else can go either
      }
      MsgHeader h{kMsgMagic, static_cast<uint16_t>(MsgKind::kRts), 0,
                  w.seq,     c.sends[w.seq - c.sendBase].bytes,    0,
                  {}};
      TRELLIS_TRY(sendSlotMsg(*this, c, q, h, nullptr, 0));
      done();
    } else if (w.kind == Work::Kind::kCts) {
      if (w.seq < c.recvBase || c.recvs[w.seq - c.recvBase].done) {
        done();  // satisfied eagerly meanwhile
        continue;
      }
      if (w.seq - c.recvBase >= static_cast<uint64_t>(kMaxCtsAhead)) {
        outboxBlocked = true;
        return Status::ok();  // later clear-to-sends are further ahead still
      }
      int q = pickQp(*this, c, 0);
      if (q < 0) {
        outboxBlocked = true;
        return Status::ok();
      }
      RecvOp& op = c.recvs[w.seq - c.recvBase];
      MsgHeader h{kMsgMagic, static_cast<uint16_t>(MsgKind::kCts), 0, op.seq,
                  op.cap,    reinterpret_cast<uint64_t>(op.buf),   {}};
      for (size_t n = 0; n < nics.size(); ++n) h.rkeys[n] = op.mr[n]->keys.rkey;
      TRELLIS_TRY(sendSlotMsg(*this, c, q, h, nullptr, 0));
      op.ctsSent = true;
      done();
    } else {  // a part of a large message
      SendOp& op = c.sends[w.seq - c.sendBase];
      const int q = static_cast<int>((w.seq + static_cast<uint64_t>(w.part)) % c.qps.size());
      Qp& qp = c.qps[q];
      if (qp.sqOut >= opt.sendDepth || credits(c, q) <= kCreditReserve) {
        dataBlocked = outboxBlocked = true;
        ++i;
        continue;
      }
      const size_t off = static_cast<size_t>(w.part) * op.partBytes;
      const size_t len = std::min(op.partBytes, op.bytes - off);
      ibv_sge sge{};
      sge.addr = reinterpret_cast<uintptr_t>(op.data + off);
      sge.length = static_cast<uint32_t>(len);
      sge.lkey = op.mr[qp.nic]->keys.lkey;
      ibv_send_wr wr{};
      wr.wr_id = wrId(kWrWrite, op.seq);
      wr.sg_list = &sge;
      wr.num_sge = 1;
      wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
      wr.imm_data =
          htonl(static_cast<uint32_t>(((op.seq & 0xffff) << 16) | static_cast<uint64_t>(op.parts)));
      wr.wr.rdma.remote_addr = op.cts.addr + off;
      wr.wr.rdma.rkey = op.cts.rkeys[qp.remoteNic];
      TRELLIS_TRY(postSendWr(*this, c, qp, wr, true));
      ++qp.consumed;
      done();
    }
  }
  return Status::ok();
}

// Returns credits: writes our cumulative posted-receive count of each QP into the peer's mailbox
// once enough receives were re-posted, or as soon as the peer may be short of credits.
Status VerbsTransport::Impl::sendCredits(Conn& c, bool* didWork) {
  const uint64_t threshold = static_cast<uint64_t>(std::max(1, opt.recvDepth / 4));
  for (size_t q = 0; q < c.qps.size(); ++q) {
    Qp& qp = c.qps[q];
    if (qp.creditInFlight || qp.sqOut >= opt.sendDepth || qp.posted == qp.reported) continue;
    const uint64_t unreported = qp.posted - qp.reported;
    const bool peerLow = qp.reported - qp.received <= static_cast<uint64_t>(kCreditReserve) + 1;
    if (unreported < threshold && !peerLow) continue;
    uint64_t* src = creditSrc(c, static_cast<int>(q));
    *src = qp.posted;
    ibv_sge sge{};
    sge.addr = reinterpret_cast<uintptr_t>(src);
    sge.length = sizeof(uint64_t);
    sge.lkey = c.slabMr[qp.nic]->lkey;
    ibv_send_wr wr{};
    wr.wr_id = wrId(kWrCredit, q);
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = IBV_WR_RDMA_WRITE;
    // Inline, the count is copied at posting and the source may change at once; otherwise the
    // source must stay until the write completes (one at a time, with a completion).
    const bool inl = nics[qp.nic].maxInline >= sizeof(uint64_t);
    wr.send_flags = inl ? IBV_SEND_INLINE : 0;
    wr.wr.rdma.remote_addr = c.remoteSlab + mailboxOffset(c) + q * sizeof(uint64_t);
    wr.wr.rdma.rkey = c.remoteSlabRkey[qp.remoteNic];
    TRELLIS_TRY(postSendWr(*this, c, qp, wr, !inl));
    qp.reported = qp.posted;
    qp.creditInFlight = !inl;
    *didWork = true;
  }
  return Status::ok();
}

Status VerbsTransport::Impl::service(bool* didWork) {
  outboxBlocked = false;
  for (auto& cp : conns) {
    if (!cp) continue;
    Conn& c = *cp;
    if (!c.broken.empty()) {
      if (c.pending()) return fail(remoteError("%s", c.broken.c_str()));
      continue;
    }
    if (c.awaitingCts > 0) {
      const auto now = net::Clock::now();
      for (SendOp& op : c.sends)
        if (!op.eager && !op.haveCts && !op.announced && now - op.postedAt >= kAnnounceAfter) {
          op.announced = true;
          --c.awaitingCts;
          c.outbox.push_back({Work::Kind::kRts, op.seq, 0});
        }
    }
    TRELLIS_TRY(flushOutbox(c, didWork));
    TRELLIS_TRY(sendCredits(c, didWork));
    if (c.closed && c.pending() && net::Clock::now() - c.closedAt >= kClosedGrace) {
      size_t sends = 0, recvs = 0;
      for (const auto& s : c.sends) sends += !s.done;
      for (const auto& r : c.recvs) recvs += !r.done;
      return fail(remoteError(
          "rank %d: rank %d (%s) closed its connection with %zu send(s) to it and %zu receive(s) "
          "from it incomplete: it exited, crashed or destroyed its communicator",
          rank, c.peer, c.desc.c_str(), sends, recvs));
    }
  }
  return Status::ok();
}

// Waits up to timeoutMs (0: only looks) for completion events and for peers' connections ending.
Status VerbsTransport::Impl::checkLiveness(int timeoutMs, bool block, bool* didWork) {
  std::vector<pollfd> fds;
  std::vector<int> who;  // >= 0: a peer; < 0: -(nic index) - 1
  if (block)
    for (size_t i = 0; i < nics.size(); ++i) {
      fds.push_back({nics[i].channel->fd, POLLIN, 0});
      who.push_back(-static_cast<int>(i) - 1);
    }
  for (auto& cp : conns)
    if (cp && !cp->closed && cp->fd >= 0) {
      fds.push_back({cp->fd, POLLIN, 0});
      who.push_back(cp->peer);
    }
  int n = ::poll(fds.data(), fds.size(), block ? timeoutMs : 0);
  if (n < 0)
    return errno == EINTR ? Status::ok() : fail(systemError(errno, "rank %d: verbs: poll", rank));
  for (size_t i = 0; i < fds.size() && n > 0; ++i) {
    if (fds[i].revents == 0) continue;
    if (who[i] < 0) {
      Nic& nic = nics[static_cast<size_t>(-who[i] - 1)];
      ibv_cq* cq = nullptr;
      void* ctx = nullptr;
      while (ibv_get_cq_event(nic.channel, &cq, &ctx) == 0) {
        ibv_ack_cq_events(cq, 1);
        nic.armed = false;
      }
      continue;
    }
    Conn& c = *conns[who[i]];
    char b;
    ssize_t r = ::recv(c.fd, &b, 1, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      c.closed = true;
      c.closedAt = net::Clock::now();
      *didWork = true;
      TRELLIS_DEBUG(kNet, "rank %d: verbs: rank %d closed its connection (%s)", rank, c.peer,
                    r == 0 ? "end of stream" : strerror(errno));
    }
  }
  return Status::ok();
}

Status VerbsTransport::postSend(int peer, const void* data, size_t bytes, Request* req) {
  Impl& m = *impl_;
  if (!m.error.isOk()) return m.error;
  if (!reaches(peer))
    return internalError("rank %d: verbs has no connection to rank %d", m.rank, peer);
  Conn& c = *m.conns[peer];
  TRELLIS_TRY(m.checkConn(c));
  *req = Request{};
  req->state = ReqState::kPending;
  req->isSend = true;
  req->peer = peer;
  req->bytes = bytes;
  SendOp op;
  op.req = req;
  op.data = static_cast<const char*>(data);
  op.bytes = bytes;
  op.eager = bytes <= m.opt.eagerBytes;
  if (!op.eager) TRELLIS_TRY(m.fail(m.acquireMrs(c, data, bytes, op.mr)));
  op.seq = c.nextSendSeq++;
  c.sends.push_back(op);
  SendOp& ref = c.sends.back();
  auto early = c.earlyCts.find(ref.seq);
  if (ref.eager) {
    if (early != c.earlyCts.end()) c.earlyCts.erase(early);
    c.outbox.push_back({Work::Kind::kEager, ref.seq, 0});
  } else if (early != c.earlyCts.end()) {
    ref.cts = early->second;
    ref.haveCts = true;
    c.earlyCts.erase(early);
    TRELLIS_TRY(startWrites(m, c, ref));
  } else {
    ref.postedAt = net::Clock::now();  // see kAnnounceAfter
    ++c.awaitingCts;
  }
  bool did = false;
  return m.flushOutbox(c, &did);
}

Status VerbsTransport::postRecv(int peer, void* data, size_t bytes, Request* req) {
  Impl& m = *impl_;
  if (!m.error.isOk()) return m.error;
  if (!reaches(peer))
    return internalError("rank %d: verbs has no connection to rank %d", m.rank, peer);
  Conn& c = *m.conns[peer];
  *req = Request{};
  req->state = ReqState::kPending;
  req->peer = peer;
  req->bytes = bytes;
  RecvOp op;
  op.req = req;
  op.buf = static_cast<char*>(data);
  op.cap = bytes;
  op.seq = c.nextRecvSeq;
  auto held = c.unexpected.find(op.seq);
  if (held != c.unexpected.end()) {  // the message is already here
    Held h = held->second;
    c.unexpected.erase(held);
    ++c.nextRecvSeq;
    if (h.len > bytes)
      return m.fail(invalidUsage(
          "rank %d: rank %d sent a %u-byte message but the matching receive is %zu bytes", m.rank,
          peer, h.len, bytes));
    if (h.len > 0) std::memcpy(data, m.recvSlot(c, h.qp, h.slot) + sizeof(MsgHeader), h.len);
    Status s = m.postRecvSlot(c, h.qp, h.slot);
    if (!s.isOk()) return m.fail(s);
    c.recvs.push_back(op);
    m.completeRecv(c, c.recvs.back(), h.len);
    bool did = false;
    return m.sendCredits(c, &did);
  }
  TRELLIS_TRY(m.checkConn(c));
  auto ann = c.announced.find(op.seq);
  if (ann != c.announced.end()) {
    uint64_t announced = ann->second;
    c.announced.erase(ann);
    if (announced > bytes) {
      notifyTooSmall(m, c, op.seq, bytes);
      return m.fail(invalidUsage(
          "rank %d: rank %d sends a %lu-byte message but the matching receive is %zu bytes", m.rank,
          peer, static_cast<unsigned long>(announced), bytes));
    }
  }
  if (bytes > m.opt.eagerBytes) TRELLIS_TRY(m.fail(m.acquireMrs(c, data, bytes, op.mr)));
  ++c.nextRecvSeq;
  c.recvs.push_back(op);
  if (bytes > m.opt.eagerBytes) c.outbox.push_back({Work::Kind::kCts, op.seq, 0});
  bool did = false;
  return m.flushOutbox(c, &did);
}

Status VerbsTransport::progress(int timeoutMs, bool* didWork) {
  Impl& m = *impl_;
  if (!m.error.isOk()) return m.error;
  bool did = false;
  TRELLIS_TRY(m.pollCqs(&did));
  TRELLIS_TRY(m.service(&did));
  if (!did && timeoutMs > 0) {
    // Arm the completion channels, then look once more: a completion that arrived before arming
    // raises no event.
    for (Nic& n : m.nics) {
      if (n.armed) continue;
      if (ibv_req_notify_cq(n.cq, 0) != 0)
        return m.fail(internalError("rank %d: verbs: ibv_req_notify_cq on %s failed", m.rank,
                                    n.info.dev.c_str()));
      n.armed = true;
    }
    TRELLIS_TRY(m.pollCqs(&did));
    if (!did) {
      // Credits arrive by RDMA write and raise no event: a sender short of them looks again soon.
      int wait = m.outboxBlocked ? std::min(timeoutMs, 1) : timeoutMs;
      for (auto& cp : m.conns)
        if (cp && ((cp->closed && cp->pending()) || cp->awaitingCts > 0)) wait = std::min(wait, 50);
      TRELLIS_TRY(m.checkLiveness(wait, true, &did));
      TRELLIS_TRY(m.pollCqs(&did));
      TRELLIS_TRY(m.service(&did));
    }
  } else if ((++m.polls & 255) == 0) {
    TRELLIS_TRY(m.checkLiveness(0, false, &did));
  }
  if (did) *didWork = true;
  return Status::ok();
}

void VerbsTransport::cancelAll() {
  Impl& m = *impl_;
  for (auto& cp : m.conns) {
    if (!cp) continue;
    Conn& c = *cp;
    // Stop the hardware first: a peer must not write into buffers the caller may now free.
    for (Qp& q : c.qps) {
      ibv_qp_attr a{};
      a.qp_state = IBV_QPS_ERR;
      ibv_modify_qp(q.qp, &a, IBV_QP_STATE);
    }
    for (auto& op : c.sends) m.releaseMrs(op.mr, op.data, op.bytes);
    for (auto& op : c.recvs) m.releaseMrs(op.mr, op.buf, op.cap);
    c.sends.clear();
    c.recvs.clear();
    c.outbox.clear();
    if (c.broken.empty())
      c.broken = formatString("rank %d: verbs connection to rank %d was cancelled after an error",
                              m.rank, c.peer);
  }
  for (Nic& n : m.nics) n.cache->dropAll();
}

void VerbsTransport::releaseCallerMemory() {
  if (impl_->opt.regMode != RegMode::kCall) return;
  for (Nic& n : impl_->nics) n.cache->dropAll();
}

void VerbsTransport::memoryFreed(const void* addr, size_t bytes) {
  for (Nic& n : impl_->nics) n.cache->invalidate(addr, bytes);
}

Result<uint64_t> VerbsTransport::registerMemory(const void* addr, size_t bytes) {
  Impl& m = *impl_;
  if (m.nics.empty()) return uint64_t{0};
  std::vector<uint64_t> pins;
  // Device memory: pinned on the NICs GPUDirect RDMA may use; where it must be staged through host
  // memory there is nothing to keep (0).
  const CudaPointer cp = m.gdr ? m.gdr->classify(addr) : CudaPointer{};
  for (Nic& n : m.nics) {
    if (cp.managed || (cp.device && !m.gdr->choose(cp.ordinal, n.info).direct)) {
      TRELLIS_DEBUG(kNet,
                    "rank %d: verbs: %zu bytes of CUDA %s memory at %p not registered on %s "
                    "(host staging)",
                    m.rank, bytes, cp.managed ? "managed" : "device", addr, n.info.dev.c_str());
      pins.push_back(0);
      continue;
    }
    Result<uint64_t> id = n.cache->pin(addr, bytes);
    if (!id) {
      for (size_t i = 0; i < pins.size(); ++i) m.nics[i].cache->unpin(pins[i]);  // 0: no-op
      return id.status().withContext(
          formatString("rank %d: verbs: registering %zu bytes at %p on %s", m.rank, bytes, addr,
                       n.info.dev.c_str()));
    }
    pins.push_back(id.value());
  }
  if (std::all_of(pins.begin(), pins.end(), [](uint64_t p) { return p == 0; })) return uint64_t{0};
  const uint64_t token = m.nextUserReg++;
  m.userRegs.emplace(token, std::move(pins));
  TRELLIS_DEBUG(kNet, "rank %d: verbs: registered %zu bytes at %p on %zu NIC(s) (token %lu)",
                m.rank, bytes, addr, m.nics.size(), static_cast<unsigned long>(token));
  return token;
}

void VerbsTransport::deregisterMemory(uint64_t token) {
  Impl& m = *impl_;
  auto it = m.userRegs.find(token);
  if (it == m.userRegs.end()) return;
  for (size_t i = 0; i < it->second.size() && i < m.nics.size(); ++i)
    m.nics[i].cache->unpin(it->second[i]);
  m.userRegs.erase(it);
}

}  // namespace trellis::transport
