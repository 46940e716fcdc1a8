#include "transport/shm/shm_transport.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>

#include "core/log.h"
#include "core/params.h"

namespace trellis::transport {

static Param<int64_t> kSlotBytes("TRELLIS_SHM_SLOT_BYTES", 64 * 1024, "bytes per shared-memory ring slot");
static Param<int64_t> kSlots("TRELLIS_SHM_SLOTS", 16,
                             "slots per shared-memory ring (one ring per local pair), rounded up to a power of two");
static Param<int64_t> kCmaMin("TRELLIS_SHM_CMA_MIN_BYTES", 64 * 1024,
                              "messages from this size go in one copy (process_vm_readv) instead of the ring");
static Param<bool> kCmaEnabled("TRELLIS_SHM_CMA", true, "use single-copy cross-memory attach for large messages");

ShmOptions shmOptionsFromParams() {
  ShmOptions o;
  // Whole cache lines: every slot starts on a line (its stamp is an atomic read by the peer).
  o.slotBytes = (static_cast<size_t>(std::clamp<int64_t>(kSlotBytes.get(), 4096, 16 << 20)) + 63) & ~size_t{63};
  o.slots = static_cast<int>(std::clamp<int64_t>(kSlots.get(), 2, 1024));
  o.cmaMinBytes = kCmaEnabled.get() ? static_cast<size_t>(std::max<int64_t>(kCmaMin.get(), 0)) : SIZE_MAX;
  return o;
}

namespace {

constexpr uint32_t kSegMagic = 0x7e115e90;
enum SlotKind : uint32_t { kData = 1, kCma = 2, kInline = 3 };

struct SegHeader {
  uint32_t magic;
  int32_t pid;
  int32_t rank;
  int32_t nrings;
  uint64_t probe;  // read by peers through CMA to check that single-copy is allowed
  alignas(64) std::atomic<uint32_t> doorbell;
  std::atomic<uint32_t> sleeping;
};

struct RingHeader {
  // Slots published by the producer (the peer), also stored after each slot's stamp: receivers
  // poll the stamps; a rank about to sleep reads head (the doorbell handshake, see Impl::ring).
  alignas(64) std::atomic<uint64_t> head;
  alignas(64) std::atomic<uint64_t> tail;     // written by the consumer (the segment's owner)
  alignas(64) std::atomic<uint64_t> cmaDone;  // single-copy messages the consumer has finished
};

// A slot is published by its stamp, written last (release): ring position + 1. The consumer polls
// the stamp of the slot at its tail, so a small message costs it one cache line (stamp, header and
// up to 8 payload bytes share the slot's first line) instead of the ring's head and then the slot.
struct SlotHeader {
  std::atomic<uint64_t> stamp;
  uint32_t kind;
  uint32_t len;
  uint64_t seq;
  uint64_t offset;
  uint64_t total;
  uint64_t addr;
  int32_t pid;
  uint32_t pad;
};
static_assert(sizeof(SlotHeader) == 56);
// A whole message of up to kInlineMax bytes travels in the slot's first cache line, right after
// {stamp, kind, len, seq} (kind kInline: the fields from offset on are not written), so the
// consumer's poll of the stamp brings the payload with it: one line from the producer's core per
// small message instead of two from 9 bytes on.
constexpr size_t kInlineAt = offsetof(SlotHeader, offset);
constexpr size_t kInlineMax = 64 - kInlineAt;
static_assert(kInlineAt == 24 && kInlineMax == 40);

// Segments are mapped once per process: ranks that are threads of one process share the mapping
// of a segment, so they reach its ring atomics at one address. (Two mappings would work for the
// hardware, but ThreadSanitizer pairs atomics by address: with a mapping per rank it saw none of
// the ring's release/acquire ordering and reported the single-copy reads as races.)
struct Mapping {
  std::string name;
  char* addr;
  size_t bytes;
  int refs;
};
std::mutex gMappingsMu;
std::vector<Mapping> gMappings;

// Maps segment `name` (or takes another reference to this process's mapping of it). `fd` >= 0: a
// segment this rank just created.
Result<char*> mapSegment(const std::string& name, int fd, size_t bytes) {
  std::lock_guard<std::mutex> lock(gMappingsMu);
  for (Mapping& m : gMappings)
    if (m.name == name) {
      if (m.bytes != bytes)
        return internalError("shm segment %s is mapped with %zu bytes, %zu wanted", name.c_str(), m.bytes, bytes);
      ++m.refs;
      return m.addr;
    }
  const bool own = fd >= 0;
  if (!own && (fd = shm_open(name.c_str(), O_RDWR, 0)) < 0) return systemError(errno, "shm_open(%s)", name.c_str());
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  int e = errno;
  if (!own) close(fd);
  if (p == MAP_FAILED) return systemError(e, "mmap of %zu bytes (%s)", bytes, name.c_str());
  gMappings.push_back({name, static_cast<char*>(p), bytes, 1});
  return static_cast<char*>(p);
}

void unmapSegment(char* addr) {
  std::lock_guard<std::mutex> lock(gMappingsMu);
  for (size_t i = 0; i < gMappings.size(); ++i)
    if (gMappings[i].addr == addr) {
      if (--gMappings[i].refs == 0) {
        munmap(addr, gMappings[i].bytes);
        gMappings.erase(gMappings.begin() + static_cast<std::ptrdiff_t>(i));
      }
      return;
    }
}

long futex(std::atomic<uint32_t>* addr, int op, uint32_t val, const timespec* ts) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), op, val, ts, nullptr, 0);
}

