// Verbs transport set-up: parameters, device choice, queue pairs, and the exchange of addresses
// over a TCP connection per peer (which then stays open as the liveness channel).
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "core/log.h"
#include "core/params.h"
#include "topo/sysfs.h"
#include "transport/verbs/verbs_internal.h"

namespace trellis::transport {

using namespace verbs;  // NOLINT: this file implements the verbs namespace's transport

static Param<std::string> kHca(
    "TRELLIS_IB_HCA", "",
    "RDMA devices/ports to use, NCCL syntax: mlx5_0:1,mlx5_1:1; prefix names; ^ "
    "excludes; = exact names (empty: the nearest active ports)");
static Param<int64_t> kGidIndex("TRELLIS_IB_GID_INDEX", -1,
                                "RoCE GID table index (-1: the IPv4-mapped RoCE v2 entry)");
static Param<int64_t> kQps(
    "TRELLIS_IB_QPS_PER_CONNECTION", 2,
    "queue pairs per peer (raised to the NIC count of either end); large messages "
    "are striped over them");
static Param<int64_t> kMaxNicsP("TRELLIS_IB_MAX_NICS", 4,
                                "RDMA ports one rank stripes over (1..4)");
static Param<int64_t> kEager(
    "TRELLIS_IB_EAGER_BYTES", 16384,
    "messages up to this size are copied through pre-posted bounce buffers; larger "
    "ones are RDMA-written into the receiver's buffer");
static Param<int64_t> kRecvDepth("TRELLIS_IB_RECV_DEPTH", 64,
                                 "bounce receives per queue pair (a peer's credits)");
static Param<int64_t> kStripeMin("TRELLIS_IB_STRIPE_MIN_BYTES", 1 << 20,
                                 "smallest part of a message striped over queue pairs");
static Param<int64_t> kIbTimeout("TRELLIS_IB_TIMEOUT", 14,
                                 "queue-pair ACK timeout exponent (4.096 us * 2^n)");
static Param<int64_t> kRetry("TRELLIS_IB_RETRY_CNT", 7,
                             "queue-pair transport retries before an error");
static Param<int64_t> kTc("TRELLIS_IB_TC", 0, "traffic class of RoCE packets");
static Param<int64_t> kSl("TRELLIS_IB_SL", 0, "InfiniBand service level");
static Param<std::string> kRegCache(
    "TRELLIS_IB_REG_CACHE", "call",
    "registration cache of caller buffers: call (reused within one call), keep "
    "(across calls: buffers are never freed while the communicator lives), off");
static Param<int64_t> kRegCacheBytes("TRELLIS_IB_REG_CACHE_BYTES", int64_t{4} << 30,
                                     "registered bytes the cache may keep per NIC");
static Param<bool> kTopo("TRELLIS_IB_TOPO", true,
                         "choose the RDMA ports nearest to this rank in the detected topology");

Result<VerbsOptions> verbsOptionsFromParams() {
  VerbsOptions o;
  o.hca = kHca.get();
  o.gidIndex = static_cast<int>(std::clamp<int64_t>(kGidIndex.get(), -1, 65535));
  o.qpsPerConnection = static_cast<int>(std::clamp<int64_t>(kQps.get(), 1, kMaxQps));
  o.maxNics = static_cast<int>(std::clamp<int64_t>(kMaxNicsP.get(), 1, kMaxNics));
  o.eagerBytes = static_cast<size_t>(std::clamp<int64_t>(kEager.get(), 0, 1 << 20));
  o.recvDepth = static_cast<int>(std::clamp<int64_t>(kRecvDepth.get(), 8, 4096));
  o.stripeMinBytes =
      static_cast<size_t>(std::clamp<int64_t>(kStripeMin.get(), 4096, int64_t{1} << 30));
  o.ibTimeout = static_cast<int>(std::clamp<int64_t>(kIbTimeout.get(), 1, 31));
  o.retryCount = static_cast<int>(std::clamp<int64_t>(kRetry.get(), 0, 7));
  o.trafficClass = static_cast<int>(std::clamp<int64_t>(kTc.get(), 0, 255));
  o.serviceLevel = static_cast<int>(std::clamp<int64_t>(kSl.get(), 0, 15));
  std::string mode = kRegCache.get();
  if (mode == "call")
    o.regMode = RegMode::kCall;
  else if (mode == "keep")
    o.regMode = RegMode::kKeep;
  else if (mode == "off")
    o.regMode = RegMode::kOff;
  else
    return invalidArgument("TRELLIS_IB_REG_CACHE='%s' is not call, keep or off", mode.c_str());
  o.regCacheBytes = static_cast<size_t>(std::max<int64_t>(kRegCacheBytes.get(), 1 << 20));
  o.useTopology = kTopo.get();
  TRELLIS_ASSIGN_OR_RETURN(GdrContext::Mode gdr, gdrModeFromParams());
  o.gpuDirect = gdr == GdrContext::Mode::kAuto;
  o.sendDepth = std::max(o.sendDepth, o.recvDepth + 8);
  return o;
}

namespace verbs {

Result<Registrar::Keys> PdRegistrar::reg(uintptr_t addr, size_t len) {
  const int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
  if (gdr_ != nullptr) {
    // Both ends: a cache miss is rounded out to 1 MiB, which may reach from host memory into a
    // device allocation (or between allocations). Such a region is refused, and the cache falls
    // back to the pages of the request alone.
    const CudaPointer p = gdr_->classify(reinterpret_cast<const void*>(addr));
    const CudaPointer q =
        len > 1 ? gdr_->classify(reinterpret_cast<const void*>(addr + len - 1)) : p;
    if (p.device != q.device || p.managed != q.managed || p.base != q.base)
      return invalidArgument("%zu bytes at %p on %s span %s: not registered as one region", len,
                             reinterpret_cast<void*>(addr), dev_.c_str(),
                             p.device || q.device
                                 ? "host and CUDA device memory, or two CUDA allocations"
                                 : "host and CUDA managed memory");
    if (p.managed)
      return invalidUsage(
          "CUDA managed memory at %p (%zu bytes) is not registered on %s for GPUDirect RDMA: stage "
          "it through host memory",
          reinterpret_cast<void*>(addr), len, dev_.c_str());
    if (p.device) {
      TRELLIS_ASSIGN_OR_RETURN(ibv_mr * dm, gdr_->registerDevice(pd_, port_, p, addr, len, access));
      return Keys{dm->lkey, dm->rkey, dm};
    }
  }
  ibv_mr* mr = ibv_reg_mr(pd_, reinterpret_cast<void*>(addr), len, access);
  if (mr == nullptr)
    return systemError(errno, "ibv_reg_mr of %zu bytes at %p on %s%s", len,
                       reinterpret_cast<void*>(addr), dev_.c_str(),
                       errno == ENOMEM || errno == EPERM ? " (is `ulimit -l` large enough?)" : "");
  return Keys{mr->lkey, mr->rkey, mr};
}

bool PdRegistrar::mapped(uintptr_t addr, size_t len) {
  return len == 0 || msync(reinterpret_cast<void*>(addr), len, MS_ASYNC) == 0;
}

void PdRegistrar::dereg(void* handle) {
  if (handle != nullptr) ibv_dereg_mr(static_cast<ibv_mr*>(handle));
}

namespace {

// What each rank tells every other rank (all-gathered over the bootstrap).
struct NicWire {
  uint8_t gid[16];
  uint16_t lid;
  uint8_t port;
  uint8_t infiniband;
  uint8_t mtu;
  uint8_t reserved[3];
  char name[32];
};
struct RankWire {
  int32_t status;  // 0: ok; 1: no usable device; 2: set-up failed here
  int32_t nnics;
  NicWire nics[kMaxNics];
  net::WireAddr listen;
};

// What two ranks exchange on their own connection.
constexpr uint32_t kHelloMagic = 0x7e11b00f;
constexpr uint32_t kConnMagic = 0x7e11c044;
struct Hello {
  uint32_t magic;
  int32_t from;
  uint8_t secret[16];
};
struct ConnWire {
  uint32_t magic;
  int32_t from;
  int32_t nqps;
  int32_t recvDepth;
  uint32_t qpn[kMaxQps];
  uint32_t psn[kMaxQps];
  uint64_t slab;
  uint64_t mailboxOffset;
  uint32_t slabRkey[kMaxNics];
};

std::once_flag gNoDeviceOnce;

}  // namespace
}  // namespace verbs

VerbsTransport::Impl::~Impl() {
  for (auto& cp : conns) {
    if (!cp) continue;
    Conn& c = *cp;
    for (auto& op : c.sends) releaseMrs(op.mr, op.data, op.bytes);
    for (auto& op : c.recvs) releaseMrs(op.mr, op.buf, op.cap);
    for (Qp& q : c.qps)
      if (q.qp) ibv_destroy_qp(q.qp);
    for (ibv_mr* mr : c.slabMr)
      if (mr) ibv_dereg_mr(mr);
    if (c.slab) munmap(c.slab, c.slabBytes);
    if (c.fd >= 0) ::close(c.fd);
  }
  for (Nic& n : nics) {
    n.cache.reset();
    if (n.cq) ibv_destroy_cq(n.cq);
    if (n.channel) ibv_destroy_comp_channel(n.channel);
    if (n.pd) ibv_dealloc_pd(n.pd);
    if (n.ctx) ibv_close_device(n.ctx);
  }
}

namespace {

Status openNic(Nic& n, const VerbsOptions& opt, GdrContext* gdr) {
  int count = 0;
  ibv_device** list = ibv_get_device_list(&count);
  if (list == nullptr) return systemError(errno, "ibv_get_device_list");
  for (int i = 0; i < count && n.ctx == nullptr; ++i)
    if (n.info.dev == ibv_get_device_name(list[i])) n.ctx = ibv_open_device(list[i]);
  ibv_free_device_list(list);
  if (n.ctx == nullptr) return systemError(errno, "ibv_open_device(%s)", n.info.dev.c_str());
  n.pd = ibv_alloc_pd(n.ctx);
  if (n.pd == nullptr) return systemError(errno, "ibv_alloc_pd on %s", n.info.dev.c_str());
  n.channel = ibv_create_comp_channel(n.ctx);
  if (n.channel == nullptr)
    return systemError(errno, "ibv_create_comp_channel on %s", n.info.dev.c_str());
  int fl = fcntl(n.channel->fd, F_GETFL);
  fcntl(n.channel->fd, F_SETFL, fl | O_NONBLOCK);
  auto registrar = std::make_unique<PdRegistrar>(n.pd, n.info.dev);
  if (gdr != nullptr) registrar->enableGpuDirect(gdr, n.info);
  n.registrar = std::move(registrar);
  RegCacheOptions ro;
  ro.maxBytes = opt.regCacheBytes;
  // Rounding a miss out to 1 MiB lets one registration serve many chunks of a buffer; it must not
  // when registrations outlive calls (the rounded region covers memory the caller never passed).
  ro.align = opt.regMode == RegMode::kKeep ? 4096 : 1 << 20;
  ro.growAhead = opt.regMode != RegMode::kKeep;
  n.cache = std::make_unique<RegCache>(n.registrar.get(), ro);
  return Status::ok();
}

// Selects and opens this rank's ports. An empty result with OK status: no usable device.
Status openLocalNics(VerbsTransport::Impl& m, std::string* noDevice) {
  std::vector<std::string> notes;
  std::vector<PortInfo> ports = listActivePorts(m.opt.gidIndex, &notes);
  for (const auto& n : notes) TRELLIS_DEBUG(kNet, "rank %d: verbs: %s", m.rank, n.c_str());
  TRELLIS_ASSIGN_OR_RETURN(HcaFilter filter, parseHcaFilter(m.opt.hca));
  std::vector<int> allowed;
  for (size_t i = 0; i < ports.size(); ++i)
    if (filter.allows(ports[i].dev, ports[i].port)) allowed.push_back(static_cast<int>(i));
  std::string why;
  std::vector<int> pick;
  if (allowed.size() > 1 && filter.empty() && !m.opt.railNics.empty())
    pick = chooseNics(ports, filter, nullptr, -1, m.opt.maxNics, &why, m.opt.railNics);
  if (!pick.empty()) {
    // the cluster view's rails named some of our ports
  } else if (allowed.size() > 1 && filter.empty() && m.opt.useTopology) {
    Result<topo::System> sys = topo::detectLocalSystem();
    if (sys) {
      pick =
          chooseNics(ports, filter, &sys.value(), rankTopoNode(sys.value()), m.opt.maxNics, &why);
    } else {
      TRELLIS_DEBUG(kNet, "rank %d: verbs: no topology (%s): using every active port", m.rank,
                    sys.status().message().c_str());
      pick = chooseNics(ports, filter, nullptr, -1, m.opt.maxNics, &why);
    }
  } else {
    pick = chooseNics(ports, filter, nullptr, -1, m.opt.maxNics, &why);
  }
  if (pick.empty()) {
    if (ports.empty())
      *noDevice = notes.empty() ? "no RDMA device" : "no RDMA device with an active port";
    else
      *noDevice =
          formatString("no active RDMA port matches TRELLIS_IB_HCA='%s'", m.opt.hca.c_str());
    return Status::ok();
  }
  // Every NIC of one rank must speak the same link layer (a QP pairs one NIC with a peer's NIC).
  std::string list;
  for (int i : pick) {
    if (ports[i].infiniband != ports[pick[0]].infiniband) continue;
    m.nics.emplace_back();
    m.nics.back().info = ports[i];
    list += (list.empty() ? "" : ", ") + ports[i].describe();
  }
  // Even with GPUDirect off, device memory must be recognised (so that it is staged, not handed to
  // ibv_reg_mr, which nvidia-peermem would accept).
  if (gdrCompiled())
    m.gdr = std::make_unique<GdrContext>(m.opt.gpuDirect ? GdrContext::Mode::kAuto
                                                         : GdrContext::Mode::kOff);
  for (Nic& n : m.nics)
    TRELLIS_TRY_CTX(openNic(n, m.opt, m.gdr.get()), formatString("rank %d: verbs", m.rank));
  TRELLIS_INFO(kNet, "rank %d: verbs: using %s [%s]", m.rank, list.c_str(), why.c_str());
  return Status::ok();
}

Status transition(ibv_qp* qp, ibv_qp_attr& a, int mask, const char* to, int rank, int peer) {
  int rc = ibv_modify_qp(qp, &a, mask);
  if (rc != 0)
    return systemError(rc, "rank %d: verbs QP %u to rank %d: ibv_modify_qp to %s", rank, qp->qp_num,
                       peer, to);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<VerbsTransport>> VerbsTransport::create(Bootstrap& bs,
                                                               const std::vector<int>& peerList,
                                                               const VerbsOptions& opt,
                                                               const std::atomic<bool>* abort) {
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.rank = bs.rank();
  m.nranks = bs.nranks();
  m.opt = opt;
  m.opt.sendDepth = std::max(m.opt.sendDepth, m.opt.recvDepth + 8);
  m.slotBytes = (sizeof(MsgHeader) + m.opt.eagerBytes + 63) / 64 * 64;
  m.sendSlots = m.opt.recvDepth;
  m.conns.resize(bs.nranks());

  // 1. This rank's ports; a failure here is reported to every rank through the all-gather.
  std::string noDevice;
  Status local = openLocalNics(m, &noDevice);
  net::Socket listen;
  std::vector<RankWire> all(bs.nranks());
  RankWire& me = all[bs.rank()];
  std::memset(&me, 0, sizeof me);
  if (local.isOk() && !m.nics.empty()) {
    net::SockAddr want = bs.listenAddr(), bound;
    want.setPort(0);
    auto l = net::listenOn(want, &bound);
    if (l) {
      listen = std::move(l.value());
      me.listen = net::toWire(bound);
    } else {
      local = l.status();
    }
  }
  me.status = !local.isOk() ? 2 : m.nics.empty() ? 1 : 0;
  if (me.status == 0) {
    me.nnics = static_cast<int32_t>(m.nics.size());
    for (size_t i = 0; i < m.nics.size(); ++i) {
      const PortInfo& p = m.nics[i].info;
      NicWire& w = me.nics[i];
      std::memcpy(w.gid, p.gid, 16);
      w.lid = p.lid;
      w.port = static_cast<uint8_t>(p.port);
      w.infiniband = p.infiniband;
      w.mtu = static_cast<uint8_t>(p.mtu);
      std::snprintf(w.name, sizeof w.name, "%s", p.dev.c_str());
    }
  }
  if (me.status == 1)
    std::call_once(gNoDeviceOnce, [&] {
      TRELLIS_INFO(kNet, "rank %d: verbs: %s: peers on other hosts use tcp", m.rank,
                   noDevice.c_str());
    });
  TRELLIS_TRY_CTX(bs.allGather(all.data(), sizeof(RankWire)), "exchanging verbs addresses");
  if (!local.isOk()) return local.withContext(formatString("rank %d: verbs set-up", m.rank));
  for (int p = 0; p < bs.nranks(); ++p)
    if (all[p].status == 2)
      return remoteError("rank %d: verbs set-up failed on rank %d (see its log)", m.rank, p);

  // 2. Which peers we connect to: both ends have a device of the same link layer.
  std::vector<int> peers;
  for (int p : peerList) {
    if (p == m.rank || all[p].status != 0 || m.nics.empty()) continue;
    if (all[p].nnics < 1 || all[p].nnics > kMaxNics) continue;
    bool ok = true;
    for (int i = 0; i < all[p].nnics; ++i)
      ok = ok && (all[p].nics[i].infiniband != 0) == m.nics[0].info.infiniband;
    if (!ok) {
      TRELLIS_WARN(kNet,
                   "rank %d: verbs: rank %d's ports use another link layer than %s: not connecting "
                   "over verbs",
                   m.rank, p, m.nics[0].info.dev.c_str());
      continue;
    }
    peers.push_back(p);
  }
  if (peers.empty()) return std::unique_ptr<VerbsTransport>(new VerbsTransport(std::move(impl)));

  // 3. Completion queues sized for every QP on each NIC.
  auto qpsFor = [&](int p) {
    int nA = static_cast<int>(m.nics.size()), nB = all[p].nnics, wide = std::max(nA, nB);
    int n = std::max({m.opt.qpsPerConnection, nA, nB});
    n = (n + wide - 1) / wide * wide;
    return std::min(n, kMaxQps / wide * wide);
  };
  std::vector<int> qpsOnNic(m.nics.size(), 0);
  for (int p : peers)
    for (int q = 0; q < qpsFor(p); ++q) ++qpsOnNic[q % m.nics.size()];
  for (size_t i = 0; i < m.nics.size(); ++i) {
    Nic& n = m.nics[i];
    ibv_device_attr da{};
    ibv_query_device(n.ctx, &da);
    int cqe = std::max(qpsOnNic[i] * (m.opt.sendDepth + m.opt.recvDepth) + 16, 64);
    if (da.max_cqe > 0) cqe = std::min(cqe, da.max_cqe);
    n.cq = ibv_create_cq(n.ctx, cqe, nullptr, n.channel, 0);
    if (n.cq == nullptr)
      return systemError(errno, "rank %d: verbs: ibv_create_cq(%d) on %s", m.rank, cqe,
                         n.info.dev.c_str());
  }

  // 4. Per peer: registered slab, QPs in INIT with their receives posted.
  for (int p : peers) {
    auto cp = std::make_unique<Conn>();
    Conn& c = *cp;
    c.peer = p;
    for (int i = 0; i < all[p].nnics; ++i) {
      PortInfo r;
      r.dev = std::string(all[p].nics[i].name,
                          strnlen(all[p].nics[i].name, sizeof all[p].nics[i].name));
      r.port = all[p].nics[i].port;
      r.infiniband = all[p].nics[i].infiniband;
      r.lid = all[p].nics[i].lid;
      r.mtu = all[p].nics[i].mtu;
      std::memcpy(r.gid, all[p].nics[i].gid, 16);
      c.remotePorts.push_back(r);
    }
    int nq = qpsFor(p);
    c.qps.resize(nq);
    c.recvArea = static_cast<size_t>(nq) * m.opt.recvDepth * m.slotBytes;
    c.sendArea = static_cast<size_t>(nq) * m.sendSlots * m.slotBytes;
    c.slabBytes = (c.recvArea + c.sendArea + 2 * 8 * nq + 4095) / 4096 * 4096;
    void* slab =
        mmap(nullptr, c.slabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slab == MAP_FAILED)
      return systemError(errno, "rank %d: verbs: mapping %zu bytes of buffers for rank %d", m.rank,
                         c.slabBytes, p);
    c.slab = static_cast<char*>(slab);
    for (int q = 0; q < nq; ++q) {
      c.qps[q].nic = q % static_cast<int>(m.nics.size());
      c.qps[q].remoteNic = q % all[p].nnics;
    }
    for (size_t i = 0; i < m.nics.size(); ++i) {
      c.slabMr[i] = ibv_reg_mr(m.nics[i].pd, c.slab, c.slabBytes,
                               IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
      if (c.slabMr[i] == nullptr)
        return systemError(errno,
                           "rank %d: verbs: registering %zu bytes of buffers for rank %d on %s",
                           m.rank, c.slabBytes, p, m.nics[i].info.dev.c_str());
    }
    uint32_t seed = 0;
    TRELLIS_TRY(net::randomBytes(&seed, sizeof seed));
    for (int q = 0; q < nq; ++q) {
      Qp& qp = c.qps[q];
      Nic& n = m.nics[qp.nic];
      ibv_qp_init_attr ia{};
      ia.send_cq = n.cq;
      ia.recv_cq = n.cq;
      ia.qp_type = IBV_QPT_RC;
      ia.cap.max_send_wr = static_cast<uint32_t>(m.opt.sendDepth);
      ia.cap.max_recv_wr = static_cast<uint32_t>(m.opt.recvDepth);
      ia.cap.max_send_sge = 1;
      ia.cap.max_recv_sge = 1;
      ia.cap.max_inline_data = 64;
      qp.qp = ibv_create_qp(n.pd, &ia);
      if (qp.qp == nullptr) {
        ia.cap.max_inline_data = 0;  // some devices have no inline data
        qp.qp = ibv_create_qp(n.pd, &ia);
      }
      if (qp.qp == nullptr)
        return systemError(errno, "rank %d: verbs: ibv_create_qp on %s for rank %d", m.rank,
                           n.info.dev.c_str(), p);
      n.maxInline = ia.cap.max_inline_data;
      n.qpOwner[qp.qp->qp_num] = {p, q};
      qp.psn = (seed + static_cast<uint32_t>(q) * 7919u) & 0xffffff;
      ibv_qp_attr a{};
      a.qp_state = IBV_QPS_INIT;
      a.pkey_index = 0;
      a.port_num = static_cast<uint8_t>(n.info.port);
      a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
      TRELLIS_TRY(transition(qp.qp, a,
                             IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS,
                             "INIT", m.rank, p));
      for (int s = 0; s < m.opt.recvDepth; ++s) TRELLIS_TRY(m.postRecvSlot(c, q, s));
      for (int s = m.sendSlots - 1; s >= 0; --s) qp.freeSlots.push_back(s);
      *m.mailbox(c, q) =
          static_cast<uint64_t>(m.opt.recvDepth);  // the peer posts as many before RTR
      qp.reported = qp.posted;
    }
    m.conns[p] = std::move(cp);
  }

  // 5. One TCP connection per pair (lower rank connects): hello, then the QP numbers, both ways.
  net::Deadline deadline = net::deadlineIn(m.opt.timeoutS);
  int expect = 0;
  for (int p : peers) {
    Conn& c = *m.conns[p];
    if (p < m.rank) {
      ++expect;
      continue;
    }
    TRELLIS_ASSIGN_OR_RETURN(net::SockAddr addr, net::fromWire(all[p].listen));
    auto s = net::connectTo(addr, deadline, abort);
    if (!s)
      return s.status().withContext(formatString("rank %d: verbs: connecting to rank %d at %s",
                                                 m.rank, p, addr.toString().c_str()));
    Hello h{kHelloMagic, m.rank, {}};
    std::memcpy(h.secret, bs.secret(), sizeof h.secret);
    TRELLIS_TRY_CTX(net::sendAll(s->fd(), &h, sizeof h, deadline, abort),
                    formatString("rank %d: verbs: hello to rank %d", m.rank, p));
    c.fd = s->release();
  }
  while (expect > 0) {
    net::SockAddr from;
    auto s = net::acceptOne(listen.fd(), deadline, abort, &from);
    if (!s)
      return s.status().withContext(formatString(
          "rank %d: verbs: waiting for %d connection(s) from lower ranks", m.rank, expect));
    Hello h{};
    Status r = net::recvAll(s->fd(), &h, sizeof h, std::min(deadline, net::deadlineIn(5)), abort);
    if (!r.isOk() || h.magic != kHelloMagic ||
        !net::constantTimeEqual(h.secret, bs.secret(), sizeof h.secret) || h.from < 0 ||
        h.from >= m.rank || !m.conns[h.from] || m.conns[h.from]->fd >= 0) {
      TRELLIS_WARN(kNet, "rank %d: verbs: dropped a connection from %s without a valid hello",
                   m.rank, from.toString().c_str());
      continue;
    }
    m.conns[h.from]->fd = s->release();
    --expect;
  }
  // Every send below is small (kernel-buffered), so sending to all before receiving from any
  // cannot deadlock.
  for (int p : peers) {
    Conn& c = *m.conns[p];
    ConnWire w{};
    w.magic = kConnMagic;
    w.from = m.rank;
    w.nqps = static_cast<int32_t>(c.qps.size());
    w.recvDepth = m.opt.recvDepth;
    for (size_t q = 0; q < c.qps.size(); ++q) {
      w.qpn[q] = c.qps[q].qp->qp_num;
      w.psn[q] = c.qps[q].psn;
    }
    w.slab = reinterpret_cast<uint64_t>(c.slab);
    w.mailboxOffset = m.mailboxOffset(c);
    for (size_t i = 0; i < m.nics.size(); ++i) w.slabRkey[i] = c.slabMr[i]->rkey;
    TRELLIS_TRY_CTX(net::sendAll(c.fd, &w, sizeof w, deadline, abort),
                    formatString("rank %d: verbs: sending QP numbers to rank %d", m.rank, p));
  }
  for (int p : peers) {
    Conn& c = *m.conns[p];
    ConnWire w{};
    TRELLIS_TRY_CTX(net::recvAll(c.fd, &w, sizeof w, deadline, abort),
                    formatString("rank %d: verbs: receiving QP numbers from rank %d", m.rank, p));
    if (w.magic != kConnMagic || w.from != p || w.nqps != static_cast<int32_t>(c.qps.size()) ||
        w.recvDepth != m.opt.recvDepth || w.mailboxOffset != m.mailboxOffset(c))
      return invalidArgument(
          "rank %d: verbs: rank %d answered with %d QPs, receive depth %d (expected %zu QPs, depth "
          "%d): are TRELLIS_IB_* parameters equal on every rank?",
          m.rank, p, w.nqps, w.recvDepth, c.qps.size(), m.opt.recvDepth);
    c.remoteSlab = w.slab;
    std::memcpy(c.remoteSlabRkey, w.slabRkey, sizeof c.remoteSlabRkey);
    for (size_t q = 0; q < c.qps.size(); ++q) {
      Qp& qp = c.qps[q];
      const Nic& n = m.nics[qp.nic];
      const PortInfo& rp = c.remotePorts[qp.remoteNic];
      ibv_qp_attr a{};
      a.qp_state = IBV_QPS_RTR;
      a.path_mtu = static_cast<ibv_mtu>(std::min(n.info.mtu, rp.mtu));
      a.dest_qp_num = w.qpn[q];
      a.rq_psn = w.psn[q];
      a.max_dest_rd_atomic = 1;
      a.min_rnr_timer = 12;
      a.ah_attr.port_num = static_cast<uint8_t>(n.info.port);
      a.ah_attr.sl = static_cast<uint8_t>(m.opt.serviceLevel);
      if (n.info.infiniband && rp.lid != 0) {
        a.ah_attr.dlid = rp.lid;
      } else {
        a.ah_attr.is_global = 1;
        std::memcpy(a.ah_attr.grh.dgid.raw, rp.gid, 16);
        a.ah_attr.grh.sgid_index = static_cast<uint8_t>(n.info.gidIndex);
        a.ah_attr.grh.hop_limit = 255;
        a.ah_attr.grh.traffic_class = static_cast<uint8_t>(m.opt.trafficClass);
      }
      TRELLIS_TRY(transition(qp.qp, a,
                             IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                                 IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
                             "RTR", m.rank, p));
      ibv_qp_attr r{};
      r.qp_state = IBV_QPS_RTS;
      r.timeout = static_cast<uint8_t>(m.opt.ibTimeout);
      r.retry_cnt = static_cast<uint8_t>(m.opt.retryCount);
      r.rnr_retry = 6;  // finite: with credits a receiver-not-ready is a bug, and must surface
      r.sq_psn = qp.psn;
      r.max_rd_atomic = 1;
      TRELLIS_TRY(transition(qp.qp, r,
                             IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                                 IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC,
                             "RTS", m.rank, p));
    }
    std::string pairs;
    for (size_t i = 0; i < m.nics.size() || i < c.remotePorts.size(); ++i) {
      if (i >= c.qps.size()) break;
      pairs += formatString("%s%s:%d<->%s:%d", pairs.empty() ? "" : ",",
                            m.nics[c.qps[i].nic].info.dev.c_str(), m.nics[c.qps[i].nic].info.port,
                            c.remotePorts[c.qps[i].remoteNic].dev.c_str(),
                            c.remotePorts[c.qps[i].remoteNic].port);
    }
    c.desc = formatString("verbs %s (%zu QPs)", pairs.c_str(), c.qps.size());
  }
  // Nobody sends before its peer's QPs are ready to receive.
  for (int p : peers) {
    uint8_t ready = 1;
    TRELLIS_TRY_CTX(net::sendAll(m.conns[p]->fd, &ready, 1, deadline, abort),
                    formatString("rank %d: verbs: ready to rank %d", m.rank, p));
  }
  for (int p : peers) {
    uint8_t ready = 0;
    TRELLIS_TRY_CTX(net::recvAll(m.conns[p]->fd, &ready, 1, deadline, abort),
                    formatString("rank %d: verbs: waiting for rank %d to be ready", m.rank, p));
  }
  TRELLIS_INFO(kNet,
               "rank %d: verbs transport up: %zu peer(s), %zu NIC(s), eager <= %zu bytes, %d "
               "receives per QP",
               m.rank, peers.size(), m.nics.size(), m.opt.eagerBytes, m.opt.recvDepth);
  return std::unique_ptr<VerbsTransport>(new VerbsTransport(std::move(impl)));
}

VerbsTransport::VerbsTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VerbsTransport::~VerbsTransport() = default;

bool VerbsTransport::reaches(int peer) const {
  return peer >= 0 && peer < impl_->nranks && impl_->conns[peer] != nullptr;
}

std::string VerbsTransport::describePeer(int peer) const {
  if (!reaches(peer)) return "verbs (not connected)";
  return impl_->conns[peer]->desc;
}

std::string VerbsTransport::devices() const {
  std::string s;
  for (const Nic& n : impl_->nics)
    s += (s.empty() ? "" : ",") + n.info.dev + ":" + std::to_string(n.info.port);
  return s;
}

int VerbsTransport::queuePairs(int peer) const {
  return reaches(peer) ? static_cast<int>(impl_->conns[peer]->qps.size()) : 0;
}

VerbsTransport::CacheStats VerbsTransport::cacheStats() const {
  CacheStats s;
  for (const Nic& n : impl_->nics) {
    const RegCache::Stats& c = n.cache->stats();
    s.hits += c.hits;
    s.misses += c.misses;
    s.evictions += c.evictions;
    s.entries += c.entries;
    s.registrations += c.registrations;
    s.registeredBytes += c.registeredBytes;
    s.pinnedHits += c.pinnedHits;
    s.pinned += c.pinned;
  }
  if (impl_->gdr) {
    const GdrContext::Stats g = impl_->gdr->stats();
    s.gdrDmabuf = g.dmabuf;
    s.gdrPeerMemory = g.peerMemory;
    s.gdrRefused = g.refused;
  }
  return s;
}

Result<std::unique_ptr<VerbsTransport>> connectVerbsPeers(
    Bootstrap& bs, bool force, std::vector<int>* peers, double timeoutS,
    const std::atomic<bool>* abort, const std::vector<std::string>& railNics) {
  TRELLIS_ASSIGN_OR_RETURN(VerbsOptions opt, verbsOptionsFromParams());
  opt.timeoutS = timeoutS;
  opt.railNics = railNics;
  TRELLIS_ASSIGN_OR_RETURN(std::unique_ptr<VerbsTransport> t,
                           VerbsTransport::create(bs, *peers, opt, abort));
  std::vector<int> rest;
  for (int p : *peers)
    if (!t->reaches(p)) rest.push_back(p);
  if (force && !rest.empty()) {
    std::string list;
    for (int p : rest) list += (list.empty() ? "" : ", ") + std::to_string(p);
    return invalidArgument(
        "rank %d: TRELLIS_TRANSPORT=verbs but rank(s) %s cannot be reached over verbs (%s)",
        bs.rank(), list.c_str(),
        t->devices().empty() ? "this rank has no usable RDMA device"
                             : "they have no usable RDMA device of the same link layer");
  }
  *peers = rest;
  return t;
}

}  // namespace trellis::transport
