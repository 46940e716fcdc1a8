#include "api/comm.h"

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "algos/kernels/reduce.h"
#include "api/call_check.h"
#include "core/log.h"
#include "core/params.h"
#include "transport/shm/shm_transport.h"
#include "transport/tcp/tcp_transport.h"
#include "transport/ucx/ucx_transport.h"
#include "transport/verbs/verbs_transport.h"
#include "tuner/calibrate.h"
#include "tuner/shape_topo.h"

using namespace trellis;  // NOLINT: this file implements the global-namespace trellisComm
using trellis::transport::Request;

namespace trellis {

static Param<double> kTimeoutS("TRELLIS_TIMEOUT_S", 600,
                               "seconds a collective may wait for a peer before failing with timeout");
static Param<double> kBootstrapTimeoutS("TRELLIS_BOOTSTRAP_TIMEOUT_S", 120,
                                        "seconds communicator creation may wait for all ranks to join");
static Param<int64_t> kChunk("TRELLIS_CHUNK_BYTES", 256 * 1024,
                             "pipeline chunk of the ring, tree and reduce steps");
static Param<int64_t> kSpin("TRELLIS_SPIN_ITERS", 2000,
                            "polls of the transports before a waiting rank blocks in the kernel (used only "
                            "when this host has at least one core per local rank)");
static Param<int64_t> kYield("TRELLIS_YIELD_ITERS", 2000,
                             "when ranks outnumber cores: polls separated by sched_yield before a waiting rank "
                             "sleeps in the kernel");
static Param<std::string> kTransport("TRELLIS_TRANSPORT", "auto",
                                     "auto (shm between ranks of one host; verbs to other hosts when both ends "
                                     "have an RDMA device, else tcp), tcp (everything over TCP), verbs "
                                     "(every peer over RDMA verbs) or ucx (everything over UCX; "
                                     "TRELLIS_UCX_TLS / UCX_TLS pick UCX's wires)");
static Param<bool> kShmDisable("TRELLIS_SHM_DISABLE", false, "never use shared memory (same as TRELLIS_TRANSPORT=tcp)");
static Param<bool> kCalibrate("TRELLIS_TUNER_CALIBRATE", false,
                               "measure latency and bandwidth of each path kind at communicator creation (~10-50 "
                               "ms) and give the tuner's cost model those instead of its table");
static Param<std::string> kTunerConstants("TRELLIS_TUNER_CONSTANTS", "",
                                          "replace cost-model constants: name=value,... in SI units (trellis-topo tune "
                                          "--constants lists them), e.g. tcp.net_bps=5e7");
static Param<std::string> kHostId("TRELLIS_HOST_ID", "",
                                  "override of this rank's host identity (default: boot id + host name); ranks "
                                  "with equal ids are on one host");

static Param<bool> kTopoAware("TRELLIS_TOPO_AWARE", true,
                              "use the topology: the cluster view (node, rail, leaf of every rank) for algorithm "
                              "choice and each rank's own NICs for TCP; 0 is the topology-blind baseline (flat "
                              "algorithms, TCP on the interface TRELLIS_SOCKET_IFNAME selects)");

namespace testing {
thread_local std::string tlsHostId;
thread_local std::string tlsTopoFile;
void setThreadHostId(const std::string& id) { tlsHostId = id; }
void setThreadTopoFile(const std::string& path) { tlsTopoFile = path; }
}  // namespace testing

// Boot id + host name: equal for processes of one machine (and its containers sharing the kernel
// boot), different across machines, whatever their IP addresses.
static uint64_t hostIdentity() {
  std::string id = testing::tlsHostId.empty() ? kHostId.get() : testing::tlsHostId;
  if (id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    std::string boot;
    if (FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r")) {
      char b[64] = {};
      if (std::fgets(b, sizeof b, f)) boot = b;
      std::fclose(f);
    }
    id = boot + "|" + host;
  }
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : id) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The CPUs this process may run on (its affinity mask; every online CPU when that cannot be read).
static cpu_set_t usableCpuSet() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return set;
  CPU_ZERO(&set);
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  for (long c = 0; c < n && c < CPU_SETSIZE; ++c) CPU_SET(c, &set);
  return set;
}

