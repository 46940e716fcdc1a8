// ncclNetPlugin_v6 (NCCL 2.14 .. 2.18): int sizes, no device handles, one init per process.
#include "adapters/adapter_util.h"

namespace trellis::ncclnet::adapt {
namespace {

Result init(nccl_abi::Logger log) { return core::init(nullptr, 0, nullptr, log, 6); }

Result getProperties(int dev, nccl_abi::NetPropertiesV6* out) {
  nccl_abi::NetPropertiesV11 p;
  Result r = props(dev, &p);
  if (r != nccl_abi::kSuccess) return r;
  *out = {p.name, p.pciPath, p.guid,     p.ptrSupport, p.speed,
          p.port, p.latency, p.maxComms, p.maxRecvs};
  return r;
}

Result listen(int dev, void* handle, void** listenComm) {
  return core::listen(nullptr, dev, handle, listenComm);
}
Result connect(int dev, void* handle, void** sendComm) {
  return core::connect(nullptr, dev, nullptr, handle, sendComm);
}

}  // namespace
}  // namespace trellis::ncclnet::adapt

namespace a = trellis::ncclnet::adapt;
namespace c = trellis::ncclnet::core;

extern "C" {
TRELLIS_NCCL_EXPORT trellis::nccl_abi::NetV6 ncclNetPlugin_v6 = {
    .name = a::kPluginName,
    .init = a::init,
    .devices = c::devices,
    .getProperties = a::getProperties,
    .listen = a::listen,
    .connect = a::connect,
    .accept = c::accept,
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
};
}  // extern "C"
