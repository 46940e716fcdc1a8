#include "core/net_core.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/backend.h"
#include "core/mr_cache.h"
#include "core/params.h"
#include "core/plugin_log.h"
#include "core/topo_view.h"
#include "trellis_nccl_net.h"

namespace trellis::ncclnet::core {

using namespace nccl_abi;
template <typename T>
using Res = ::trellis::Result<T>;

static Param<std::string> kTransport("TRELLIS_NCCL_NET_TRANSPORT", "auto",
                                     "NCCL net plugin backend: auto, verbs, ucx, tcp. auto: verbs "
                                     "where an active RDMA port exists, else tcp (ucx, or "
                                     "declining, when the topology has RDMA ports but verbs "
                                     "cannot use them)");
static Param<std::string> kFusion("TRELLIS_NCCL_NET_FUSION", "rail",
                                  "which NICs makeVDevice may fuse: rail (NICs of one rail group: "
                                  "nearest to the same GPUs, or ports "
                                  "of one NIC), any, none");
static Param<int64_t> kMaxBytes(
    "TRELLIS_NCCL_NET_MAX_BYTES", int64_t{1} << 30,
    "maxP2pBytes and maxCollBytes the NCCL net plugin reports (at most 2^31-1: "
    "test() reports sizes as int)");

namespace {

constexpr uint32_t kCommMagic = 0x54524e43u;  // "TRNC"
constexpr uint32_t kCtxMagic = 0x54524358u;   // "TRCX"
constexpr uint64_t kStageMagic = 0x5452535447303031ull;

// A context: v11 has one per NCCL communicator; v6..v10 share gLegacy.
struct Context {
  uint32_t magic = kCtxMagic;
  uint64_t commId = 0;
  CommOptions opts;
};

enum class Kind { kListen, kSend, kRecv };

struct CoreComm {
  uint32_t magic = kCommMagic;
  Kind kind;
  int dev;
  std::unique_ptr<ListenComm> listen;
  std::unique_ptr<SendComm> send;
  std::unique_ptr<RecvComm> recv;
  CoreComm(Kind k, int d) : kind(k), dev(d) {}
};

// A connect in progress, referenced from the stage area at the end of the listen handle.
struct PendingConnect {
  std::unique_ptr<Connector> connector;
  int dev = -1;
};
struct Stage {
  uint64_t magic;
  PendingConnect* pending;
};
static_assert(kBackendHandleBytes + sizeof(Stage) <= static_cast<size_t>(kHandleMaxSize));

struct DeviceStrings {
  std::string name, pciPath;
};

struct Global {
  std::mutex mu;
  std::unique_ptr<Backend> backend;
  std::string declined;                    // why the last init failed
  std::vector<std::vector<int>> vdevs;     // members of device nPhys + i
  std::deque<DeviceStrings> strings;       // stable char* handed out by getProperties
  std::vector<DeviceStrings*> devStrings;  // per device index
  uint64_t legacyInits = 0;                // v6..v10 inits: one shared initialisation, counted
  Context legacy;
  MrCache mr;
  std::mutex pendingMu;
  std::unordered_set<PendingConnect*> pending;
  std::atomic<uint64_t> listens{0}, connects{0}, accepts{0}, contexts{0}, backendInits{0};
};

Global& g() {
  static Global global;
  return global;
}

Result toResult(Code c) {
  switch (c) {
    case Code::kOk:
      return kSuccess;
    case Code::kCudaError:
      return kUnhandledCudaError;
    case Code::kSystemError:
      return kSystemError;
    case Code::kInternal:
      return kInternalError;
    case Code::kInvalidArgument:
      return kInvalidArgument;
    case Code::kInvalidUsage:
      return kInvalidUsage;
    case Code::kRemoteError:
      return kRemoteError;
    case Code::kTimeout:
      return kRemoteError;
    case Code::kInProgress:
      return kInProgress;
  }
  return kInternalError;
}

Result fail(const Status& s) {
  NCCLNET_WARN(kFlagNet, "%s", s.message().c_str());
  return toResult(s.code());
}
#define CORE_TRY(expr)                         \
  do {                                         \
    ::trellis::Status core_s_ = (expr);        \
    if (!core_s_.isOk()) return fail(core_s_); \
  } while (0)

// ---- Backend selection ---------------------------------------------------------------------

struct Choice {
  std::unique_ptr<Backend> backend;
  Status why;          // failure
  bool quiet = false;  // a deliberate decline (INFO), not a misconfiguration (WARN)
};

Choice chooseBackend() {
  Choice c;
  std::string want = kTransport.get();
  for (char& ch : want) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (want != "auto" && want != "tcp" && want != "ucx" && want != "verbs") {
    c.why = invalidArgument("TRELLIS_NCCL_NET_TRANSPORT='%s' is not one of auto, verbs, ucx, tcp",
                            want.c_str());
    return c;
  }
  if (want == "verbs") {
    bool noDevice = false;
    Res<std::unique_ptr<Backend>> v = createVerbsBackend(&noDevice);
    if (!v)
      c.why = v.status().withContext("TRELLIS_NCCL_NET_TRANSPORT=verbs");
    else
      c.backend = std::move(v.value());
    return c;
  }
  if (want == "ucx") {
    Res<std::unique_ptr<Backend>> ucx = createUcxBackend();
    if (!ucx)
      c.why = ucx.status().withContext("ucx backend");
    else
      c.backend = std::move(ucx.value());
    return c;
  }
  if (want == "auto") {
    // An active RDMA port: the verbs backend drives it.
    bool noDevice = false;
    Res<std::unique_ptr<Backend>> v = createVerbsBackend(&noDevice);
    if (v) {
      c.backend = std::move(v.value());
      return c;
    }
    std::vector<std::string> rdma = TopoView::get().rdmaPorts();
    if (noDevice && rdma.empty()) {
      NCCLNET_INFO(kFlagInit | kFlagNet, "verbs backend not used: %s; using the tcp backend",
                   v.status().message().c_str());
    } else {
      NCCLNET_WARN(kFlagInit | kFlagNet, "the verbs backend cannot start: %s",
                   v.status().message().c_str());
    }
    if (!rdma.empty()) {
      // RDMA hardware verbs cannot use: UCX may; without a usable UCX, NCCL's own IB net is the
      // better choice.
      Res<std::unique_ptr<Backend>> ucx = createUcxBackend();
      if (ucx) {
        c.backend = std::move(ucx.value());
        return c;
      }
      std::string list;
      for (const std::string& r : rdma) list += (list.empty() ? "" : ", ") + r;
      c.why = invalidUsage(
          "this host has RDMA ports (%s) but neither the verbs backend (%s) nor the UCX backend "
          "(%s) can use them; declining so that NCCL uses its own IB net "
          "(TRELLIS_NCCL_NET_TRANSPORT=tcp forces TCP)",
          list.c_str(), v.status().message().c_str(), ucx.status().message().c_str());
      c.quiet = true;
      return c;
    }
  }
  Res<std::unique_ptr<Backend>> tcp = createTcpBackend();
  if (!tcp) {
    c.why = tcp.status().withContext("tcp backend");
    return c;
  }
  c.backend = std::move(tcp.value());
  return c;
}

// Requires g().mu.
Status ensureBackend(int abi) {
  Global& G = g();
  if (G.backend) return Status::ok();
  Choice c = chooseBackend();
  if (!c.backend) {
    G.declined = c.why.message();
    std::string line = "init failed, NCCL will use its own nets: " + c.why.message();
    if (c.quiet)
      NCCLNET_INFO(kFlagInit | kFlagNet, "%s", line.c_str());
    else
      NCCLNET_WARN(kFlagInit | kFlagNet, "%s", line.c_str());
    return Status(c.why.code(), line);
  }
  G.backend = std::move(c.backend);
  G.devStrings.clear();
  for (const PhysDevice& d : G.backend->devices()) {
    G.strings.push_back({d.name, d.pciPath});
    G.devStrings.push_back(&G.strings.back());
  }
  ++G.backendInits;
  std::string devs;
  for (const PhysDevice& d : G.backend->devices()) devs += (devs.empty() ? "" : "; ") + d.describe;
  NCCLNET_INFO(kFlagInit | kFlagNet, "using the %s backend (ncclNet v%d ABI), %zu device(s): %s",
               G.backend->name(), abi, G.backend->devices().size(), devs.c_str());
  return Status::ok();
}

// ---- Lookups -------------------------------------------------------------------------------

Res<Backend*> backendOrFail(const char* call) {
  Global& G = g();
  std::lock_guard<std::mutex> lock(G.mu);
  if (!G.backend) return invalidUsage("%s called before a successful init", call);
  return G.backend.get();
}

// Members of device `dev` (a physical device is its own single member).
Res<std::vector<int>> membersOf(int dev, const char* call) {
  Global& G = g();
  std::lock_guard<std::mutex> lock(G.mu);
  if (!G.backend) return invalidUsage("%s called before a successful init", call);
  int nPhys = static_cast<int>(G.backend->devices().size());
  int total = nPhys + static_cast<int>(G.vdevs.size());
  if (dev < 0 || dev >= total)
    return invalidArgument("%s: device %d out of range [0, %d) (%d physical, %zu virtual)", call,
                           dev, total, nPhys, G.vdevs.size());
  if (dev < nPhys) return std::vector<int>{dev};
  return G.vdevs[dev - nPhys];
}

Res<Context*> contextOf(void* ctx, const char* call) {
  if (ctx == nullptr) return &g().legacy;
  auto* c = static_cast<Context*>(ctx);
  if (c->magic != kCtxMagic)
    return invalidArgument("%s: %p is not a context made by this plugin's init", call, ctx);
  return c;
}

Res<CoreComm*> commOf(void* comm, Kind kind, const char* call) {
  static const char* kNames[] = {"listen", "send", "receive"};
  if (comm == nullptr)
    return invalidArgument("%s: null %s comm", call, kNames[static_cast<int>(kind)]);
  auto* c = static_cast<CoreComm*>(comm);
  if (c->magic != kCommMagic)
    return invalidArgument("%s: %p is not a comm of this plugin (closed already?)", call, comm);
  if (c->kind != kind)
    return invalidArgument("%s: %p is a %s comm, not a %s comm", call, comm,
                           kNames[static_cast<int>(c->kind)], kNames[static_cast<int>(kind)]);
  return c;
}

}  // namespace

// ---- Init / finalize -------------------------------------------------------------------------

Result init(void** ctx, uint64_t commId, const NetCommConfig* config, Logger log, int abi) {
  setNcclLogger(log);
  Global& G = g();
  if (ctx != nullptr) *ctx = nullptr;
  {
    std::lock_guard<std::mutex> lock(G.mu);
    Status s = ensureBackend(abi);
    if (!s) return toResult(s.code());  // already logged, once per attempt
    if (ctx == nullptr) {
      // Before v11 NCCL initialised a net once per process; every further init (another NCCL
      // version's adapter, a second library in the process) shares the first.
      ++G.legacyInits;
      return kSuccess;
    }
  }
  auto* c = new Context;
  c->commId = commId;
  if (config != nullptr) c->opts.trafficClass = config->trafficClass;
  *ctx = c;
  ++G.contexts;
  NCCLNET_INFO(kFlagInit | kFlagNet, "context %p for communicator 0x%llx (traffic class %d)",
               static_cast<void*>(c), static_cast<unsigned long long>(commId),
               c->opts.trafficClass);
  return kSuccess;
}

Result finalize(void* ctx) {
  if (ctx == nullptr) return kSuccess;  // NCCL finalizes after a failed init too
  auto r = contextOf(ctx, "finalize");
  if (!r) return fail(r.status());
  r.value()->magic = 0;
  delete r.value();
  --g().contexts;
  return kSuccess;
}

Result setNetAttr(void* ctx, const NetAttr* attr) {
  auto r = contextOf(ctx, "setNetAttr");
  if (!r) return fail(r.status());
  if (attr == nullptr) return fail(invalidArgument("setNetAttr: null attributes"));
  // The receive side decides how many data streams a comm has; a peer count hint caps them.
  int32_t flows = attr->recvCommAttr.maxFlowsPerPeer;
  r.value()->opts.maxFlowsPerPeer = flows > 0 ? flows : -1;
  NCCLNET_TRACE(kFlagNet, "setNetAttr(ctx %p): recv maxFlowsPerPeer %d, op %u algo %u proto %u",
                ctx, flows, attr->op, attr->algo, attr->proto);
  return kSuccess;
}

// ---- Devices ---------------------------------------------------------------------------------

Result devices(int* ndev) {
  if (ndev == nullptr) return fail(invalidArgument("devices: null output"));
  Global& G = g();
  std::lock_guard<std::mutex> lock(G.mu);
  if (!G.backend) return fail(invalidUsage("devices called before a successful init"));
  *ndev = static_cast<int>(G.backend->devices().size() + G.vdevs.size());
  return kSuccess;
}

Result getProperties(int dev, NetPropertiesV11* props) {
  if (props == nullptr) return fail(invalidArgument("getProperties: null output"));
  auto m = membersOf(dev, "getProperties");
  if (!m) return fail(m.status());
  Global& G = g();
  std::lock_guard<std::mutex> lock(G.mu);
  const std::vector<PhysDevice>& phys = G.backend->devices();
  const std::vector<int>& members = m.value();
  std::memset(props, 0, sizeof *props);
  const PhysDevice& first = phys[members[0]];
  DeviceStrings* strs = G.devStrings[dev];
  props->name = const_cast<char*>(strs->name.c_str());
  props->pciPath = strs->pciPath.empty() ? nullptr : const_cast<char*>(strs->pciPath.c_str());
  props->guid = first.guid;
  // Host memory only: CUDA/DMA-BUF need a GPUDirect path, which none of the backends here has.
  props->ptrSupport = kPtrHost;
  props->regIsGlobal = 1;
  props->forceFlush = 0;
  int64_t speed = 0;
  props->latency = 0;
  props->maxComms = INT_MAX;
  for (int d : members) {
    speed += phys[d].speedMbps;
    props->latency = std::max(props->latency, phys[d].latencyUs);
    props->maxComms = std::min(props->maxComms, phys[d].maxComms);
  }
  props->speed = static_cast<int>(std::min<int64_t>(speed, INT_MAX));
  props->port = first.port;
  props->maxRecvs = G.backend->maxRecvs();
  props->netDeviceType = kDeviceHost;
  props->netDeviceVersion = 0;
  props->vProps.ndevs = static_cast<int>(members.size());
  for (size_t i = 0; i < members.size(); ++i) props->vProps.devs[i] = members[i];
  int64_t maxBytes = std::clamp<int64_t>(kMaxBytes.get(), 1, INT_MAX);
  props->maxP2pBytes = static_cast<size_t>(maxBytes);
  props->maxCollBytes = static_cast<size_t>(maxBytes);
  props->maxMultiRequestSize = 1;
  return kSuccess;
}

Result makeVDevice(int* d, const NetVDeviceProps* props) {
  if (d == nullptr || props == nullptr) return fail(invalidArgument("makeVDevice: null argument"));
  Global& G = g();
  std::lock_guard<std::mutex> lock(G.mu);
  if (!G.backend) return fail(invalidUsage("makeVDevice called before a successful init"));
  const std::vector<PhysDevice>& phys = G.backend->devices();
  int nPhys = static_cast<int>(phys.size());
  if (props->ndevs < 1 || props->ndevs > kMaxDevsPerNic)
    return fail(
        invalidArgument("makeVDevice: %d devices (1..%d allowed)", props->ndevs, kMaxDevsPerNic));
  std::vector<int> members(props->devs, props->devs + props->ndevs);
  std::string names;
  for (size_t i = 0; i < members.size(); ++i) {
    int m = members[i];
    if (m < 0 || m >= nPhys)
      return fail(
          invalidArgument("makeVDevice: member %d is not a physical device (0..%d)", m, nPhys - 1));
    for (size_t j = 0; j < i; ++j)
      if (members[j] == m) return fail(invalidArgument("makeVDevice: device %d listed twice", m));
    names += (names.empty() ? "" : "+") + phys[m].name;
  }
  std::string mode = kFusion.get();
  if (mode == "none" && members.size() > 1)
    return fail(invalidUsage("makeVDevice(%s): NIC fusion is off (TRELLIS_NCCL_NET_FUSION=none)",
                             names.c_str()));
  if (mode == "rail") {
    for (int m : members) {
      const PhysDevice& first = phys[members[0]];
      if (phys[m].railGroup.empty())
        return fail(
            invalidUsage("makeVDevice(%s): %s is in no rail group (a virtual interface); "
                         "TRELLIS_NCCL_NET_FUSION=any fuses it anyway",
                         names.c_str(), phys[m].name.c_str()));
      if (phys[m].railGroup != first.railGroup)
        return fail(
            invalidUsage("makeVDevice(%s): %s (rail group '%s') and %s (rail group '%s') are not "
                         "in one rail group; "
                         "TRELLIS_NCCL_NET_FUSION=any fuses them anyway",
                         names.c_str(), first.name.c_str(), first.railGroup.c_str(),
                         phys[m].name.c_str(), phys[m].railGroup.c_str()));
    }
  } else if (mode != "any" && mode != "none") {
    return fail(invalidArgument("TRELLIS_NCCL_NET_FUSION='%s' is not one of rail, any, none",
                                mode.c_str()));
  }
  // The same fusion asked again (NCCL redoes it after reloading the plugin) returns the same
  // device.
  for (size_t i = 0; i < G.vdevs.size(); ++i)
    if (G.vdevs[i] == members) {
      *d = nPhys + static_cast<int>(i);
      return kSuccess;
    }
  G.vdevs.push_back(members);
  G.strings.push_back({names, phys[members[0]].pciPath});
  G.devStrings.push_back(&G.strings.back());
  *d = nPhys + static_cast<int>(G.vdevs.size()) - 1;
  NCCLNET_INFO(kFlagInit | kFlagNet | kFlagGraph, "virtual device %d = %s", *d, names.c_str());
  return kSuccess;
}

// ---- Connection setup -----------------------------------------------------------------------

Result listen(void* ctx, int dev, void* handle, void** listenComm) {
  if (handle == nullptr || listenComm == nullptr)
    return fail(invalidArgument("listen: null argument"));
  *listenComm = nullptr;
  auto c = contextOf(ctx, "listen");
  if (!c) return fail(c.status());
  auto m = membersOf(dev, "listen");
  if (!m) return fail(m.status());
  auto b = backendOrFail("listen");
  if (!b) return fail(b.status());
  std::memset(handle, 0, kHandleMaxSize);
  std::unique_ptr<ListenComm> l;
  CORE_TRY(b.value()
               ->listen(m.value(), c.value()->opts, handle, &l)
               .withContext(formatString("listen(dev %d)", dev)));
  auto* comm = new CoreComm(Kind::kListen, dev);
  comm->listen = std::move(l);
  *listenComm = comm;
  ++g().listens;
  return kSuccess;
}

Result connect(void* ctx, int dev, const NetCommConfig* config, void* handle, void** sendComm) {
  if (handle == nullptr || sendComm == nullptr)
    return fail(invalidArgument("connect: null argument"));
  *sendComm = nullptr;
  Global& G = g();
  Stage stage;
  std::memcpy(&stage, static_cast<char*>(handle) + kBackendHandleBytes, sizeof stage);
  PendingConnect* p = nullptr;
  if (stage.magic == kStageMagic) {
    std::lock_guard<std::mutex> lock(G.pendingMu);
    if (G.pending.count(stage.pending) != 0) p = stage.pending;
  }
  if (p == nullptr) {
    auto c = contextOf(ctx, "connect");
    if (!c) return fail(c.status());
    auto m = membersOf(dev, "connect");
    if (!m) return fail(m.status());
    auto b = backendOrFail("connect");
    if (!b) return fail(b.status());
    CommOptions opts = c.value()->opts;
    if (config != nullptr) opts.trafficClass = config->trafficClass;
    auto np = std::make_unique<PendingConnect>();
    np->dev = dev;
    CORE_TRY(b.value()
                 ->connect(m.value(), opts, handle, &np->connector)
                 .withContext(formatString("connect(dev %d)", dev)));
    p = np.release();
    {
      std::lock_guard<std::mutex> lock(G.pendingMu);
      G.pending.insert(p);
    }
    stage = {kStageMagic, p};
    std::memcpy(static_cast<char*>(handle) + kBackendHandleBytes, &stage, sizeof stage);
  }
  std::unique_ptr<SendComm> s;
  Status st = p->connector->progress(&s);
  if (st && !s) return kSuccess;  // not yet: NCCL calls again
  {
    std::lock_guard<std::mutex> lock(G.pendingMu);
    G.pending.erase(p);
  }
  std::memset(static_cast<char*>(handle) + kBackendHandleBytes, 0, sizeof stage);
  int pdev = p->dev;
  delete p;
  if (!st) return fail(st.withContext(formatString("connect(dev %d)", pdev)));
  auto* comm = new CoreComm(Kind::kSend, pdev);
  comm->send = std::move(s);
  NCCLNET_INFO(kFlagNet, "connected: %s", comm->send->describe().c_str());
  *sendComm = comm;
  ++G.connects;
  return kSuccess;
}

Result accept(void* listenComm, void** recvComm) {
  if (recvComm == nullptr) return fail(invalidArgument("accept: null output"));
  *recvComm = nullptr;
  auto l = commOf(listenComm, Kind::kListen, "accept");
  if (!l) return fail(l.status());
  std::unique_ptr<RecvComm> r;
  CORE_TRY(
      l.value()->listen->accept(&r).withContext(formatString("accept(dev %d)", l.value()->dev)));
  if (!r) return kSuccess;
  auto* comm = new CoreComm(Kind::kRecv, l.value()->dev);
  comm->recv = std::move(r);
  NCCLNET_INFO(kFlagNet, "accepted: %s", comm->recv->describe().c_str());
  *recvComm = comm;
  ++g().accepts;
  return kSuccess;
}

// ---- Memory registration ----------------------------------------------------------------------

Result regMr(void* comm, void* data, size_t size, int type, void** mhandle) {
  if (mhandle == nullptr) return fail(invalidArgument("regMr: null output"));
  *mhandle = nullptr;
  auto* c = static_cast<CoreComm*>(comm);
  if (c == nullptr || c->magic != kCommMagic || c->kind == Kind::kListen)
    return fail(invalidArgument("regMr: %p is not a send or receive comm of this plugin", comm));
  if (type != kPtrHost)
    return fail(
        invalidArgument("regMr: memory type %d (%s) at %p + %zu bytes is not supported: the device "
                        "reports ptrSupport = HOST "
                        "(no GPUDirect path in this build)",
                        type,
                        type == kPtrCuda     ? "CUDA"
                        : type == kPtrDmaBuf ? "DMA-BUF"
                                             : "unknown",
                        data, size));
  if (data == nullptr && size > 0)
    return fail(invalidArgument("regMr: null buffer of %zu bytes", size));
  MrEntry* e = nullptr;
  bool hit = false;
  CORE_TRY(g().mr.reg(data, size, type, &e, &hit));
  if (!hit && size > 0) {
    // New memory: NIC registrations cached over this range may predate its mapping.
    auto b = backendOrFail("regMr");
    if (b) b.value()->invalidateMemory(data, size);
  }
  NCCLNET_TRACE(kFlagNet | kFlagReg, "regMr %p + %zu bytes -> #%llu (%s)", data, size,
                static_cast<unsigned long long>(e->id), hit ? "cache hit" : "new");
  *mhandle = e;
  return kSuccess;
}

Result regMrDmaBuf(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                   void** mhandle) {
  (void)comm;
  (void)offset;
  if (mhandle != nullptr) *mhandle = nullptr;
  return fail(
      invalidArgument("regMrDmaBuf: DMA-BUF registration (fd %d, %p + %zu bytes, type %d) is not "
                      "supported: ptrSupport is HOST only",
                      fd, data, size, type));
}

Result deregMr(void* comm, void* mhandle) {
  (void)comm;  // registrations are global
  std::pair<uintptr_t, size_t> gone{0, 0};
  CORE_TRY(g().mr.dereg(mhandle, &gone));
  if (gone.second > 0) {
    // NCCL may free the memory now: cached NIC registrations of it go (their pages are unpinned).
    auto b = backendOrFail("deregMr");
    if (b) b.value()->invalidateMemory(reinterpret_cast<const void*>(gone.first), gone.second);
  }
  return kSuccess;
}

Result getDeviceMr(void* comm, void* mhandle, void** dptrMhandle) {
  (void)comm;
  (void)mhandle;
  // Only device-offload nets (netDeviceType != HOST) have device-side handles.
  if (dptrMhandle != nullptr) *dptrMhandle = nullptr;
  return kSuccess;
}

// ---- Data ------------------------------------------------------------------------------------

Result isend(void* sendComm, void* data, size_t size, int tag, void* mhandle, void** request) {
  if (request == nullptr) return fail(invalidArgument("isend: null request output"));
  *request = nullptr;
  auto c = commOf(sendComm, Kind::kSend, "isend");
  if (!c) return fail(c.status());
  CORE_TRY(g().mr.check(mhandle, data, size, "isend"));
  Request* r = nullptr;
  CORE_TRY(c.value()->send->isend(data, size, tag, &r));
  *request = r;
  return kSuccess;
}

Result irecv(void* recvComm, int n, void** data, const size_t* sizes, const int* tags,
             void** mhandles, void** request) {
  if (request == nullptr) return fail(invalidArgument("irecv: null request output"));
  // NCCL's optional-completion hint (kNetOptionalRecvCompletion) is accepted and not used: the
  // request completes when the data is in place, which is always correct.
  *request = nullptr;
  auto c = commOf(recvComm, Kind::kRecv, "irecv");
  if (!c) return fail(c.status());
  auto b = backendOrFail("irecv");
  if (!b) return fail(b.status());
  int maxRecvs = b.value()->maxRecvs();
  if (n < 1 || n > maxRecvs)
    return fail(invalidArgument("irecv: %d buffers (1..%d, the device's maxRecvs)", n, maxRecvs));
  if (data == nullptr || sizes == nullptr || tags == nullptr)
    return fail(invalidArgument("irecv: null data, sizes or tags array"));
  for (int i = 0; i < n; ++i)
    CORE_TRY(g().mr.check(mhandles != nullptr ? mhandles[i] : nullptr, data[i], sizes[i], "irecv"));
  Request* r = nullptr;
  CORE_TRY(c.value()->recv->irecv(n, data, sizes, tags, &r));
  *request = r;
  return kSuccess;
}

Result iflush(void* recvComm, int n, void** data, const int* sizes, void** mhandles,
              void** request) {
  (void)n;
  (void)data;
  (void)sizes;
  (void)mhandles;
  if (request == nullptr) return fail(invalidArgument("iflush: null request output"));
  *request = nullptr;
  auto c = commOf(recvComm, Kind::kRecv, "iflush");
  if (!c) return fail(c.status());
  // Host buffers (the only kind registered) are complete when test() says so: nothing to flush.
  return kSuccess;
}

Result test(void* request, int* done, int* sizes) {
  if (request == nullptr || done == nullptr)
    return fail(invalidArgument("test: null request or done"));
  *done = 0;
  auto* r = static_cast<Request*>(request);
  if (r->magic != Request::kMagic)
    return fail(invalidArgument(
        "test: %p is not a request in flight (completed and tested already?)", request));
  Comm* owner = r->owner;
  int n = r->n;
  size_t got[kMaxRecvsCap] = {};
  bool fin = false;
  Status s = owner->test(r, &fin, got);
  if (!s) return fail(s.withContext(owner->describe()));
  if (!fin) return kSuccess;
  *done = 1;
  if (sizes != nullptr)
    for (int i = 0; i < n; ++i) {
      if (got[i] > static_cast<size_t>(INT_MAX))
        return fail(internalError("test: %zu bytes do not fit test()'s int sizes", got[i]));
      sizes[i] = static_cast<int>(got[i]);
    }
  return kSuccess;
}

Result irecvConsumed(void* recvComm, int n, void* request) {
  (void)n;
  (void)request;
  // Only device-unpack nets need to know when the GPU consumed a receive.
  auto c = commOf(recvComm, Kind::kRecv, "irecvConsumed");
  if (!c) return fail(c.status());
  return kSuccess;
}

// ---- Close -----------------------------------------------------------------------------------

namespace {
Result closeComm(void* comm, Kind kind, const char* call) {
  auto c = commOf(comm, kind, call);
  if (!c) return fail(c.status());
  c.value()->magic = 0;
  delete c.value();  // requests still in flight go with it
  return kSuccess;
}
}  // namespace

Result closeSend(void* sendComm) { return closeComm(sendComm, Kind::kSend, "closeSend"); }
Result closeRecv(void* recvComm) { return closeComm(recvComm, Kind::kRecv, "closeRecv"); }
Result closeListen(void* listenComm) { return closeComm(listenComm, Kind::kListen, "closeListen"); }

}  // namespace trellis::ncclnet::core

extern "C" __attribute__((visibility("default"))) int trellisNcclNetGetStats(
    trellisNcclNetStats_t* out) {
  using trellis::ncclnet::core::Result;
  if (out == nullptr) return 1;
  auto& G = trellis::ncclnet::core::g();
  trellis::ncclnet::MrStats m = G.mr.stats();
  out->registrations = m.registrations;
  out->registrationHits = m.hits;
  out->deregistrations = m.deregistrations;
  out->liveRegistrations = m.live;
  out->listens = G.listens.load();
  out->connects = G.connects.load();
  out->accepts = G.accepts.load();
  {
    std::lock_guard<std::mutex> lock(G.mu);
    out->virtualDevices = G.vdevs.size();
    out->legacyInits = G.legacyInits;
  }
  out->contexts = G.contexts.load();
  out->backendInits = G.backendInits.load();
  return 0;
}
