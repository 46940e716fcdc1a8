// GPUDirect RDMA: registering CUDA device memory with an RDMA NIC so the NIC reads and writes GPU
// memory directly, instead of staging it through host memory.
//
// - Which path: direct only when the topology puts the GPU and the NIC under one PCIe switch
//   (path PIX or PXB, NCCL's default GPUDirect level): peer-to-peer traffic then stays below the
//   switch. Through a CPU root complex (PHB, NODE, SYS), or with either device unknown to the
//   topology, host staging is used (TRELLIS_IB_GDR=off forces it everywhere).
// - How: a dmabuf of the allocation (cuMemGetHandleForAddressRange with
//   CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD) registered with ibv_reg_dmabuf_mr; when that fails (a
//   driver or kernel without dmabuf support), ibv_reg_mr of the device address itself, which works
//   when the nvidia-peermem module is loaded.
// - The CUDA driver is never linked: libcuda.so.1 is looked up with dlopen(RTLD_NOLOAD), so only a
//   process that already uses CUDA can have device pointers, and Trellis never initialises CUDA
//   itself. Without CUDA headers at build time the device path is not compiled (every pointer is
//   host memory and the driver calls report so).
//
// Never run on a GPU yet: the selection rule and the driver glue are tested with fixture
// topologies and a fake driver (tests/rdma/test_verbs_unit.cc); see docs/VERBS.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/status.h"
#include "topo/model.h"
#include "topo/paths.h"
#include "transport/verbs/device.h"

struct ibv_pd;
struct ibv_mr;

namespace trellis::transport::verbs {

/// Whether GPUDirect RDMA code was compiled in (CUDA headers found at build time).
bool gdrCompiled();

/// GPUDirect RDMA or host staging, for one GPU and one NIC.
struct GdrChoice {
  bool direct = false;
  topo::PathKind path = topo::PathKind::kSys;  // GPU <-> NIC in the topology (kNet: unknown)
  std::string why;  // "GPU 0000:1b:00.0 and NIC mlx5_0 share a PCIe switch (PIX)"
};

/// The rule: direct exactly when GPU node `gpu` and NIC node `nic` of `sys` have a PCIe switch as
/// their lowest common ancestor (path PIX or PXB); host staging otherwise, or when either is not
/// a node of `sys` (-1).
GdrChoice chooseGdr(const topo::System& sys, int gpu, int nic);
/// The same by identity: the GPU by PCI bus id (any of CUDA's, NVML's or sysfs's spellings), the
/// NIC as a verbs port (its PCI address, else its device name in the topology's NIC ports).
GdrChoice chooseGdr(const topo::System& sys, const std::string& gpuBusId, const PortInfo& nic);

/// What the CUDA driver says about an address.
struct CudaPointer {
  bool device = false;   // device memory (cuMemAlloc / cudaMalloc / cuMemMap)
  bool managed = false;  // managed memory (cudaMallocManaged): not registered directly
  int ordinal = -1;      // CUDA device ordinal of the memory
  uintptr_t base = 0;    // its allocation
  size_t size = 0;
};

/// The CUDA driver entry points the device path needs, from a dlopen'ed libcuda.so.1.
class CudaDriver {
 public:
  /// `library` empty: libcuda.so.1 if this process has loaded it already (RTLD_NOLOAD), else null
  /// with `*why` saying so. A path: dlopen that file (tests load a fake driver). Null with `*why`
  /// when the library or one of its symbols is missing, or when built without CUDA headers.
  static std::shared_ptr<CudaDriver> open(const std::string& library, std::string* why);
  ~CudaDriver();
  CudaDriver(const CudaDriver&) = delete;
  CudaDriver& operator=(const CudaDriver&) = delete;

  /// Host memory (device == false) for any address CUDA does not know, including when the driver
  /// is not initialised in this process.
  CudaPointer pointer(const void* p) const;
  /// A dmabuf file descriptor for [base, base+size) (host-page aligned), owned by the caller.
  Result<int> dmabufFd(uintptr_t base, size_t size) const;
  /// PCI bus id of device `ordinal` ("0000:1b:00.0").
  Result<std::string> busId(int ordinal) const;

  struct Api;

 private:
  CudaDriver() = default;
  void* lib_ = nullptr;
  bool own_ = false;  // dlclose at destruction
  std::unique_ptr<Api> api_;
};

/// The two verbs calls of device registration (real ones by default; fakes in tests).
struct GdrVerbs {
  std::function<ibv_mr*(ibv_pd*, uint64_t offset, size_t len, uint64_t iova, int fd, int access)>
      regDmabuf;
  std::function<ibv_mr*(ibv_pd*, void* addr, size_t len, int access)> regMr;
  static GdrVerbs real();
};

/// Registers device memory [addr, addr+len) (inside the allocation `ptr` describes) on `pd` of
/// device `dev` with `access`: a dmabuf of the allocation's pages registered with
/// ibv_reg_dmabuf_mr (iova = addr), else ibv_reg_mr of the device address (nvidia-peermem). The
/// error names what each attempt said.
/// `*viaDmabuf` (optional) tells which way succeeded.
Result<ibv_mr*> regDeviceMemory(ibv_pd* pd, const std::string& dev, const CudaDriver& cuda,
                                const CudaPointer& ptr, uintptr_t addr, size_t len, int access,
                                const GdrVerbs& verbs, bool* viaDmabuf = nullptr);

/// Per-transport GPUDirect state: the CUDA driver (looked up on first need), the topology (detected
/// once, on first device pointer) and the choice for each (GPU, NIC) pair, cached.
class GdrContext {
 public:
  enum class Mode { kAuto, kOff };
  /// `sys` null: detect the local topology when first needed. `driverLibrary` as CudaDriver::open.
  GdrContext(Mode mode, std::unique_ptr<topo::System> sys = nullptr, std::string driverLibrary = "",
             GdrVerbs verbs = GdrVerbs::real());

  /// The CUDA view of `addr` (host memory when CUDA is not in this process).
  CudaPointer classify(const void* addr);
  /// Direct or staged for GPU `ordinal` and `nic`.
  GdrChoice choose(int ordinal, const PortInfo& nic);
  /// Registers device memory for `nic` on `pd` when the choice is direct; otherwise an error that
  /// says why and that the caller must stage through host memory.
  Result<ibv_mr*> registerDevice(ibv_pd* pd, const PortInfo& nic, const CudaPointer& ptr,
                                 uintptr_t addr, size_t len, int access);
  Mode mode() const { return mode_; }
  /// Device registrations made through a dmabuf, through peer memory, and refused (staging).
  struct Stats {
    uint64_t dmabuf = 0, peerMemory = 0, refused = 0;
  };
  Stats stats();

 private:
  std::mutex mu_;
  Mode mode_;
  std::unique_ptr<topo::System> sys_;
  bool sysTried_ = false;
  std::string sysError_;
  std::string library_;
  std::shared_ptr<CudaDriver> driver_;
  std::string driverWhy_;
  GdrVerbs verbs_;
  std::map<std::pair<int, std::string>, GdrChoice> choices_;  // (ordinal, NIC dev:port)
  Stats stats_;
};

/// Reads TRELLIS_IB_GDR (auto | off).
Result<GdrContext::Mode> gdrModeFromParams();

}  // namespace trellis::transport::verbs