struct PendingSend {
  Request* req;
  const char* data;
  uint64_t seq;
  size_t total;
  size_t sent = 0;
  bool cma = false;
};

struct RecvSlot {
  Request* req;
  char* buf;
  size_t cap;
  uint64_t total = UINT64_MAX;
  size_t got = 0;
};

struct Peer {
  bool local = false;
  int pid = 0;
  // Outbound: our ring inside the peer's segment.
  SegHeader* peerSeg = nullptr;
  RingHeader* out = nullptr;
  char* outSlots = nullptr;
  uint64_t outHead = 0;
  uint64_t outTail = 0;  // last tail read from the consumer
  uint64_t nextSendSeq = 0;
  uint64_t cmaIssued = 0;
  std::deque<PendingSend> sends;                         // not fully in the ring yet
  std::deque<std::pair<uint64_t, Request*>> cmaWaiting;  // ticket -> request
  // Inbound: the peer's ring inside our segment.
  RingHeader* in = nullptr;
  char* inSlots = nullptr;
  uint64_t recvBase = 0;
  std::deque<RecvSlot> recvs;
};

}  // namespace

struct ShmTransport::Impl {
  int rank = -1;
  ShmOptions opt;
  size_t segBytes = 0;
  size_t ringBytes = 0;
  char* self = nullptr;  // our segment
  std::vector<char*> mapped;  // peers' segments
  std::vector<Peer> peers;
  bool cma = false;
  Status error;
  std::chrono::steady_clock::time_point lastLiveness{};
  uint32_t idlePolls = 0;  // idle progress calls since the clock was last read
  uint64_t probeValue = 0;
  // This process's id, read once: getpid() is a system call (glibc no longer caches it), and it
  // was one per message on the small-message path.
  int32_t myPid = static_cast<int32_t>(getpid());

  ~Impl() {
    for (char* m : mapped)
      if (m) unmapSegment(m);
    if (self) unmapSegment(self);
  }
  SegHeader* header() { return reinterpret_cast<SegHeader*>(self); }
  Status fail(Status s) {
    if (error.isOk()) error = s;
    return error;
  }
  size_t payloadMax() const { return opt.slotBytes - sizeof(SlotHeader); }
  uint64_t slotMask() const { return static_cast<uint64_t>(opt.slots) - 1; }  // slots: a power of two