Result<CommOptions> commOptions(const trellisConfig_t* config) {
  CommOptions o;
  o.timeoutS = kTimeoutS.get();
  o.bootstrapTimeoutS = kBootstrapTimeoutS.get();
  if (o.timeoutS <= 0) return invalidArgument("TRELLIS_TIMEOUT_S=%g must be positive", o.timeoutS);
  if (o.bootstrapTimeoutS <= 0)
    return invalidArgument("TRELLIS_BOOTSTRAP_TIMEOUT_S=%g must be positive", o.bootstrapTimeoutS);
  if (config == nullptr) return o;
  if (config->magic != TRELLIS_CONFIG_MAGIC || config->size < offsetof(trellisConfig_t, reservedInt))
    return invalidArgument("trellisConfig_t is not initialised (magic 0x%x, size %zu): use TRELLIS_CONFIG_INITIALIZER",
                           config->magic, config->size);
  if (config->version < 1 || config->version > TRELLIS_CONFIG_VERSION)
    return invalidArgument("trellisConfig_t version %u is not supported (1..%d)", config->version,
                           TRELLIS_CONFIG_VERSION);
  if (config->blocking == 0)
    return invalidArgument("trellisConfig_t.blocking=0 (non-blocking init) is not supported yet");
  if (config->timeoutSeconds > 0) o.timeoutS = o.bootstrapTimeoutS = config->timeoutSeconds;
  else if (config->timeoutSeconds != -1 && config->timeoutSeconds != 0)
    return invalidArgument("trellisConfig_t.timeoutSeconds=%d must be positive or -1", config->timeoutSeconds);
  if (config->numSockets > 16) return invalidArgument("trellisConfig_t.numSockets=%d exceeds 16", config->numSockets);
  o.socketsPerPeer = config->numSockets;
  if (config->commName != nullptr) o.name = config->commName;
  return o;
}

namespace {
std::mutex& liveMu() {
  static std::mutex* m = new std::mutex();
  return *m;
}
std::set<const trellisComm*>& live() {
  static auto* s = new std::set<const trellisComm*>();
  return *s;
}

// A growable buffer backed by anonymous memory with transparent huge pages requested, so large
// scratch is faulted in 2 MiB at a time and reused across calls.
struct ScratchBuf {
  void* p = nullptr;
  size_t cap = 0;
  ~ScratchBuf() {
    if (p != nullptr) munmap(p, cap);
  }
  void* get(size_t bytes) {
    if (bytes <= cap && p != nullptr) return p;
    constexpr size_t kHuge = 2u << 20;
    size_t want = std::max(bytes, size_t{4096});
    want = want >= kHuge ? (want + kHuge - 1) / kHuge * kHuge : (want + 4095) / 4096 * 4096;
    void* q = mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) {
      TRELLIS_WARN(kColl, "cannot map %zu bytes of scratch memory: out of memory", want);
      std::abort();
    }
    if (want >= kHuge) madvise(q, want, MADV_HUGEPAGE);
    if (p != nullptr) munmap(p, cap);
    p = q;
    cap = want;
    return p;
  }
};
}  // namespace

// Bumped (under liveMu) whenever a communicator leaves the live set: a thread's cached answer for
// the last communicator it checked stays valid while the generation is unchanged.
static std::atomic<uint64_t> liveGeneration{0};

void registerComm(trellisComm* c) {
  std::lock_guard<std::mutex> l(liveMu());
  live().insert(c);
}
void unregisterComm(trellisComm* c) {
  std::lock_guard<std::mutex> l(liveMu());
  live().erase(c);
  liveGeneration.fetch_add(1, std::memory_order_release);
}
bool isLiveComm(const trellisComm* c) {
  // Every call checks its communicator: the thread's last answer avoids the lock and the lookup.
  thread_local const trellisComm* lastLive = nullptr;
  thread_local uint64_t lastGeneration = 0;
  if (c != nullptr && c == lastLive && liveGeneration.load(std::memory_order_acquire) == lastGeneration) return true;
  std::lock_guard<std::mutex> l(liveMu());
  if (live().count(c) == 0) return false;
  lastLive = c;
  lastGeneration = liveGeneration.load(std::memory_order_relaxed);
  return true;
}
void setLastErrorIfLive(trellisComm* c, const std::string& msg) {
  std::lock_guard<std::mutex> l(liveMu());
  if (live().count(c) != 0) c->setLastError(msg);
}

}  // namespace trellis

