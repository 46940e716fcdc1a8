// Shared by the C API files: error reporting and the per-thread group state.
#pragma once

#include <cstring>
#include <string>

#include "api/comm.h"
#include "core/status.h"

namespace trellis {

/// An enum argument from C may hold any int: read its bytes instead of loading it as the enum type
/// (loading an out-of-range enumerator is undefined behaviour in C++).
template <typename E>
int rawEnum(const E& e) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized here");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

/// Records a failed Status as the thread's (and comm's) last error and returns its C code.
trellisResult_t report(trellisComm* comm, const Status& s);
Status checkComm(const trellisComm* comm, const char* api);

/// Group calls (group.cc).
bool groupActive();
/// Remembers an error raised inside a group so trellisGroupEnd returns it too; returns `r`.
trellisResult_t groupError(trellisResult_t r);
/// `device`: the buffers are device memory, to be staged on `stream` (api/device_path.h).
trellisResult_t groupEnqueueCollective(trellisComm* comm, const algos::CollArgs& args, const char* api,
                                       bool device = false, void* stream = nullptr);
trellisResult_t groupEnqueueP2p(trellisComm* comm, const trellisComm::P2pOp& op, const char* api,
                                bool device = false, void* stream = nullptr);

}  // namespace trellis

/// Returns the C error code of a failed Status from a C API function (recording the message).
#define TRELLIS_TRY_C(expr)                                                  \
  do {                                                                       \
    ::trellis::Status trellis_c_status_ = (expr);                            \
    if (!trellis_c_status_.isOk()) return ::trellis::report(nullptr, trellis_c_status_); \
  } while (0)