  // Wakes the segment's owner if it sleeps, after we published progress in `published` (our
  // ring's head when we pushed, its tail when we drained; the plain release stores before this
  // already carry the data). A Dekker handshake with the sleeper in progress(), made only of
  // seq_cst operations, which all fall in one total order S:
  //   here:    published.fetch_add(0, seq_cst)  then  sleeping.load(seq_cst)
  //   sleeper: sleeping.store(1, seq_cst)       then  head/tail.load(seq_cst) in workPossible()
  // If our sleeping load precedes the sleeper's store in S, our RMW precedes its ring load in S
  // and that load sees our update (so it does not sleep); otherwise we see it asleep and ring.
  // The RMW writes the value it reads (no change for the reader) and only on a line that we
  // alone write anyway; it is one locked instruction like the standalone seq_cst fence used
  // before, which ThreadSanitizer does not model (GCC rejects it under -fsanitize=thread).
  // A spinning peer still costs no shared-line write on its segment header.
  static void ring(SegHeader* seg, std::atomic<uint64_t>& published) {
    published.fetch_add(0, std::memory_order_seq_cst);
    if (seg->sleeping.load(std::memory_order_seq_cst)) {
      seg->doorbell.fetch_add(1, std::memory_order_seq_cst);
      futex(&seg->doorbell, FUTEX_WAKE, 1, nullptr);
    }
  }

  // Moves pending sends into the peer's ring while there is room.
  void pushSends(int p, bool* did) {
    Peer& pr = peers[p];
    bool pushed = false;
    while (!pr.sends.empty()) {
      // Re-read the consumer's tail only when our cached one says the ring is full. A send goes
      // into the ring as soon as one slot is free: waiting for more (tried: half the ring, to
      // batch the cache-line transfers) can deadlock, since a consumer that has taken what it
      // needs may be waiting on a third rank that waits for this very send to complete.
      if (pr.outHead - pr.outTail >= static_cast<uint64_t>(opt.slots)) {
        pr.outTail = pr.out->tail.load(std::memory_order_acquire);
        if (pr.outHead - pr.outTail >= static_cast<uint64_t>(opt.slots)) break;
      }
      PendingSend& s = pr.sends.front();
      char* slot = pr.outSlots + (pr.outHead & slotMask()) * opt.slotBytes;
      SlotHeader* h = reinterpret_cast<SlotHeader*>(slot);
      h->seq = s.seq;
      if (!s.cma && s.total <= kInlineMax) {
        h->kind = kInline;
        h->len = static_cast<uint32_t>(s.total);
        if (s.total) std::memcpy(slot + kInlineAt, s.data, s.total);
        s.sent = s.total;
        s.req->done = s.total;
        s.req->state = ReqState::kDone;
        pr.sends.pop_front();
        h->stamp.store(pr.outHead + 1, std::memory_order_release);
        pr.out->head.store(++pr.outHead, std::memory_order_release);
        pushed = true;
        continue;
      }
      h->total = s.total;
      h->pid = myPid;
      if (s.cma) {
        h->kind = kCma;
        h->len = 0;
        h->offset = 0;
        h->addr = reinterpret_cast<uint64_t>(s.data);
        pr.cmaWaiting.emplace_back(++pr.cmaIssued, s.req);
        pr.sends.pop_front();
      } else {
        size_t len = std::min(payloadMax(), s.total - s.sent);
        h->kind = kData;
        h->len = static_cast<uint32_t>(len);
        h->offset = s.sent;
        if (len) std::memcpy(slot + sizeof(SlotHeader), s.data + s.sent, len);
        s.sent += len;
        s.req->done = s.sent;
        if (s.sent == s.total) {
          s.req->state = ReqState::kDone;
          pr.sends.pop_front();
        }
      }
      h->stamp.store(pr.outHead + 1, std::memory_order_release);
      pr.out->head.store(++pr.outHead, std::memory_order_release);
      pushed = true;
    }
    while (!pr.cmaWaiting.empty() && pr.cmaWaiting.front().first <= pr.out->cmaDone.load(std::memory_order_acquire)) {
      Request* r = pr.cmaWaiting.front().second;
      r->done = r->bytes;
      r->state = ReqState::kDone;
      pr.cmaWaiting.pop_front();
      *did = true;
    }
    if (pushed) {
      *did = true;
      ring(pr.peerSeg, pr.out->head);
    }
  }

