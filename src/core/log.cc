#include "core/log.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "core/params.h"

namespace trellis {

static Param<std::string> kDebugLevel("TRELLIS_DEBUG", "warn",
                                      "log level: none, warn, info, debug, trace");
static Param<std::string> kDebugSubsys("TRELLIS_DEBUG_SUBSYS", "all",
                                       "comma list of subsystems to log (init,boot,net,shm,coll,"
                                       "tuner,topo,p2p,cuda,all); a leading ^ excludes");
static Param<std::string> kDebugFile("TRELLIS_DEBUG_FILE", "",
                                     "write log lines to this file instead of stderr (%h host, %p pid)");

namespace {
struct LogConfig {
  std::atomic<int> level{-1};  // -1: not loaded
  std::atomic<uint32_t> mask{0};
  FILE* out = stderr;
  std::mutex mu;
  char host[64] = "?";
  std::atomic<LogSink> sink{nullptr};
  std::atomic<int> sinkLevel{0};
};
LogConfig& config() {
  static LogConfig* c = new LogConfig();
  return *c;
}
thread_local int tlsRank = -1;

uint32_t subsysBit(const std::string& name) {
  static const struct { const char* n; Subsys s; } kNames[] = {
      {"init", Subsys::kInit}, {"boot", Subsys::kBoot},   {"net", Subsys::kNet},
      {"shm", Subsys::kShm},   {"coll", Subsys::kColl},   {"tuner", Subsys::kTuner},
      {"topo", Subsys::kTopo}, {"p2p", Subsys::kP2p},     {"cuda", Subsys::kCuda},
      {"all", Subsys::kAll}};
  for (auto& e : kNames)
    if (strcasecmp(name.c_str(), e.n) == 0) return static_cast<uint32_t>(e.s);
  return 0;
}

void load() {
  LogConfig& c = config();
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.level.load() >= 0) return;
  std::string lv = kDebugLevel.get();
  int level = 1;
  if (strcasecmp(lv.c_str(), "none") == 0 || lv == "0") level = 0;
  else if (strcasecmp(lv.c_str(), "warn") == 0) level = 1;
  else if (strcasecmp(lv.c_str(), "info") == 0) level = 2;
  else if (strcasecmp(lv.c_str(), "debug") == 0) level = 3;
  else if (strcasecmp(lv.c_str(), "trace") == 0) level = 4;
  else std::fprintf(stderr, "TRELLIS WARN TRELLIS_DEBUG='%s' is not a level (none, warn, info, debug, trace); using warn\n", lv.c_str());
  std::string subs = kDebugSubsys.get();
  bool exclude = !subs.empty() && subs[0] == '^';
  if (exclude) subs.erase(0, 1);
  uint32_t mask = 0;
  size_t pos = 0;
  while (pos <= subs.size()) {
    size_t comma = subs.find(',', pos);
    if (comma == std::string::npos) comma = subs.size();
    std::string tok = subs.substr(pos, comma - pos);
    if (!tok.empty()) {
      uint32_t bit = subsysBit(tok);
      if (bit == 0) std::fprintf(stderr, "TRELLIS WARN TRELLIS_DEBUG_SUBSYS: unknown subsystem '%s'\n", tok.c_str());
      mask |= bit;
    }
    pos = comma + 1;
  }
  if (exclude) mask = ~mask;
  c.mask = mask;
  gethostname(c.host, sizeof c.host - 1);
  std::string file = kDebugFile.get();
  c.out = stderr;  // a reload without a file goes back to stderr (an earlier file stays open: lines may be in flight)
  if (!file.empty()) {
    std::string path;
    for (size_t i = 0; i < file.size(); ++i) {
      if (file[i] == '%' && i + 1 < file.size() && file[i + 1] == 'h') { path += c.host; ++i; }
      else if (file[i] == '%' && i + 1 < file.size() && file[i + 1] == 'p') { path += std::to_string(getpid()); ++i; }
      else path += file[i];
    }
    FILE* f = std::fopen(path.c_str(), "a");
    if (f != nullptr) { setvbuf(f, nullptr, _IOLBF, 0); c.out = f; }
  } else {
    c.out = stderr;  // a reload without a file goes back to stderr (the old file stays open: others may hold it)
  }
  c.level = level;
}
}  // namespace

bool logEnabled(LogLevel level, Subsys subsys) {
  LogConfig& c = config();
  int lv = c.level.load(std::memory_order_relaxed);
  if (lv < 0) { load(); lv = c.level.load(); }
  if (c.sink.load(std::memory_order_acquire) != nullptr) lv = c.sinkLevel.load(std::memory_order_relaxed);
  if (static_cast<int>(level) > lv) return false;
  // Warnings are always shown whatever the subsystem mask.
  return level == LogLevel::kWarn || (c.mask.load(std::memory_order_relaxed) & static_cast<uint32_t>(subsys)) != 0;
}

void setLogRank(int rank) { tlsRank = rank; }

void setLogSink(LogSink sink, LogLevel level) {
  LogConfig& c = config();
  c.sinkLevel.store(static_cast<int>(level), std::memory_order_relaxed);
  c.sink.store(sink, std::memory_order_release);
}

void reloadLogConfig() {
  kDebugLevel.reset();
  kDebugSubsys.reset();
  kDebugFile.reset();
  config().level = -1;
}

void logMessage(LogLevel level, Subsys subsys, const char* file, int line, const char* fmt, ...) {
  static const char* kLevelNames[] = {"NONE", "WARN", "INFO", "DEBUG", "TRACE"};
  LogConfig& c = config();
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  if (LogSink sink = c.sink.load(std::memory_order_acquire)) {
    sink(level, subsys, base, line, msg);
    return;
  }
  char rank[16] = "";
  if (tlsRank >= 0) snprintf(rank, sizeof rank, " [%d]", tlsRank);
  std::fprintf(c.out, "%s:%d:%ld%s TRELLIS %s %s:%d %s\n", c.host, static_cast<int>(getpid()),
               static_cast<long>(syscall(SYS_gettid)), rank, kLevelNames[static_cast<int>(level)],
               base, line, msg);
}

}  // namespace trellis
