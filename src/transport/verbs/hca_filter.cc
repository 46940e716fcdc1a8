#include "transport/verbs/hca_filter.h"

#include <cstdlib>

namespace trellis::transport::verbs {

static bool nameMatches(const HcaFilter& f, const HcaFilter::Entry& e, const std::string& name) {
  return f.exact ? name == e.name : name.compare(0, e.name.size(), e.name) == 0;
}

size_t HcaFilter::rank(const std::string& name, int port) const {
  if (exclude) return entries.size();
  for (size_t i = 0; i < entries.size(); ++i)
    if (nameMatches(*this, entries[i], name) && (entries[i].port < 0 || entries[i].port == port)) return i;
  return entries.size();
}

bool HcaFilter::allows(const std::string& name, int port) const {
  if (entries.empty()) return true;
  bool hit = false;
  for (const Entry& e : entries)
    if (nameMatches(*this, e, name) && (e.port < 0 || e.port == port)) hit = true;
  return exclude ? !hit : hit;
}

Result<HcaFilter> parseHcaFilter(const std::string& specIn) {
  HcaFilter f;
  std::string spec = specIn;
  // Surrounding blanks are a common copy-paste accident; inner blanks are errors.
  while (!spec.empty() && (spec.back() == ' ' || spec.back() == '\t')) spec.pop_back();
  size_t lead = spec.find_first_not_of(" \t");
  spec.erase(0, lead == std::string::npos ? spec.size() : lead);
  if (!spec.empty() && spec[0] == '^') {
    f.exclude = true;
    spec.erase(0, 1);
  }
  if (!spec.empty() && spec[0] == '=') {
    f.exact = true;
    spec.erase(0, 1);
  }
  if (spec.empty() && (f.exclude || f.exact))
    return invalidArgument("TRELLIS_IB_HCA='%s': no device names after '%s'", specIn.c_str(),
                           f.exclude && f.exact ? "^=" : f.exclude ? "^" : "=");
  if (!spec.empty() && (spec.back() == ',' || spec[0] == ','))
    return invalidArgument("TRELLIS_IB_HCA='%s': empty entry (a leading or trailing comma)", specIn.c_str());
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    std::string tok = spec.substr(pos, comma - pos);
    pos = comma + 1;
    if (tok.empty())
      return invalidArgument("TRELLIS_IB_HCA='%s': empty entry (two commas or a trailing comma)", specIn.c_str());
    HcaFilter::Entry e;
    size_t colon = tok.find(':');
    e.name = tok.substr(0, colon);
    if (e.name.empty()) return invalidArgument("TRELLIS_IB_HCA='%s': '%s' has no device name", specIn.c_str(), tok.c_str());
    if (e.name.find_first_of(" \t^=") != std::string::npos)
      return invalidArgument("TRELLIS_IB_HCA='%s': '%s' is not a device name ('^' and '=' go first, once)",
                             specIn.c_str(), e.name.c_str());
    if (colon != std::string::npos) {
      std::string p = tok.substr(colon + 1);
      char* end = nullptr;
      long v = p.empty() ? -1 : std::strtol(p.c_str(), &end, 10);
      if (p.empty() || *end != '\0' || v < 1 || v > 255)
        return invalidArgument("TRELLIS_IB_HCA='%s': '%s': port '%s' is not a number in 1..255", specIn.c_str(),
                               tok.c_str(), p.c_str());
      e.port = static_cast<int>(v);
    }
    f.entries.push_back(e);
  }
  return f;
}

}  // namespace trellis::transport::verbs