// The algorithms' view of the communicator.
class trellisComm::CommExec final : public algos::Exec {
 public:
  CommExec(trellisComm& c, bool oversubscribed)
      : c_(c), chunk_(static_cast<size_t>(std::max<int64_t>(kChunk.get(), 4096))),
        spin_(oversubscribed ? 0 : std::max<int64_t>(kSpin.get(), 0)),
        yield_(oversubscribed ? std::max<int64_t>(kYield.get(), 0) : 0) {
    direct_ = c.shm_ != nullptr || c.nranks_ == 1;
    for (int p = 0; p < c.nranks_ && direct_ && c.shm_ != nullptr; ++p)
      if (p != c.rank_ && !c.shm_->canRead(p)) direct_ = false;
  }
  int rank() const override { return c_.rank_; }
  int nranks() const override { return c_.nranks_; }
  size_t chunkBytes() const override { return callChunk_ ? callChunk_ : chunk_; }
  size_t defaultChunk() const { return chunk_; }
  /// The tuner's chunk for the next operation (0: the default).
  void setCallChunk(size_t bytes) { callChunk_ = bytes; }
  bool canReadAllPeers() const override { return direct_; }
  const topo::ClusterView* cluster() const override { return c_.topoAware_ ? c_.cluster_.get() : nullptr; }
  Status readPeer(int peer, uint64_t remote, void* local, size_t bytes) override {
    if (peer == c_.rank_) {
      std::memcpy(local, reinterpret_cast<const void*>(remote), bytes);
      return Status::ok();
    }
    return c_.shm_->read(peer, remote, local, bytes);
  }
  Status writePeer(int peer, uint64_t remote, const void* local, size_t bytes) override {
    if (peer == c_.rank_) {
      std::memcpy(reinterpret_cast<void*>(remote), local, bytes);
      return Status::ok();
    }
    return c_.shm_->write(peer, remote, local, bytes);
  }
  void* scratch(int slot, size_t bytes) override {
    ScratchBuf& b = scratch_[slot & 7];
    void* old = b.p;
    size_t oldCap = b.cap;
    void* p = b.get(bytes);
    if (p != old) {
      // The communicator owns its scratch memory and says when it goes, so transports that
      // register memory (RDMA) keep its registration across calls (as for trellisCommRegister)
      // instead of registering it again in every call.
      auto& tokens = scratchRegs_[slot & 7];
      for (auto& [t, token] : tokens) t->deregisterMemory(token);
      tokens.clear();
      if (old != nullptr)  // the old mapping is gone: forget registrations of it
        for (auto& t : c_.transports_) t->memoryFreed(old, oldCap);
      for (auto& t : c_.transports_) {
        Result<uint64_t> token = t->registerMemory(p, b.cap);
        if (!token)  // e.g. the memlock limit: the transport registers it per call instead
          TRELLIS_DEBUG(kColl, "rank %d: scratch memory (%zu bytes) stays unregistered on %s: %s", c_.rank_, b.cap,
                        t->name(), token.status().message().c_str());
        else if (token.value() != 0)
          tokens.emplace_back(t.get(), token.value());
      }
    }
    return p;
  }
  ~CommExec() override {
    for (auto& tokens : scratchRegs_)
      for (auto& [t, token] : tokens) t->deregisterMemory(token);
  }

  Status isend(int peer, const void* data, size_t bytes, Request* req) override {
    if (peer == c_.rank_) return selfPost(true, const_cast<void*>(data), bytes, req);
    return c_.peerTransport_[peer]->postSend(peer, data, bytes, req);
  }
  Status irecv(int peer, void* data, size_t bytes, Request* req) override {
    if (peer == c_.rank_) return selfPost(false, data, bytes, req);
    return c_.peerTransport_[peer]->postRecv(peer, data, bytes, req);
  }

  Status waitAll(Request* const* reqs, size_t n) override {
    size_t next = 0;  // requests before `next` are known to be done
    auto deadline = net::deadlineIn(c_.options_.timeoutS);
    int64_t idle = 0;
    for (;;) {
      while (next < n && reqs[next]->state == transport::ReqState::kDone) ++next;
      if (next == n) return Status::ok();
      if (c_.aborted_.load(std::memory_order_relaxed))
        return remoteError("rank %d: communicator aborted while waiting for rank %d", c_.rank_, reqs[next]->peer);
      bool did = false;
      const bool block = idle >= spin_ + yield_;
      // Block (briefly) only in the transport that carries the request we wait for; poll the others.
      transport::Transport* waitOn = reqs[next]->peer == c_.rank_ ? nullptr : c_.peerTransport_[reqs[next]->peer];
      for (auto& t : c_.transports_) {
        int ms = !block || t.get() != waitOn ? 0 : c_.transports_.size() == 1 ? 100 : 1;
        TRELLIS_TRY(t->progress(ms, &did));
      }
      if (did) {
        idle = 0;
        continue;
      }
      ++idle;
      if (idle > spin_ && !block) sched_yield();  // let the rank we wait for run on our core
      if ((block || (idle & 1023) == 0) && net::Clock::now() >= deadline) {
        const Request& r = *reqs[next];
        std::string where = r.peer == c_.rank_ ? std::string("self") : c_.peerTransport_[r.peer]->describePeer(r.peer);
        return timeoutError("rank %d: %s rank %d timed out after %g s (%s); %zu of %zu bytes still outstanding",
                            c_.rank_, r.isSend ? "send to" : "receive from", r.peer, c_.options_.timeoutS,
                            where.c_str(), r.bytes - r.done, r.bytes);
      }
    }
  }

  void cancelAll() {
    selfSends_.clear();
    selfRecvs_.clear();
  }

 private:
  struct SelfOp {
    void* buf;
    size_t bytes;
    Request* req;
  };
  Status selfPost(bool isSend, void* buf, size_t bytes, Request* req) {
    *req = Request{};
    req->state = transport::ReqState::kPending;
    req->isSend = isSend;
    req->peer = c_.rank_;
    req->bytes = bytes;
    (isSend ? selfSends_ : selfRecvs_).push_back({buf, bytes, req});
    while (!selfSends_.empty() && !selfRecvs_.empty()) {
      SelfOp s = selfSends_.front(), r = selfRecvs_.front();
      selfSends_.pop_front();
      selfRecvs_.pop_front();
      if (s.bytes > r.bytes)
        return invalidUsage("rank %d: send to self of %zu bytes is larger than the matching receive of %zu bytes",
                            c_.rank_, s.bytes, r.bytes);
      if (s.bytes > 0 && s.buf != r.buf) std::memmove(r.buf, s.buf, s.bytes);
      s.req->done = r.req->done = r.req->received = s.bytes;
      s.req->state = r.req->state = transport::ReqState::kDone;
    }
    return Status::ok();
  }

