// A version-neutral driver over the ncclNetPlugin_vN tables of a dlopen'ed plugin: each call is
// made with exactly the argument types of its version (int sizes up to v8, device-handle and
// profiler arguments where the version has them, a context from v11), as NCCL's own adapters do.
#pragma once

#include <dlfcn.h>

#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "abi/nccl_abi.h"

namespace nccltest {

namespace abi = trellis::nccl_abi;
using abi::Result;

/// The fields of the properties every test looks at; -1 / 0 where the version has no such field.
struct Props {
  std::string name;
  std::string pciPath;  // "" for NULL
  bool pciPathNull = true;
  uint64_t guid = 0;
  int ptrSupport = 0, speed = 0, port = 0, maxComms = 0, maxRecvs = 0;
  int regIsGlobal = -1, forceFlush = -1, netDeviceType = -1;
  int vNdevs = -1;
  int vDevs[abi::kMaxDevsPerNic] = {};
  size_t maxP2pBytes = 0, maxCollBytes = 0;
  int maxMultiRequestSize = -1;
};

/// Log lines NCCL's logger would have received.
struct LogLine {
  int level;
  unsigned long flags;
  std::string text;
};
std::vector<LogLine> logLines();
void clearLog();
/// The logger handed to init.
void testLogger(abi::LogLevel level, unsigned long flags, const char* file, int line,
                const char* fmt, ...);

class NetApi {
 public:
  virtual ~NetApi() = default;
  virtual int version() const = 0;
  virtual const char* name() const = 0;
  /// v11: a new context in *ctx; older versions: *ctx = nullptr (one init per process).
  virtual Result init(void** ctx, int trafficClass = -1) = 0;
  virtual Result finalize(void* ctx) = 0;                        // v11 only; success elsewhere
  virtual Result setNetAttr(void* ctx, abi::NetAttr* attr) = 0;  // v11 only
  virtual Result devices(int* n) = 0;
  virtual Result getProperties(int dev, Props* p) = 0;
  virtual Result listen(void* ctx, int dev, void* handle, void** lc) = 0;
  virtual Result connect(void* ctx, int dev, void* handle, void** sc) = 0;
  virtual Result accept(void* lc, void** rc) = 0;
  virtual Result regMr(void* comm, void* data, size_t size, int type, void** mh) = 0;
  virtual Result deregMr(void* comm, void* mh) = 0;
  virtual Result isend(void* sc, void* data, size_t size, int tag, void* mh, void** req) = 0;
  virtual Result irecv(void* rc, int n, void** data, size_t* sizes, int* tags, void** mhs,
                       void** req) = 0;
  virtual Result iflush(void* rc, int n, void** data, int* sizes, void** mhs, void** req) = 0;
  virtual Result test(void* req, int* done, int* sizes) = 0;
  virtual Result closeSend(void* c) = 0;
  virtual Result closeRecv(void* c) = 0;
  virtual Result closeListen(void* c) = 0;
  virtual bool hasMakeVDevice() const = 0;
  virtual Result makeVDevice(int* d, abi::NetVDeviceProps* props) = 0;
};

/// Looks up ncclNetPlugin_v<version> in `lib`; nullptr (and a message in *why) if absent.
std::unique_ptr<NetApi> loadNet(void* lib, int version, std::string* why);

}  // namespace nccltest
