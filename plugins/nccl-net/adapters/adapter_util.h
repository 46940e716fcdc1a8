// Shared pieces of the per-version adapters: the plugin name, and the int -> size_t checks of the
// versions whose sizes are int (v6..v8).
#pragma once

#include <cstddef>

#include "abi/nccl_abi.h"
#include "core/net_core.h"
#include "core/plugin_log.h"

// Exported plugin tables are defined inside extern "C" { } (an `extern "C" T x = {...}` draws a
// warning).
#define TRELLIS_NCCL_EXPORT __attribute__((visibility("default")))

namespace trellis::ncclnet::adapt {

using nccl_abi::Result;

/// NCCL_NET=Trellis selects this plugin (NCCL compares names case-insensitively).
constexpr const char* kPluginName = "Trellis";

inline Result badSize(const char* call, long long size) {
  NCCLNET_WARN(nccl_abi::kFlagNet, "%s: negative size %lld", call, size);
  return nccl_abi::kInvalidArgument;
}

inline Result regMrInt(void* comm, void* data, int size, int type, void** mhandle) {
  if (size < 0) return badSize("regMr", size);
  return core::regMr(comm, data, static_cast<size_t>(size), type, mhandle);
}

inline Result isendInt(void* sendComm, void* data, int size, int tag, void* mhandle,
                       void** request) {
  if (size < 0) return badSize("isend", size);
  return core::isend(sendComm, data, static_cast<size_t>(size), tag, mhandle, request);
}

inline Result irecvInt(void* recvComm, int n, void** data, int* sizes, int* tags, void** mhandles,
                       void** request) {
  if (n < 1 || n > core::kMaxRecvsCap)
    return core::irecv(recvComm, n, data, nullptr, tags, mhandles, request);
  size_t wide[core::kMaxRecvsCap];
  for (int i = 0; i < n; ++i) {
    if (sizes == nullptr) break;
    if (sizes[i] < 0) return badSize("irecv", sizes[i]);
    wide[i] = static_cast<size_t>(sizes[i]);
  }
  return core::irecv(recvComm, n, data, sizes != nullptr ? wide : nullptr, tags, mhandles, request);
}

inline Result iflush(void* recvComm, int n, void** data, int* sizes, void** mhandles,
                     void** request) {
  return core::iflush(recvComm, n, data, sizes, mhandles, request);
}

/// Properties of the newest version, for the copies into older layouts.
inline Result props(int dev, nccl_abi::NetPropertiesV11* p) { return core::getProperties(dev, p); }

}  // namespace trellis::ncclnet::adapt
