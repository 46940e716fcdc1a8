// Leveled, per-subsystem logging. TRELLIS_DEBUG=none|warn|info|debug|trace (default warn: quiet
// unless something is wrong), TRELLIS_DEBUG_SUBSYS=init,boot,net,shm,coll,tuner,topo,p2p,cuda,all (a
// leading ^ excludes), TRELLIS_DEBUG_FILE=path (%h host, %p pid). One line per event, prefixed
// with host, pid and the rank the calling thread is working for.
#pragma once

#include <cstdint>

namespace trellis {

enum class LogLevel : int { kNone = 0, kWarn = 1, kInfo = 2, kDebug = 3, kTrace = 4 };

enum class Subsys : uint32_t {
  kInit = 1u << 0,
  kBoot = 1u << 1,
  kNet = 1u << 2,
  kShm = 1u << 3,
  kColl = 1u << 4,
  kTuner = 1u << 5,
  kTopo = 1u << 6,
  kP2p = 1u << 7,
  kCuda = 1u << 8,
  kAll = 0xffffffffu,
};

/// True when a message at this level and subsystem would be printed (cheap; check before
/// formatting expensive messages).
bool logEnabled(LogLevel level, Subsys subsys);
void logMessage(LogLevel level, Subsys subsys, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 5, 6)));
/// Sets the rank printed in this thread's log prefix (-1: none).
void setLogRank(int rank);
/// Re-reads the logging parameters (tests).
void reloadLogConfig();

/// Where log lines go instead of the log file: the NCCL net plugin hands them to NCCL's logger.
/// `msg` is the formatted message without Trellis' prefix.
using LogSink = void (*)(LogLevel level, Subsys subsys, const char* file, int line, const char* msg);
/// Routes every line to `sink` and filters at `level` (instead of TRELLIS_DEBUG's level; the subsystem
/// mask still applies) until called again; nullptr restores the file and TRELLIS_DEBUG.
void setLogSink(LogSink sink, LogLevel level);

}  // namespace trellis

#define TRELLIS_LOG(level, subsys, ...)                                                      \
  do {                                                                                       \
    if (::trellis::logEnabled(level, subsys))                                                \
      ::trellis::logMessage(level, subsys, __FILE__, __LINE__, __VA_ARGS__);                 \
  } while (0)
#define TRELLIS_WARN(subsys, ...) TRELLIS_LOG(::trellis::LogLevel::kWarn, ::trellis::Subsys::subsys, __VA_ARGS__)
#define TRELLIS_INFO(subsys, ...) TRELLIS_LOG(::trellis::LogLevel::kInfo, ::trellis::Subsys::subsys, __VA_ARGS__)
#define TRELLIS_DEBUG(subsys, ...) TRELLIS_LOG(::trellis::LogLevel::kDebug, ::trellis::Subsys::subsys, __VA_ARGS__)
#define TRELLIS_TRACE(subsys, ...) TRELLIS_LOG(::trellis::LogLevel::kTrace, ::trellis::Subsys::subsys, __VA_ARGS__)
