// ncclNetPlugin_v10 (NCCL 2.26 .. 2.27): init takes the profiler callback, connect takes the
// communicator's config (traffic class), isend/irecv take profiler handles (not used: the plugin
// emits no profiler events).
#include "adapters/adapter_util.h"

namespace trellis::ncclnet::adapt {
namespace {

Result init(nccl_abi::Logger log, nccl_abi::ProfilerCallback) {
  return core::init(nullptr, 0, nullptr, log, 10);
}

Result getProperties(int dev, nccl_abi::NetPropertiesV10* out) {
  nccl_abi::NetPropertiesV11 p;
  Result r = props(dev, &p);
  if (r != nccl_abi::kSuccess) return r;
  *out = {p.name,
          p.pciPath,
          p.guid,
          p.ptrSupport,
          p.regIsGlobal,
          p.forceFlush,
          p.speed,
          p.port,
          p.latency,
          p.maxComms,
          p.maxRecvs,
          p.netDeviceType,
          p.netDeviceVersion,
          p.vProps,
          p.maxP2pBytes,
          p.maxCollBytes};
  return r;
}

Result listen(int dev, void* handle, void** listenComm) {
  return core::listen(nullptr, dev, handle, listenComm);
}
Result connect(int dev, nccl_abi::NetCommConfig* config, void* handle, void** sendComm,
               nccl_abi::NetDeviceHandle**) {
  return core::connect(nullptr, dev, config, handle, sendComm);
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

}  // namespace
}  // namespace trellis::ncclnet::adapt

namespace a = trellis::ncclnet::adapt;
namespace c = trellis::ncclnet::core;

extern "C" {
TRELLIS_NCCL_EXPORT trellis::nccl_abi::NetV10 ncclNetPlugin_v10 = {
    .name = a::kPluginName,
    .init = a::init,
    .devices = c::devices,
    .getProperties = a::getProperties,
    .listen = a::listen,
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
};
}  // extern "C"
