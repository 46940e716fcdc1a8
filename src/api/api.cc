// The C API: argument validation, error reporting (per-thread and per-communicator last error),
// and dispatch to the communicator (or to the current group).
#include <cstring>

#include "algos/kernels/reduce.h"
#include "api/api_internal.h"
#include "api/call_check.h"
#include "api/device_path.h"
#include "core/bootstrap_wire.h"
#include "core/log.h"
#include "core/params.h"

using namespace trellis;  // NOLINT

namespace trellis {

static Param<double> kRootTimeoutS("TRELLIS_BOOTSTRAP_ROOT_TIMEOUT_S", 3600,
                                   "seconds the rendezvous root started by trellisGetUniqueId waits for the job");

namespace {
thread_local std::string tlsLastError;
}

trellisResult_t report(trellisComm* comm, const Status& s) {
  if (s.isOk()) return trellisSuccess;
  tlsLastError = s.message();
  if (comm != nullptr) setLastErrorIfLive(comm, s.message());
  TRELLIS_WARN(kInit, "%s", s.toString().c_str());
  return s.toC();
}

Status checkComm(const trellisComm* comm, const char* api) {
  if (comm == nullptr) return invalidArgument("%s: comm is NULL", api);
  if (!isLiveComm(comm))
    return invalidArgument("%s: comm %p is not a live Trellis communicator (destroyed, or not created by "
                           "trellisCommInitRank)", api, static_cast<const void*>(comm));
  return Status::ok();
}

static Status checkArgs(trellisComm* comm, const algos::CollArgs& a, const char* api) {
  TRELLIS_TRY(checkComm(comm, api));
  const int dt = rawEnum(a.dtype), op = rawEnum(a.op);
  if (dt < 0 || dt >= trellisNumTypes)
    return invalidArgument("%s: datatype %d is not a trellisDataType_t (0..%d)", api, dt, trellisNumTypes - 1);
  if (op < 0 || op >= trellisNumOps)
    return invalidArgument("%s: op %d is not a trellisRedOp_t (0..%d)", api, op, trellisNumOps - 1);
  const int n = comm->nranks(), r = comm->rank();
  bool rooted = a.coll == algos::Coll::kBroadcast || a.coll == algos::Coll::kReduce;
  if (rooted && (a.root < 0 || a.root >= n))
    return invalidArgument("%s: root %d out of range [0, %d)", api, a.root, n);
  if (a.count > (SIZE_MAX / 16) / static_cast<size_t>(n))
    return invalidArgument("%s: count %zu is too large", api, a.count);
  bool needSend = a.count > 0 && !(a.coll == algos::Coll::kBroadcast && r != a.root);
  bool needRecv = a.count > 0 && !(a.coll == algos::Coll::kReduce && r != a.root);
  if (a.coll == algos::Coll::kAlltoAllv) {
    if (!a.sendcounts || !a.sdispls || !a.recvcounts || !a.rdispls)
      return invalidArgument("%s: sendcounts, sdispls, recvcounts and rdispls must not be NULL", api);
    size_t s = 0, rc = 0;
    for (int p = 0; p < n; ++p) {
      s += a.sendcounts[p];
      rc += a.recvcounts[p];
    }
    needSend = s > 0;
    needRecv = rc > 0;
  }
  if (needSend && a.send == nullptr) return invalidArgument("%s: sendbuff is NULL with count %zu", api, a.count);
  if (needRecv && a.recv == nullptr) return invalidArgument("%s: recvbuff is NULL with count %zu", api, a.count);
  if ((a.coll == algos::Coll::kAlltoAll || a.coll == algos::Coll::kAlltoAllv) && a.count > 0 && a.send == a.recv &&
      n > 1)
    return invalidArgument("%s: in-place operation (sendbuff == recvbuff) is not supported", api);
  return Status::ok();
}

static trellisResult_t collective(trellisComm* comm, const algos::CollArgs& a, const char* api, void* stream) {
  Status s = checkArgs(comm, a, api);
  if (!s.isOk()) return groupError(report(comm, s));
  // No elements: nothing to move and nothing to wait for (as NCCL and MPI do). Every rank of a
  // correct program passes the same count, so all of them skip alike; with TRELLIS_CHECK the call
  // still runs, so a rank that passed 0 where the others did not is reported, not left waiting.
  // A communicator that failed earlier still says so.
  if (a.count == 0 && a.coll != algos::Coll::kAlltoAllv && !callCheckEnabled())
    return groupError(report(comm, comm->usable(api)));
  // Device or host buffers: by pointer attributes (api/device_path.h), not by the stream.
  Result<Placement> where = placeCollective(comm, a, stream, api);
  if (!where) return groupError(report(comm, where.status()));
  const bool device = where.value() == Placement::kDevice;
  if (groupActive()) return groupEnqueueCollective(comm, a, api, device, stream);
  if (device) return report(comm, enqueueDevice(comm, {deviceCollective(a, comm->nranks(), api)}, stream));
  s = comm->waitDeviceIdle(api);
  if (!s.isOk()) return report(comm, s);
  return report(comm, comm->runCollective(a, api));
}

static trellisResult_t p2p(trellisComm* comm, bool isSend, const void* buf, size_t count, trellisDataType_t dt,
                           int peer, void* stream, const char* api) {
  Status s = checkComm(comm, api);
  if (s.isOk() && (rawEnum(dt) < 0 || rawEnum(dt) >= trellisNumTypes))
    s = invalidArgument("%s: datatype %d is not a trellisDataType_t", api, rawEnum(dt));
  if (s.isOk() && (peer < 0 || peer >= comm->nranks()))
    s = invalidArgument("%s: peer %d out of range [0, %d)", api, peer, comm->nranks());
  if (s.isOk() && count > 0 && buf == nullptr) s = invalidArgument("%s: buffer is NULL with count %zu", api, count);
  if (s.isOk() && peer == comm->rank() && !groupActive())
    s = invalidUsage("%s: a send or receive to self (rank %d) outside trellisGroupStart/End can never be matched",
                     api, peer);
  if (!s.isOk()) return groupError(report(comm, s));
  trellisComm::P2pOp op{isSend, peer, const_cast<void*>(buf), count * algos::dtypeSize(dt)};
  Result<Placement> where = placeP2p(comm, buf, op.bytes, stream, api);
  if (!where) return groupError(report(comm, where.status()));
  const bool device = where.value() == Placement::kDevice;
  if (groupActive()) return groupEnqueueP2p(comm, op, api, device, stream);
  if (device) return report(comm, enqueueDevice(comm, {deviceP2p(op, api)}, stream));
  s = comm->waitDeviceIdle(api);
  if (!s.isOk()) return report(comm, s);
  return report(comm, comm->runP2p({op}, api));
}

}  // namespace trellis

