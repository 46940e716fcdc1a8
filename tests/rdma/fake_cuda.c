/* A stand-in for libcuda.so.1 with the few driver calls GPUDirect RDMA registration makes
 * (src/transport/verbs/gpu_direct.cc), for host tests on machines without a GPU: one "device
 * allocation" that the test declares, pointer attributes for it, a dmabuf export that returns a
 * memfd (or fails on request), and a PCI bus id per device. Values follow cuda.h (written out here
 * so this file needs no CUDA headers). Not a model of CUDA beyond that. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

enum {
  kSuccess = 0,
  kInvalidValue = 1,
  kNotInitialized = 3,
  kNotSupported = 801,
  kAttrMemoryType = 2,
  kAttrIsManaged = 8,
  kAttrDeviceOrdinal = 9,
  kAttrRangeStart = 11,
  kAttrRangeSize = 12,
  kMemoryTypeDevice = 2,
  kHandleDmabufFd = 1,
};

static uintptr_t gBase, gSize;
static int gOrdinal = 0, gManaged = 0, gFailDmabuf = 0, gInitialized = 1;
static char gBus[64] = "0000:00:00.0";
static uintptr_t gLastExportBase;
static size_t gLastExportSize;

/* Test controls. */
EXPORT void fakeCudaSetAllocation(uintptr_t base, size_t size, int ordinal, int managed) {
  gBase = base;
  gSize = size;
  gOrdinal = ordinal;
  gManaged = managed;
}
EXPORT void fakeCudaSetBusId(const char* bus) { snprintf(gBus, sizeof gBus, "%s", bus); }
EXPORT void fakeCudaFailDmabuf(int fail) { gFailDmabuf = fail; }
EXPORT void fakeCudaSetInitialized(int init) { gInitialized = init; }
/* Ranks running as threads of one process export at once (the real driver is thread-safe): the
 * last export is kept with atomic stores (ThreadSanitizer found the plain ones racing). */
EXPORT void fakeCudaLastExport(uintptr_t* base, size_t* size) {
  *base = __atomic_load_n(&gLastExportBase, __ATOMIC_ACQUIRE);
  *size = __atomic_load_n(&gLastExportSize, __ATOMIC_ACQUIRE);
}

/* Driver calls. */
EXPORT int cuPointerGetAttribute(void* data, int attribute, unsigned long long ptr) {
  if (!gInitialized) return kNotInitialized;
  if (ptr < gBase || ptr >= gBase + gSize) return kInvalidValue;
  switch (attribute) {
    case kAttrMemoryType: *(unsigned int*)data = kMemoryTypeDevice; return kSuccess;
    case kAttrIsManaged: *(unsigned int*)data = (unsigned int)gManaged; return kSuccess;
    case kAttrDeviceOrdinal: *(int*)data = gOrdinal; return kSuccess;
    case kAttrRangeStart: *(unsigned long long*)data = gBase; return kSuccess;
    case kAttrRangeSize: *(size_t*)data = gSize; return kSuccess;
    default: return kInvalidValue;
  }
}

EXPORT int cuMemGetHandleForAddressRange(void* handle, unsigned long long dptr, size_t size,
                                         int type, unsigned long long flags) {
  long page = sysconf(_SC_PAGESIZE);
  if (type != kHandleDmabufFd || flags != 0) return kInvalidValue;
  if (dptr % (unsigned long long)page != 0 || size % (size_t)page != 0) return kInvalidValue;
  if (gFailDmabuf) return kNotSupported;
  int fd = memfd_create("fake-dmabuf", MFD_CLOEXEC);
  if (fd < 0) return kInvalidValue;
  __atomic_store_n(&gLastExportBase, (uintptr_t)dptr, __ATOMIC_RELEASE);
  __atomic_store_n(&gLastExportSize, size, __ATOMIC_RELEASE);
  *(int*)handle = fd;
  return kSuccess;
}

EXPORT int cuDeviceGet(int* dev, int ordinal) {
  if (ordinal != gOrdinal) return kInvalidValue;
  *dev = ordinal;
  return kSuccess;
}

EXPORT int cuDeviceGetPCIBusId(char* bus, int len, int dev) {
  if (dev != gOrdinal) return kInvalidValue;
  snprintf(bus, (size_t)len, "%s", gBus);
  return kSuccess;
}

EXPORT int cuGetErrorString(int error, const char** str) {
  switch (error) {
    case kNotSupported: *str = "operation not supported"; return kSuccess;
    case kInvalidValue: *str = "invalid argument"; return kSuccess;
    case kNotInitialized: *str = "initialization error"; return kSuccess;
    default: return kInvalidValue;
  }
}
