// What trellis-bench needs from a communication library: one implementation per
// library (Trellis, OpenMPI, Gloo), so the same sweep runs through each in the
// same process layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trellis/trellis.h"

namespace trellis::bench {

enum class Coll {
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kBroadcast,
  kReduce,
  kAlltoAll,
  kSendRecv
};
/// "allreduce", "allgather", ... (the --op-name spelling).
const char* collName(Coll c);

class Impl {
 public:
  virtual ~Impl() = default;
  virtual const char* name() const = 0;
  virtual int rank() const = 0;
  virtual int nranks() const = 0;
  /// Why this combination cannot run ("" when it can).
  virtual std::string unsupported(Coll c, trellisDataType_t dt, trellisRedOp_t op) const = 0;
  /// One collective; `count` has the meaning of the Trellis C API argument.
  /// Returns "" or an error.
  virtual std::string run(Coll c, const void* send, void* recv, size_t count, trellisDataType_t dt,
                          trellisRedOp_t op, int root) = 0;
  /// Sum (op 0), min (op 1) or max (op 2) of one double over ranks, on every
  /// rank.
  virtual double combine(double v, int op) = 0;
  /// Gathers `bytes` from every rank into out (nranks * bytes).
  virtual void allgatherBytes(const void* in, void* out, size_t bytes) = 0;
  virtual void barrier() = 0;
};

std::unique_ptr<Impl> makeTrellisImpl(std::string* error);
std::unique_ptr<Impl> makeMpiImpl(std::string* error);
/// Gloo over TCP on `iface` (when not empty) or `hostname`, rendezvous in the FileStore `storeDir`.
std::unique_ptr<Impl> makeGlooImpl(const std::string& storeDir, const std::string& hostname,
                                   const std::string& iface, std::string* error);

}  // namespace trellis::bench