extern "C" {

TRELLIS_EXPORT trellisResult_t trellisGetVersion(int* version) {
  if (version == nullptr) return report(nullptr, invalidArgument("trellisGetVersion: version is NULL"));
  *version = TRELLIS_VERSION_CODE;
  return trellisSuccess;
}

TRELLIS_EXPORT const char* trellisGetErrorString(trellisResult_t result) {
  if (rawEnum(result) < 0 || rawEnum(result) >= trellisNumResults) return "unknown result code";
  return codeName(static_cast<Code>(result));
}

TRELLIS_EXPORT const char* trellisGetLastError(trellisComm_t comm) {
  if (comm != nullptr && isLiveComm(comm)) {
    thread_local std::string copy;
    copy = comm->lastError();
    return copy.c_str();
  }
  return tlsLastError.c_str();
}

TRELLIS_EXPORT trellisResult_t trellisGetUniqueId(trellisUniqueId* uniqueId) {
  if (uniqueId == nullptr) return report(nullptr, invalidArgument("trellisGetUniqueId: uniqueId is NULL"));
  auto id = startBootstrapRoot(0, kRootTimeoutS.get());
  if (!id) return report(nullptr, id.status().withContext("trellisGetUniqueId"));
  id->encode(uniqueId);
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisCommInitRankConfig(trellisComm_t* comm, int nranks, trellisUniqueId commId,
                                                         int rank, trellisConfig_t* config) {
  const char* api = "trellisCommInitRank";
  if (comm == nullptr) return report(nullptr, invalidArgument("%s: comm is NULL", api));
  *comm = nullptr;
  if (nranks < 1 || nranks > bootwire::kMaxRanks)
    return report(nullptr, invalidArgument("%s: nranks %d must be in [1, %d]", api, nranks, bootwire::kMaxRanks));
  if (rank < 0 || rank >= nranks)
    return report(nullptr, invalidArgument("%s: rank %d out of range [0, %d)", api, rank, nranks));
  auto opts = commOptions(config);
  if (!opts) return report(nullptr, opts.status().withContext(api));
  auto id = UniqueIdData::decode(commId);
  if (!id) return report(nullptr, id.status().withContext(api));
  auto c = trellisComm::create(id.value(), nranks, rank, opts.value());
  if (!c) return report(nullptr, c.status().withContext(api));
  *comm = c.value();
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisCommInitRank(trellisComm_t* comm, int nranks, trellisUniqueId commId, int rank) {
  return trellisCommInitRankConfig(comm, nranks, commId, rank, nullptr);
}

TRELLIS_EXPORT trellisResult_t trellisCommSplit(trellisComm_t comm, int color, int key, trellisComm_t* newcomm,
                                                trellisConfig_t* config) {
  Status s = checkComm(comm, "trellisCommSplit");
  if (s.isOk() && newcomm == nullptr) s = invalidArgument("trellisCommSplit: newcomm is NULL");
  if (s.isOk() && color < 0 && color != TRELLIS_SPLIT_NOCOLOR)
    s = invalidArgument("trellisCommSplit: color %d must be >= 0 or TRELLIS_SPLIT_NOCOLOR", color);
  if (!s.isOk()) return report(comm, s);
  *newcomm = nullptr;
  auto opts = commOptions(config);
  if (!opts) return report(comm, opts.status().withContext("trellisCommSplit"));
  auto c = comm->split(color, key, opts.value());
  if (!c) return report(comm, c.status().withContext("trellisCommSplit"));
  *newcomm = c.value();
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisCommDestroy(trellisComm_t comm) {
  if (comm == nullptr) return trellisSuccess;
  TRELLIS_TRY_C(checkComm(comm, "trellisCommDestroy"));
  delete comm;
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisCommAbort(trellisComm_t comm) {
  if (comm == nullptr) return trellisSuccess;
  TRELLIS_TRY_C(checkComm(comm, "trellisCommAbort"));
  comm->abort();
  delete comm;
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisCommGetAsyncError(trellisComm_t comm, trellisResult_t* asyncError) {
  TRELLIS_TRY_C(checkComm(comm, "trellisCommGetAsyncError"));
  if (asyncError == nullptr) return report(comm, invalidArgument("trellisCommGetAsyncError: asyncError is NULL"));
  *asyncError = comm->asyncError();
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisCommCount(const trellisComm_t comm, int* count) {
  TRELLIS_TRY_C(checkComm(comm, "trellisCommCount"));
  if (count == nullptr) return report(comm, invalidArgument("trellisCommCount: count is NULL"));
  *count = comm->nranks();
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisCommUserRank(const trellisComm_t comm, int* rank) {
  TRELLIS_TRY_C(checkComm(comm, "trellisCommUserRank"));
  if (rank == nullptr) return report(comm, invalidArgument("trellisCommUserRank: rank is NULL"));
  *rank = comm->rank();
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisCommRegister(const trellisComm_t comm, void* buff, size_t size, void** handle) {
  const char* api = "trellisCommRegister";
  TRELLIS_TRY_C(checkComm(comm, api));
  Status s = Status::ok();
  if (handle == nullptr) s = invalidArgument("%s: handle is NULL", api);
  else if (buff == nullptr) s = invalidArgument("%s: buff is NULL (size %zu)", api, size);
  else if (size == 0) s = invalidArgument("%s: size is 0 (buff %p): nothing to register", api, buff);
  else if (reinterpret_cast<uintptr_t>(buff) > UINTPTR_MAX - size)
    s = invalidArgument("%s: buff %p + size %zu runs past the end of the address space", api, buff, size);
  if (!s.isOk()) return report(comm, s);
  *handle = nullptr;
  Result<void*> h = comm->registerBuffer(buff, size);
  if (!h) return report(comm, h.status().withContext(api));
  *handle = h.value();
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisCommDeregister(const trellisComm_t comm, void* handle) {
  const char* api = "trellisCommDeregister";
  TRELLIS_TRY_C(checkComm(comm, api));
  if (handle == nullptr) return report(comm, invalidArgument("%s: handle is NULL", api));
  return report(comm, comm->deregisterBuffer(handle).withContext(api));
}

TRELLIS_EXPORT trellisResult_t trellisAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                                                trellisDataType_t datatype, trellisRedOp_t op, trellisComm_t comm,
                                                void* stream) {
  algos::CollArgs a;
  a.coll = algos::Coll::kAllReduce;
  a.send = sendbuff;
  a.recv = recvbuff;
  a.count = count;
  a.dtype = datatype;
  a.op = op;
  return collective(comm, a, "trellisAllReduce", stream);
}

TRELLIS_EXPORT trellisResult_t trellisBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                                                trellisDataType_t datatype, int root, trellisComm_t comm,
                                                void* stream) {
  algos::CollArgs a;
  a.coll = algos::Coll::kBroadcast;
  a.send = sendbuff;
  a.recv = recvbuff;
  a.count = count;
  a.dtype = datatype;
  a.root = root;
  return collective(comm, a, "trellisBroadcast", stream);
}

TRELLIS_EXPORT trellisResult_t trellisReduce(const void* sendbuff, void* recvbuff, size_t count,
                                             trellisDataType_t datatype, trellisRedOp_t op, int root,
                                             trellisComm_t comm, void* stream) {
  algos::CollArgs a;
  a.coll = algos::Coll::kReduce;
  a.send = sendbuff;
  a.recv = recvbuff;
  a.count = count;
  a.dtype = datatype;
  a.op = op;
  a.root = root;
  return collective(comm, a, "trellisReduce", stream);
}

TRELLIS_EXPORT trellisResult_t trellisAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                                trellisDataType_t datatype, trellisComm_t comm, void* stream) {
  algos::CollArgs a;
  a.coll = algos::Coll::kAllGather;
  a.send = sendbuff;
  a.recv = recvbuff;
  a.count = sendcount;
  a.dtype = datatype;
  return collective(comm, a, "trellisAllGather", stream);
}

TRELLIS_EXPORT trellisResult_t trellisReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                                    trellisDataType_t datatype, trellisRedOp_t op,
                                                    trellisComm_t comm, void* stream) {
  algos::CollArgs a;
  a.coll = algos::Coll::kReduceScatter;
  a.send = sendbuff;
  a.recv = recvbuff;
  a.count = recvcount;
  a.dtype = datatype;
  a.op = op;
  return collective(comm, a, "trellisReduceScatter", stream);
}

TRELLIS_EXPORT trellisResult_t trellisAlltoAll(const void* sendbuff, void* recvbuff, size_t count,
                                               trellisDataType_t datatype, trellisComm_t comm, void* stream) {
  algos::CollArgs a;
  a.coll = algos::Coll::kAlltoAll;
  a.send = sendbuff;
  a.recv = recvbuff;
  a.count = count;
  a.dtype = datatype;
  return collective(comm, a, "trellisAlltoAll", stream);
}

TRELLIS_EXPORT trellisResult_t trellisAlltoAllv(const void* sendbuff, const size_t* sendcounts,
                                                const size_t* sdispls, void* recvbuff, const size_t* recvcounts,
                                                const size_t* rdispls, trellisDataType_t datatype,
                                                trellisComm_t comm, void* stream) {
  algos::CollArgs a;
  a.coll = algos::Coll::kAlltoAllv;
  a.send = sendbuff;
  a.recv = recvbuff;
  a.dtype = datatype;
  a.sendcounts = sendcounts;
  a.sdispls = sdispls;
  a.recvcounts = recvcounts;
  a.rdispls = rdispls;
  return collective(comm, a, "trellisAlltoAllv", stream);
}

TRELLIS_EXPORT trellisResult_t trellisSend(const void* sendbuff, size_t count, trellisDataType_t datatype, int peer,
                                           trellisComm_t comm, void* stream) {
  return p2p(comm, true, sendbuff, count, datatype, peer, stream, "trellisSend");
}

TRELLIS_EXPORT trellisResult_t trellisRecv(void* recvbuff, size_t count, trellisDataType_t datatype, int peer,
                                           trellisComm_t comm, void* stream) {
  return p2p(comm, false, recvbuff, count, datatype, peer, stream, "trellisRecv");
}

}  // extern "C"
