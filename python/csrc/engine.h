// The torch-independent half of the backend: one Trellis communicator and the progress thread that
// runs every operation posted to it, in posting order, through the blocking C API. Callers get
// control back at once; each operation's `done` callback runs on the progress thread when the
// operation has finished (or failed), which is where the torch layer completes its Work and Future.
//
// Why a thread of our own: the C API takes host buffers and returns when the result is in place,
// one operation at a time per communicator. torch (and DDP's overlap of gradient reduction with
// backward) needs calls that return at once, so every call is queued here and run in order. The order
// is the order of the calls, which is the same on every rank, so collectives match.
//
// Point-to-point operations: consecutive ones in the queue, and any batch posted with postGroup
// (torch's batch_isend_irecv), run together inside trellisGroupStart/End, where their order cannot
// deadlock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "trellis/trellis.h"

namespace trellis_torch {

/// How an operation ended: the C API result and, when it failed, the message naming the values.
struct Outcome {
  trellisResult_t result = trellisSuccess;
  std::string message;
  bool ok() const { return result == trellisSuccess; }
};

/// One operation for the progress thread.
struct Op {
  /// Short description used in error messages ("allreduce of 1024 float32").
  std::string what;
  /// True for a send or a receive (batched with neighbouring ones in one group).
  bool p2p = false;
  /// Issues the C API call(s). Runs on the progress thread; may be inside a group.
  std::function<trellisResult_t(trellisComm_t)> post;
  /// Called once, on the progress thread, after the operation (or its group) has finished. Must not
  /// throw.
  std::function<void(const Outcome&)> done;
};

/// A communicator plus its progress thread. Thread-safe: any thread may post.
class Engine {
 public:
  /// Joins the communicator (collective over `size` ranks; blocks until all have joined) and starts
  /// the progress thread. Throws std::runtime_error naming rank, size and the Trellis message.
  Engine(const trellisUniqueId& id, int rank, int size, int timeoutSeconds, const std::string& name);
  /// Runs what is still queued, then destroys the communicator (aborts it when it is in error).
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& name() const { return name_; }

  /// Queues one operation.
  void post(Op op);
  /// Queues operations that run together inside one trellisGroupStart/End (p2p batches).
  void postGroup(std::vector<Op> ops);

  /// The communicator's asynchronous error (trellisSuccess while healthy).
  trellisResult_t asyncError() const;
  /// Aborts the communicator: operations in flight and queued fail with a remote error.
  void abort();

 private:
  struct Batch {
    std::vector<Op> ops;
    bool grouped = false;  // run in one group whatever the kinds of its ops
  };
  void loop();
  void run(std::vector<Op>& ops, bool grouped);
  Outcome outcomeOf(trellisResult_t r, const std::string& what);

  int rank_;
  int size_;
  std::string name_;
  trellisComm_t comm_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  bool stopping_ = false;
  std::atomic<bool> aborted_{false};
  std::thread thread_;
};

/// "rank 1 of 2 (trellis group 0)": the prefix of every message of this backend.
std::string describe(int rank, int size, const std::string& name);

}  // namespace trellis_torch
