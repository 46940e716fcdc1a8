#include "topo/cuda_devices.h"

#include <dlfcn.h>

#include "core/log.h"

namespace trellis::topo {

namespace {

// The driver calls used (cuda.h, stable since CUDA 4): results are ints, 0 = CUDA_SUCCESS;
// CUdevice is an int.
struct DriverApi {
  int (*init)(unsigned) = nullptr;
  int (*count)(int*) = nullptr;
  int (*get)(int*, int) = nullptr;
  int (*busId)(char*, int, int) = nullptr;
};

template <typename F>
bool sym(void* lib, const char* name, F* f) {
  *f = reinterpret_cast<F>(dlsym(lib, name));
  return *f != nullptr;
}

}  // namespace

Status addCudaDeviceIds(System& s, const std::string& library) {
  std::vector<int> gpus = s.ofKind(NodeKind::kGpu);
  if (gpus.empty()) return Status::ok();
  const std::string path = library.empty() ? "libcuda.so.1" : library;
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    TRELLIS_INFO(kTopo, "CUDA driver not available (%s): CUDA ordinals of %zu GPU(s) unknown", dlerror(), gpus.size());
    return Status::ok();
  }
  DriverApi a;
  bool ok = sym(lib, "cuInit", &a.init) && sym(lib, "cuDeviceGetCount", &a.count) &&
            sym(lib, "cuDeviceGet", &a.get) && sym(lib, "cuDeviceGetPCIBusId", &a.busId);
  int rc = ok ? a.init(0) : -1;
  int n = 0;
  if (!ok || rc != 0 || a.count(&n) != 0) {
    TRELLIS_INFO(kTopo, "CUDA driver at %s unusable (%s, cuInit %d): CUDA ordinals unknown", path.c_str(),
                 ok ? "call failed" : "missing symbols", rc);
    dlclose(lib);
    return Status::ok();
  }
  std::vector<bool> seen(s.nodes.size(), false);
  for (int ordinal = 0; ordinal < n; ++ordinal) {
    int dev = 0;
    char bus[64] = {};
    if (a.get(&dev, ordinal) != 0 || a.busId(bus, sizeof bus, dev) != 0) continue;
    int node = s.findBusId(bus);
    if (node < 0 || s.nodes[node].kind != NodeKind::kGpu) {
      TRELLIS_INFO(kTopo, "CUDA device %d at %s is not a GPU of the topology", ordinal, bus);
      continue;
    }
    s.nodes[node].gpuDev = ordinal;
    seen[node] = true;
  }
  for (int g : gpus)
    if (!seen[g]) {
      Node& node = s.nodes[g];
      node.note += (node.note.empty() ? "" : "; ") + std::string("not visible to CUDA (CUDA_VISIBLE_DEVICES?)");
    }
  dlclose(lib);
  return Status::ok();
}

}  // namespace trellis::topo
