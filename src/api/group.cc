// trellisGroupStart/End. Operations issued inside a group are queued per thread; at the outermost
// trellisGroupEnd each communicator's operations run in issue order, with consecutive sends and
// receives posted together (so their order inside the group cannot deadlock). When a group spans
// several communicators (one thread driving several ranks), each communicator's batch runs on its
// own progress thread, concurrently, and GroupEnd waits for all of them. A communicator's
// device-buffer operations (api/device_path.h) become one job queued on their stream at GroupEnd,
// which does not wait for it (NCCL semantics).
#include <algorithm>
#include <future>
#include <map>
#include <vector>

#include "api/api_internal.h"
#include "api/device_path.h"
#include "core/log.h"

using namespace trellis;  // NOLINT

namespace trellis {
namespace {

struct QueuedOp {
  trellisComm* comm;
  bool isP2p;
  trellisComm::P2pOp p2p;
  algos::CollArgs coll;
  const char* api;
  bool device = false;  // device buffers, staged on `stream`
  void* stream = nullptr;
  DeviceOp staged;      // device: the operation with its own copy of AlltoAllv's counts
};

struct GroupState {
  int depth = 0;
  std::vector<QueuedOp> ops;
  trellisResult_t error = trellisSuccess;
};
thread_local GroupState tlsGroup;

// A communicator's device-buffer operations of the group: one job on their (common) stream, queued
// from the calling thread (nothing waits for it).
Status enqueueDeviceBatch(trellisComm* comm, const std::vector<QueuedOp>& ops) {
  std::vector<DeviceOp> dev;
  for (const QueuedOp& op : ops) {
    const QueuedOp& first = ops.front();
    if (!op.device || !first.device) {
      const QueuedOp& d = op.device ? op : first;
      const QueuedOp& h = op.device ? first : op;
      return invalidUsage("trellisGroupEnd: rank %d: %s has device buffers but %s has host buffers; a group must "
                          "give each communicator only one kind", comm->rank(), d.api, h.api);
    }
    if (op.stream != first.stream)
      return invalidUsage("trellisGroupEnd: rank %d: %s is on stream %p but %s is on stream %p; a group's device-buffer "
                          "operations of one communicator must share a stream", comm->rank(), first.api, first.stream,
                          op.api, op.stream);
    dev.push_back(op.staged);
  }
  return enqueueDevice(comm, std::move(dev), ops.front().stream);
}

Status runBatch(trellisComm* comm, const std::vector<QueuedOp>& ops) {
  TRELLIS_TRY(comm->waitDeviceIdle("trellisGroupEnd"));
  std::vector<trellisComm::P2pOp> pending;
  const char* p2pApi = "trellisGroupEnd";
  auto flush = [&]() -> Status {
    if (pending.empty()) return Status::ok();
    Status s = comm->runP2p(pending, p2pApi);
    pending.clear();
    return s;
  };
  for (const QueuedOp& op : ops) {
    if (op.isP2p) {
      pending.push_back(op.p2p);
      continue;
    }
    TRELLIS_TRY(flush());
    TRELLIS_TRY(comm->runCollective(op.coll, op.api));
  }
  return flush();
}

}  // namespace

bool groupActive() { return tlsGroup.depth > 0; }

trellisResult_t groupError(trellisResult_t r) {
  if (tlsGroup.depth > 0 && tlsGroup.error == trellisSuccess) tlsGroup.error = r;
  return r;
}

trellisResult_t groupEnqueueCollective(trellisComm* comm, const algos::CollArgs& args, const char* api, bool device,
                                       void* stream) {
  tlsGroup.ops.push_back({comm, false, {}, args, api, device, stream,
                          device ? deviceCollective(args, comm->nranks(), api) : DeviceOp{}});
  return trellisSuccess;
}

trellisResult_t groupEnqueueP2p(trellisComm* comm, const trellisComm::P2pOp& op, const char* api, bool device,
                                void* stream) {
  tlsGroup.ops.push_back({comm, true, op, {}, api, device, stream, device ? deviceP2p(op, api) : DeviceOp{}});
  return trellisSuccess;
}

}  // namespace trellis

extern "C" {

TRELLIS_EXPORT trellisResult_t trellisGroupStart(void) {
  ++tlsGroup.depth;
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisGroupEnd(void) {
  GroupState& g = tlsGroup;
  if (g.depth == 0) return report(nullptr, invalidUsage("trellisGroupEnd without a matching trellisGroupStart"));
  if (--g.depth > 0) return trellisSuccess;
  std::vector<QueuedOp> ops;
  ops.swap(g.ops);
  trellisResult_t earlier = g.error;
  g.error = trellisSuccess;
  if (earlier != trellisSuccess) return earlier;  // an operation was rejected: run none of them
  // Batches per communicator, in first-use order.
  std::vector<trellisComm*> order;
  std::map<trellisComm*, std::vector<QueuedOp>> batches;
  for (QueuedOp& op : ops) {
    if (!batches.count(op.comm)) order.push_back(op.comm);
    batches[op.comm].push_back(op);
  }
  // Device-buffer batches are queued on their streams from this thread; the host ones run below.
  trellisResult_t deviceResult = trellisSuccess;
  std::vector<trellisComm*> hostOrder;
  for (trellisComm* c : order) {
    const auto& b = batches[c];
    if (std::none_of(b.begin(), b.end(), [](const QueuedOp& op) { return op.device; })) {
      hostOrder.push_back(c);
      continue;
    }
    trellisResult_t r = report(c, enqueueDeviceBatch(c, b));
    if (deviceResult == trellisSuccess) deviceResult = r;
  }
  order.swap(hostOrder);
  if (order.empty()) return deviceResult;
  if (order.size() == 1) {
    trellisResult_t r = report(order[0], runBatch(order[0], batches[order[0]]));
    return deviceResult != trellisSuccess ? deviceResult : r;
  }
  std::vector<std::future<Status>> results;
  for (trellisComm* c : order) {
    auto task = std::make_shared<std::packaged_task<Status()>>([c, &batches] { return runBatch(c, batches[c]); });
    results.push_back(task->get_future());
    c->post([task] { (*task)(); });
  }
  trellisResult_t first = deviceResult;
  for (size_t i = 0; i < results.size(); ++i) {
    trellisResult_t r = report(order[i], results[i].get());
    if (first == trellisSuccess) first = r;
  }
  return first;
}

}  // extern "C"