  static Status readFrom(int myPid, int pid, uint64_t addr, char* dst, size_t bytes) {
    if (pid == myPid) {  // a thread of this process
      std::memcpy(dst, reinterpret_cast<const void*>(addr), bytes);
      return Status::ok();
    }
    size_t done = 0;
    while (done < bytes) {
      iovec local{dst + done, bytes - done};
      iovec remote{reinterpret_cast<void*>(addr + done), bytes - done};
      ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
      if (n <= 0 && errno == ESRCH)  // the peer died: its fault, not ours
        return remoteError("pid %d exited or was killed (process_vm_readv of %zu bytes: %s)", pid, bytes - done,
                           strerror(errno));
      if (n <= 0 && errno == EFAULT)  // the peer unmapped the buffer: it left the operation (failed or exiting)
        return remoteError("pid %d no longer has the %zu bytes at 0x%lx mapped: it left the operation (failed, "
                           "aborted or exiting) (process_vm_readv: %s)", pid, bytes - done,
                           static_cast<unsigned long>(addr + done), strerror(errno));
      if (n <= 0) return systemError(errno, "process_vm_readv of %zu bytes from pid %d", bytes - done, pid);
      done += static_cast<size_t>(n);
    }
    return Status::ok();
  }
  static Status writeTo(int myPid, int pid, uint64_t addr, const char* src, size_t bytes) {
    if (pid == myPid) {
      std::memcpy(reinterpret_cast<void*>(addr), src, bytes);
      return Status::ok();
    }
    size_t done = 0;
    while (done < bytes) {
      iovec local{const_cast<char*>(src) + done, bytes - done};
      iovec remote{reinterpret_cast<void*>(addr + done), bytes - done};
      ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
      if (n <= 0 && errno == ESRCH)
        return remoteError("pid %d exited or was killed (process_vm_writev of %zu bytes: %s)", pid, bytes - done,
                           strerror(errno));
      if (n <= 0 && errno == EFAULT)
        return remoteError("pid %d no longer has the %zu bytes at 0x%lx mapped: it left the operation (failed, "
                           "aborted or exiting) (process_vm_writev: %s)", pid, bytes - done,
                           static_cast<unsigned long>(addr + done), strerror(errno));
      if (n <= 0) return systemError(errno, "process_vm_writev of %zu bytes to pid %d", bytes - done, pid);
      done += static_cast<size_t>(n);
    }
    return Status::ok();
  }
  Status pull(const SlotHeader* h, char* dst) { return readFrom(myPid, h->pid, h->addr, dst, h->total); }

