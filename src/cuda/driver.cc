// Loading the CUDA driver with dlopen; see driver.h.
#include "cuda/driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "core/log.h"
#include "core/params.h"

namespace trellis::cuda {

static Param<std::string> kCudaLibrary("TRELLIS_CUDA_LIBRARY", "libcuda.so.1",
                                       "the CUDA driver library Trellis loads with dlopen (device buffers)");
static Param<bool> kCudaDisable("TRELLIS_CUDA_DISABLE", false,
                                "never load the CUDA driver: every buffer is host memory and a non-NULL stream "
                                "is an error");

#define TRELLIS_CUDA_STR2(x) #x
#define TRELLIS_CUDA_STR(x) TRELLIS_CUDA_STR2(x)

namespace detail {

Result<Driver*> loadDriver(const std::string& library) {
  void* h = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* why = dlerror();
    return invalidUsage("no CUDA driver: dlopen(\"%s\") failed: %s", library.c_str(), why ? why : "unknown reason");
  }
  auto* d = new Driver();
  d->library = library;
  d->handle = h;
  const char* missing = nullptr;
  // The stringised name is the header's macro expansion: the versioned ABI name.
#define TRELLIS_CUDA_LOAD_REQUIRED(fn)                                                              \
  d->fn = reinterpret_cast<decltype(d->fn)>(dlsym(h, TRELLIS_CUDA_STR(fn)));                        \
  if (d->fn == nullptr && missing == nullptr) missing = TRELLIS_CUDA_STR(fn);
#define TRELLIS_CUDA_LOAD_OPTIONAL(fn) d->fn = reinterpret_cast<decltype(d->fn)>(dlsym(h, TRELLIS_CUDA_STR(fn)));
  TRELLIS_CUDA_REQUIRED(TRELLIS_CUDA_LOAD_REQUIRED)
  TRELLIS_CUDA_OPTIONAL(TRELLIS_CUDA_LOAD_OPTIONAL)
#undef TRELLIS_CUDA_LOAD_REQUIRED
#undef TRELLIS_CUDA_LOAD_OPTIONAL
  if (missing != nullptr) {
    std::string lib = d->library;
    delete d;
    dlclose(h);
    return invalidUsage("CUDA driver %s is unusable: it has no symbol %s (a driver for CUDA 12.0 or newer is needed)",
                        lib.c_str(), missing);
  }
  int version = 0;
  if (d->cuDriverGetVersion(&version) == CUDA_SUCCESS) d->version = version;
  return d;
}

}  // namespace detail

namespace {

struct Loaded {
  Driver* driver = nullptr;  // null: not usable, `status` says why
  Status status;
  bool initializedAtFork = false;  // parent's state when fork() was called
  std::atomic<bool> forkedChild{false};
  std::atomic<bool> initialized{false};  // cached once true: CUDA cannot be un-initialised
  std::string forkMessage;
};

Loaded& loaded();

void atforkPrepare() {
  Loaded& l = loaded();
  l.initializedAtFork = l.driver != nullptr && cudaInitialized(*l.driver);
}
void atforkChild() {
  Loaded& l = loaded();
  if (!l.initializedAtFork) return;
  l.forkMessage = "CUDA was initialised in the parent before fork(): process " + std::to_string(getpid()) +
                  " (the forked child) cannot use it";
  l.forkedChild = true;
}

Loaded& loaded() {
  static Loaded* l = [] {
    auto* x = new Loaded();
    if (kCudaDisable.get()) {
      x->status = invalidUsage("CUDA disabled by TRELLIS_CUDA_DISABLE=1");
      return x;
    }
    Result<Driver*> r = detail::loadDriver(kCudaLibrary.get());
    if (r) {
      x->driver = r.value();
      TRELLIS_INFO(kCuda, "CUDA driver %s loaded (version %d.%d)", x->driver->library.c_str(),
                   x->driver->version / 1000, x->driver->version % 1000 / 10);
      pthread_atfork(atforkPrepare, nullptr, atforkChild);
    } else {
      x->status = r.status();
      TRELLIS_INFO(kCuda, "%s: every buffer is host memory", x->status.message().c_str());
    }
    return x;
  }();
  return *l;
}

}  // namespace

Result<const Driver*> driver() {
  Loaded& l = loaded();
  if (l.driver == nullptr) return l.status;
  if (l.forkedChild.load(std::memory_order_relaxed)) return invalidUsage("%s", l.forkMessage.c_str());
  return static_cast<const Driver*>(l.driver);
}

const Driver* usableDriver() {
  Loaded& l = loaded();
  if (l.driver == nullptr || l.forkedChild.load(std::memory_order_relaxed)) return nullptr;
  return l.driver;
}

bool cudaInitialized(const Driver& d) {
  Loaded& l = loaded();
  if (&d == l.driver && l.initialized.load(std::memory_order_relaxed)) return true;
  CUcontext ctx = nullptr;
  // CUDA_ERROR_NOT_INITIALIZED until someone calls cuInit; any other answer means it has been.
  const bool init = d.cuCtxGetCurrent(&ctx) != CUDA_ERROR_NOT_INITIALIZED;
  if (init && &d == l.driver) l.initialized.store(true, std::memory_order_relaxed);
  return init;
}

std::string errorText(const Driver& d, CUresult r) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (d.cuGetErrorName(r, &name) != CUDA_SUCCESS || name == nullptr) name = "unknown CUresult";
  if (d.cuGetErrorString(r, &text) != CUDA_SUCCESS || text == nullptr) text = "no description";
  return std::string(name) + " " + std::to_string(static_cast<int>(r)) + " (" + text + ")";
}

Status cuError(const Driver& d, CUresult r, const std::string& what) {
  return Status(Code::kCudaError, what + ": " + errorText(d, r));
}

Status requireOptional(const void* fn, const char* name, const Driver& d) {
  if (fn != nullptr) return Status::ok();
  return invalidUsage("CUDA driver %s has no symbol %s (needed by the GPU tests)", d.library.c_str(), name);
}

ScopedContext::ScopedContext(const Driver& d, CUcontext ctx) : d_(d) {
  CUcontext cur = nullptr;
  CUresult r = d_.cuCtxGetCurrent(&cur);
  if (r != CUDA_SUCCESS) {
    status_ = cuError(d_, r, "cuCtxGetCurrent");
    return;
  }
  if (ctx == nullptr || ctx == cur) return;
  r = d_.cuCtxPushCurrent(ctx);
  if (r != CUDA_SUCCESS) {
    status_ = cuError(d_, r, "cuCtxPushCurrent");
    return;
  }
  pushed_ = true;
}

ScopedContext::~ScopedContext() {
  if (!pushed_) return;
  CUcontext popped = nullptr;
  d_.cuCtxPopCurrent(&popped);
}

RelaxedCapture::RelaxedCapture(const Driver& d) : d_(d) {
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
  ok_ = d_.cuThreadExchangeStreamCaptureMode(&mode) == CUDA_SUCCESS;
  saved_ = mode;
}

RelaxedCapture::~RelaxedCapture() {
  if (!ok_) return;
  CUstreamCaptureMode mode = saved_;
  d_.cuThreadExchangeStreamCaptureMode(&mode);
}

}  // namespace trellis::cuda
