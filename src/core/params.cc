#include "core/params.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>

namespace trellis {

const char* paramSourceName(ParamSource source) {
  switch (source) {
    case ParamSource::kDefault: return "default";
    case ParamSource::kConfigFile: return "config file";
    case ParamSource::kEnv: return "env";
    case ParamSource::kOverride: return "override";
  }
  return "?";
}

std::vector<ParamBase*>& allParams() {
  static std::vector<ParamBase*>* params = new std::vector<ParamBase*>();
  return *params;
}

static std::mutex& registryMutex() {
  static std::mutex* mu = new std::mutex();
  return *mu;
}

ParamBase* findParam(const std::string& name) {
  std::lock_guard<std::mutex> lock(registryMutex());
  for (ParamBase* p : allParams())
    if (name == p->name()) return p;
  return nullptr;
}

std::optional<std::string> envLookup(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::map<std::string, std::string> parseConfigText(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    auto trim = [](std::string s) {
      size_t b = s.find_first_not_of(" \t\r\n");
      size_t e = s.find_last_not_of(" \t\r\n");
      return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    };
    out[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return out;
}

// The config file is read once per process (or again after a reset of every parameter).
static std::map<std::string, std::string> readConfigFile() {
  std::string path = envLookup("TRELLIS_CONF_FILE").value_or("/etc/trellis.conf");
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parseConfigText(text);
}

ParamBase::ParamBase(const char* name, const char* doc) : name_(name), doc_(doc) {
  std::lock_guard<std::mutex> lock(registryMutex());
  allParams().push_back(this);
}

void ParamBase::ensureLoaded() {
  std::lock_guard<std::mutex> lock(mu_);
  if (loaded_) return;
  loaded_ = true;
  error_.clear();
  setDefault();
  source_ = ParamSource::kDefault;
  std::optional<std::string> text;
  ParamSource src = ParamSource::kDefault;
  if (override_) {
    text = override_;
    src = ParamSource::kOverride;
  } else if (auto env = envLookup(name_)) {
    text = env;
    src = ParamSource::kEnv;
  } else {
    static const std::map<std::string, std::string> conf = readConfigFile();
    auto it = conf.find(name_);
    if (it != conf.end()) {
      text = it->second;
      src = ParamSource::kConfigFile;
    }
  }
  if (!text) return;
  Status s = parseInto(*text);
  if (s.isOk()) {
    source_ = src;
  } else {
    setDefault();
    error_ = formatString("%s='%s' (%s) is invalid: %s; using the default %s", name_, text->c_str(),
                          paramSourceName(src), s.message().c_str(), defaultString().c_str());
    std::fprintf(stderr, "TRELLIS WARN %s\n", error_.c_str());
  }
}

std::string ParamBase::valueString() {
  ensureLoaded();
  std::lock_guard<std::mutex> lock(mu_);
  return currentString();
}

ParamSource ParamBase::source() {
  ensureLoaded();
  std::lock_guard<std::mutex> lock(mu_);
  return source_;
}

std::string ParamBase::error() {
  ensureLoaded();
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

Status ParamBase::setOverride(const std::string& text) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (text.empty()) {
      override_.reset();
    } else {
      Status s = parseInto(text);
      setDefault();
      if (!s.isOk()) return invalidArgument("%s='%s': %s", name_, text.c_str(), s.message().c_str());
      override_ = text;
    }
    loaded_ = false;
  }
  ensureLoaded();
  return Status::ok();
}

void ParamBase::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  loaded_ = false;
}

Result<int64_t> parseSize(const std::string& text) {
  if (text.empty()) return invalidArgument("empty value");
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 0);
  if (errno != 0 || end == text.c_str()) return invalidArgument("'%s' is not a number", text.c_str());
  std::string suffix(end);
  int64_t mult = 1;
  if (!suffix.empty()) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(suffix[0])));
    std::string rest = suffix.substr(1);
    if (c == 'K') mult = 1LL << 10;
    else if (c == 'M') mult = 1LL << 20;
    else if (c == 'G') mult = 1LL << 30;
    else if (c == 'B' && rest.empty()) mult = 1;
    else return invalidArgument("unknown size suffix '%s' in '%s'", suffix.c_str(), text.c_str());
    if (c != 'B' && !(rest.empty() || rest == "B" || rest == "b" || rest == "iB" || rest == "ib"))
      return invalidArgument("unknown size suffix '%s' in '%s'", suffix.c_str(), text.c_str());
  }
  if (v != 0 && (v > INT64_MAX / mult || v < INT64_MIN / mult))
    return invalidArgument("'%s' overflows", text.c_str());
  return static_cast<int64_t>(v * mult);
}

Result<bool> parseBool(const std::string& text) {
  std::string t;
  for (char c : text) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "1" || t == "true" || t == "yes" || t == "on") return true;
  if (t == "0" || t == "false" || t == "no" || t == "off") return false;
  return invalidArgument("'%s' is not a boolean (1/0, true/false, yes/no, on/off)", text.c_str());
}

template <>
const char* Param<int64_t>::typeName() const { return "int"; }
template <>
const char* Param<bool>::typeName() const { return "bool"; }
template <>
const char* Param<double>::typeName() const { return "float"; }
template <>
const char* Param<std::string>::typeName() const { return "string"; }

template <>
Status Param<int64_t>::parseInto(const std::string& text) {
  auto r = parseSize(text);
  if (!r) return r.status();
  value_ = r.value();
  return Status::ok();
}
template <>
Status Param<bool>::parseInto(const std::string& text) {
  auto r = parseBool(text);
  if (!r) return r.status();
  value_ = r.value();
  return Status::ok();
}
template <>
Status Param<double>::parseInto(const std::string& text) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || *end != '\0')
    return invalidArgument("'%s' is not a number", text.c_str());
  value_ = v;
  return Status::ok();
}
template <>
Status Param<std::string>::parseInto(const std::string& text) {
  value_ = text;
  return Status::ok();
}

template <>
std::string Param<int64_t>::toText(const int64_t& v) { return std::to_string(v); }
template <>
std::string Param<bool>::toText(const bool& v) { return v ? "1" : "0"; }
template <>
std::string Param<double>::toText(const double& v) { return formatString("%g", v); }
template <>
std::string Param<std::string>::toText(const std::string& v) { return v; }

}  // namespace trellis
