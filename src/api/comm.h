// The communicator: what a trellisComm_t points to. It owns the bootstrap, one transport per kind
// (each reaching a set of peers), the tuner, pooled scratch memory and a progress thread that runs
// work handed to it (grouped operations spanning several communicators of one thread). Host
// collectives run on the caller's thread, which drives the transports itself: no hand-off on the
// latency path.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "algos/coll.h"
#include "core/bootstrap.h"
#include "cuda/stream_exec.h"
#include "topo/cluster_view.h"
#include "transport/shm/shm_transport.h"
#include "transport/transport.h"
#include "tuner/select.h"

namespace trellis {

struct CommOptions {
  double timeoutS = 600;
  double bootstrapTimeoutS = 120;
  int socketsPerPeer = -1;
  std::string name;
};

/// Reads TRELLIS_TIMEOUT_S, TRELLIS_BOOTSTRAP_TIMEOUT_S and applies a trellisConfig_t (may be null).
Result<CommOptions> commOptions(const trellisConfig_t* config);

}  // namespace trellis

struct trellisComm {
 public:
  static constexpr uint64_t kMagic = 0x7e1115c033u;
  ~trellisComm();

  /// Joins the job and connects the transports. Collective over all ranks.
  static trellis::Result<trellisComm*> create(const trellis::UniqueIdData& id, int nranks, int rank,
                                              const trellis::CommOptions& options);

  int rank() const { return rank_; }
  int nranks() const { return nranks_; }
  int localRank() const { return localRank_; }
  int localSize() const { return localSize_; }
  /// Every rank's node, local rank, rail and leaf (built at creation from all ranks' digests).
  const trellis::topo::ClusterView& clusterView() const { return *cluster_; }
  /// The tuner (tests and tools: what this communicator would choose).
  trellis::tuner::Tuner& tuner() const { return *tuner_; }
  const std::string& name() const { return options_.name; }

  /// Runs one collective on the calling thread (blocking, host buffers).
  trellis::Status runCollective(const trellis::algos::CollArgs& args, const char* apiName);
  /// Point-to-point operations of a group, posted together (no ordering deadlock) then awaited.
  struct P2pOp {
    bool isSend;
    int peer;
    void* buf;
    size_t bytes;
  };
  trellis::Status runP2p(const std::vector<P2pOp>& ops, const char* apiName);
  trellis::Result<trellisComm*> split(int color, int key, const trellis::CommOptions& options);
  /// trellisCommRegister: every transport registers [buf, buf+bytes) now; RDMA keeps its
  /// registrations across calls until deregisterBuffer(handle). Local (not collective).
  trellis::Result<void*> registerBuffer(void* buf, size_t bytes);
  /// trellisCommDeregister: releases a handle of registerBuffer; an unknown, foreign or already
  /// released handle is an error naming it.
  trellis::Status deregisterBuffer(void* handle);
  /// Registrations not deregistered yet.
  size_t liveRegistrations();
  /// The transports in use (tests and tools; not to be driven while a call runs).
  std::vector<trellis::transport::Transport*> transports() const {
    std::vector<trellis::transport::Transport*> v;
    for (const auto& t : transports_) v.push_back(t.get());
    return v;
  }

  /// Device buffers (api/device_path.h): the executor that runs this communicator's device-buffer
  /// operations in stream order, created on first use; fails when CUDA is not usable here.
  trellis::Result<trellis::cuda::StreamExecutor*> deviceExecutor();
  /// Waits until the device-buffer operations issued so far have run, so that a host-buffer call
  /// does not overtake them (every rank must run a communicator's operations in issue order).
  trellis::Status waitDeviceIdle(const char* api);
  /// Records the failure of an operation that ran after its call returned (device buffers): the
  /// asynchronous error (trellisCommGetAsyncError), the last error, and one warning line.
  void failAsync(const trellis::Status& s);
  /// The error any new call gets once the communicator has failed; ok before.
  trellis::Status usable(const char* api);

  /// Hands `task` to the progress thread.
  void post(std::function<void()> task);
  void abort();
  bool aborted() const { return aborted_.load(); }
  trellisResult_t asyncError() const { return static_cast<trellisResult_t>(asyncError_.load()); }
  void setLastError(const std::string& msg);
  std::string lastError();
  bool valid() const { return magic_ == kMagic; }

  class CommExec;

 private:
  trellisComm() = default;
  trellis::Status fail(const trellis::Status& s);
  trellis::Status makeTuner(const std::vector<uint64_t>& hosts, const std::vector<int32_t>& cores, bool intraTcp);
  void progressLoop();
  void shutdownDevice();

  uint64_t magic_ = kMagic;
  int rank_ = -1;
  int nranks_ = 0;
  int localRank_ = 0;  // among the ranks of this host
  int localSize_ = 0;
  trellis::CommOptions options_;
  trellis::Bootstrap bootstrap_;
  std::unique_ptr<trellis::topo::ClusterView> cluster_;
  bool topoAware_ = true;  // TRELLIS_TOPO_AWARE: algorithms see cluster_ and TCP uses the rank's NICs
  std::vector<std::unique_ptr<trellis::transport::Transport>> transports_;
  std::vector<trellis::transport::Transport*> peerTransport_;  // per rank; null for self
  trellis::transport::ShmTransport* shm_ = nullptr;             // when some peers share this host
  std::unique_ptr<trellis::tuner::Tuner> tuner_;
  std::unique_ptr<CommExec> exec_;
  std::mutex execMu_;  // one operation at a time per communicator
  bool check_ = false;     // TRELLIS_CHECK: compare every collective's arguments across ranks first
  uint64_t collSeq_ = 0;  // collectives run so far (the check's sequence number)
  std::atomic<bool> aborted_{false};
  std::atomic<int> asyncError_{trellisSuccess};
  // trellisCommRegister handles (process-wide unique ids) -> what each transport keeps.
  struct UserReg {
    void* buf = nullptr;
    size_t bytes = 0;
    std::vector<std::pair<trellis::transport::Transport*, uint64_t>> tokens;
  };
  std::map<uint64_t, UserReg> userRegs_;  // guarded by execMu_
  std::set<uint64_t> deregistered_;       // recent released handles, for a precise message
  std::mutex errMu_;
  std::string lastError_;
  std::string firstError_;
  // Device-buffer operations (created on the first one).
  std::mutex devMu_;
  std::atomic<bool> deviceStarted_{false};  // device_ was created once (waitDeviceIdle's fast path)
  std::unique_ptr<trellis::cuda::StreamExecutor> device_;
  // Progress thread.
  std::thread progress_;
  std::mutex taskMu_;
  std::condition_variable taskCv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
};

namespace trellis {
namespace testing {
/// Host identity for communicators created by this thread from now on (tests emulate several
/// hosts in one process); empty restores the real one.
void setThreadHostId(const std::string& id);
/// Topology file for communicators created by this thread from now on (instead of
/// TRELLIS_TOPO_FILE; tests give emulated hosts different rail layouts); empty restores it.
void setThreadTopoFile(const std::string& path);
}  // namespace testing

/// Registry of live communicators, so a stale or foreign handle is reported instead of used.
void registerComm(trellisComm* c);
void unregisterComm(trellisComm* c);
bool isLiveComm(const trellisComm* c);
/// Records `msg` as the communicator's last error unless it has been destroyed meanwhile.
void setLastErrorIfLive(trellisComm* c, const std::string& msg);
}  // namespace trellis
