// The cost model's constants: ONE table (constants.cc) with each value's unit and where it comes
// from (a measurement in docs/PERFORMANCE.md or docs/TUNER.md, a link rate, a published figure).
// A Constants object starts from the table; calibration (TRELLIS_TUNER_CALIBRATE=1) and
// command-line flags replace single values and say so in `source`.
#pragma once

#include <array>
#include <string>

#include "core/status.h"

namespace trellis::tuner {

/// Every constant of the model. All values are SI: seconds, bytes, bytes per second.
enum class K : int {
  // Host CPU (the ranks of a host move and reduce bytes with their own cores).
  kCopyBps,         // memcpy by one core
  kReduceBps,       // float32 sum by one core (output bytes)
  kMemBps,          // memory traffic of one host, all cores together (bytes read + written)
  kWakeS,           // a waiting rank woken from sleep (ranks outnumber cores): per step
  kCallS,           // per collective call on host buffers (checks, the tuner's lookup, set-up)
  kCacheBytes,      // a rank's buffers up to this size stay in its core's cache between calls ...
  kCacheSpeedup,    // ... and its copies / reductions / reads run this much faster there
  kStreamBytes,     // buffers above this stream from memory shared with the rest of the machine ...
  kStreamFactor,    // ... at this fraction of the table's rates
  // Shared memory between ranks of one host.
  kShmLatencyS,     // one small message, one way, ranks with a core each (spin, then sleep)
  kShmYieldLatencyS,// the same when ranks outnumber cores (waiting ranks yield their core)
  kShmMsgCpuS,      // CPU per message on each side (post, poll, ring slot)
  kShmReadBps,      // single-copy read of a peer's memory (process_vm_readv) by one core
  kShmEagerMax,     // messages below this go through the ring slots: one extra copy by the sender
  kShmHandshakeS,   // per single-copy message on a step's critical path (reader woken, reads, acks)
  // TCP (loopback on one host, or across hosts).
  kTcpLatencyS,     // one small message, one way, loopback
  kTcpMsgCpuS,      // CPU per message on each side (system calls)
  kTcpSendBps,      // bytes one core pushes through send() (kernel copy)
  kTcpRecvBps,      // bytes one core pulls through recv() (kernel copy)
  kTcpStreamBps,    // one TCP connection's ceiling (0: none); channels open more
  kTcpNetLatencyS,  // one small message between hosts over TCP, one way
  kTcpNetBps,       // TCP between hosts: the NIC's rate (0: unknown, not limited)
  // RDMA network (InfiniBand / RoCE), the simulated clusters.
  kNicBps,          // per NIC per direction
  kNetPayloadShare, // share of a link's line rate that carries payload
  kNicLatencyS,     // NIC to NIC through one leaf switch, small message
  kSwitchHopS,      // each further switch hop (leaf -> spine -> leaf adds two)
  kNicMsgS,         // per message at each end (posting / completing a work request)
  // GPU node (NVLink), the simulated clusters.
  kNvlinkBps,       // per GPU per direction into the NVLink/NVSwitch fabric
  kNvlinkLatencyS,  // one small message GPU to GPU
  kNvlinkMsgS,      // per message at each end (a GPU-side handshake)
  kGpuReduceBps,    // reduction throughput of one GPU (output bytes)
  kGpuCopyBps,      // local device copy of one GPU
  kGpuCallS,        // per collective call on a GPU (launch, enqueue)
  kCount
};

/// One row of the table.
struct ConstantInfo {
  K id;
  const char* name;    ///< "shm.read_bps"
  double value;        ///< SI units
  const char* unit;    ///< "B/s", "s", "B"
  const char* source;  ///< where the value comes from
};

/// The table, in K order.
const std::array<ConstantInfo, static_cast<size_t>(K::kCount)>& constantTable();
const ConstantInfo& constantInfo(K id);
/// Finds a constant by name ("nic_bps" or "net.nic_bps"), or returns false.
bool constantByName(const std::string& name, K* out);

/// Values in use: the table's, some possibly replaced (calibration, flags).
class Constants {
 public:
  Constants();
  double operator[](K id) const { return v_[static_cast<size_t>(id)]; }
  double get(K id) const { return (*this)[id]; }
  void set(K id, double value, const std::string& source);
  const std::string& source(K id) const { return src_[static_cast<size_t>(id)]; }
  bool replaced(K id) const { return replaced_[static_cast<size_t>(id)]; }

 private:
  std::array<double, static_cast<size_t>(K::kCount)> v_{};
  std::array<std::string, static_cast<size_t>(K::kCount)> src_{};
  std::array<bool, static_cast<size_t>(K::kCount)> replaced_{};
};

/// Applies "name=value,name=value" (SI units) to `c`; errors name `what` and the bad item.
Status applyConstantOverrides(const std::string& spec, const char* what, Constants* c);

}  // namespace trellis::tuner
