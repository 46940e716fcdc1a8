// The stream executor over the dlopen'ed driver; see stream_exec.h for the protocol.
#include "cuda/stream_exec.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <algorithm>

#include "core/log.h"
#include "core/params.h"
#include "cuda/driver.h"

namespace trellis::cuda {

static Param<int64_t> kStagingSlots("TRELLIS_CUDA_STAGING_SLOTS", 16,
                                    "pinned staging buffers a communicator keeps in flight for device-buffer "
                                    "operations before a new call waits for one to come back");
static Param<std::string> kWaitMode("TRELLIS_CUDA_WAIT", "memop",
                                    "how a stream waits for the host side of a device-buffer operation: memop "
                                    "(cuStreamWaitValue32 on a pinned flag; falls back to hostfn where "
                                    "unsupported) or hostfn (a host function that blocks)");

namespace {

using Clock = std::chrono::steady_clock;

// The first bytes of a staging buffer hold its flag; the data follows, 256-byte aligned.
constexpr size_t kFlagBytes = 256;
constexpr size_t kMinSlotBytes = 1u << 20;

struct Slot {
  void* host = nullptr;  // cuMemHostAlloc'ed: flag at +0, data at +kFlagBytes
  CUdeviceptr flagDev = 0;
  size_t cap = 0;  // data bytes
  CUcontext ctx = nullptr;  // context current when it was allocated (freed in it)
  bool busy = false;
  bool graph = false;  // owned by a captured graph until shutdown
  uint32_t* flag() const { return static_cast<uint32_t*>(host); }
  char* data() const { return static_cast<char*>(host) + kFlagBytes; }
};

struct State;

// One enqueued job; the host functions' user data.
struct Rec {
  std::shared_ptr<State> state;
  Slot* slot = nullptr;
  std::function<void(void*)> work;
  std::string what;
  bool captured = false;
  bool done = false;     // the worker finished it (hostfn waits)
  bool hasEnd = true;    // the "end" host function was queued (else the worker retires it)
};

struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Rec*> queue;  // started, waiting for the worker
  int inflight = 0;
  bool running = false;    // the worker is inside a job's work
  bool stop = false;
  bool orphaned = false;   // shut down with jobs left: skip work, only release streams
  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<Rec*> captured;
  std::function<void(const Status&)> onError;
  std::string name;
  double timeoutS = 600;
};

void releaseFlag(Rec* rec) { __atomic_store_n(rec->slot->flag(), 1u, __ATOMIC_RELEASE); }

// Host function: the inputs are in staging; hand the job to the worker. Never blocks.
void CUDA_CB startFn(void* p) {
  Rec* rec = static_cast<Rec*>(p);
  State& s = *rec->state;
  std::lock_guard<std::mutex> l(s.mu);
  if (rec->captured) ++s.inflight;  // eager jobs were counted when enqueued
  rec->done = false;
  __atomic_store_n(rec->slot->flag(), 0u, __ATOMIC_RELAXED);  // a graph replay reuses the flag
  s.queue.push_back(rec);
  s.cv.notify_all();
}

// Host function (TRELLIS_CUDA_WAIT=hostfn): blocks until the worker finished the job.
void CUDA_CB waitFn(void* p) {
  Rec* rec = static_cast<Rec*>(p);
  State& s = *rec->state;
  std::unique_lock<std::mutex> l(s.mu);
  const double limit = 2 * s.timeoutS + 10;
  if (!s.cv.wait_for(l, std::chrono::duration<double>(limit), [&] { return rec->done; }))
    TRELLIS_WARN(kCuda, "%s: %s: the host side did not finish within %g s; the stream continues and the results "
                 "are undefined", s.name.c_str(), rec->what.c_str(), limit);
}

// Host function: the outputs are back in device memory; the staging buffer is free.
void CUDA_CB endFn(void* p) {
  Rec* rec = static_cast<Rec*>(p);
  std::shared_ptr<State> keep = rec->state;  // the last reference may be this record's
  State& s = *keep;
  Rec* dead = nullptr;
  {
    std::lock_guard<std::mutex> l(s.mu);
    --s.inflight;
    if (!rec->captured) {
      rec->slot->busy = false;
      dead = rec;
    }
  }
  s.cv.notify_all();
  delete dead;
}

void workerLoop(std::shared_ptr<State> sp) {
  State& s = *sp;
  std::unique_lock<std::mutex> l(s.mu);
  for (;;) {
    s.cv.wait(l, [&] { return !s.queue.empty() || (s.stop && !s.orphaned); });
    if (s.queue.empty()) return;  // stopped, nothing left
    Rec* rec = s.queue.front();
    s.queue.pop_front();
    const bool skip = s.orphaned;
    s.running = !skip;
    l.unlock();
    if (!skip) rec->work(rec->slot->data());
    l.lock();
    s.running = false;
    rec->done = true;
    if (!rec->hasEnd) --s.inflight;  // nothing on the stream will retire it
    releaseFlag(rec);  // from here the stream may run "end", which frees rec: do not touch it again
    s.cv.notify_all();
  }
}

size_t roundSlot(size_t bytes) {
  size_t cap = kMinSlotBytes;
  while (cap < bytes && cap < (size_t{1} << 62)) cap <<= 1;
  return cap;
}

class Executor final : public StreamExecutor {
 public:
  Executor(const Driver& d, const StreamExecutorOptions& o, std::function<void(const Status&)> onError)
      : d_(d), state_(std::make_shared<State>()) {
    state_->onError = std::move(onError);
    state_->name = o.name;
    state_->timeoutS = o.timeoutS;
    maxSlots_ = static_cast<int>(std::max<int64_t>(kStagingSlots.get(), 1));
    const std::string mode = kWaitMode.get();
    useMemop_ = mode != "hostfn";
    if (mode != "memop" && mode != "hostfn")
      TRELLIS_WARN(kCuda, "TRELLIS_CUDA_WAIT='%s' is not memop or hostfn; using memop", mode.c_str());
    worker_ = std::thread(workerLoop, state_);
  }