  trellisComm& c_;
  size_t chunk_;
  size_t callChunk_ = 0;
  int64_t spin_;
  int64_t yield_;  // polls with sched_yield between, after spinning and before sleeping
  bool direct_ = false;  // every peer's memory is readable (one host, single copy)
  ScratchBuf scratch_[8];
  std::vector<std::pair<transport::Transport*, uint64_t>> scratchRegs_[8];  // registerMemory tokens
  std::deque<SelfOp> selfSends_, selfRecvs_;
};

Result<trellisComm*> trellisComm::create(const UniqueIdData& id, int nranks, int rank, const CommOptions& options) {
  std::unique_ptr<trellisComm> c(new trellisComm());
  c->rank_ = rank;
  c->nranks_ = nranks;
  c->options_ = options;
  setLogRank(rank);
  TRELLIS_TRY(c->bootstrap_.init(id, rank, nranks, options.bootstrapTimeoutS, &c->aborted_));
  // Who shares this host (ranks with the same host identity) and what each node looks like: one
  // fixed-size digest per rank. A rank that cannot read its topology still takes part in the
  // exchange, flagged, so every rank fails at once instead of waiting for it.
  c->topoAware_ = kTopoAware.get();
  topo::LocalTopology local;
  Status topoStatus = Status::ok();
  if (c->topoAware_) {
    Result<topo::LocalTopology> lt = topo::detectLocalTopology(testing::tlsTopoFile);
    if (lt) local = std::move(lt.value());
    else topoStatus = lt.status().withContext(formatString("rank %d", rank));
  }
  // The same exchange carries the settings every rank must agree on (TRELLIS_CHECK changes what
  // goes on the wire).
  constexpr uint16_t kDigestFailed = 2, kDigestCheck = 4;
  c->check_ = callCheckEnabled();
  std::vector<topo::RankDigest> digests(nranks);
  digests[rank] = topo::toDigest(hostIdentity(), local);
  if (!topoStatus.isOk()) digests[rank].flags |= kDigestFailed;
  if (c->check_) digests[rank].flags |= kDigestCheck;
  TRELLIS_TRY_CTX(c->bootstrap_.allGather(digests.data(), sizeof(topo::RankDigest)),
                  "exchanging host identities and topology digests");
  if (!topoStatus.isOk()) return topoStatus;
  std::vector<uint64_t> hosts(nranks);
  std::vector<topo::LocalTopology> locals(nranks);
  for (int r = 0; r < nranks; ++r) {
    if (digests[r].flags & kDigestFailed)
      return invalidArgument("rank %d: rank %d could not read its topology (its own error says why)", rank, r);
    const unsigned mine = c->check_ ? 1 : 0, theirs = (digests[r].flags & kDigestCheck) ? 1 : 0;
    if (mine != theirs)
      return invalidUsage("rank %d has TRELLIS_CHECK=%u but rank %d has TRELLIS_CHECK=%u: set it alike on every rank",
                          rank, mine, r, theirs);
    TRELLIS_ASSIGN_OR_RETURN(locals[r], topo::fromDigest(digests[r], r, &hosts[r]));
  }
  locals[rank] = local;  // keeps what stays local (interface names)
  c->cluster_ = std::make_unique<topo::ClusterView>(topo::ClusterView::build(hosts, locals));
  const topo::RankPlace& me = c->cluster_->ranks[rank];
  c->localRank_ = me.localRank;
  c->localSize_ = static_cast<int>(c->cluster_->nodes[me.node].ranks.size());
  if (rank == 0)
    for (const std::string& w : c->cluster_->warnings) TRELLIS_WARN(kTopo, "cluster view: %s", w.c_str());
  if (rank == 0 && logEnabled(LogLevel::kDebug, Subsys::kTopo))
    TRELLIS_DEBUG(kTopo, "cluster view:\n%s", c->cluster_->describe().c_str());
  // The cores a host's ranks share: the union of their affinity masks. Ranks pinned one per core
  // (mpirun --bind-to core, srun --cpu-bind=cores, trellis-run) each see one CPU, yet each has a
  // core of its own; ranks pinned to the same CPU, or more ranks than the CPUs they may use
  // together, are oversubscribed: their waits yield and sleep instead of spinning.
  std::vector<cpu_set_t> masks(nranks);
  masks[rank] = usableCpuSet();
  TRELLIS_TRY_CTX(c->bootstrap_.allGather(masks.data(), sizeof(cpu_set_t)), "exchanging CPU affinity masks");
  std::vector<int32_t> cores(nranks);
  for (const topo::ClusterNode& node : c->cluster_->nodes) {
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int r : node.ranks) CPU_OR(&all, &all, &masks[r]);
    for (int r : node.ranks) cores[r] = CPU_COUNT(&all);
  }
  const bool oversubscribed = c->localSize_ > cores[rank];
  if (oversubscribed)
    TRELLIS_INFO(kInit, "rank %d: %d ranks on this host share %d cores: waiting ranks sleep instead of spinning",
                 rank, c->localSize_, cores[rank]);
  bool intraTcp = false;
  c->peerTransport_.assign(nranks, nullptr);
  const std::string mode = nranks > 1 ? kTransport.get() : "auto";
  if (mode != "auto" && mode != "tcp" && mode != "ucx" && mode != "verbs")
    return invalidArgument("TRELLIS_TRANSPORT='%s' is not auto, tcp, verbs or ucx", mode.c_str());
  if (nranks > 1 && mode == "ucx") {
    // Every peer over UCX, which picks shared memory or a network per pair itself.
    std::vector<int> peers;
    for (int p = 0; p < nranks; ++p)
      if (p != rank) peers.push_back(p);
    transport::UcxOptions uopt = transport::ucxOptionsFromParams();
    uopt.closeTimeoutS = std::min(uopt.closeTimeoutS, options.bootstrapTimeoutS);
    TRELLIS_ASSIGN_OR_RETURN(auto ucx, transport::UcxTransport::create(c->bootstrap_, peers, uopt));
    for (int p : peers) c->peerTransport_[p] = ucx.get();
    c->transports_.push_back(std::move(ucx));
  } else if (nranks > 1) {
    const bool useShm = mode == "auto" && !kShmDisable.get();
    intraTcp = !useShm;
    std::vector<int> localPeers, remote;
    for (int p = 0; p < nranks; ++p) {
      if (p == rank) continue;
      (useShm && hosts[p] == hosts[rank] ? localPeers : remote).push_back(p);
    }
    // Both set-ups are collective over the bootstrap: every rank runs both, even with no peers.
    transport::ShmOptions sopt = transport::shmOptionsFromParams();
    TRELLIS_ASSIGN_OR_RETURN(auto shm, transport::ShmTransport::create(c->bootstrap_, localPeers, sopt));
    // Verbs takes the peers it reaches out of `remote` (collective whenever some rank has remote peers).
    std::unique_ptr<transport::VerbsTransport> verbs;
    if (mode == "verbs" || (mode == "auto" && (!useShm || std::count(hosts.begin(), hosts.end(), hosts[0]) != nranks))) {
      std::vector<std::string> railNics;  // this rank's NICs in the cluster view, by device and interface name
      for (int rail : c->topoAware_ ? me.rails : std::vector<int>{})
        for (const auto* names : {&local.nics, &local.netdevs})
          if (rail >= 0 && rail < static_cast<int>(names->size()) && !(*names)[rail].empty())
            railNics.push_back((*names)[rail]);
      auto v = transport::connectVerbsPeers(c->bootstrap_, mode == "verbs", &remote, options.bootstrapTimeoutS,
                                            &c->aborted_, railNics);
      if (!v) return v.status();
      verbs = std::move(v.value());
    }
    transport::TcpOptions topt = transport::tcpOptionsFromParams();
    if (options.socketsPerPeer > 0) topt.socketsPerPeer = options.socketsPerPeer;
    topt.timeoutS = options.bootstrapTimeoutS;
    if (c->topoAware_)  // this rank's own NICs (striped when several); none usable: the bootstrap's
      for (int rail : me.rails)
        if (!local.netdevs[rail].empty()) topt.nics.push_back({local.netdevs[rail], rail});
    TRELLIS_ASSIGN_OR_RETURN(auto tcp, transport::TcpTransport::create(c->bootstrap_, remote, topt, &c->aborted_));
    for (int p : localPeers) c->peerTransport_[p] = shm.get();
    if (!localPeers.empty()) c->shm_ = shm.get();
    for (int p : remote) c->peerTransport_[p] = tcp.get();
    bool anyVerbs = false;
    for (int p = 0; verbs && p < nranks; ++p)
      if (verbs->reaches(p)) c->peerTransport_[p] = verbs.get(), anyVerbs = true;
    if (!localPeers.empty()) c->transports_.push_back(std::move(shm));
    if (anyVerbs) c->transports_.push_back(std::move(verbs));
    if (!remote.empty()) c->transports_.push_back(std::move(tcp));
  }
  c->exec_ = std::make_unique<CommExec>(*c, oversubscribed);
  TRELLIS_TRY(c->makeTuner(hosts, cores, intraTcp));
  c->progress_ = std::thread([p = c.get()] { p->progressLoop(); });
  TRELLIS_INFO(kInit, "comm %p rank %d/%d ready%s%s", static_cast<void*>(c.get()), rank, nranks,
               options.name.empty() ? "" : " name ", options.name.c_str());
  registerComm(c.get());
  return c.release();
}

