// Logging of the NCCL plugins. Once NCCL has handed its logger to init, every line (the plugin's
// own and those of the Trellis layers it links, such as topology detection) goes through it with
// NCCL's level and subsystem flags, so NCCL_DEBUG / NCCL_DEBUG_SUBSYS decide what is printed.
// Before that (or in a test that passes no logger) lines go to Trellis' own log (TRELLIS_DEBUG).
#pragma once

#include "abi/nccl_abi.h"

namespace trellis::ncclnet {

/// Installs NCCL's logger (the first non-null one wins; NCCL always passes the same function).
void setNcclLogger(nccl_abi::Logger logger);
/// Whether NCCL's logger is installed.
bool haveNcclLogger();
/// Whether a line at `level` would be printed (NCCL_DEBUG once NCCL's logger is installed, else
/// TRELLIS_DEBUG): check before formatting a costly line on a hot path.
bool pluginLogWanted(nccl_abi::LogLevel level);

void pluginLog(nccl_abi::LogLevel level, unsigned long flags, const char* file, int line,
               const char* fmt, ...) __attribute__((format(printf, 5, 6)));

}  // namespace trellis::ncclnet

#define NCCLNET_WARN(flags, ...)                                                            \
  ::trellis::ncclnet::pluginLog(::trellis::nccl_abi::kLogWarn, (flags), __FILE__, __LINE__, \
                                __VA_ARGS__)
#define NCCLNET_INFO(flags, ...)                                                            \
  ::trellis::ncclnet::pluginLog(::trellis::nccl_abi::kLogInfo, (flags), __FILE__, __LINE__, \
                                __VA_ARGS__)
#define NCCLNET_TRACE(flags, ...)                                                            \
  ::trellis::ncclnet::pluginLog(::trellis::nccl_abi::kLogTrace, (flags), __FILE__, __LINE__, \
                                __VA_ARGS__)
