// ncclNetPlugin_v7 (NCCL 2.19): device handles in connect/accept (a host net leaves them alone),
// getDeviceMr and irecvConsumed; sizes still int.
#include "adapters/adapter_util.h"

namespace trellis::ncclnet::adapt {
namespace {

Result init(nccl_abi::Logger log) { return core::init(nullptr, 0, nullptr, log, 7); }

Result getProperties(int dev, nccl_abi::NetPropertiesV7* out) {
  nccl_abi::NetPropertiesV11 p;
  Result r = props(dev, &p);
  if (r != nccl_abi::kSuccess) return r;
  *out = {p.name,    p.pciPath,  p.guid,     p.ptrSupport,    p.speed,           p.port,
          p.latency, p.maxComms, p.maxRecvs, p.netDeviceType, p.netDeviceVersion};
  return r;
}

Result listen(int dev, void* handle, void** listenComm) {
  return core::listen(nullptr, dev, handle, listenComm);
}
Result connect(int dev, void* handle, void** sendComm,
               nccl_abi::NetDeviceHandle** /*host net: no offload*/) {
  return core::connect(nullptr, dev, nullptr, handle, sendComm);
}
Result accept(void* listenComm, void** recvComm,
              nccl_abi::NetDeviceHandle** /*host net: no offload*/) {
  return core::accept(listenComm, recvComm);
}

}  // namespace
}  // namespace trellis::ncclnet::adapt

namespace a = trellis::ncclnet::adapt;
namespace c = trellis::ncclnet::core;

extern "C" {
TRELLIS_NCCL_EXPORT trellis::nccl_abi::NetV7 ncclNetPlugin_v7 = {
    .name = a::kPluginName,
    .init = a::init,
    .devices = c::devices,
    .getProperties = a::getProperties,
    .listen = a::listen,
    .connect = a::connect,
    .accept = a::accept,
    .regMr = a::regMrInt,
    .regMrDmaBuf = c::regMrDmaBuf,
    .deregMr = c::deregMr,
    .isend = a::isendInt,
    .irecv = a::irecvInt,
    .iflush = a::iflush,
    .test = c::test,
    .closeSend = c::closeSend,
    .closeRecv = c::closeRecv,
    .closeListen = c::closeListen,
    .getDeviceMr = c::getDeviceMr,
    .irecvConsumed = c::irecvConsumed,
};
}  // extern "C"
