#include "core/plugin_log.h"

#include <strings.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <optional>
#include <string>

#include "core/log.h"
#include "core/params.h"

namespace trellis::ncclnet {

namespace {

std::atomic<nccl_abi::Logger> gLogger{nullptr};

unsigned long flagsOf(Subsys s) {
  switch (s) {
    case Subsys::kInit:
      return nccl_abi::kFlagInit;
    case Subsys::kBoot:
      return nccl_abi::kFlagBootstrap;
    case Subsys::kShm:
      return nccl_abi::kFlagShm;
    case Subsys::kColl:
      return nccl_abi::kFlagColl;
    case Subsys::kTuner:
      return nccl_abi::kFlagTuning;
    case Subsys::kTopo:
      return nccl_abi::kFlagGraph;
    case Subsys::kP2p:
      return nccl_abi::kFlagP2p;
    default:
      return nccl_abi::kFlagNet;
  }
}

nccl_abi::LogLevel ncclLevelOf(LogLevel l) {
  switch (l) {
    case LogLevel::kWarn:
      return nccl_abi::kLogWarn;
    case LogLevel::kInfo:
      return nccl_abi::kLogInfo;
    default:
      return nccl_abi::kLogTrace;
  }
}

// Trellis-internal lines (topology detection, socket helpers) in NCCL's log.
void sink(LogLevel level, Subsys subsys, const char* file, int line, const char* msg) {
  nccl_abi::Logger logger = gLogger.load(std::memory_order_acquire);
  if (logger != nullptr)
    logger(ncclLevelOf(level), flagsOf(subsys), file, line, "NET/Trellis : %s", msg);
}

// The level Trellis-internal lines are formatted at: NCCL filters again, but formatting lines NCCL
// drops costs time, so follow NCCL_DEBUG (read, never set).
LogLevel levelFromNcclDebug() {
  std::optional<std::string> v = envLookup("NCCL_DEBUG");
  if (!v) return LogLevel::kWarn;
  if (strcasecmp(v->c_str(), "INFO") == 0) return LogLevel::kInfo;
  if (strcasecmp(v->c_str(), "TRACE") == 0) return LogLevel::kTrace;
  return LogLevel::kWarn;
}

}  // namespace

void setNcclLogger(nccl_abi::Logger logger) {
  if (logger == nullptr) return;
  nccl_abi::Logger expected = nullptr;
  if (gLogger.compare_exchange_strong(expected, logger)) setLogSink(sink, levelFromNcclDebug());
}

bool haveNcclLogger() { return gLogger.load(std::memory_order_acquire) != nullptr; }

bool pluginLogWanted(nccl_abi::LogLevel level) {
  LogLevel tl = level == nccl_abi::kLogWarn   ? LogLevel::kWarn
                : level == nccl_abi::kLogInfo ? LogLevel::kInfo
                                              : LogLevel::kTrace;
  if (haveNcclLogger()) {
    static const LogLevel ncclLevel = levelFromNcclDebug();
    return static_cast<int>(tl) <= static_cast<int>(ncclLevel);
  }
  return logEnabled(tl, Subsys::kNet);
}

void pluginLog(nccl_abi::LogLevel level, unsigned long flags, const char* file, int line,
               const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char* base = file;
  for (const char* p = file; *p; ++p)
    if (*p == '/') base = p + 1;
  nccl_abi::Logger logger = gLogger.load(std::memory_order_acquire);
  if (logger != nullptr) {
    logger(level, flags, base, line, "NET/Trellis : %s", msg);
    return;
  }
  LogLevel tl = level == nccl_abi::kLogWarn   ? LogLevel::kWarn
                : level == nccl_abi::kLogInfo ? LogLevel::kInfo
                                              : LogLevel::kTrace;
  Subsys s = (flags & nccl_abi::kFlagTuning) ? Subsys::kTuner : Subsys::kNet;
  if (logEnabled(tl, s)) logMessage(tl, s, base, line, "NET/Trellis : %s", msg);
}

}  // namespace trellis::ncclnet
