#include "topo/fabric/text_util.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace trellis::topo::fabric {

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

bool isIdent(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool parseUint(std::string_view s, uint32_t* out) {
  if (s.empty() || s.size() > 9) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parseHex(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string_view stripHexPrefix(std::string_view s) {
  s = trim(s);
  if (startsWith(s, "0x") || startsWith(s, "0X")) s.remove_prefix(2);
  size_t paren = s.find('(');  // "switchguid=0x2c5e...(2c5e...)"
  return paren == std::string_view::npos ? s : s.substr(0, paren);
}

std::string clip(std::string_view s) {
  std::string out(s.substr(0, 80));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  if (s.size() > 80) out += "...";
  return out;
}

void Scanner::skipSpace() {
  while (!atEnd() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
}

std::string_view Scanner::word() {
  size_t b = pos_;
  while (!atEnd() && s_[pos_] != ' ' && s_[pos_] != '\t') ++pos_;
  return s_.substr(b, pos_ - b);
}

bool Scanner::number(uint32_t* out) {
  size_t b = pos_;
  while (!atEnd() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
  return parseUint(s_.substr(b, pos_ - b), out);
}

namespace {
bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}
bool isName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!isNameChar(c)) return false;
  return true;
}
}  // namespace

bool isPlaceholderHost(std::string_view host) {
  static constexpr std::string_view kNames[] = {"localhost", "localhost.localdomain", "ubuntu",
                                                "(none)", "linux"};
  for (std::string_view n : kNames)
    if (host == n) return true;
  return false;
}

int hcaIndexOf(std::string_view name) {
  uint32_t v = 0;
  if (startsWith(name, "HCA-")) return parseUint(name.substr(4), &v) && v >= 1 ? int(v) - 1 : -1;
  if (startsWith(name, "mlx")) {
    size_t u = name.find('_');
    return u != std::string_view::npos && parseUint(name.substr(u + 1), &v) ? int(v) : -1;
  }
  return -1;
}

void describeHca(Hca& hca) {
  std::string_view d = trim(hca.description);
  if (hca.kind != CaKind::kRouter && d.find("Aggregation Node") != std::string_view::npos)
    hca.kind = CaKind::kAggregationNode;
  hca.nameStatus = NameStatus::kMissing;
  hca.host.clear();
  hca.hcaName.clear();
  hca.hcaIndex = -1;
  // Linux (rdma-ndd) writes "<hostname> <device>"; firmware defaults such as
  // "MT4129 ConnectX7   Mellanox Technologies" have more words and no host.
  size_t sp = d.find(' ');
  if (hca.kind != CaKind::kHost || sp == std::string_view::npos) return;
  std::string_view host = d.substr(0, sp), dev = trim(d.substr(sp + 1));
  if (!isName(host) || !isName(dev)) return;
  hca.hcaName = std::string(dev);
  hca.hcaIndex = hcaIndexOf(dev);
  if (isPlaceholderHost(host)) {
    hca.nameStatus = NameStatus::kPlaceholder;
    return;
  }
  hca.nameStatus = NameStatus::kNamed;
  hca.host = std::string(host);
}

void describeSwitch(Switch& sw) {
  std::string_view d = trim(sw.description);
  size_t semi = d.find(';');
  if (startsWith(d, "MF0;") && semi != std::string_view::npos) {
    std::string_view rest = d.substr(semi + 1);
    size_t colon = rest.find(':');
    sw.name = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      std::string_view model = rest.substr(colon + 1);
      sw.model = std::string(model.substr(0, model.find('/')));
    }
  } else {
    sw.name = std::string(d);
  }
  if (sw.name.empty()) sw.name = "S-" + guidString(sw.guid).substr(2);
}

Result<std::string> readTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return systemError(errno, "cannot open %s", path.c_str());
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size < 0) return systemError(errno, "cannot read %s", path.c_str());
  if (size > (std::streamoff{64} << 20))
    return invalidArgument("%s: %lld bytes is over the 64 MiB limit", path.c_str(),
                           static_cast<long long>(size));
  in.seekg(0);
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), size);
  if (!in) return systemError(errno, "cannot read %s", path.c_str());
  return text;
}

}  // namespace trellis::topo::fabric