  // Consumes the peer's ring into posted receives, in order.
  Status drain(int p, bool* did) {
    Peer& pr = peers[p];
    uint64_t tail = pr.in->tail.load(std::memory_order_relaxed);
    const uint64_t startTail = tail;
    for (;;) {
      const char* slot = pr.inSlots + (tail & slotMask()) * opt.slotBytes;
      const SlotHeader* h = reinterpret_cast<const SlotHeader*>(slot);
      if (h->stamp.load(std::memory_order_acquire) != tail + 1) break;  // not published yet
      if (h->seq < pr.recvBase) return fail(internalError("rank %d: shm ring from rank %d out of order", rank, p));
      uint64_t idx = h->seq - pr.recvBase;
      if (idx >= pr.recvs.size()) break;  // its receive is not posted yet
      RecvSlot& r = pr.recvs[idx];
      const uint32_t kind = h->kind;
      const uint64_t total = kind == kInline ? h->len : h->total;
      if (r.total == UINT64_MAX) {
        if (total > r.cap)
          return fail(invalidUsage("rank %d: rank %d sent a %lu-byte message but the matching receive is %zu bytes",
                                   rank, p, static_cast<unsigned long>(total), r.cap));
        r.total = total;
        r.req->received = r.total;
      }
      if (kind == kInline) {
        if (total > kInlineMax || r.got != 0)
          return fail(remoteError("rank %d: malformed shm slot from rank %d: a %lu-byte inline message", rank, p,
                                  static_cast<unsigned long>(total)));
        if (total) std::memcpy(r.buf, slot + kInlineAt, total);
        r.got = total;
      } else if (kind == kCma) {
        TRELLIS_TRY_CTX(pull(h, r.buf), formatString("rank %d: single-copy receive from rank %d", rank, p));
        r.got = r.total;
        pr.in->cmaDone.fetch_add(1, std::memory_order_release);
      } else {
        // offset > total first: offset + len could wrap around.
        if (h->len > payloadMax() || h->offset > r.total || h->len > r.total - h->offset)
          return fail(remoteError("rank %d: malformed shm slot from rank %d: %u bytes at offset %lu of a %lu-byte "
                                  "message", rank, p, h->len, static_cast<unsigned long>(h->offset),
                                  static_cast<unsigned long>(r.total)));
        if (h->len) std::memcpy(r.buf + h->offset, slot + sizeof(SlotHeader), h->len);
        r.got += h->len;
      }
      r.req->done = r.got;
      if (r.got == r.total) r.req->state = ReqState::kDone;
      pr.in->tail.store(++tail, std::memory_order_release);
      *did = true;
      while (!pr.recvs.empty() && pr.recvs.front().req->state == ReqState::kDone) {
        pr.recvs.pop_front();
        ++pr.recvBase;
      }
    }
    // Every freed slot can let a producer that sleeps on a full ring go on (it pushes as soon as one
    // slot is free), and a single-copy completion frees its sender: ring (a system call only when
    // the producer sleeps; cmaDone is bumped before tail: a sleeper that sees tail sees it).
    if (tail != startTail) ring(pr.peerSeg, pr.in->tail);
    return Status::ok();
  }

  // The sleeper's half of the handshake in ring(): the peers' head and tail are read with seq_cst
  // (plain loads on x86) and unconditionally, tail before cmaDone.
  bool workPossible() {
    for (Peer& pr : peers) {
      if (!pr.local) continue;
      uint64_t inHead = pr.in->head.load(std::memory_order_seq_cst);
      uint64_t outTail = pr.out->tail.load(std::memory_order_seq_cst);
      if (!pr.recvs.empty() && pr.in->tail.load(std::memory_order_relaxed) < inHead) return true;
      if (!pr.sends.empty() && pr.outHead - outTail < static_cast<uint64_t>(opt.slots)) return true;
      if (!pr.cmaWaiting.empty() && pr.cmaWaiting.front().first <= pr.out->cmaDone.load(std::memory_order_acquire))
        return true;
    }
    return false;
  }

