// Status and Result<T>: how every internal function reports failure. A Status carries a code (the
// C API's trellisResult_t values) and a message naming the values involved; TRELLIS_TRY propagates
// a failed Status and can prepend context. No exceptions cross layer boundaries.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "trellis/trellis.h"

namespace trellis {

/// Error categories; values equal trellisResult_t so conversion at the C boundary is a cast.
enum class Code : int {
  kOk = trellisSuccess,
  kCudaError = trellisUnhandledCudaError,
  kSystemError = trellisSystemError,
  kInternal = trellisInternalError,
  kInvalidArgument = trellisInvalidArgument,
  kInvalidUsage = trellisInvalidUsage,
  kRemoteError = trellisRemoteError,
  kInProgress = trellisInProgress,
  kTimeout = trellisTimeout,
};

const char* codeName(Code code);

/// Success, or a code plus a human message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool isOk() const { return code_ == Code::kOk; }
  explicit operator bool() const { return isOk(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  trellisResult_t toC() const { return static_cast<trellisResult_t>(code_); }

  /// Returns a copy with "context: " prepended to the message.
  Status withContext(const std::string& context) const;
  /// "invalid argument: <message>"
  std::string toString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

/// printf-style message formatting for error constructors.
std::string formatString(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

Status invalidArgument(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
Status invalidUsage(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
Status internalError(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
Status remoteError(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
Status timeoutError(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
/// A system error whose message ends with strerror(err).
Status systemError(int err, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

/// A value or a failed Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT
  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }
  const Status& status() const {
    static const Status kOk;
    return isOk() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> v_;
};

namespace detail {
inline Status toStatus(const Status& s) { return s; }
template <typename T>
Status toStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace detail

}  // namespace trellis

#define TRELLIS_CONCAT_INNER(a, b) a##b
#define TRELLIS_CONCAT(a, b) TRELLIS_CONCAT_INNER(a, b)

/// Returns the Status of `expr` from the enclosing function if it failed.
#define TRELLIS_TRY(expr)                                                     \
  do {                                                                        \
    ::trellis::Status trellis_try_status_ = ::trellis::detail::toStatus(expr); \
    if (!trellis_try_status_.isOk()) return trellis_try_status_;              \
  } while (0)

/// As TRELLIS_TRY, prepending a context string to the message.
#define TRELLIS_TRY_CTX(expr, context)                                        \
  do {                                                                        \
    ::trellis::Status trellis_try_status_ = ::trellis::detail::toStatus(expr); \
    if (!trellis_try_status_.isOk()) return trellis_try_status_.withContext(context); \
  } while (0)

/// `TRELLIS_ASSIGN_OR_RETURN(auto x, makeX())`: unwraps a Result or returns its Status.
#define TRELLIS_ASSIGN_OR_RETURN(lhs, expr)                              \
  auto TRELLIS_CONCAT(trellis_res_, __LINE__) = (expr);                  \
  if (!TRELLIS_CONCAT(trellis_res_, __LINE__).isOk())                    \
    return TRELLIS_CONCAT(trellis_res_, __LINE__).status();              \
  lhs = std::move(TRELLIS_CONCAT(trellis_res_, __LINE__)).value()
