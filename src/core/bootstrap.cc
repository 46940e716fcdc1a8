#include "core/bootstrap.h"

#include <cstring>
#include <thread>

#include "core/acceptor.h"
#include "core/bootstrap_wire.h"
#include "core/log.h"
#include "core/params.h"

namespace trellis {

static Param<int64_t> kMaxBootstrapMsg("TRELLIS_BOOTSTRAP_MAX_MSG_BYTES", 64 << 20,
                                       "largest bootstrap message accepted from a peer");

namespace {
using bootwire::JoinMsg;
using bootwire::P2pHeader;
constexpr uint32_t kWireMagic = bootwire::kMagic;
using bootwire::MsgKind;
// A stranger gets this long to present a valid header before it is dropped.
constexpr double kHeaderGraceS = 5.0;

std::string hexByte(uint8_t b) {
  static const char* d = "0123456789abcdef";
  return std::string{d[b >> 4], d[b & 15]};
}

void rootThread(net::Socket listen, UniqueIdData id, double timeoutS) {
  net::Deadline deadline = net::deadlineIn(timeoutS);
  bootwire::JoinTable joins(id.secret);
  std::vector<net::Socket> conns;
  net::GreetingAcceptor acceptor(listen.fd(), sizeof(JoinMsg), kHeaderGraceS,
                                 "bootstrap root " + id.root.toString());
  while (!joins.complete()) {
    auto got = acceptor.next(deadline, nullptr);
    if (!got) {
      TRELLIS_WARN(kBoot, "bootstrap root %s: giving up with %d of %d ranks joined: %s",
                   id.root.toString().c_str(), joins.joined(), joins.nranks(), got.status().message().c_str());
      return;
    }
    JoinMsg msg;
    std::memcpy(&msg, got->greeting.data(), sizeof msg);
    int rank = -1;
    Status s = joins.offer(msg, &rank);
    if (!s.isOk()) {
      TRELLIS_WARN(kBoot, "bootstrap root %s: dropped a connection from %s: %s", id.root.toString().c_str(),
                   got->from.toString().c_str(), s.message().c_str());
      continue;
    }
    conns.resize(joins.nranks());
    conns[rank] = std::move(got->sock);
  }
  const auto& table = joins.addresses();
  for (int r = 0; r < joins.nranks(); ++r) {
    Status s = net::sendAll(conns[r].fd(), table.data(), table.size() * sizeof(net::WireAddr),
                            net::deadlineIn(timeoutS), nullptr);
    if (!s.isOk()) TRELLIS_WARN(kBoot, "bootstrap root: sending the table to rank %d failed: %s", r, s.message().c_str());
  }
  TRELLIS_INFO(kBoot, "bootstrap root %s: all %d ranks joined", id.root.toString().c_str(), joins.nranks());
}
}  // namespace

void UniqueIdData::encode(trellisUniqueId* out) const {
  std::memset(out->internal, 0, sizeof out->internal);
  net::WireAddr w = net::toWire(root);
  uint32_t magic = kMagic;
  uint16_t version = kVersion;
  std::memcpy(out->internal + 0, &magic, 4);
  std::memcpy(out->internal + 4, &version, 2);
  std::memcpy(out->internal + 6, &w.family, 2);
  std::memcpy(out->internal + 8, &w.portBe, 2);
  std::memcpy(out->internal + 12, w.addr, 16);
  std::memcpy(out->internal + 28, secret, 16);
  std::memcpy(out->internal + 44, &w.scopeId, 4);
}

Result<UniqueIdData> UniqueIdData::decode(const trellisUniqueId& id) {
  uint32_t magic;
  uint16_t version;
  net::WireAddr w{};
  std::memcpy(&magic, id.internal + 0, 4);
  std::memcpy(&version, id.internal + 4, 2);
  if (magic != kMagic)
    return invalidArgument("unique id has magic 0x%08x, expected 0x%08x (not from trellisGetUniqueId?)", magic, kMagic);
  if (version != kVersion)
    return invalidArgument("unique id version %u is not supported (this library speaks %u)", version, kVersion);
  std::memcpy(&w.family, id.internal + 6, 2);
  std::memcpy(&w.portBe, id.internal + 8, 2);
  std::memcpy(w.addr, id.internal + 12, 16);
  std::memcpy(&w.scopeId, id.internal + 44, 4);
  UniqueIdData d;
  TRELLIS_ASSIGN_OR_RETURN(d.root, net::fromWire(w));
  if (d.root.port() == 0) return invalidArgument("unique id names port 0");
  std::memcpy(d.secret, id.internal + 28, 16);
  return d;
}

std::string UniqueIdData::toHex(const trellisUniqueId& id) {
  std::string s;
  s.reserve(2 * sizeof id.internal);
  for (char c : id.internal) s += hexByte(static_cast<uint8_t>(c));
  return s;
}

Result<trellisUniqueId> UniqueIdData::fromHex(const std::string& hex) {
  trellisUniqueId id;
  if (hex.size() != 2 * sizeof id.internal)
    return invalidArgument("unique id hex has %zu characters, expected %zu", hex.size(), 2 * sizeof id.internal);
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < sizeof id.internal; ++i) {
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return invalidArgument("unique id hex has a non-hex character at offset %zu", 2 * i);
    id.internal[i] = static_cast<char>(hi << 4 | lo);
  }
  return id;
}

