#include "core/status.h"

#include <cstdarg>
#include <cstring>
#include <vector>

namespace trellis {

const char* codeName(Code code) {
  switch (code) {
    case Code::kOk: return "success";
    case Code::kCudaError: return "unhandled CUDA error";
    case Code::kSystemError: return "system error";
    case Code::kInternal: return "internal error";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kInvalidUsage: return "invalid usage";
    case Code::kRemoteError: return "remote error";
    case Code::kInProgress: return "in progress";
    case Code::kTimeout: return "timeout";
  }
  return "unknown result code";
}

Status Status::withContext(const std::string& context) const {
  if (isOk()) return *this;
  return Status(code_, context + ": " + message_);
}

std::string Status::toString() const {
  if (isOk()) return "success";
  return std::string(codeName(code_)) + ": " + message_;
}

static std::string vformat(const char* fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, copy);
  va_end(copy);
  if (n < 0) return fmt;
  if (static_cast<size_t>(n) < sizeof small) return std::string(small, n);
  std::vector<char> big(n + 1);
  vsnprintf(big.data(), big.size(), fmt, ap);
  return std::string(big.data(), n);
}

std::string formatString(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vformat(fmt, ap);
  va_end(ap);
  return s;
}

#define TRELLIS_DEFINE_ERROR(fn, code)     \
  Status fn(const char* fmt, ...) {        \
    va_list ap;                            \
    va_start(ap, fmt);                     \
    std::string s = vformat(fmt, ap);      \
    va_end(ap);                            \
    return Status(code, std::move(s));     \
  }
TRELLIS_DEFINE_ERROR(invalidArgument, Code::kInvalidArgument)
TRELLIS_DEFINE_ERROR(invalidUsage, Code::kInvalidUsage)
TRELLIS_DEFINE_ERROR(internalError, Code::kInternal)
TRELLIS_DEFINE_ERROR(remoteError, Code::kRemoteError)
TRELLIS_DEFINE_ERROR(timeoutError, Code::kTimeout)
#undef TRELLIS_DEFINE_ERROR

Status systemError(int err, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vformat(fmt, ap);
  va_end(ap);
  char buf[128];
  const char* e = strerror_r(err, buf, sizeof buf);
  return Status(Code::kSystemError, s + ": " + e);
}

}  // namespace trellis