// The tuner's view of this communicator: hosts as nodes, cores per host, the transports in use; the
// same on every rank (built from all-gathered facts), so every rank makes the same decisions.
Status trellisComm::makeTuner(const std::vector<uint64_t>& hosts, const std::vector<int32_t>& cores, bool intraTcp) {
  std::vector<int> coresOfRank(cores.begin(), cores.end());
  tuner::Constants constants;
  TRELLIS_TRY(tuner::applyConstantOverrides(kTunerConstants.get(), "TRELLIS_TUNER_CONSTANTS", &constants));
  const bool direct = exec_->canReadAllPeers();
  auto makeShape = [&] {
    return topoAware_ && cluster_ ? tuner::shapeFromCluster(*cluster_, coresOfRank, intraTcp, direct, constants)
                                  : tuner::shapeFromHosts(hosts, coresOfRank, intraTcp, direct, constants);
  };
  // Across nodes: the NIC rate (topology files) and the spine's oversubscription (the fabric file),
  // combined over every rank so they agree: the slowest NIC, the worst spine.
  double oversub = 0;
  const bool multiNode = std::any_of(hosts.begin(), hosts.end(), [&](uint64_t h) { return h != hosts[0]; });
  if (multiNode && topoAware_) {
    tuner::NetFacts mine = tuner::localNetFacts(testing::tlsTopoFile, constants);
    if (!mine.note.empty()) TRELLIS_DEBUG(kTuner, "rank %d: network facts: %s", rank_, mine.note.c_str());
    std::vector<double> facts(2 * static_cast<size_t>(nranks_));
    facts[2 * rank_] = mine.nicBps;
    facts[2 * rank_ + 1] = mine.spineOversub;
    TRELLIS_TRY_CTX(bootstrap_.allGather(facts.data(), 2 * sizeof(double)), "exchanging network facts for the tuner");
    double nic = 0;
    for (int r = 0; r < nranks_; ++r) {
      if (facts[2 * r] > 0) nic = nic == 0 ? facts[2 * r] : std::min(nic, facts[2 * r]);
      oversub = std::max(oversub, facts[2 * r + 1]);
    }
    if (nic > 0 && !constants.replaced(tuner::K::kTcpNetBps)) constants.set(tuner::K::kTcpNetBps, nic, "topology files");
  }
  auto finish = [&](tuner::Shape s) {
    if (oversub >= 1) s.spineOversub = oversub;
    return s;
  };
  tuner::Shape shape = finish(makeShape());
  if (kCalibrate.get() && nranks_ > 1) {
    std::string report;
    TRELLIS_ASSIGN_OR_RETURN(constants, tuner::calibrate(*exec_, shape, constants, &report));
    shape = finish(makeShape());
    size_t p = 0;
    while (p < report.size()) {
      size_t e = report.find('\n', p);
      if (e == std::string::npos) e = report.size();
      TRELLIS_INFO(kTuner, "calibration: %s", report.substr(p, e - p).c_str());
      p = e + 1;
    }
  }
  TRELLIS_INFO(kTuner, "rank %d: tuner shape %s", rank_, shape.describe().c_str());
  const bool chunkFixed = kChunk.source() != ParamSource::kDefault;
  TRELLIS_ASSIGN_OR_RETURN(tuner::Tuner t,
                           tuner::Tuner::fromParams(std::move(shape), exec_->defaultChunk(), chunkFixed, topoAware_));
  tuner_ = std::make_unique<tuner::Tuner>(std::move(t));
  return Status::ok();
}

