#include "engine.h"

#include <pthread.h>

#include <stdexcept>
#include <utility>

namespace trellis_torch {

std::string describe(int rank, int size, const std::string& name) {
  return "rank " + std::to_string(rank) + " of " + std::to_string(size) + " (" + name + ")";
}

Engine::Engine(const trellisUniqueId& id, int rank, int size, int timeoutSeconds, const std::string& name)
    : rank_(rank), size_(size), name_(name) {
  trellisConfig_t config = TRELLIS_CONFIG_INITIALIZER;
  config.timeoutSeconds = timeoutSeconds > 0 ? timeoutSeconds : -1;
  config.commName = name_.c_str();
  trellisResult_t r = trellisCommInitRankConfig(&comm_, size, id, rank, &config);
  if (r != trellisSuccess) {
    throw std::runtime_error("trellis: " + describe(rank, size, name) + ": trellisCommInitRankConfig failed: " +
                             trellisGetErrorString(r) + ": " + trellisGetLastError(nullptr));
  }
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (aborted_) return;  // trellisCommAbort already freed it
  trellisResult_t async = trellisSuccess;
  trellisCommGetAsyncError(comm_, &async);
  // A communicator in error may still have a peer blocked on it: abort so nothing waits for us.
  if (async != trellisSuccess) {
    trellisCommAbort(comm_);
  } else {
    trellisCommDestroy(comm_);
  }
}

void Engine::post(Op op) {
  std::vector<Op> ops;
  ops.push_back(std::move(op));
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Batch{std::move(ops), false});
  }
  cv_.notify_one();
}

void Engine::postGroup(std::vector<Op> ops) {
  if (ops.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Batch{std::move(ops), true});
  }
  cv_.notify_one();
}

trellisResult_t Engine::asyncError() const {
  if (aborted_) return trellisRemoteError;
  trellisResult_t async = trellisSuccess;
  trellisResult_t r = trellisCommGetAsyncError(comm_, &async);
  return r != trellisSuccess ? r : async;
}

void Engine::abort() {
  if (aborted_.exchange(true)) return;
  // Returns once the communicator is freed; a call blocked in it on the progress thread returns
  // a remote error, and the loop then fails everything still queued without touching comm_.
  trellisCommAbort(comm_);
}

Outcome Engine::outcomeOf(trellisResult_t r, const std::string& what) {
  Outcome o;
  o.result = r;
  if (r != trellisSuccess) {
    const char* detail = aborted_ ? "the communicator was aborted" : trellisGetLastError(comm_);
    o.message = "trellis: " + describe(rank_, size_, name_) + ": " + what + " failed: " + trellisGetErrorString(r) +
                (detail && *detail ? std::string(": ") + detail : std::string());
  }
  return o;
}

void Engine::loop() {
  pthread_setname_np(pthread_self(), "trellis-torch");  // as top and gdb show it
  for (;;) {
    std::vector<Op> ops;
    bool grouped = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything posted has run
      Batch b = std::move(queue_.front());
      queue_.pop_front();
      ops = std::move(b.ops);
      grouped = b.grouped;
      // Sends and receives waiting behind this one join it in a group: two ranks that each queue a
      // send then a receive to the other must not both block in their send.
      if (!grouped && ops.front().p2p) {
        while (!queue_.empty() && !queue_.front().grouped && queue_.front().ops.front().p2p) {
          ops.push_back(std::move(queue_.front().ops.front()));
          queue_.pop_front();
        }
        grouped = ops.size() > 1;
      }
    }
    run(ops, grouped);
  }
}

void Engine::run(std::vector<Op>& ops, bool grouped) {
  if (aborted_) {
    for (Op& op : ops) op.done(outcomeOf(trellisRemoteError, op.what));
    return;
  }
  if (!grouped) {
    Op& op = ops.front();
    op.done(outcomeOf(op.post(comm_), op.what));
    return;
  }
  // A group: a call that fails while queuing fails alone; trellisGroupEnd's result is everyone's.
  std::vector<trellisResult_t> queued(ops.size(), trellisSuccess);
  trellisGroupStart();
  for (size_t i = 0; i < ops.size(); ++i) queued[i] = ops[i].post(comm_);
  trellisResult_t end = trellisGroupEnd();
  std::string names;
  for (size_t i = 0; i < ops.size(); ++i) names += (i ? ", " : "") + ops[i].what;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (queued[i] != trellisSuccess) {
      ops[i].done(outcomeOf(queued[i], ops[i].what));
    } else {
      ops[i].done(outcomeOf(end, ops[i].what + " (grouped: " + names + ")"));
    }
  }
}

}  // namespace trellis_torch
