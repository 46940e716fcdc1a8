#include "topo/fabric/hostlist.h"

#include <algorithm>
#include <cstdio>

#include "topo/fabric/text_util.h"

namespace trellis::topo::fabric {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

struct Split {
  std::string prefix;
  std::string digits;  // trailing digits, empty if none
};

Split splitTrailing(const std::string& name) {
  size_t e = name.size();
  while (e > 0 && isDigit(name[e - 1])) --e;
  // Cap at 9 digits so the value fits parseUint; longer runs are treated as part of the prefix.
  if (name.size() - e > 9) e = name.size() - 9;
  return {name.substr(0, e), name.substr(e)};
}

}  // namespace

bool naturalLess(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (isDigit(a[i]) && isDigit(b[j])) {
      size_t ie = i, je = j;
      while (ie < a.size() && isDigit(a[ie])) ++ie;
      while (je < b.size() && isDigit(b[je])) ++je;
      std::string_view da = a.substr(i, ie - i), db = b.substr(j, je - j);
      while (da.size() > 1 && da[0] == '0') da.remove_prefix(1);
      while (db.size() > 1 && db[0] == '0') db.remove_prefix(1);
      if (da.size() != db.size()) return da.size() < db.size();
      if (da != db) return da < db;
      if (ie - i != je - j) return ie - i < je - j;  // fewer leading zeros first
      i = ie;
      j = je;
      continue;
    }
    if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

std::string compressHostlist(std::vector<std::string> names) {
  std::sort(names.begin(), names.end(),
            [](const std::string& a, const std::string& b) { return naturalLess(a, b); });
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string out;
  size_t i = 0;
  while (i < names.size()) {
    Split first = splitTrailing(names[i]);
    size_t j = i + 1;
    std::vector<uint32_t> values;
    if (!first.digits.empty()) {
      uint32_t v = 0;
      parseUint(first.digits, &v);
      values.push_back(v);
      while (j < names.size()) {
        Split s = splitTrailing(names[j]);
        if (s.prefix != first.prefix || s.digits.size() != first.digits.size()) break;
        parseUint(s.digits, &v);
        values.push_back(v);
        ++j;
      }
    }
    if (!out.empty()) out += ',';
    if (values.size() <= 1) {
      out += names[i];
    } else {
      const int width = static_cast<int>(first.digits.size());
      char buf[40];
      out += first.prefix + '[';
      for (size_t k = 0; k < values.size();) {
        size_t m = k;
        while (m + 1 < values.size() && values[m + 1] == values[m] + 1) ++m;
        if (k) out += ',';
        std::snprintf(buf, sizeof(buf), "%0*u", width, values[k]);
        out += buf;
        if (m > k) {
          std::snprintf(buf, sizeof(buf), "-%0*u", width, values[m]);
          out += buf;
        }
        k = m + 1;
      }
      out += ']';
    }
    i = j;
  }
  return out;
}

Result<std::vector<std::string>> expandHostlist(std::string_view expr, size_t limit) {
  std::vector<std::string> out;
  // Split on commas outside brackets.
  size_t pos = 0;
  while (pos <= expr.size()) {
    size_t end = pos;
    int depth = 0;
    while (end < expr.size() && (expr[end] != ',' || depth)) {
      if (expr[end] == '[') ++depth;
      if (expr[end] == ']') --depth;
      ++end;
    }
    std::string_view item = trim(expr.substr(pos, end - pos));
    pos = end + 1;
    if (item.empty()) {
      if (end >= expr.size()) break;
      return invalidArgument("empty name in hostlist '%s'", clip(expr).c_str());
    }
    size_t open = item.find('[');
    if (open == std::string_view::npos) {
      if (item.find(']') != std::string_view::npos)
        return invalidArgument("unbalanced ']' in hostlist item '%s'", clip(item).c_str());
      if (out.size() >= limit) return invalidArgument("hostlist expands to more than %zu names", limit);
      out.emplace_back(item);
      continue;
    }
    size_t close = item.find(']', open);
    if (close == std::string_view::npos || item.find('[', open + 1) != std::string_view::npos)
      return invalidArgument("hostlist item '%s' needs exactly one [..] range", clip(item).c_str());
    std::string_view prefix = item.substr(0, open), suffix = item.substr(close + 1);
    std::string_view ranges = item.substr(open + 1, close - open - 1);
    size_t rpos = 0;
    while (rpos <= ranges.size()) {
      size_t rend = ranges.find(',', rpos);
      if (rend == std::string_view::npos) rend = ranges.size();
      std::string_view r = trim(ranges.substr(rpos, rend - rpos));
      rpos = rend + 1;
      size_t dash = r.find('-');
      std::string_view lo = r.substr(0, dash), hi = dash == std::string_view::npos ? lo : r.substr(dash + 1);
      uint32_t a = 0, b = 0;
      if (!parseUint(lo, &a) || !parseUint(hi, &b) || b < a)
        return invalidArgument("bad range '%s' in hostlist item '%s'", clip(r).c_str(), clip(item).c_str());
      if (b - a >= limit || out.size() + (b - a) >= limit)
        return invalidArgument("hostlist expands to more than %zu names", limit);
      const int width = static_cast<int>(lo.size());
      char buf[16];
      for (uint32_t v = a; v <= b; ++v) {
        std::snprintf(buf, sizeof(buf), "%0*u", width, v);
        out.push_back(std::string(prefix) + buf + std::string(suffix));
      }
      if (rend >= ranges.size()) break;
    }
  }
  return out;
}

}  // namespace trellis::topo::fabric
