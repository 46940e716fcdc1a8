/* A stand-in for libcuda.so.1 and libnvidia-ml.so.1 (one library exporting the calls Trellis
 * dlopens), so the driver paths of the topology run without a GPU. It describes two H100-like
 * GPUs, 0000:1b:00.0 and 0000:1a:00.0 — CUDA lists them in that (non-PCI) order, with NVIDIA's
 * 8-digit, upper-case bus ids — each with 2 NVLinks (version 4) to the other and 4 to an NVSwitch
 * at 0000:e0:00.0, and links 6.. inactive. The values mimic the documented API, not a real driver;
 * the test checks that Trellis reads what the calls report. */
#include <stdio.h>
#include <string.h>

static const char* kCudaBus[2] = {"00000000:1B:00.0", "00000000:1A:00.0"};

int cuInit(unsigned flags) { return flags == 0 ? 0 : 1; }
int cuDeviceGetCount(int* n) { *n = 2; return 0; }
int cuDeviceGet(int* dev, int ordinal) {
  if (ordinal < 0 || ordinal > 1) return 101; /* CUDA_ERROR_INVALID_DEVICE */
  *dev = ordinal;
  return 0;
}
int cuDeviceGetPCIBusId(char* out, int len, int dev) {
  if (dev < 0 || dev > 1 || len < 17) return 1;
  snprintf(out, (size_t)len, "%s", kCudaBus[dev]);
  return 0;
}

typedef struct {
  char busIdLegacy[16];
  unsigned domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
} PciInfo;

static int gInit = 0;
int nvmlInit_v2(void) { gInit = 1; return 0; }
int nvmlShutdown(void) { gInit = 0; return 0; }
/* Device handles: 1 for 1a, 2 for 1b. */
int nvmlDeviceGetHandleByPciBusId_v2(const char* bus, void** dev) {
  if (!gInit) return 1;
  if (strstr(bus, "1a:00.0") || strstr(bus, "1A:00.0")) { *dev = (void*)1; return 0; }
  if (strstr(bus, "1b:00.0") || strstr(bus, "1B:00.0")) { *dev = (void*)2; return 0; }
  return 6; /* NVML_ERROR_NOT_FOUND */
}
int nvmlDeviceGetCudaComputeCapability(void* dev, int* major, int* minor) {
  (void)dev;
  *major = 9;
  *minor = 0;
  return 0;
}
enum { kLinks = 18 };
int nvmlDeviceGetNvLinkState(void* dev, unsigned link, int* active) {
  (void)dev;
  if (link >= kLinks) return 3; /* NVML_ERROR_NOT_SUPPORTED ends the scan */
  *active = link < 6;
  return 0;
}
int nvmlDeviceGetNvLinkRemotePciInfo_v2(void* dev, unsigned link, PciInfo* pci) {
  memset(pci, 0, sizeof *pci);
  const char* peer = link < 2 ? ((long)dev == 1 ? "00000000:1B:00.0" : "00000000:1A:00.0") : "00000000:E0:00.0";
  snprintf(pci->busId, sizeof pci->busId, "%s", peer);
  return 0;
}
int nvmlDeviceGetNvLinkRemoteDeviceType(void* dev, unsigned link, int* type) {
  (void)dev;
  *type = link < 2 ? 0 : 2; /* GPU, SWITCH */
  return 0;
}
int nvmlDeviceGetNvLinkVersion(void* dev, unsigned link, unsigned* v) {
  (void)dev;
  (void)link;
  *v = 6; /* NVML_NVLINK_VERSION_4_0 */
  return 0;
}