Result<UniqueIdData> startBootstrapRoot(uint16_t port, double rootTimeoutS) {
  TRELLIS_ASSIGN_OR_RETURN(net::Interface iface, net::selectInterface());
  iface.addr.setPort(port);
  UniqueIdData id;
  TRELLIS_ASSIGN_OR_RETURN(net::Socket listen, net::listenOn(iface.addr, &id.root));
  TRELLIS_TRY(net::randomBytes(id.secret, sizeof id.secret));
  std::thread(rootThread, std::move(listen), id, rootTimeoutS).detach();
  TRELLIS_INFO(kBoot, "bootstrap root listening on %s (%s)", id.root.toString().c_str(), iface.name.c_str());
  return id;
}

Result<UniqueIdData> startBootstrapRootAt(const net::SockAddr& addr, const uint8_t secret[16], double rootTimeoutS) {
  UniqueIdData id;
  TRELLIS_ASSIGN_OR_RETURN(net::Socket listen, net::listenOn(addr, &id.root));
  std::memcpy(id.secret, secret, sizeof id.secret);
  std::thread(rootThread, std::move(listen), id, rootTimeoutS).detach();
  TRELLIS_INFO(kBoot, "bootstrap root listening on %s", id.root.toString().c_str());
  return id;
}

Bootstrap::~Bootstrap() = default;

Status Bootstrap::init(const UniqueIdData& id, int rank, int nranks, double timeoutS,
                       const std::atomic<bool>* abort) {
  if (nranks < 1 || nranks > bootwire::kMaxRanks || rank < 0 || rank >= nranks)
    return invalidArgument("bootstrap: rank %d of %d ranks (1 to %d ranks supported)", rank, nranks,
                           bootwire::kMaxRanks);
  rank_ = rank;
  nranks_ = nranks;
  timeoutS_ = timeoutS;
  abort_ = abort;
  std::memcpy(secret_, id.secret, sizeof secret_);
  // Listen on the interface that reaches the root's family (same selection rules).
  TRELLIS_ASSIGN_OR_RETURN(auto ifaces, net::findInterfaces());
  const net::Interface* chosen = &ifaces[0];
  for (const auto& i : ifaces)
    if (i.addr.family() == id.root.family()) { chosen = &i; break; }
  TRELLIS_ASSIGN_OR_RETURN(listen_, net::listenOn(chosen->addr, &self_));
  acceptor_ = std::make_unique<net::GreetingAcceptor>(listen_.fd(), sizeof(P2pHeader), kHeaderGraceS,
                                                      formatString("rank %d: bootstrap listener %s", rank,
                                                                   self_.toString().c_str()));
  net::Deadline deadline = net::deadlineIn(timeoutS);
  auto conn = net::connectTo(id.root, deadline, abort);
  if (!conn)
    return Status(conn.status().code(),
                  formatString("rank %d: cannot reach the bootstrap root %s within %g s: %s", rank,
                               id.root.toString().c_str(), timeoutS, conn.status().message().c_str()));
  JoinMsg msg{};
  msg.magic = kWireMagic;
  msg.kind = static_cast<uint32_t>(MsgKind::kJoin);
  std::memcpy(msg.secret, secret_, sizeof secret_);
  msg.nranks = nranks;
  msg.rank = rank;
  msg.addr = net::toWire(self_);
  TRELLIS_TRY_CTX(net::sendAll(conn->fd(), &msg, sizeof msg, deadline, abort),
                  formatString("rank %d: sending the join request to root %s", rank, id.root.toString().c_str()));
  std::vector<net::WireAddr> table(nranks);
  Status s = net::recvAll(conn->fd(), table.data(), table.size() * sizeof(net::WireAddr), deadline, abort);
  if (!s.isOk())
    return Status(s.code(), formatString("rank %d of %d: waiting for all ranks to join at root %s: %s "
                                         "(did every rank start with the same nranks and unique id?)",
                                         rank, nranks, id.root.toString().c_str(), s.message().c_str()));
  TRELLIS_ASSIGN_OR_RETURN(peers_, bootwire::decodeTable(table));
  TRELLIS_INFO(kBoot, "rank %d/%d joined via root %s, listening on %s", rank, nranks,
               id.root.toString().c_str(), self_.toString().c_str());
  return Status::ok();
}