  ~Executor() override {
    if (worker_.joinable()) (void)shutdown(state_->timeoutS);
  }

  Status enqueue(StreamJob job, void* stream) override;
  Status drain(double timeoutS) override;
  int inFlight() override {
    std::lock_guard<std::mutex> l(state_->mu);
    return state_->inflight;
  }
  Status shutdown(double timeoutS) override;

 private:
  Result<Slot*> acquire(size_t bytes, CUcontext ctx, bool graph, const std::string& what);
  Result<std::unique_ptr<Slot>> allocate(size_t bytes, CUcontext ctx);
  void freeSlot(Slot& slot);

  const Driver& d_;
  std::shared_ptr<State> state_;
  std::thread worker_;
  int maxSlots_ = 16;
  std::atomic<bool> useMemop_{true};
};

Result<std::unique_ptr<Slot>> Executor::allocate(size_t bytes, CUcontext ctx) {
  auto slot = std::make_unique<Slot>();
  slot->cap = roundSlot(bytes);
  slot->ctx = ctx;
  CUresult r = d_.cuMemHostAlloc(&slot->host, slot->cap + kFlagBytes, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP);
  if (r != CUDA_SUCCESS)
    return cuError(d_, r, formatString("%s: cuMemHostAlloc of a %zu-byte pinned staging buffer", state_->name.c_str(),
                                       slot->cap + kFlagBytes));
  r = d_.cuMemHostGetDevicePointer(&slot->flagDev, slot->host, 0);
  if (r != CUDA_SUCCESS) {
    d_.cuMemFreeHost(slot->host);
    return cuError(d_, r, formatString("%s: cuMemHostGetDevicePointer of a staging buffer", state_->name.c_str()));
  }
  *slot->flag() = 0;
  TRELLIS_DEBUG(kCuda, "%s: pinned staging buffer of %zu bytes", state_->name.c_str(), slot->cap);
  return slot;
}

void Executor::freeSlot(Slot& slot) {
  if (slot.host == nullptr) return;
  ScopedContext scope(d_, slot.ctx);
  CUresult r = d_.cuMemFreeHost(slot.host);
  if (r != CUDA_SUCCESS)
    TRELLIS_WARN(kCuda, "%s: cuMemFreeHost of a %zu-byte staging buffer: %s", state_->name.c_str(), slot.cap,
                 errorText(d_, r).c_str());
  slot.host = nullptr;
}

// A free buffer of at least `bytes` (the smallest that fits), counted in flight. Graph-owned buffers
// are always new. CUDA calls happen outside the lock: the host functions take it.
Result<Slot*> Executor::acquire(size_t bytes, CUcontext ctx, bool graph, const std::string& what) {
  State& s = *state_;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.timeoutS));
  std::unique_lock<std::mutex> l(s.mu);
  for (;;) {
    Slot* best = nullptr;
    Slot* spare = nullptr;  // free but too small
    int active = 0;
    for (auto& sl : s.slots) {
      if (sl->graph) continue;
      ++active;
      if (sl->busy) continue;
      if (sl->cap >= bytes) {
        if (best == nullptr || sl->cap < best->cap) best = sl.get();
      } else {
        spare = sl.get();
      }
    }
    if (!graph && best != nullptr) {
      best->busy = true;
      ++s.inflight;
      return best;
    }
    if (graph || active < maxSlots_ || spare != nullptr) {
      std::unique_ptr<Slot> old;
      if (!graph && active >= maxSlots_) {  // replace a free buffer that is too small
        for (auto it = s.slots.begin(); it != s.slots.end(); ++it)
          if (it->get() == spare) {
            old = std::move(*it);
            s.slots.erase(it);
            break;
          }
      }
      if (!graph) ++s.inflight;  // reserve our place while the lock is released
      l.unlock();
      if (old) freeSlot(*old);
      Result<std::unique_ptr<Slot>> fresh = allocate(bytes, ctx);
      l.lock();
      if (!fresh) {
        if (!graph) --s.inflight;
        s.cv.notify_all();
        return fresh.status();
      }
      Slot* p = fresh.value().get();
      p->busy = true;
      p->graph = graph;
      s.slots.push_back(std::move(fresh.value()));
      return p;
    }
    if (s.cv.wait_until(l, deadline) == std::cv_status::timeout && Clock::now() >= deadline)
      return timeoutError("%s: %s: all %d staging buffers (TRELLIS_CUDA_STAGING_SLOTS) are still in use after %g s: "
                          "the streams of earlier device-buffer calls are not progressing",
                          s.name.c_str(), what.c_str(), maxSlots_, s.timeoutS);
  }
}