trellisComm::~trellisComm() {
  shutdownDevice();
  unregisterComm(this);
  // Wait for an operation still running in another thread (it returns promptly after an abort).
  { std::lock_guard<std::mutex> wait(execMu_); }
  if (!userRegs_.empty())  // the transports release them with themselves
    TRELLIS_INFO(kInit, "rank %d: %zu buffer registration(s) not deregistered before the communicator was destroyed",
                 rank_, userRegs_.size());
  {
    std::lock_guard<std::mutex> l(taskMu_);
    stopping_ = true;
  }
  taskCv_.notify_all();
  if (progress_.joinable()) progress_.join();
  magic_ = 0;
}

Result<cuda::StreamExecutor*> trellisComm::deviceExecutor() {
  std::lock_guard<std::mutex> l(devMu_);
  if (!device_) {
    cuda::StreamExecutorOptions o;
    o.name = formatString("rank %d%s%s", rank_, options_.name.empty() ? "" : " of ", options_.name.c_str());
    o.timeoutS = options_.timeoutS;
    auto ex = cuda::StreamExecutor::create(o, [this](const Status& s) { failAsync(s); });
    if (!ex) return ex.status().withContext(formatString("rank %d: device buffers", rank_));
    device_ = std::move(ex.value());
    deviceStarted_.store(true, std::memory_order_release);
  }
  return device_.get();
}

Status trellisComm::waitDeviceIdle(const char* api) {
  if (!deviceStarted_.load(std::memory_order_acquire)) return Status::ok();  // never had device work
  cuda::StreamExecutor* ex = nullptr;
  {
    std::lock_guard<std::mutex> l(devMu_);
    ex = device_.get();
  }
  if (ex == nullptr) return Status::ok();
  return ex->drain(options_.timeoutS).withContext(
      formatString("%s: rank %d: waiting for earlier device-buffer operations", api, rank_));
}

