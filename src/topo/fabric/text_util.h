// Small text helpers shared by the fabric parsers and emitters: bounded scanning of string_views,
// number parsing without exceptions, and reading node descriptions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "topo/fabric/model.h"

namespace trellis::topo::fabric {

/// IB node descriptions are 64 bytes; anything far longer is not a description.
constexpr size_t kMaxDescBytes = 256;

std::string_view trim(std::string_view s);
bool startsWith(std::string_view s, std::string_view prefix);
/// [A-Za-z_][A-Za-z0-9_]*
bool isIdent(std::string_view s);
/// Decimal, at most 9 digits, nothing else.
bool parseUint(std::string_view s, uint32_t* out);
/// 1..16 hex digits, nothing else.
bool parseHex(std::string_view s, uint64_t* out);
std::string_view stripHexPrefix(std::string_view s);
/// At most 80 characters of `s`, for error messages.
std::string clip(std::string_view s);

/// A cursor over one line.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool atEnd() const { return pos_ >= s_.size(); }
  char peek() const { return atEnd() ? '\0' : s_[pos_]; }
  std::string_view rest() const { return s_.substr(pos_ < s_.size() ? pos_ : s_.size()); }
  void advance(size_t n) { pos_ = n > s_.size() - pos_ ? s_.size() : pos_ + n; }
  void skipSpace();
  /// Up to the next blank.
  std::string_view word();
  /// A decimal number of at most 9 digits.
  bool number(uint32_t* out);

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

/// Fills host, hcaName, hcaIndex, nameStatus and kind from Hca::description.
void describeHca(Hca& hca);
/// Fills name and model from Switch::description ("MF0;<name>:<model>/U1").
void describeSwitch(Switch& sw);
/// NIC index of a device name: "mlx5_3" -> 3, "HCA-4" -> 3 (DGX OS names HCA-N for mlx5_{N-1}),
/// -1 when the name has no index.
int hcaIndexOf(std::string_view hcaName);
/// True for default host names that are not unique ("localhost", "ubuntu", ...).
bool isPlaceholderHost(std::string_view host);

/// Whole file into a string (at most 64 MiB).
Result<std::string> readTextFile(const std::string& path);

}  // namespace trellis::topo::fabric
