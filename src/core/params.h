// Typed parameter registry. Each tunable is declared once, next to the code that owns it:
//
//   static trellis::Param<int64_t> kChunk("TRELLIS_TCP_CHUNK_BYTES", 512 * 1024,
//                                         "bytes per TCP chunk when striping over sockets");
//
// Values come from (highest first) a programmatic override, the environment, the config file
// (TRELLIS_CONF_FILE, default /etc/trellis.conf: NAME=value lines, # comments), then the default.
// `trellis-info params` lists every parameter with its value, default and where it was set.
// This is the only place in Trellis that calls getenv.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace trellis {

enum class ParamSource { kDefault, kConfigFile, kEnv, kOverride };
const char* paramSourceName(ParamSource source);

class ParamBase {
 public:
  ParamBase(const char* name, const char* doc);
  virtual ~ParamBase() = default;
  ParamBase(const ParamBase&) = delete;
  ParamBase& operator=(const ParamBase&) = delete;

  const char* name() const { return name_; }
  const char* doc() const { return doc_; }
  virtual const char* typeName() const = 0;
  virtual std::string defaultString() const = 0;
  /// Current value as text (loads it if needed).
  std::string valueString();
  ParamSource source();
  /// A parse error of the configured value (the default is used then), or empty.
  std::string error();

  /// Forces a value (tests, config structs); empty text removes the override.
  Status setOverride(const std::string& text);
  /// Re-reads environment and config file on next access.
  void reset();

 protected:
  void ensureLoaded();
  virtual Status parseInto(const std::string& text) = 0;  // sets the current value
  virtual void setDefault() = 0;
  virtual std::string currentString() const = 0;

  std::mutex mu_;

 private:
  const char* name_;
  const char* doc_;
  bool loaded_ = false;
  ParamSource source_ = ParamSource::kDefault;
  std::optional<std::string> override_;
  std::string error_;
};

template <typename T>
class Param final : public ParamBase {
 public:
  Param(const char* name, T def, const char* doc) : ParamBase(name, doc), default_(def), value_(def) {}
  T get() {
    ensureLoaded();
    std::lock_guard<std::mutex> lock(mu_);
    return value_;
  }
  const T& defaultValue() const { return default_; }
  const char* typeName() const override;
  std::string defaultString() const override { return toText(default_); }

 protected:
  Status parseInto(const std::string& text) override;
  void setDefault() override { value_ = default_; }
  std::string currentString() const override { return toText(value_); }

 private:
  static std::string toText(const T& v);
  T default_;
  T value_;
};


// Specialisations live in params.cc; supported T: int64_t, bool, double, std::string.
template <>
const char* Param<int64_t>::typeName() const;
template <>
Status Param<int64_t>::parseInto(const std::string& text);
template <>
std::string Param<int64_t>::toText(const int64_t& v);
template <>
const char* Param<bool>::typeName() const;
template <>
Status Param<bool>::parseInto(const std::string& text);
template <>
std::string Param<bool>::toText(const bool& v);
template <>
const char* Param<double>::typeName() const;
template <>
Status Param<double>::parseInto(const std::string& text);
template <>
std::string Param<double>::toText(const double& v);
template <>
const char* Param<std::string>::typeName() const;
template <>
Status Param<std::string>::parseInto(const std::string& text);
template <>
std::string Param<std::string>::toText(const std::string& v);

/// Every registered parameter, in registration order.
std::vector<ParamBase*>& allParams();
/// Finds a parameter by its environment name, or nullptr.
ParamBase* findParam(const std::string& name);
/// Raw environment lookup for names that are not Trellis parameters (launcher variables such as
/// OMPI_COMM_WORLD_RANK or MASTER_ADDR); returns nullopt when unset.
std::optional<std::string> envLookup(const char* name);

/// Parses sizes such as "512", "64K", "1M", "2G" (powers of 1024), with an optional "B"/"iB".
Result<int64_t> parseSize(const std::string& text);
/// The config file's syntax: NAME=value lines, # starts a comment, blanks around both trimmed.
std::map<std::string, std::string> parseConfigText(const std::string& text);
Result<bool> parseBool(const std::string& text);

}  // namespace trellis