void trellisComm::failAsync(const Status& s) {
  int expected = trellisSuccess;
  asyncError_.compare_exchange_strong(expected, s.isOk() ? trellisInternalError : s.toC());
  {
    std::lock_guard<std::mutex> l(errMu_);
    if (firstError_.empty()) firstError_ = s.message();
    lastError_ = s.message();
  }
  TRELLIS_WARN(kCuda, "rank %d: %s", rank_, s.message().c_str());
}

Status trellisComm::usable(const char* api) {
  if (asyncError_.load() == trellisSuccess) return Status::ok();
  std::lock_guard<std::mutex> l(errMu_);
  return Status(static_cast<Code>(asyncError_.load()),
                formatString("%s: rank %d: the communicator failed earlier (%s); destroy or abort it", api, rank_,
                             firstError_.c_str()));
}

// Device-buffer operations still queued on streams reference this communicator: wait for them (a
// failed or aborted communicator runs them quickly), or, past the timeout, abort what is running and
// leave the executor's thread to release the streams without running their operations.
void trellisComm::shutdownDevice() {
  std::unique_ptr<cuda::StreamExecutor> ex;
  {
    std::lock_guard<std::mutex> l(devMu_);
    ex = std::move(device_);
  }
  if (!ex) return;
  const double t = aborted_ ? 2.0 : options_.timeoutS;
  Status s = ex->drain(t);
  if (!s.isOk()) aborted_ = true;  // what is running returns within about a second
  s = ex->shutdown(s.isOk() ? t : 2.0);
  if (!s.isOk())
    TRELLIS_WARN(kCuda, "rank %d: destroying the communicator with device-buffer operations in flight: %s", rank_,
                 s.message().c_str());
}

void trellisComm::progressLoop() {
  setLogRank(rank_);
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> l(taskMu_);
      taskCv_.wait(l, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

void trellisComm::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> l(taskMu_);
    tasks_.push_back(std::move(task));
  }
  taskCv_.notify_one();
}

void trellisComm::abort() {
  aborted_ = true;
  int expected = trellisSuccess;
  asyncError_.compare_exchange_strong(expected, trellisRemoteError);
  setLastError(formatString("rank %d: communicator aborted by trellisCommAbort", rank_));
}

void trellisComm::setLastError(const std::string& msg) {
  std::lock_guard<std::mutex> l(errMu_);
  lastError_ = msg;
}

std::string trellisComm::lastError() {
  std::lock_guard<std::mutex> l(errMu_);
  return lastError_;
}

// A failed transfer leaves the connections mid-message: the communicator is unusable from here on.
Status trellisComm::fail(const Status& s) {
  for (auto& t : transports_) t->cancelAll();
  exec_->cancelAll();
  int expected = trellisSuccess;
  asyncError_.compare_exchange_strong(expected, s.toC());
  std::lock_guard<std::mutex> l(errMu_);
  if (firstError_.empty()) firstError_ = s.message();
  return s;
}

Status trellisComm::runCollective(const algos::CollArgs& args, const char* apiName) {
  std::lock_guard<std::mutex> lock(execMu_);
  setLogRank(rank_);
  if (asyncError_.load() != trellisSuccess)
    return Status(static_cast<Code>(asyncError_.load()),
                  formatString("%s: rank %d: the communicator failed earlier (%s); destroy or abort it", apiName,
                               rank_, firstError_.c_str()));
  if (check_) {
    bool mismatch = false;
    Status s = checkCollectiveCall(*exec_, args, collSeq_, &mismatch);
    if (!s.isOk() && !mismatch) return fail(s.withContext(formatString("%s: rank %d", apiName, rank_)));
    ++collSeq_;
    // Every rank found the same mismatch before any data moved: the connections are in step and
    // the communicator stays usable.
    if (!s.isOk()) return s.withContext(formatString("%s: rank %d", apiName, rank_));
  }
  const tuner::Decision d = tuner_->select(args);
  const algos::Algorithm* algo = d.algo;
  if (algo == nullptr) return internalError("%s: no algorithm for %s", apiName, algos::collName(args.coll));
  TRELLIS_DEBUG(kColl, "%s count %zu %s %s root %d: %s", apiName, args.count, algos::dtypeName(args.dtype),
                algos::opName(args.op), args.root, algo->name);
  exec_->setCallChunk(d.chunkBytes);
  Status s = algos::runAlgorithm(*exec_, *algo, args);
  for (auto& t : transports_) t->releaseCallerMemory();  // the caller may free its buffers now
  if (!s.isOk()) return fail(s.withContext(formatString("%s (%s, %zu elements of %s)", apiName, algo->name,
                                                        args.count, algos::dtypeName(args.dtype))));
  return Status::ok();
}

