// Host work ordered on a CUDA stream: how a collective on device buffers runs in the simple, staged
// form. One executor per communicator. For each job, on the caller's stream:
//
//   D2H copies of the inputs into a pinned staging buffer
//   -> host function "start": hands the job to the executor's thread and returns at once
//   -> the stream waits until the job's flag (in the pinned buffer) reads 1
//      (cuStreamWaitValue32; or, with TRELLIS_CUDA_WAIT=hostfn, a host function that blocks)
//   -> H2D copies of the outputs
//   -> host function "end": the staging buffer is free again.
//
// The executor's thread runs the jobs' work (the host collective on the staging buffers) in the
// order their "start" functions fire, then sets the flag. enqueue() returns once the copies and
// functions are queued (NCCL semantics: completion is ordered on the stream). No host function ever
// blocks on another rank: with several ranks in one process (threads), CUDA may run host functions
// of independent streams one after another, so a host function waiting for a peer could wait for
// ever behind that peer's own.
//
// Staging buffers are pooled per executor, reused, and grown (cuMemHostAlloc, portable and mapped
// into the device's address space); at most TRELLIS_CUDA_STAGING_SLOTS are in flight, beyond that
// enqueue waits for one to come back. A job enqueued while its stream captures a CUDA graph keeps
// its buffer until shutdown (each replay of the graph reuses it), and each replay runs the work again.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace trellis::cuda {

/// One copy between device memory and the job's staging buffer.
struct StagedCopy {
  const void* device = nullptr;  ///< device address
  size_t offset = 0;             ///< in the staging buffer
  size_t bytes = 0;
};

/// What one enqueue runs.
struct StreamJob {
  std::string what;               ///< for logs and errors ("trellisAllReduce (1024 float32)")
  size_t stagingBytes = 0;        ///< size of the staging buffer the copies use
  std::vector<StagedCopy> in;     ///< device -> staging, before `work`
  std::vector<StagedCopy> out;    ///< staging -> device, after `work`
  /// Runs on the executor's thread with the staging buffer once the inputs are in it; reports its
  /// own failures (the caller's stream continues regardless, with undefined outputs).
  std::function<void(void* staging)> work;
};

struct StreamExecutorOptions {
  std::string name;        ///< in log lines ("rank 3")
  double timeoutS = 600;   ///< bound of every wait (a free staging buffer, draining)
};

class StreamExecutor {
 public:
  /// An executor, or why CUDA cannot be used here (cuda::driverStatus()). `onError` receives failures
  /// that happen outside a job's work (a job that could not be fully enqueued); it is never called
  /// after shutdown().
  static Result<std::unique_ptr<StreamExecutor>> create(const StreamExecutorOptions& options,
                                                         std::function<void(const Status&)> onError);
  virtual ~StreamExecutor() = default;

  /// Queues `job` on `stream` (a CUstream; nullptr: the legacy default stream of the current
  /// context) and returns without waiting for it.
  virtual Status enqueue(StreamJob job, void* stream) = 0;

  /// Waits until every job enqueued so far (and every graph replay started so far) has finished,
  /// its outputs copied back: what a host-buffer call on the same communicator waits for, so that
  /// every rank runs the communicator's operations in the order they were issued.
  virtual Status drain(double timeoutS) = 0;

  /// Jobs enqueued (or replays started) and not finished.
  virtual int inFlight() = 0;

  /// Waits up to timeoutS for the jobs in flight, then stops the thread and frees the staging memory.
  /// If jobs remain it returns their count in the error, and leaves the thread and memory alive so
  /// that the streams still waiting on them are released (their work is skipped, results undefined).
  virtual Status shutdown(double timeoutS) = 0;
};

}  // namespace trellis::cuda