  // Gone, or a zombie nobody has reaped yet (it will never run again either).
  static bool processDead(int pid) {
    if (kill(pid, 0) != 0) return errno == ESRCH;
    char path[64], buf[256];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) return false;
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char* close = std::strrchr(buf, ')');  // "pid (comm) S ..."
    return close != nullptr && (close[2] == 'Z' || close[2] == 'X');
  }

  // A local peer we are waiting for that no longer exists will never answer.
  Status checkLiveness(bool aboutToSleep) {
    // Called on every idle poll: reading the clock each time would lengthen the spin loop that
    // small-message latency depends on, so a spinning rank reads it every 64th poll (a poll is well
    // under a microsecond); one about to sleep always does.
    if ((++idlePolls & 63) != 0 && !aboutToSleep) return Status::ok();
    auto now = std::chrono::steady_clock::now();
    if (now - lastLiveness < std::chrono::milliseconds(500)) return Status::ok();
    lastLiveness = now;
    for (size_t p = 0; p < peers.size(); ++p) {
      Peer& pr = peers[p];
      if (!pr.local || pr.pid == myPid) continue;
      bool waiting = !pr.recvs.empty() || !pr.sends.empty() || !pr.cmaWaiting.empty();
      if (waiting && processDead(pr.pid))
        return fail(remoteError("rank %d: rank %zu (pid %d, shm) died while we were waiting for it", rank, p, pr.pid));
    }
    return Status::ok();
  }
};

ShmTransport::ShmTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ShmTransport::~ShmTransport() = default;

