// Device buffers in the C API: placement by pointer attributes and the staged, stream-ordered form
// of a call (see device_path.h and cuda/stream_exec.h).
#include "api/device_path.h"

#include <algorithm>

#include "algos/kernels/reduce.h"
#include "core/log.h"
#include "cuda/device.h"

namespace trellis {

namespace {

constexpr size_t kStageAlign = 256;

// The bytes of one buffer a call touches on this rank, relative to its base pointer.
struct Use {
  const char* name = "";
  const void* base = nullptr;
  bool needed = false;
  std::vector<std::pair<size_t, size_t>> segs;  // (offset, bytes), bytes > 0
  size_t extent() const {
    size_t e = 0;
    for (auto& s : segs) e = std::max(e, s.first + s.second);
    return e;
  }
};

void whole(Use* u, size_t bytes) {
  u->needed = bytes > 0;
  if (bytes > 0) u->segs.push_back({0, bytes});
}

// What a collective reads (send) and writes (recv) on `rank`.
void collectiveUses(const algos::CollArgs& a, const size_t* vcounts, int rank, int n, Use* send, Use* recv) {
  const size_t es = algos::dtypeSize(a.dtype), c = a.count, nn = static_cast<size_t>(n);
  send->name = "sendbuff";
  recv->name = "recvbuff";
  send->base = a.send;
  recv->base = a.recv;
  switch (a.coll) {
    case algos::Coll::kAllReduce:
      whole(send, c * es);
      whole(recv, c * es);
      break;
    case algos::Coll::kBroadcast:
      whole(send, rank == a.root ? c * es : 0);
      whole(recv, c * es);
      break;
    case algos::Coll::kReduce:
      whole(send, c * es);
      whole(recv, rank == a.root ? c * es : 0);
      break;
    case algos::Coll::kAllGather:
      whole(send, c * es);
      whole(recv, nn * c * es);
      break;
    case algos::Coll::kReduceScatter:
      whole(send, nn * c * es);
      whole(recv, c * es);
      break;
    case algos::Coll::kAlltoAll:
      whole(send, nn * c * es);
      whole(recv, nn * c * es);
      break;
    case algos::Coll::kAlltoAllv: {
      const size_t* sc = vcounts ? vcounts : a.sendcounts;
      const size_t* sd = vcounts ? vcounts + nn : a.sdispls;
      const size_t* rc = vcounts ? vcounts + 2 * nn : a.recvcounts;
      const size_t* rd = vcounts ? vcounts + 3 * nn : a.rdispls;
      for (size_t p = 0; p < nn; ++p) {
        if (sc[p] > 0) send->segs.push_back({sd[p] * es, sc[p] * es});
        if (rc[p] > 0) recv->segs.push_back({rd[p] * es, rc[p] * es});
      }
      send->needed = !send->segs.empty();
      recv->needed = !recv->segs.empty();
      break;
    }
    default:
      break;
  }
}

Result<Placement> place(const std::vector<const Use*>& uses, void* stream, const char* api) {
  const Use* dev = nullptr;
  const Use* host = nullptr;
  cuda::MemKind hostKind = cuda::MemKind::kHost;
  for (const Use* u : uses) {
    if (!u->needed) continue;
    TRELLIS_ASSIGN_OR_RETURN(cuda::PointerInfo info, cuda::pointerInfo(u->base));
    if (info.kind != cuda::MemKind::kDevice) {
      host = u;
      hostKind = info.kind;
      continue;
    }
    dev = u;
    const uintptr_t b = reinterpret_cast<uintptr_t>(u->base);
    const size_t ext = u->extent();
    if (info.rangeSize > 0 && (b < info.rangeStart || b + ext > info.rangeStart + info.rangeSize))
      return invalidArgument("%s: %s %p + %zu bytes runs past the end of its CUDA allocation (%p, %zu bytes)", api,
                             u->name, u->base, ext, reinterpret_cast<void*>(info.rangeStart), info.rangeSize);
  }
  if (dev != nullptr && host != nullptr)
    return invalidArgument("%s: %s %p is device memory but %s %p is %s memory: pass every buffer of a call on the "
                           "device, or every one on the host", api, dev->name, dev->base, host->name, host->base,
                           cuda::memKindName(hostKind));
  if (dev != nullptr) return Placement::kDevice;
  if (stream != nullptr) {
    // Host buffers with a stream: the stream's earlier work may produce the inputs (pinned memory).
    Status s = cuda::streamSynchronize(stream);
    if (!s.isOk())
      return Status(s.code(), formatString("%s: stream %p given with host buffers, but: %s", api, stream,
                                           s.message().c_str()));
  }
  return Placement::kHost;
}

// A merged stretch of device addresses and where it lives in the staging buffer.
struct Region {
  uintptr_t lo, hi;
  size_t off;
};

size_t stagedOffset(const std::vector<Region>& regions, uintptr_t addr) {
  auto it = std::upper_bound(regions.begin(), regions.end(), addr, [](uintptr_t x, const Region& r) { return x < r.lo; });
  const Region& r = *(it - 1);  // addr lies in some region: every address asked for was added
  return r.off + (addr - r.lo);
}

constexpr size_t kNone = SIZE_MAX;

struct StagedOp {
  DeviceOp op;
  size_t sendOff = kNone;
  size_t recvOff = kNone;
};

// The host side of a device job: the operations in order on the staging buffer.
void runStaged(trellisComm* comm, std::vector<StagedOp>& ops, char* staging, void* stream, const std::string& what) {
  std::vector<trellisComm::P2pOp> pending;
  const char* p2pApi = ops.size() == 1 ? ops[0].op.api : "trellisGroupEnd";
  auto failed = [&](const Status& s) {
    comm->failAsync(s.withContext(formatString("%s on stream %p", what.c_str(), stream)));
  };
  auto flush = [&]() -> bool {
    if (pending.empty()) return true;
    Status s = comm->runP2p(pending, p2pApi);
    pending.clear();
    if (!s.isOk()) failed(s);
    return s.isOk();
  };
  for (StagedOp& so : ops) {
    if (so.op.isP2p) {
      trellisComm::P2pOp p = so.op.p2p;
      const size_t off = so.sendOff != kNone ? so.sendOff : so.recvOff;
      p.buf = off != kNone ? staging + off : nullptr;  // kNone: zero bytes
      pending.push_back(p);
      continue;
    }
    if (!flush()) return;
    algos::CollArgs a = so.op.coll;
    a.send = so.sendOff != kNone ? staging + so.sendOff : nullptr;
    a.recv = so.recvOff != kNone ? staging + so.recvOff : nullptr;
    if (a.coll == algos::Coll::kAlltoAllv) {
      const size_t n = so.op.vcounts.size() / 4;
      a.sendcounts = so.op.vcounts.data();
      a.sdispls = a.sendcounts + n;
      a.recvcounts = a.sendcounts + 2 * n;
      a.rdispls = a.sendcounts + 3 * n;
    }
    Status s = comm->runCollective(a, so.op.api);
    if (!s.isOk()) {
      failed(s);
      return;
    }
  }
  flush();
}

std::string describe(const std::vector<DeviceOp>& ops) {
  if (ops.size() != 1) return formatString("trellisGroupEnd (%zu device-buffer operations)", ops.size());
  const DeviceOp& op = ops[0];
  if (op.isP2p)
    return formatString("%s (%zu bytes, peer %d)", op.api, op.p2p.bytes, op.p2p.peer);
  return formatString("%s (%zu elements of %s)", op.api, op.coll.count, algos::dtypeName(op.coll.dtype));
}

}  // namespace

Result<Placement> placeCollective(trellisComm* comm, const algos::CollArgs& a, void* stream, const char* api) {
  // Host buffers without a stream, in a process without CUDA memory: no work on the latency path.
  if (stream == nullptr && !cuda::mayHaveCudaMemory()) return Placement::kHost;
  Use send, recv;
  collectiveUses(a, nullptr, comm->rank(), comm->nranks(), &send, &recv);
  return place({&send, &recv}, stream, api);
}

Result<Placement> placeP2p(trellisComm*, const void* buf, size_t bytes, void* stream, const char* api) {
  if (stream == nullptr && !cuda::mayHaveCudaMemory()) return Placement::kHost;
  Use u;
  u.name = "buffer";
  u.base = buf;
  whole(&u, bytes);
  return place({&u}, stream, api);
}

DeviceOp deviceCollective(const algos::CollArgs& a, int nranks, const char* api) {
  DeviceOp op;
  op.coll = a;
  op.api = api;
  if (a.coll == algos::Coll::kAlltoAllv) {
    const size_t n = static_cast<size_t>(nranks);
    op.vcounts.resize(4 * n);
    std::copy(a.sendcounts, a.sendcounts + n, op.vcounts.begin());
    std::copy(a.sdispls, a.sdispls + n, op.vcounts.begin() + n);
    std::copy(a.recvcounts, a.recvcounts + n, op.vcounts.begin() + 2 * n);
    std::copy(a.rdispls, a.rdispls + n, op.vcounts.begin() + 3 * n);
    op.coll.sendcounts = op.coll.sdispls = op.coll.recvcounts = op.coll.rdispls = nullptr;
  }
  return op;
}

DeviceOp deviceP2p(const trellisComm::P2pOp& p, const char* api) {
  DeviceOp op;
  op.isP2p = true;
  op.p2p = p;
  op.api = api;
  return op;
}

Status enqueueDevice(trellisComm* comm, std::vector<DeviceOp> ops, void* stream) {
  if (ops.empty()) return Status::ok();
  const std::string what = describe(ops);
  TRELLIS_TRY(comm->usable(what.c_str()));
  TRELLIS_ASSIGN_OR_RETURN(cuda::StreamExecutor * ex, comm->deviceExecutor());
  const int rank = comm->rank(), n = comm->nranks();

  // Every byte range the operations touch, merged where they overlap (in place, or one operation's
  // output feeding another's input), each merged range given its place in the staging buffer.
  std::vector<Use> uses(2 * ops.size());
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
  for (size_t i = 0; i < ops.size(); ++i) {
    const DeviceOp& op = ops[i];
    Use& send = uses[2 * i];
    Use& recv = uses[2 * i + 1];
    if (op.isP2p) {
      whole(op.p2p.isSend ? &send : &recv, op.p2p.bytes);
      send.base = recv.base = op.p2p.buf;
    } else {
      collectiveUses(op.coll, op.vcounts.empty() ? nullptr : op.vcounts.data(), rank, n, &send, &recv);
    }
    for (const Use* u : {&send, &recv})
      if (u->needed) {
        const uintptr_t b = reinterpret_cast<uintptr_t>(u->base);
        ranges.push_back({b, b + u->extent()});
      }
  }
  std::sort(ranges.begin(), ranges.end());
  std::vector<Region> regions;
  size_t cursor = 0;
  for (auto& r : ranges) {
    if (!regions.empty() && r.first < regions.back().hi) {
      regions.back().hi = std::max(regions.back().hi, r.second);
      continue;
    }
    if (!regions.empty()) cursor = (regions.back().off + (regions.back().hi - regions.back().lo) + kStageAlign - 1) /
                                   kStageAlign * kStageAlign;
    regions.push_back({r.first, r.second, cursor});
  }
  cuda::StreamJob job;
  job.what = what;
  job.stagingBytes = regions.empty() ? 0 : regions.back().off + (regions.back().hi - regions.back().lo);
  std::vector<StagedOp> staged(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const Use& send = uses[2 * i];
    const Use& recv = uses[2 * i + 1];
    if (send.needed) {
      const uintptr_t b = reinterpret_cast<uintptr_t>(send.base);
      staged[i].sendOff = stagedOffset(regions, b);
      for (auto& s : send.segs)
        job.in.push_back({reinterpret_cast<const void*>(b + s.first), stagedOffset(regions, b + s.first), s.second});
    }
    if (recv.needed) {
      const uintptr_t b = reinterpret_cast<uintptr_t>(recv.base);
      staged[i].recvOff = stagedOffset(regions, b);
      for (auto& s : recv.segs)
        job.out.push_back({reinterpret_cast<const void*>(b + s.first), stagedOffset(regions, b + s.first), s.second});
    }
    staged[i].op = std::move(ops[i]);
  }
  job.work = [comm, staged = std::move(staged), stream, what](void* staging) mutable {
    runStaged(comm, staged, static_cast<char*>(staging), stream, what);
  };
  return ex->enqueue(std::move(job), stream);
}

}  // namespace trellis
