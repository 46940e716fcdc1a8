#include "transport/verbs/gpu_direct.h"

#include <dlfcn.h>
#include <infiniband/verbs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <type_traits>

#include "core/log.h"
#include "core/params.h"
#include "topo/sysfs.h"

#ifdef TRELLIS_HAVE_CUDA_HEADERS
#include <cuda.h>
#endif

namespace trellis::transport::verbs {

static Param<std::string> kGdr(
    "TRELLIS_IB_GDR", "auto",
    "GPUDirect RDMA for device memory: auto (direct when the topology puts the GPU and the NIC "
    "under one PCIe switch, host staging otherwise) or off (always host staging)");

Result<GdrContext::Mode> gdrModeFromParams() {
  const std::string v = kGdr.get();
  if (v == "auto") return GdrContext::Mode::kAuto;
  if (v == "off") return GdrContext::Mode::kOff;
  return invalidArgument("TRELLIS_IB_GDR='%s' is not auto or off", v.c_str());
}

bool gdrCompiled() {
#ifdef TRELLIS_HAVE_CUDA_HEADERS
  return true;
#else
  return false;
#endif
}

// ---------------------------------------------------------------------------------------------
// The selection rule.

GdrChoice chooseGdr(const topo::System& sys, int gpu, int nic) {
  GdrChoice c;
  const int n = static_cast<int>(sys.nodes.size());
  if (gpu < 0 || gpu >= n || nic < 0 || nic >= n) {
    c.path = topo::PathKind::kNet;
    c.why =
        gpu < 0 || gpu >= n ? "the GPU is not in the topology" : "the NIC is not in the topology";
    return c;
  }
  c.path = topo::pathBetween(sys, gpu, nic).kind;
  c.direct = c.path == topo::PathKind::kPix || c.path == topo::PathKind::kPxb;
  const std::string g = sys.nodes[gpu].busId, d = sys.nodes[nic].busId;
  c.why = formatString("GPU %s and NIC %s %s (path %s)", g.c_str(), d.c_str(),
                       c.direct ? "share a PCIe switch" : "do not share a PCIe switch",
                       topo::pathKindName(c.path));
  return c;
}

GdrChoice chooseGdr(const topo::System& sys, const std::string& gpuBusId, const PortInfo& nic) {
  int g = sys.findBusId(gpuBusId);
  if (g >= 0 && sys.nodes[g].kind != topo::NodeKind::kGpu) g = -1;
  const int d = findNicNode(sys, nic);
  GdrChoice c = chooseGdr(sys, g, d);
  if (g < 0 || d < 0)
    c.why = formatString("%s %s is not in the topology", g < 0 ? "GPU" : "NIC",
                         g < 0 ? gpuBusId.c_str() : nic.dev.c_str());
  else
    c.why += " for " + nic.dev;
  return c;
}

// ---------------------------------------------------------------------------------------------
// The CUDA driver, dlopen'ed.

#ifdef TRELLIS_HAVE_CUDA_HEADERS
struct CudaDriver::Api {
  // Unversioned entry points (cuda.h #defines some names to _v2 variants; these have none).
  CUresult (*pointerGetAttribute)(void*, CUpointer_attribute, CUdeviceptr) = nullptr;
  CUresult (*memGetHandleForAddressRange)(void*, CUdeviceptr, size_t, CUmemRangeHandleType,
                                          unsigned long long) = nullptr;  // NOLINT: cuda.h's type
  CUresult (*deviceGetPCIBusId)(char*, int, CUdevice) = nullptr;
  CUresult (*deviceGet)(CUdevice*, int) = nullptr;
  CUresult (*getErrorString)(CUresult, const char**) = nullptr;
  std::string error(CUresult r) const {
    const char* s = nullptr;
    if (getErrorString != nullptr && getErrorString(r, &s) == CUDA_SUCCESS && s != nullptr)
      return formatString("%s (CUresult %d)", s, static_cast<int>(r));
    return formatString("CUresult %d", static_cast<int>(r));
  }
};
#else
struct CudaDriver::Api {};
#endif

CudaDriver::~CudaDriver() {
  if (lib_ != nullptr && own_) dlclose(lib_);
}

std::shared_ptr<CudaDriver> CudaDriver::open(const std::string& library, std::string* why) {
#ifdef TRELLIS_HAVE_CUDA_HEADERS
  const bool noload = library.empty();
  const std::string path = noload ? "libcuda.so.1" : library;
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | (noload ? RTLD_NOLOAD : 0));
  if (lib == nullptr) {
    if (why)
      *why = noload ? "this process has not loaded the CUDA driver (libcuda.so.1): no device memory"
                    : formatString("cannot load the CUDA driver %s: %s", path.c_str(), dlerror());
    return nullptr;
  }
  std::shared_ptr<CudaDriver> d(new CudaDriver());
  d->lib_ = lib;
  d->own_ = true;  // RTLD_NOLOAD also takes a reference
  d->api_ = std::make_unique<Api>();
  Api& a = *d->api_;
  const char* missing = nullptr;
  auto sym = [&](const char* name, auto* f) {
    *f = reinterpret_cast<std::remove_pointer_t<decltype(f)>>(dlsym(lib, name));
    if (*f == nullptr && missing == nullptr) missing = name;
  };
  sym("cuPointerGetAttribute", &a.pointerGetAttribute);
  sym("cuMemGetHandleForAddressRange", &a.memGetHandleForAddressRange);
  sym("cuDeviceGetPCIBusId", &a.deviceGetPCIBusId);
  sym("cuDeviceGet", &a.deviceGet);
  sym("cuGetErrorString", &a.getErrorString);
  if (missing != nullptr) {
    // cuMemGetHandleForAddressRange needs a CUDA 11.7 driver.
    if (why)
      *why = formatString("the CUDA driver %s lacks %s (older than CUDA 11.7?)", path.c_str(),
                          missing);
    return nullptr;
  }
  return d;
#else
  (void)library;
  if (why) *why = "built without CUDA headers: GPUDirect RDMA is not compiled in";
  return nullptr;
#endif
}

