// Every torch.distributed operation of the backend, written against ATen and the option structs of
// c10d (Types.hpp), which torch 1.13 and 2.x share. The version-specific shim (a c10d::ProcessGroup
// subclass for 1.13, a c10d::Backend subclass for 2.x) only forwards its virtual methods here.
//
// Each call checks its arguments on the caller's thread (errors are thrown there, naming the values),
// makes contiguous staging copies where a tensor is not contiguous (or a list must be one buffer),
// queues the Trellis call on the engine and returns a Work at once. On the progress thread, after the
// call, results are copied back into non-contiguous or listed outputs, then the Work completes.
#pragma once

#include <torch/csrc/distributed/c10d/Types.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "engine.h"
#include "work.h"

namespace trellis_torch {

using WorkPtr = c10::intrusive_ptr<c10d::Work>;

class Collectives {
 public:
  explicit Collectives(std::unique_ptr<Engine> engine);

  /// Joins the group through the c10d store: rank 0 creates the Trellis unique id and sets it under
  /// a key of `store` (the group's PrefixStore); the others get it (blocking, the store's timeout).
  static std::unique_ptr<Collectives> create(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                             std::chrono::milliseconds timeout);

  Engine& engine() { return *engine_; }

  WorkPtr broadcast(std::vector<at::Tensor>& tensors, const c10d::BroadcastOptions& opts);
  WorkPtr allreduce(std::vector<at::Tensor>& tensors, const c10d::AllreduceOptions& opts);
  WorkPtr allreduceCoalesced(std::vector<at::Tensor>& tensors, const c10d::AllreduceCoalescedOptions& opts);
  WorkPtr reduce(std::vector<at::Tensor>& tensors, const c10d::ReduceOptions& opts);
  WorkPtr allgather(std::vector<std::vector<at::Tensor>>& outputs, std::vector<at::Tensor>& inputs,
                    const c10d::AllgatherOptions& opts);
  WorkPtr allgatherBase(at::Tensor& output, at::Tensor& input, const c10d::AllgatherOptions& opts);
  WorkPtr gather(std::vector<std::vector<at::Tensor>>& outputs, std::vector<at::Tensor>& inputs,
                 const c10d::GatherOptions& opts);
  WorkPtr scatter(std::vector<at::Tensor>& outputs, std::vector<std::vector<at::Tensor>>& inputs,
                  const c10d::ScatterOptions& opts);
  WorkPtr reduceScatter(std::vector<at::Tensor>& outputs, std::vector<std::vector<at::Tensor>>& inputs,
                        const c10d::ReduceScatterOptions& opts);
  WorkPtr reduceScatterBase(at::Tensor& output, at::Tensor& input, const c10d::ReduceScatterOptions& opts);
  WorkPtr alltoallBase(at::Tensor& output, at::Tensor& input, std::vector<int64_t>& outputSplits,
                       std::vector<int64_t>& inputSplits, const c10d::AllToAllOptions& opts);
  WorkPtr alltoall(std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
                   const c10d::AllToAllOptions& opts);
  WorkPtr send(std::vector<at::Tensor>& tensors, int dstRank, int tag);
  WorkPtr recv(std::vector<at::Tensor>& tensors, int srcRank, int tag);
  WorkPtr barrier(const c10d::BarrierOptions& opts);

  /// Between these two, operations are held back and then run as one Trellis group (torch's
  /// batch_isend_irecv brackets its sends and receives with them).
  void startCoalescing();
  void endCoalescing();

 private:
  /// Queues `post` with a new Work whose future yields `outputs`; `finish` (may be empty) runs on the
  /// progress thread after a successful call, before the Work completes (copies back).
  WorkPtr submit(c10d::OpType type, const char* title, std::string what, std::vector<at::Tensor> outputs,
                 std::function<trellisResult_t(trellisComm_t)> post, std::function<void()> finish,
                 bool p2p = false);
  std::string where() const;

  std::unique_ptr<Engine> engine_;
  std::mutex coalesceMu_;
  bool coalescing_ = false;
  std::vector<Op> coalesced_;
};

}  // namespace trellis_torch
