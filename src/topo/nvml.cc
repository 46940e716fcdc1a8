#include "topo/nvml.h"

#include <dlfcn.h>

#include <map>

#include "core/log.h"

namespace trellis::topo {

namespace {

// The few NVML declarations we use (nvml.h, stable since NVML 9): handles are opaque pointers,
// results are ints with 0 = success, and nvmlPciInfo_t has this layout in every _v2/_v3 call.
using NvmlDevice = void*;
struct NvmlPciInfo {
  char busIdLegacy[16];
  unsigned domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
};
constexpr int kNvmlSuccess = 0;
constexpr int kNvmlNotSupported = 3;
constexpr int kNvmlMaxLinks = 36;  // NVML_NVLINK_MAX_LINKS in current headers
constexpr int kNvmlRemoteSwitch = 2;

struct Api {
  void* lib = nullptr;
  int (*init)() = nullptr;
  int (*shutdown)() = nullptr;
  int (*byBusId)(const char*, NvmlDevice*) = nullptr;
  int (*linkState)(NvmlDevice, unsigned, int*) = nullptr;
  int (*remotePci)(NvmlDevice, unsigned, NvmlPciInfo*) = nullptr;
  int (*remoteType)(NvmlDevice, unsigned, int*) = nullptr;  // optional (NVML 11.4+)
  int (*version)(NvmlDevice, unsigned, unsigned*) = nullptr;
  int (*capability)(NvmlDevice, int*, int*) = nullptr;
};

template <typename F>
bool sym(void* lib, const char* name, F* f) {
  *f = reinterpret_cast<F>(dlsym(lib, name));
  return *f != nullptr;
}

// "00000000:34:00.0" -> "0000:34:00.0"
std::string shortBusId(const char* b) {
  std::string s(b);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s.size() > 12 ? s.substr(s.size() - 12) : s;
}

void markUnknown(System& s, const std::string& why) {
  for (int g : s.ofKind(NodeKind::kGpu)) {
    Node& n = s.nodes[g];
    n.degraded = true;
    n.note += (n.note.empty() ? "" : "; ") + ("NVLink unknown: " + why);
  }
}

}  // namespace

Status addNvmlFacts(System& s, const std::string& library) {
  std::vector<int> gpus = s.ofKind(NodeKind::kGpu);
  if (gpus.empty()) return Status::ok();
  const std::string path = library.empty() ? "libnvidia-ml.so.1" : library;
  Api a;
  a.lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (a.lib == nullptr) {
    TRELLIS_INFO(kTopo, "NVML not available (%s): NVLink facts of %zu GPU(s) marked unknown", dlerror(), gpus.size());
    markUnknown(s, "NVML not available");
    return Status::ok();
  }
  bool ok = sym(a.lib, "nvmlInit_v2", &a.init) && sym(a.lib, "nvmlShutdown", &a.shutdown) &&
            sym(a.lib, "nvmlDeviceGetHandleByPciBusId_v2", &a.byBusId) &&
            sym(a.lib, "nvmlDeviceGetNvLinkState", &a.linkState) &&
            sym(a.lib, "nvmlDeviceGetNvLinkRemotePciInfo_v2", &a.remotePci) &&
            sym(a.lib, "nvmlDeviceGetNvLinkVersion", &a.version) &&
            sym(a.lib, "nvmlDeviceGetCudaComputeCapability", &a.capability);
  sym(a.lib, "nvmlDeviceGetNvLinkRemoteDeviceType", &a.remoteType);
  if (!ok || a.init() != kNvmlSuccess) {
    TRELLIS_INFO(kTopo, "NVML at %s is unusable (%s): NVLink facts marked unknown", path.c_str(),
                 ok ? "nvmlInit failed" : "missing symbols");
    markUnknown(s, ok ? "nvmlInit failed" : "NVML lacks the NVLink calls");
    dlclose(a.lib);
    return Status::ok();
  }
  for (int g : gpus) {
    NvmlDevice dev = nullptr;
    if (a.byBusId(s.nodes[g].busId.c_str(), &dev) != kNvmlSuccess) {
      s.nodes[g].degraded = true;
      s.nodes[g].note += (s.nodes[g].note.empty() ? "" : "; ") + std::string("NVML does not know this GPU");
      continue;
    }
    int major = 0, minor = 0;
    if (a.capability(dev, &major, &minor) == kNvmlSuccess) s.nodes[g].sm = major * 10 + minor;
    std::map<std::string, NvLink> byPeer;
    for (unsigned link = 0; link < kNvmlMaxLinks; ++link) {
      int active = 0;
      int rc = a.linkState(dev, link, &active);
      if (rc == kNvmlNotSupported) break;
      if (rc != kNvmlSuccess || !active) continue;
      NvmlPciInfo pci{};
      if (a.remotePci(dev, link, &pci) != kNvmlSuccess) continue;
      NvLink& l = byPeer[shortBusId(pci.busId)];
      l.from = g;
      l.target = shortBusId(pci.busId);
      l.source = Source::kNvml;
      ++l.count;
      int type = -1;
      if (a.remoteType && a.remoteType(dev, link, &type) == kNvmlSuccess && type == kNvmlRemoteSwitch)
        l.targetClass = 0x068000;
      unsigned v = 0;
      // NVML_NVLINK_VERSION_1_0 = 1 ... 4_0 = 6, 5_0 = 7: 1, 2, 2.2, 3, 3.1, 4, 5.
      if (a.version(dev, link, &v) == kNvmlSuccess) l.version = v <= 2 ? static_cast<int>(v) : v <= 5 ? 3 : static_cast<int>(v) - 2;
      l.gbpsPerLink = nvlinkGBpsPerLink(l.version);
    }
    for (auto& [peer, l] : byPeer) s.nvlinks.push_back(l);
  }
  a.shutdown();
  dlclose(a.lib);
  s.resolveNvLinks();
  return Status::ok();
}

}  // namespace trellis::topo