CudaPointer CudaDriver::pointer(const void* p) const {
  CudaPointer out;
#ifdef TRELLIS_HAVE_CUDA_HEADERS
  const Api& a = *api_;
  const CUdeviceptr dp = reinterpret_cast<CUdeviceptr>(p);
  // Any failure (CUDA_ERROR_INVALID_VALUE for memory CUDA does not know, NOT_INITIALIZED in a
  // process that loaded the driver without cuInit) means host memory.
  unsigned int type = 0;
  if (a.pointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, dp) != CUDA_SUCCESS)
    return out;
  if (type != CU_MEMORYTYPE_DEVICE) return out;
  unsigned int managed = 0;
  if (a.pointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, dp) == CUDA_SUCCESS &&
      managed != 0) {
    out.managed = true;
    return out;
  }
  int ordinal = -1;
  CUdeviceptr start = 0;
  size_t size = 0;
  if (a.pointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, dp) != CUDA_SUCCESS ||
      a.pointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, dp) != CUDA_SUCCESS ||
      a.pointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, dp) != CUDA_SUCCESS)
    return out;
  out.device = true;
  out.ordinal = ordinal;
  out.base = static_cast<uintptr_t>(start);
  out.size = size;
#else
  (void)p;
#endif
  return out;
}

Result<int> CudaDriver::dmabufFd(uintptr_t base, size_t size) const {
#ifdef TRELLIS_HAVE_CUDA_HEADERS
  int fd = -1;
  CUresult r = api_->memGetHandleForAddressRange(&fd, static_cast<CUdeviceptr>(base), size,
                                                 CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
  if (r != CUDA_SUCCESS || fd < 0)
    return Status(
        Code::kCudaError,
        formatString("cuMemGetHandleForAddressRange(DMA_BUF_FD) of %zu bytes at 0x%lx: %s", size,
                     static_cast<unsigned long>(base), api_->error(r).c_str()));
  return fd;
#else
  (void)base;
  (void)size;
  return internalError("built without CUDA headers");
#endif
}

Result<std::string> CudaDriver::busId(int ordinal) const {
#ifdef TRELLIS_HAVE_CUDA_HEADERS
  CUdevice dev = 0;
  char bus[64] = {};
  CUresult r = api_->deviceGet(&dev, ordinal);
  if (r == CUDA_SUCCESS) r = api_->deviceGetPCIBusId(bus, sizeof bus, dev);
  if (r != CUDA_SUCCESS)
    return Status(Code::kCudaError, formatString("cuDeviceGetPCIBusId of CUDA device %d: %s",
                                                 ordinal, api_->error(r).c_str()));
  return std::string(bus);
#else
  (void)ordinal;
  return internalError("built without CUDA headers");
#endif
}

// ---------------------------------------------------------------------------------------------
// Registration.

GdrVerbs GdrVerbs::real() {
  GdrVerbs v;
  v.regDmabuf = [](ibv_pd* pd, uint64_t offset, size_t len, uint64_t iova, int fd, int access) {
    return ibv_reg_dmabuf_mr(pd, offset, len, iova, fd, access);
  };
  v.regMr = [](ibv_pd* pd, void* addr, size_t len, int access) {
    return ibv_reg_mr(pd, addr, len, access);
  };
  return v;
}

Result<ibv_mr*> regDeviceMemory(ibv_pd* pd, const std::string& dev, const CudaDriver& cuda,
                                const CudaPointer& ptr, uintptr_t addr, size_t len, int access,
                                const GdrVerbs& verbs, bool* viaDmabuf) {
  // cuMemGetHandleForAddressRange wants host-page alignment: export the allocation's pages and
  // register our range at its offset in them (the cache asks for whole pages).
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t lo = ptr.base & ~(page - 1);
  const uintptr_t hi = (ptr.base + ptr.size + page - 1) & ~(page - 1);
  if (!ptr.device || len == 0 || addr < lo || addr + len > hi)
    return invalidArgument(
        "device registration of %zu bytes at 0x%lx on %s: outside the pages of its CUDA "
        "allocation (0x%lx, %zu bytes)",
        len, static_cast<unsigned long>(addr), dev.c_str(), static_cast<unsigned long>(ptr.base),
        ptr.size);
  std::string dmabufWhy;
  Result<int> fd = cuda.dmabufFd(lo, hi - lo);
  if (fd) {
    errno = 0;
    ibv_mr* mr = verbs.regDmabuf(pd, addr - lo, len, addr, fd.value(), access);
    const int err = errno;
    ::close(fd.value());  // the registration holds its own reference to the dmabuf
    if (mr != nullptr) {
      if (viaDmabuf) *viaDmabuf = true;
      return mr;
    }
    dmabufWhy = formatString("ibv_reg_dmabuf_mr: %s", std::strerror(err != 0 ? err : EINVAL));
  } else {
    dmabufWhy = fd.status().message();
  }
  errno = 0;
  ibv_mr* mr = verbs.regMr(pd, reinterpret_cast<void*>(addr), len, access);
  if (mr != nullptr) {
    if (viaDmabuf) *viaDmabuf = false;
    TRELLIS_DEBUG(kNet,
                  "GPUDirect: %zu bytes at 0x%lx on %s registered through peer memory (dmabuf "
                  "failed: %s)",
                  len, static_cast<unsigned long>(addr), dev.c_str(), dmabufWhy.c_str());
    return mr;
  }
  const int err = errno != 0 ? errno : EINVAL;
  return Status(
      Code::kSystemError,
      formatString("cannot register %zu bytes of CUDA device %d memory at 0x%lx on %s for "
                   "GPUDirect RDMA: dmabuf: %s; peer memory: ibv_reg_mr: %s (is the "
                   "nvidia-peermem module loaded?)",
                   len, ptr.ordinal, static_cast<unsigned long>(addr), dev.c_str(),
                   dmabufWhy.c_str(), std::strerror(err)));
}

// ---------------------------------------------------------------------------------------------
// Per-transport state.

GdrContext::GdrContext(Mode mode, std::unique_ptr<topo::System> sys, std::string driverLibrary,
                       GdrVerbs verbs)
    : mode_(mode),
      sys_(std::move(sys)),
      sysTried_(sys_ != nullptr),
      library_(std::move(driverLibrary)),
      verbs_(std::move(verbs)) {}

CudaPointer GdrContext::classify(const void* addr) {
  std::lock_guard<std::mutex> l(mu_);
  if (driver_ == nullptr) {
    // Looked up again on each call until found: CUDA may be loaded after the communicator.
    driver_ = CudaDriver::open(library_, &driverWhy_);
    if (driver_ == nullptr) return CudaPointer{};
  }
  return driver_->pointer(addr);
}

GdrChoice GdrContext::choose(int ordinal, const PortInfo& nic) {
  std::lock_guard<std::mutex> l(mu_);
  const auto key = std::make_pair(ordinal, nic.dev + ":" + std::to_string(nic.port));
  auto it = choices_.find(key);
  if (it != choices_.end()) return it->second;
  GdrChoice c;
  c.path = topo::PathKind::kNet;
  if (mode_ == Mode::kOff) {
    c.why = "TRELLIS_IB_GDR=off";
  } else if (driver_ == nullptr) {
    c.why = driverWhy_.empty() ? "no CUDA driver" : driverWhy_;
  } else {
    if (!sysTried_) {
      sysTried_ = true;
      Result<topo::System> s = topo::detectLocalSystem();
      if (s)
        sys_ = std::make_unique<topo::System>(std::move(s.value()));
      else
        sysError_ = s.status().message();
    }
    Result<std::string> bus = driver_->busId(ordinal);
    if (!bus)
      c.why = bus.status().message();
    else if (sys_ == nullptr)
      c.why = "no topology (" + sysError_ + ")";
    else
      c = chooseGdr(*sys_, bus.value(), nic);
  }
  TRELLIS_INFO(kNet, "GPUDirect RDMA for CUDA device %d on %s: %s (%s)", ordinal, nic.dev.c_str(),
               c.direct ? "direct" : "host staging", c.why.c_str());
  choices_.emplace(key, c);
  return c;
}

Result<ibv_mr*> GdrContext::registerDevice(ibv_pd* pd, const PortInfo& nic, const CudaPointer& ptr,
                                           uintptr_t addr, size_t len, int access) {
  GdrChoice c = choose(ptr.ordinal, nic);
  std::shared_ptr<CudaDriver> d;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!c.direct) ++stats_.refused;
    d = driver_;
  }
  if (!c.direct)
    return invalidUsage(
        "CUDA device %d memory at 0x%lx (%zu bytes) is not registered on %s for GPUDirect RDMA: "
        "%s; stage it through host memory",
        ptr.ordinal, static_cast<unsigned long>(addr), len, nic.dev.c_str(), c.why.c_str());
  bool viaDmabuf = false;
  Result<ibv_mr*> mr = regDeviceMemory(pd, nic.dev, *d, ptr, addr, len, access, verbs_, &viaDmabuf);
  if (mr) {
    std::lock_guard<std::mutex> l(mu_);
    ++(viaDmabuf ? stats_.dmabuf : stats_.peerMemory);
  }
  return mr;
}

GdrContext::Stats GdrContext::stats() {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

}  // namespace trellis::transport::verbs
