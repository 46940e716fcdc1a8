// The one implementation behind every ncclNetPlugin_vN: argument checks, contexts (v11 per
// communicator; one shared, reference-counted init for v6..v10), devices and virtual devices,
// the registration cache, connection staging in the listen handle, and the translation of
// Status into ncclResult_t with a log line naming the values. adapters/net_vN.cc only convert
// argument and property types.
#pragma once

#include <cstddef>
#include <cstdint>

#include "abi/nccl_abi.h"

namespace trellis::ncclnet::core {

using nccl_abi::Result;

/// v11: *ctx receives a new context (finalize frees it). v6..v10 pass ctx == nullptr: the first
/// successful call initialises the plugin, later ones only check it is still usable.
Result init(void** ctx, uint64_t commId, const nccl_abi::NetCommConfig* config,
            nccl_abi::Logger log, int abi);
Result finalize(void* ctx);
Result setNetAttr(void* ctx, const nccl_abi::NetAttr* attr);
Result devices(int* ndev);
/// Every field of the newest properties; adapters copy what their version has.
Result getProperties(int dev, nccl_abi::NetPropertiesV11* props);
Result listen(void* ctx, int dev, void* handle, void** listenComm);
/// `config` (v10) overrides the context's traffic class; nullptr otherwise.
Result connect(void* ctx, int dev, const nccl_abi::NetCommConfig* config, void* handle,
               void** sendComm);
Result accept(void* listenComm, void** recvComm);
Result regMr(void* comm, void* data, size_t size, int type, void** mhandle);
Result regMrDmaBuf(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                   void** mhandle);
Result deregMr(void* comm, void* mhandle);
Result isend(void* sendComm, void* data, size_t size, int tag, void* mhandle, void** request);
Result irecv(void* recvComm, int n, void** data, const size_t* sizes, const int* tags,
             void** mhandles, void** request);
Result iflush(void* recvComm, int n, void** data, const int* sizes, void** mhandles,
              void** request);
Result test(void* request, int* done, int* sizes);
Result closeSend(void* sendComm);
Result closeRecv(void* recvComm);
Result closeListen(void* listenComm);
Result getDeviceMr(void* comm, void* mhandle, void** dptrMhandle);
Result irecvConsumed(void* recvComm, int n, void* request);
Result makeVDevice(int* d, const nccl_abi::NetVDeviceProps* props);

/// Largest number of buffers one irecv may carry in any version (adapters size their copies).
constexpr int kMaxRecvsCap = 8;

}  // namespace trellis::ncclnet::core