Status Executor::enqueue(StreamJob job, void* stream) {
  State& s = *state_;
  CUstream st = static_cast<CUstream>(stream);
  CUcontext ctx = nullptr;
  CUresult r = d_.cuStreamGetCtx(st, &ctx);
  if (r != CUDA_SUCCESS)
    return cuError(d_, r, formatString("%s: cuStreamGetCtx(stream %p) (device buffers on the NULL stream need a "
                                       "current CUDA context)", job.what.c_str(), stream));
  ScopedContext scope(d_, ctx);
  TRELLIS_TRY(scope.status());
  CUstreamCaptureStatus cap = CU_STREAM_CAPTURE_STATUS_NONE;
  r = d_.cuStreamIsCapturing(st, &cap);
  if (r != CUDA_SUCCESS) return cuError(d_, r, formatString("%s: cuStreamIsCapturing(stream %p)", job.what.c_str(), stream));
  if (cap == CU_STREAM_CAPTURE_STATUS_INVALIDATED)
    return invalidUsage("%s: stream %p is capturing a graph that is already invalidated", job.what.c_str(), stream);
  const bool captured = cap == CU_STREAM_CAPTURE_STATUS_ACTIVE;
  RelaxedCapture relaxed(d_);  // pinned allocation is an "unsafe" call during a global-mode capture
  TRELLIS_ASSIGN_OR_RETURN(Slot * slot, acquire(job.stagingBytes, ctx, captured, job.what));
  auto* rec = new Rec();
  rec->state = state_;
  rec->slot = slot;
  rec->work = std::move(job.work);
  rec->what = job.what;
  rec->captured = captured;
  if (captured) {
    std::lock_guard<std::mutex> l(s.mu);
    s.captured.push_back(rec);  // replays use it until shutdown
  }
  *slot->flag() = 0;

  // Before "start" nothing is irrevocable: on failure, release the buffer once the stream is past
  // the copies already queued (or keep it if even that cannot be queued).
  auto abandon = [&](const Status& why) -> Status {
    if (!captured && d_.cuLaunchHostFunc(st, endFn, rec) != CUDA_SUCCESS) {
      {
        std::lock_guard<std::mutex> l(s.mu);
        --s.inflight;  // the buffer stays busy (leaked): the stream may still write it
      }
      delete rec;  // nothing queued refers to it
    }
    return why;
  };
  for (const StagedCopy& c : job.in) {
    r = d_.cuMemcpyDtoHAsync(slot->data() + c.offset, reinterpret_cast<CUdeviceptr>(c.device), c.bytes, st);
    if (r != CUDA_SUCCESS)
      return abandon(cuError(d_, r, formatString("%s: cuMemcpyDtoHAsync(%zu bytes from %p, stream %p)", job.what.c_str(),
                                                 c.bytes, c.device, stream)));
  }
  r = d_.cuLaunchHostFunc(st, startFn, rec);
  if (r != CUDA_SUCCESS) return abandon(cuError(d_, r, formatString("%s: cuLaunchHostFunc(stream %p)", job.what.c_str(), stream)));

  // From here the job will run on this rank: a failure leaves the stream's results undefined and
  // the communicator unusable, which the error (and onError) say.
  auto broken = [&](const Status& why) -> Status {
    // While capturing, nothing has run: the capture fails, the communicator is fine (the record stays
    // with the executor's captured ones until shutdown).
    if (captured)
      return why.withContext("while capturing a CUDA graph (TRELLIS_CUDA_WAIT=hostfn avoids stream memory "
                             "operations, for drivers that cannot capture them)");
    Status st2 = why.withContext("enqueued only in part; the communicator is unusable");
    {
      // No "end" will run: the worker retires the job (or we do, if it already ran); the buffer
      // stays busy, since the stream may still use it.
      std::lock_guard<std::mutex> l(s.mu);
      if (rec->done) --s.inflight;
      else rec->hasEnd = false;
    }
    s.cv.notify_all();
    if (s.onError) s.onError(st2);
    return st2;
  };
  if (useMemop_.load(std::memory_order_relaxed)) {
    r = d_.cuStreamWaitValue32(st, slot->flagDev, 1, CU_STREAM_WAIT_VALUE_EQ);
    if (r == CUDA_ERROR_NOT_SUPPORTED) {
      TRELLIS_WARN(kCuda, "%s: cuStreamWaitValue32 is not supported here (%s); streams wait in host functions from "
                   "now on (TRELLIS_CUDA_WAIT=hostfn)", s.name.c_str(), errorText(d_, r).c_str());
      useMemop_.store(false, std::memory_order_relaxed);
    } else if (r != CUDA_SUCCESS) {
      return broken(cuError(d_, r, formatString("%s: cuStreamWaitValue32(stream %p)", job.what.c_str(), stream)));
    }
  }
  if (!useMemop_.load(std::memory_order_relaxed)) {
    r = d_.cuLaunchHostFunc(st, waitFn, rec);
    if (r != CUDA_SUCCESS)
      return broken(cuError(d_, r, formatString("%s: cuLaunchHostFunc(wait, stream %p)", job.what.c_str(), stream)));
  }
  for (const StagedCopy& c : job.out) {
    r = d_.cuMemcpyHtoDAsync(reinterpret_cast<CUdeviceptr>(c.device), slot->data() + c.offset, c.bytes, st);
    if (r != CUDA_SUCCESS)
      return broken(cuError(d_, r, formatString("%s: cuMemcpyHtoDAsync(%zu bytes to %p, stream %p)", job.what.c_str(),
                                                c.bytes, c.device, stream)));
  }
  r = d_.cuLaunchHostFunc(st, endFn, rec);
  if (r != CUDA_SUCCESS)
    return broken(cuError(d_, r, formatString("%s: cuLaunchHostFunc(end, stream %p)", job.what.c_str(), stream)));
  TRELLIS_DEBUG(kCuda, "%s: %s enqueued on stream %p%s (%zu staging bytes)", s.name.c_str(), job.what.c_str(), stream,
                captured ? " (graph capture)" : "", job.stagingBytes);
  return Status::ok();
}

