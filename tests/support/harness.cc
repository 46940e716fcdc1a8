#include "harness.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "api/comm.h"
#include "core/params.h"

namespace trellis::test {

const char* modeName(RankMode m) { return m == RankMode::kThreads ? "threads" : "processes"; }

namespace {
Wire gWire = Wire::kShm;  // set by runRanksOver for the duration of one run
std::function<void(int)> gBeforeInit;
std::function<std::string(int)> gAfterDestroy;
std::vector<int> gHostOf;             // set by runRanksOnHosts
std::vector<std::string> gTopoFileOf;
}  // namespace

void setAfterDestroyHook(std::function<std::string(int rank)> hook) { gAfterDestroy = std::move(hook); }
void setBeforeInitHook(std::function<void(int rank)> hook) { gBeforeInit = std::move(hook); }

const char* wireName(Wire w) {
  switch (w) {
    case Wire::kShm: return "shm";
    case Wire::kTcp: return "tcp";
    case Wire::kMixed: return "mixed";
    case Wire::kUcxTcp: return "ucx_tcp";
    case Wire::kUcxSm: return "ucx_sm";
    case Wire::kVerbs: return "verbs";
  }
  return "?";
}

static std::string runOne(trellisUniqueId id, int nranks, int rank, const RankBody& body) {
  testing::setThreadHostId(!gHostOf.empty()        ? "host-" + std::to_string(gHostOf[rank])
                           : gWire == Wire::kMixed ? (rank < (nranks + 1) / 2 ? "host-a" : "host-b")
                                                   : "");
  testing::setThreadTopoFile(gTopoFileOf.empty() ? "" : gTopoFileOf[rank]);
  if (gBeforeInit) gBeforeInit(rank);
  trellisComm_t comm = nullptr;
  trellisResult_t r = trellisCommInitRank(&comm, nranks, id, rank);
  if (r != trellisSuccess)
    return "rank " + std::to_string(rank) + ": init failed: " + trellisGetErrorString(r) + ": " +
           trellisGetLastError(nullptr);
  std::string err = body(comm, rank, nranks);
  trellisCommDestroy(comm);
  if (gAfterDestroy) err += gAfterDestroy(rank);
  return err;
}

std::string runRanks(int nranks, RankMode mode, const RankBody& body, double timeoutS) {
  trellisUniqueId id;
  std::string failures;
  if (mode == RankMode::kThreads) {
    if (trellisGetUniqueId(&id) != trellisSuccess) return std::string("trellisGetUniqueId: ") + trellisGetLastError(nullptr);
    std::vector<std::string> errs(nranks);
    std::vector<std::thread> threads;
    for (int r = 0; r < nranks; ++r) threads.emplace_back([&, r] { errs[r] = runOne(id, nranks, r, body); });
    for (auto& t : threads) t.join();
    for (auto& e : errs)
      if (!e.empty()) failures += e + "\n";
    return failures;
  }
  // Processes: the rendezvous root lives in a child of its own, so this process has no extra thread
  // when it forks the ranks (forking while another thread holds an allocator or thread-registry
  // lock, as sanitizer runtimes do, can leave the child deadlocked).
  int idPipe[2], holdPipe[2];
  if (pipe(idPipe) != 0 || pipe(holdPipe) != 0) return "pipe failed";
  pid_t rootPid = fork();
  if (rootPid == 0) {
    close(idPipe[0]);
    close(holdPipe[1]);
    trellisUniqueId rid;
    bool ok = trellisGetUniqueId(&rid) == trellisSuccess;
    if (ok) (void)!write(idPipe[1], &rid, sizeof rid);
    close(idPipe[1]);
    char c;
    while (read(holdPipe[0], &c, 1) > 0) {
    }  // until the parent closes its end: the job is over
    _exit(ok ? 0 : 1);
  }
  close(idPipe[1]);
  close(holdPipe[0]);
  ssize_t got = read(idPipe[0], &id, sizeof id);
  close(idPipe[0]);
  auto releaseRoot = [&] {
    close(holdPipe[1]);
    int st = 0;
    waitpid(rootPid, &st, 0);
  };
  if (got != static_cast<ssize_t>(sizeof id)) {
    releaseRoot();
    return "the rendezvous root process could not create a unique id";
  }
  // Processes: each child reports its failure text through a pipe and exits 0/1.
  std::vector<pid_t> pids;
  std::vector<int> fds;
  for (int r = 0; r < nranks; ++r) {
    int p[2];
    if (pipe(p) != 0) return "pipe failed";
    pid_t pid = fork();
    if (pid == 0) {
      close(p[0]);
      std::string e = runOne(id, nranks, r, body);
      if (!e.empty()) (void)!write(p[1], e.data(), e.size());
      _exit(e.empty() ? 0 : 1);
    }
    close(p[1]);
    pids.push_back(pid);
    fds.push_back(p[0]);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeoutS);
  std::vector<std::string> outs(nranks);
  std::vector<bool> open(nranks, true);
  // A rank is reaped as soon as it exits (its pipe ends), as a launcher would: peers that watch
  // for a dead rank by its pid (UCX's shared-memory keepalive) would take a zombie for alive.
  std::vector<int> statuses(nranks, 0);
  std::vector<bool> reaped(nranks, false);
  int remaining = nranks;
  while (remaining > 0) {
    std::vector<pollfd> pf;
    std::vector<int> idx;
    for (int r = 0; r < nranks; ++r)
      if (open[r]) { pf.push_back({fds[r], POLLIN, 0}); idx.push_back(r); }
    if (std::chrono::steady_clock::now() > deadline) break;
    int rc = poll(pf.data(), pf.size(), 200);
    if (rc <= 0) continue;
    for (size_t k = 0; k < pf.size(); ++k) {
      if (!pf[k].revents) continue;
      char buf[4096];
      ssize_t n = read(pf[k].fd, buf, sizeof buf);
      if (n > 0) outs[idx[k]].append(buf, n);
      else {
        open[idx[k]] = false;
        --remaining;
        reaped[idx[k]] = waitpid(pids[idx[k]], &statuses[idx[k]], 0) == pids[idx[k]];
      }
    }
  }
  for (int r = 0; r < nranks; ++r) {
    int status = statuses[r];
    if (open[r]) {  // timed out: kill and report
      kill(pids[r], SIGKILL);
      failures += "rank " + std::to_string(r) + ": timed out after " + std::to_string(timeoutS) + " s\n";
    }
    if (!reaped[r]) waitpid(pids[r], &status, 0);
    close(fds[r]);
    if (!outs[r].empty()) failures += outs[r] + "\n";
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      failures += "rank " + std::to_string(r) + ": exited with status " + std::to_string(status) + "\n";
  }
  releaseRoot();
  return failures;
}

std::string runRanksOver(Wire wire, int nranks, RankMode mode, const RankBody& body, double timeoutS) {
  gWire = wire;
  const bool ucx = wire == Wire::kUcxTcp || wire == Wire::kUcxSm;
  Status s = findParam("TRELLIS_TRANSPORT")->setOverride(wire == Wire::kTcp     ? "tcp"
                                                        : wire == Wire::kVerbs ? "verbs"
                                                        : ucx                  ? "ucx"
                                                                               : "auto");
  if (s.isOk() && ucx) s = findParam("TRELLIS_UCX_TLS")->setOverride(wire == Wire::kUcxTcp ? "tcp" : "sm");
  if (!s.isOk()) return s.message();
  std::string r = runRanks(nranks, mode, body, timeoutS);
  gWire = Wire::kShm;
  (void)findParam("TRELLIS_TRANSPORT")->setOverride("");
  (void)findParam("TRELLIS_UCX_TLS")->setOverride("");
  return r;
}

std::string runRanksOnHosts(const std::vector<int>& hostOf, RankMode mode, const RankBody& body,
                            const std::vector<std::string>& topoFileOf, double timeoutS) {
  gHostOf = hostOf;
  gTopoFileOf = topoFileOf;
  std::string r = runRanks(static_cast<int>(hostOf.size()), mode, body, timeoutS);
  gHostOf.clear();
  gTopoFileOf.clear();
  return r;
}

}  // namespace trellis::test