Status Bootstrap::send(int peer, uint32_t tag, const void* data, size_t bytes) {
  if (peer < 0 || peer >= nranks_) return invalidArgument("bootstrap send to rank %d of %d", peer, nranks_);
  net::Deadline deadline = net::deadlineIn(timeoutS_);
  auto conn = net::connectTo(peers_[peer], deadline, abort_);
  if (!conn) return conn.status().withContext(formatString("rank %d: bootstrap send to rank %d", rank_, peer));
  P2pHeader h{};
  h.magic = kWireMagic;
  h.kind = static_cast<uint32_t>(MsgKind::kP2p);
  std::memcpy(h.secret, secret_, sizeof secret_);
  h.from = rank_;
  h.tag = tag;
  h.bytes = bytes;
  std::string ctx = formatString("rank %d: bootstrap send of %zu bytes to rank %d (%s)", rank_, bytes, peer,
                                 peers_[peer].toString().c_str());
  TRELLIS_TRY_CTX(net::sendAll(conn->fd(), &h, sizeof h, deadline, abort_), ctx);
  TRELLIS_TRY_CTX(net::sendAll(conn->fd(), data, bytes, deadline, abort_), ctx);
  return Status::ok();
}

Status Bootstrap::acceptMessage(net::Deadline deadline, Pending* out) {
  for (;;) {
    TRELLIS_ASSIGN_OR_RETURN(net::GreetingAcceptor::Arrival got, acceptor_->next(deadline, abort_));
    P2pHeader h;
    std::memcpy(&h, got.greeting.data(), sizeof h);
    Status valid = bootwire::checkP2pHeader(h, secret_, nranks_, static_cast<uint64_t>(kMaxBootstrapMsg.get()));
    if (!valid.isOk()) {
      TRELLIS_WARN(kBoot, "rank %d: dropped a bootstrap connection from %s: %s", rank_,
                   got.from.toString().c_str(), valid.message().c_str());
      continue;
    }
    out->from = h.from;
    out->tag = h.tag;
    out->data.resize(h.bytes);
    Status p = net::recvAll(got.sock.fd(), out->data.data(), h.bytes, deadline, abort_);
    if (!p.isOk()) return p.withContext(formatString("rank %d: bootstrap message from rank %d", rank_, h.from));
    return Status::ok();
  }
}

Status Bootstrap::recv(int peer, uint32_t tag, void* data, size_t bytes) {
  auto deliver = [&](Pending& p) -> Status {
    if (p.data.size() != bytes)
      return internalError("rank %d: bootstrap message from rank %d tag %u has %zu bytes, expected %zu", rank_,
                           peer, tag, p.data.size(), bytes);
    if (bytes > 0) std::memcpy(data, p.data.data(), bytes);
    return Status::ok();
  };
  for (auto it = unexpected_.begin(); it != unexpected_.end(); ++it) {
    if (it->from == peer && it->tag == tag) {
      Pending p = std::move(*it);
      unexpected_.erase(it);
      return deliver(p);
    }
  }
  net::Deadline deadline = net::deadlineIn(timeoutS_);
  for (;;) {
    Pending p;
    Status s = acceptMessage(deadline, &p);
    if (!s.isOk())
      return s.withContext(formatString("rank %d: waiting for bootstrap message from rank %d (%s) tag %u", rank_,
                                        peer, peers_[peer].toString().c_str(), tag));
    if (p.from == peer && p.tag == tag) return deliver(p);
    unexpected_.push_back(std::move(p));
  }
}

Status Bootstrap::allGather(void* data, size_t bytes) {
  if (nranks_ == 1) return Status::ok();
  uint32_t tag = nextTag();
  char* base = static_cast<char*>(data);
  int next = (rank_ + 1) % nranks_, prev = (rank_ - 1 + nranks_) % nranks_;
  // Ring: at step s, forward the slot received at step s-1 (starting with our own).
  for (int s = 0; s < nranks_ - 1; ++s) {
    int sendSlot = (rank_ - s + nranks_) % nranks_;
    int recvSlot = (rank_ - s - 1 + nranks_) % nranks_;
    TRELLIS_TRY(send(next, tag, base + sendSlot * bytes, bytes));
    TRELLIS_TRY(recv(prev, tag, base + recvSlot * bytes, bytes));
  }
  return Status::ok();
}

Status Bootstrap::barrier() {
  std::vector<char> dummy(nranks_);
  return allGather(dummy.data(), 1);
}

}  // namespace trellis