Status Executor::drain(double timeoutS) {
  State& s = *state_;
  std::unique_lock<std::mutex> l(s.mu);
  const bool ok = s.cv.wait_for(l, std::chrono::duration<double>(timeoutS),
                                [&] { return s.inflight == 0 && s.queue.empty() && !s.running; });
  if (ok) return Status::ok();
  return timeoutError("%s: %d device-buffer operation(s) still in flight after %g s (%zu started and waiting for the "
                      "host side): are their streams blocked?",
                      s.name.c_str(), s.inflight, timeoutS, s.queue.size());
}

Status Executor::shutdown(double timeoutS) {
  State& s = *state_;
  Status st = drain(timeoutS);
  {
    std::lock_guard<std::mutex> l(s.mu);
    s.stop = true;
    s.onError = nullptr;
    if (!st.isOk()) s.orphaned = true;
  }
  s.cv.notify_all();
  if (!st.isOk()) {
    // Let a job that is running finish (the caller aborts the communicator first), then leave the
    // thread to release the streams still waiting; their staging buffers stay allocated.
    // Its work references the communicator, which the caller frees next: wait for it however long
    // (the caller has aborted the communicator, so its waits end within about a second).
    std::unique_lock<std::mutex> l(s.mu);
    while (!s.cv.wait_for(l, std::chrono::duration<double>(std::max(timeoutS, 1.0)), [&] { return !s.running; }))
      TRELLIS_WARN(kCuda, "%s: still waiting for a device-buffer operation to return before shutting down",
                   s.name.c_str());
    l.unlock();
    worker_.detach();
    TRELLIS_WARN(kCuda, "%s: %s; their staging memory is kept and their host side skipped", s.name.c_str(),
                 st.message().c_str());
    return st;
  }
  worker_.join();
  for (auto& slot : s.slots) freeSlot(*slot);
  s.slots.clear();
  for (Rec* rec : s.captured) delete rec;
  s.captured.clear();
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<StreamExecutor>> StreamExecutor::create(const StreamExecutorOptions& options,
                                                                std::function<void(const Status&)> onError) {
  TRELLIS_ASSIGN_OR_RETURN(const Driver* d, driver());
  if (!cudaInitialized(*d))
    return invalidUsage("CUDA is not initialised in this process (no context, so no device memory or stream)");
  return std::unique_ptr<StreamExecutor>(new Executor(*d, options, std::move(onError)));
}

}  // namespace trellis::cuda
