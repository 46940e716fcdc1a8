// ncclNetPlugin_v11 (NCCL 2.28 .. 2.29): init per communicator returns a context that listen and
// connect take; finalize frees it; setNetAttr passes hints; properties gain maxMultiRequestSize.
#include "adapters/adapter_util.h"

namespace trellis::ncclnet::adapt {
namespace {

Result init(void** ctx, uint64_t commId, nccl_abi::NetCommConfig* config, nccl_abi::Logger log,
            nccl_abi::ProfilerCallback) {
  if (ctx == nullptr) {
    NCCLNET_WARN(nccl_abi::kFlagInit | nccl_abi::kFlagNet, "init (v11): null context output");
    return nccl_abi::kInvalidArgument;
  }
  return core::init(ctx, commId, config, log, 11);
}

Result connect(void* ctx, int dev, void* handle, void** sendComm, nccl_abi::NetDeviceHandle**) {
  return core::connect(ctx, dev, nullptr, handle, sendComm);
}
Result accept(void* listenComm, void** recvComm, nccl_abi::NetDeviceHandle**) {
  return core::accept(listenComm, recvComm);
}
Result isend(void* sendComm, void* data, size_t size, int tag, void* mhandle, void* /*phandle*/,
             void** request) {
  return core::isend(sendComm, data, size, tag, mhandle, request);
}
Result irecv(void* recvComm, int n, void** data, size_t* sizes, int* tags, void** mhandles,
             void** /*phandles*/, void** request) {
  return core::irecv(recvComm, n, data, sizes, tags, mhandles, request);
}
Result makeVDevice(int* d, nccl_abi::NetVDeviceProps* props) { return core::makeVDevice(d, props); }
Result setNetAttr(void* ctx, nccl_abi::NetAttr* attr) { return core::setNetAttr(ctx, attr); }

}  // namespace
}  // namespace trellis::ncclnet::adapt

namespace a = trellis::ncclnet::adapt;
namespace c = trellis::ncclnet::core;

extern "C" {
TRELLIS_NCCL_EXPORT trellis::nccl_abi::NetV11 ncclNetPlugin_v11 = {
    .name = a::kPluginName,
    .init = a::init,
    .devices = c::devices,
    .getProperties = c::getProperties,
    .listen = c::listen,
    .connect = a::connect,
    .accept = a::accept,
    .regMr = c::regMr,
    .regMrDmaBuf = c::regMrDmaBuf,
    .deregMr = c::deregMr,
    .isend = a::isend,
    .irecv = a::irecv,
    .iflush = a::iflush,
    .test = c::test,
    .closeSend = c::closeSend,
    .closeRecv = c::closeRecv,
    .closeListen = c::closeListen,
    .getDeviceMr = c::getDeviceMr,
    .irecvConsumed = c::irecvConsumed,
    .makeVDevice = a::makeVDevice,
    .finalize = c::finalize,
    .setNetAttr = a::setNetAttr,
};
}  // extern "C"