Result<std::unique_ptr<ShmTransport>> ShmTransport::create(Bootstrap& bs, const std::vector<int>& peerList,
                                                           const ShmOptions& opt) {
  auto m = std::make_unique<Impl>();
  m->rank = bs.rank();
  m->opt = opt;
  m->opt.slots = std::clamp(opt.slots, 2, 1024);
  while (m->opt.slots & (m->opt.slots - 1)) ++m->opt.slots;  // a power of two: slot index = position & mask
  // Whole cache lines with room for a header and some payload (the inline format fills line one).
  m->opt.slotBytes = (std::max<size_t>(opt.slotBytes, 256) + 63) & ~size_t{63};
  m->peers.resize(bs.nranks());
  // Rings are indexed by rank among the local group (including ourselves, unused), so the producer
  // computes its ring's index in the consumer's segment without more exchange.
  std::vector<int> group = peerList;
  group.push_back(bs.rank());
  std::sort(group.begin(), group.end());
  auto ringIndex = [&](int r) { return static_cast<size_t>(std::lower_bound(group.begin(), group.end(), r) - group.begin()); };
  m->ringBytes = sizeof(RingHeader) + static_cast<size_t>(m->opt.slots) * m->opt.slotBytes;
  m->segBytes = 4096 + group.size() * m->ringBytes;
  struct Name {
    char name[48];
    int32_t pid;
    uint8_t cmaOk;
    uint64_t probeAddr;  // where the owner has its probe word
    uint64_t probe;
  };
  std::vector<Name> names(bs.nranks());
  Name& mine = names[bs.rank()];
  std::memset(&mine, 0, sizeof mine);
  mine.pid = static_cast<int32_t>(getpid());
  if (peerList.empty()) {
    TRELLIS_TRY(bs.allGather(names.data(), sizeof(Name)));  // names of others are not needed
    TRELLIS_TRY(bs.allGather(names.data(), sizeof(Name)));
    return std::unique_ptr<ShmTransport>(new ShmTransport(std::move(m)));
  }
  uint8_t rnd[16];
  TRELLIS_TRY(net::randomBytes(rnd, sizeof rnd));
  std::string name = "/trellis-";
  for (uint8_t b : rnd) name += formatString("%02x", b);
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return systemError(errno, "shm_open(%s)", name.c_str());
  if (ftruncate(fd, static_cast<off_t>(m->segBytes)) != 0) {
    int e = errno;
    close(fd);
    shm_unlink(name.c_str());
    return systemError(e, "ftruncate(%s, %zu)", name.c_str(), m->segBytes);
  }
  Result<char*> p = mapSegment(name, fd, m->segBytes);
  close(fd);
  if (!p.isOk()) {
    shm_unlink(name.c_str());
    return p.status();
  }
  m->self = *p;
  SegHeader* h = new (m->self) SegHeader();
  h->magic = kSegMagic;
  h->pid = static_cast<int32_t>(getpid());
  h->rank = bs.rank();
  h->nrings = static_cast<int32_t>(group.size());
  m->probeValue = 0x7e11ca11u ^ reinterpret_cast<uint64_t>(m->self);
  h->probe = m->probeValue;
  mine.probeAddr = reinterpret_cast<uint64_t>(&h->probe);
  mine.probe = m->probeValue;
  for (size_t i = 0; i < group.size(); ++i) new (m->self + 4096 + i * m->ringBytes) RingHeader();
  std::snprintf(mine.name, sizeof mine.name, "%s", name.c_str());
  Status s = bs.allGather(names.data(), sizeof(Name));
  // Map every local peer's segment; then everyone unlinks its own name (nothing can leak after).
  m->mapped.assign(bs.nranks(), nullptr);
  bool cmaOk = opt.cmaMinBytes != SIZE_MAX;
  for (int q : peerList) {
    if (!s.isOk()) break;
    names[q].name[sizeof names[q].name - 1] = '\0';
    Result<char*> qp = mapSegment(names[q].name, -1, m->segBytes);
    if (!qp.isOk()) {
      s = qp.status().withContext(formatString("mapping rank %d's segment", q));
      break;
    }
    m->mapped[q] = *qp;
    Peer& pr = m->peers[q];
    pr.local = true;
    pr.pid = names[q].pid;
    pr.peerSeg = reinterpret_cast<SegHeader*>(m->mapped[q]);
    pr.out = reinterpret_cast<RingHeader*>(m->mapped[q] + 4096 + ringIndex(bs.rank()) * m->ringBytes);
    pr.outSlots = reinterpret_cast<char*>(pr.out) + sizeof(RingHeader);
    pr.in = reinterpret_cast<RingHeader*>(m->self + 4096 + ringIndex(q) * m->ringBytes);
    pr.inSlots = reinterpret_cast<char*>(pr.in) + sizeof(RingHeader);
    if (cmaOk && pr.pid != static_cast<int32_t>(getpid())) {
      // Is single copy allowed (ptrace policy, containers)? Read the peer's probe word where the
      // peer has it mapped and compare with the value it published.
      uint64_t v = 0;
      iovec l{&v, sizeof v}, r{reinterpret_cast<void*>(names[q].probeAddr), sizeof v};
      if (process_vm_readv(pr.pid, &l, 1, &r, 1, 0) != static_cast<ssize_t>(sizeof v) || v != names[q].probe) {
        TRELLIS_INFO(kShm, "rank %d: single copy from rank %d (pid %d) not allowed (%s); using the rings",
                     bs.rank(), q, pr.pid, strerror(errno));
        cmaOk = false;
      }
    }
  }
  mine.cmaOk = cmaOk ? 1 : 0;
  Status s2 = bs.allGather(names.data(), sizeof(Name));  // also the barrier before unlinking
  shm_unlink(name.c_str());
  TRELLIS_TRY_CTX(s, formatString("rank %d: setting up shared memory", bs.rank()));
  TRELLIS_TRY(s2);
  m->cma = true;
  for (int q : peerList) m->cma = m->cma && names[q].cmaOk;
  m->cma = m->cma && cmaOk;
  TRELLIS_INFO(kShm, "rank %d: shm transport up with %zu local peers, %d x %zu-byte slots per ring, single copy %s",
               bs.rank(), peerList.size(), m->opt.slots, m->opt.slotBytes, m->cma ? "on" : "off");
  return std::unique_ptr<ShmTransport>(new ShmTransport(std::move(m)));
}

bool ShmTransport::reaches(int peer) const {
  return peer >= 0 && peer < static_cast<int>(impl_->peers.size()) && impl_->peers[peer].local;
}

std::string ShmTransport::describePeer(int peer) const {
  if (!reaches(peer)) return "shm (not connected)";
  return formatString("shm pid %d", impl_->peers[peer].pid);
}