Status trellisComm::runP2p(const std::vector<P2pOp>& ops, const char* apiName) {
  std::lock_guard<std::mutex> lock(execMu_);
  setLogRank(rank_);
  if (asyncError_.load() != trellisSuccess)
    return Status(static_cast<Code>(asyncError_.load()),
                  formatString("%s: rank %d: the communicator failed earlier (%s)", apiName, rank_, firstError_.c_str()));
  std::vector<Request> reqs(ops.size());
  std::vector<Request*> ptrs(ops.size());
  // Receives first so that a peer's eager data always has a place to land.
  size_t k = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < ops.size(); ++i) {
      const P2pOp& op = ops[i];
      if (op.isSend != (pass == 1)) continue;
      Status s = op.isSend ? exec_->isend(op.peer, op.buf, op.bytes, &reqs[i]) : exec_->irecv(op.peer, op.buf, op.bytes, &reqs[i]);
      if (!s.isOk()) return fail(s.withContext(apiName));
      ptrs[k++] = &reqs[i];
    }
  }
  Status s = exec_->waitAll(ptrs.data(), k);
  for (auto& t : transports_) t->releaseCallerMemory();  // the caller may free its buffers now
  if (!s.isOk()) return fail(s.withContext(apiName));
  return Status::ok();
}

namespace {
std::atomic<uint64_t> gNextRegHandle{1};
constexpr uint64_t kRegHandleBase = 0x7e1100000000ull;  // handles print as 0x7e11000000nn
}  // namespace

Result<void*> trellisComm::registerBuffer(void* buf, size_t bytes) {
  std::lock_guard<std::mutex> lock(execMu_);
  if (asyncError_.load() != trellisSuccess)
    return Status(static_cast<Code>(asyncError_.load()),
                  formatString("rank %d: the communicator failed earlier (%s); destroy or abort it", rank_,
                               firstError_.c_str()));
  UserReg reg;
  reg.buf = buf;
  reg.bytes = bytes;
  for (auto& t : transports_) {
    Result<uint64_t> token = t->registerMemory(buf, bytes);
    if (!token) {
      for (auto& [tr, tok] : reg.tokens) tr->deregisterMemory(tok);
      return token.status();
    }
    if (token.value() != 0) reg.tokens.emplace_back(t.get(), token.value());
  }
  const uint64_t id = kRegHandleBase + gNextRegHandle.fetch_add(1);
  userRegs_.emplace(id, std::move(reg));
  TRELLIS_DEBUG(kInit, "rank %d: registered %zu bytes at %p as handle %p (%zu transport registration(s))", rank_,
                bytes, buf, reinterpret_cast<void*>(id), userRegs_[id].tokens.size());
  return reinterpret_cast<void*>(id);
}

Status trellisComm::deregisterBuffer(void* handle) {
  std::lock_guard<std::mutex> lock(execMu_);
  const uint64_t id = reinterpret_cast<uintptr_t>(handle);
  auto it = userRegs_.find(id);
  if (it == userRegs_.end()) {
    if (deregistered_.count(id) != 0)
      return invalidArgument("handle %p was deregistered already (rank %d)", handle, rank_);
    return invalidArgument("handle %p is not a registration of this communicator (rank %d, %zu live): it "
                           "was not returned by trellisCommRegister on this communicator",
                           handle, rank_, userRegs_.size());
  }
  for (auto& [t, token] : it->second.tokens) t->deregisterMemory(token);
  userRegs_.erase(it);
  deregistered_.insert(id);
  if (deregistered_.size() > 4096) deregistered_.erase(deregistered_.begin());  // bounded memory
  return Status::ok();
}

size_t trellisComm::liveRegistrations() {
  std::lock_guard<std::mutex> lock(execMu_);
  return userRegs_.size();
}

Result<trellisComm*> trellisComm::split(int color, int key, const CommOptions& options) {
  std::lock_guard<std::mutex> lock(execMu_);
  struct Entry {
    int32_t color, key, rank;
  };
  std::vector<Entry> all(nranks_);
  all[rank_] = {color, key, rank_};
  TRELLIS_TRY_CTX(bootstrap_.allGather(all.data(), sizeof(Entry)), "trellisCommSplit: exchanging colors");
  uint32_t tag = bootstrap_.nextTag();
  if (color == TRELLIS_SPLIT_NOCOLOR) return static_cast<trellisComm*>(nullptr);
  std::vector<Entry> members;
  for (const Entry& e : all)
    if (e.color == color) members.push_back(e);
  std::stable_sort(members.begin(), members.end(),
                   [](const Entry& a, const Entry& b) { return a.key != b.key ? a.key < b.key : a.rank < b.rank; });
  int newRank = 0;
  for (size_t i = 0; i < members.size(); ++i)
    if (members[i].rank == rank_) newRank = static_cast<int>(i);
  trellisUniqueId id;
  if (newRank == 0) {
    TRELLIS_ASSIGN_OR_RETURN(UniqueIdData root, startBootstrapRoot(0, options.bootstrapTimeoutS));
    root.encode(&id);
    for (size_t i = 1; i < members.size(); ++i) TRELLIS_TRY(bootstrap_.send(members[i].rank, tag, &id, sizeof id));
  } else {
    TRELLIS_TRY(bootstrap_.recv(members[0].rank, tag, &id, sizeof id));
  }
  TRELLIS_ASSIGN_OR_RETURN(UniqueIdData data, UniqueIdData::decode(id));
  return trellisComm::create(data, static_cast<int>(members.size()), newRank, options);
}
