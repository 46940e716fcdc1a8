// Running ranks in tests: as threads of this process or as forked processes. Each rank gets its
// own communicator built from one unique id.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "trellis/trellis.h"

namespace trellis::test {

enum class RankMode { kThreads, kProcesses };
const char* modeName(RankMode m);

/// Body run by every rank; returns "" on success or a description of the first failure.
using RankBody = std::function<std::string(trellisComm_t comm, int rank, int nranks)>;

/// Creates `nranks` communicators (threads or processes), runs `body` on each, destroys them and
/// returns the failures joined ("" when every rank passed). Bounded by `timeoutS`.
std::string runRanks(int nranks, RankMode mode, const RankBody& body, double timeoutS = 300);

/// Called in each rank (its thread, or its forked process) just before trellisCommInitRank, for the
/// runs that follow until reset with nullptr (tests that give ranks different settings).
void setBeforeInitHook(std::function<void(int rank)> hook);
/// Called in each rank right after trellisCommDestroy; what it returns is added to that rank's
/// failure text (leak checks).
void setAfterDestroyHook(std::function<std::string(int rank)> hook);

/// How ranks reach each other: shared memory on one host, TCP only, or two emulated hosts (the
/// first half of the ranks on one, the rest on the other: shm inside each, TCP across); or every
/// pair over the UCX transport restricted to UCX's tcp, or to its shared-memory transports; or RDMA
/// verbs between every pair (TRELLIS_TRANSPORT=verbs: needs an RDMA device, see tests/rdma).
enum class Wire { kShm, kTcp, kMixed, kUcxTcp, kUcxSm, kVerbs };
const char* wireName(Wire w);
/// As runRanks, with the transports forced as `wire` says.
std::string runRanksOver(Wire wire, int nranks, RankMode mode, const RankBody& body, double timeoutS = 300);

/// Ranks on emulated hosts: rank r runs on host hostOf[r] (shared memory inside a host, TCP
/// across) and, when topoFileOf is not empty, reads topoFileOf[r] as its node's topology (the
/// rank count is hostOf.size()).
std::string runRanksOnHosts(const std::vector<int>& hostOf, RankMode mode, const RankBody& body,
                            const std::vector<std::string>& topoFileOf = {}, double timeoutS = 300);

}  // namespace trellis::test