Status ShmTransport::postSend(int peer, const void* data, size_t bytes, Request* req) {
  Impl& m = *impl_;
  if (!m.error.isOk()) return m.error;
  if (!reaches(peer)) return internalError("rank %d: shm has no ring to rank %d", m.rank, peer);
  Peer& pr = m.peers[peer];
  *req = Request{};
  req->state = ReqState::kPending;
  req->isSend = true;
  req->peer = peer;
  req->bytes = bytes;
  pr.sends.push_back({req, static_cast<const char*>(data), pr.nextSendSeq++, bytes, 0, m.cma && bytes >= m.opt.cmaMinBytes && bytes > 0});
  bool did = false;
  m.pushSends(peer, &did);
  return Status::ok();
}

Status ShmTransport::postRecv(int peer, void* data, size_t bytes, Request* req) {
  Impl& m = *impl_;
  if (!m.error.isOk()) return m.error;
  if (!reaches(peer)) return internalError("rank %d: shm has no ring from rank %d", m.rank, peer);
  *req = Request{};
  req->state = ReqState::kPending;
  req->peer = peer;
  req->bytes = bytes;
  m.peers[peer].recvs.push_back({req, static_cast<char*>(data), bytes});
  bool did = false;
  return m.drain(peer, &did);
}

Status ShmTransport::progress(int timeoutMs, bool* didWork) {
  Impl& m = *impl_;
  if (!m.error.isOk()) return m.error;
  if (!m.self) return Status::ok();
  bool did = false;
  for (size_t p = 0; p < m.peers.size(); ++p) {
    if (!m.peers[p].local) continue;
    m.pushSends(static_cast<int>(p), &did);
    TRELLIS_TRY(m.drain(static_cast<int>(p), &did));
  }
  if (did) {
    *didWork = true;
    return Status::ok();
  }
  TRELLIS_TRY(m.checkLiveness(timeoutMs > 0));
  if (timeoutMs <= 0) return Status::ok();
  SegHeader* h = m.header();
  uint32_t bell = h->doorbell.load(std::memory_order_seq_cst);
  h->sleeping.store(1, std::memory_order_seq_cst);  // then workPossible()'s seq_cst loads: see Impl::ring
  if (!m.workPossible()) {
    timespec ts{timeoutMs / 1000, (timeoutMs % 1000) * 1000000L};
    futex(&h->doorbell, FUTEX_WAIT, bell, &ts);
  }
  h->sleeping.store(0, std::memory_order_relaxed);
  return Status::ok();
}

bool ShmTransport::canRead(int peer) const { return reaches(peer) && impl_->cma; }

Status ShmTransport::read(int peer, uint64_t remote, void* local, size_t bytes) {
  if (!canRead(peer)) return internalError("rank %d: no single-copy access to rank %d", impl_->rank, peer);
  Status s = Impl::readFrom(impl_->myPid, impl_->peers[peer].pid, remote, static_cast<char*>(local), bytes);
  if (!s.isOk()) return impl_->fail(s.withContext(formatString("rank %d: direct read from rank %d", impl_->rank, peer)));
  return s;
}

Status ShmTransport::write(int peer, uint64_t remote, const void* local, size_t bytes) {
  if (!canRead(peer)) return internalError("rank %d: no single-copy access to rank %d", impl_->rank, peer);
  Status s = Impl::writeTo(impl_->myPid, impl_->peers[peer].pid, remote, static_cast<const char*>(local), bytes);
  if (!s.isOk()) return impl_->fail(s.withContext(formatString("rank %d: direct write to rank %d", impl_->rank, peer)));
  return s;
}

void ShmTransport::cancelAll() {
  for (Peer& p : impl_->peers) {
    p.sends.clear();
    p.cmaWaiting.clear();
    p.recvs.clear();
  }
}

}  // namespace trellis::transport
