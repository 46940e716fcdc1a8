// Parsers of parameter text (environment, config file, programmatic overrides). The first byte
// picks the parser; the rest is the text.
#include <string>

#include "core/log.h"
#include "core/params.h"
#include "core/socket.h"

using namespace trellis;

static Param<int64_t> kFuzzInt("TRELLIS_FUZZ_INT", 7, "fuzz target: an integer parameter");
static Param<double> kFuzzDouble("TRELLIS_FUZZ_DOUBLE", 1.5, "fuzz target: a real parameter");
static Param<bool> kFuzzBool("TRELLIS_FUZZ_BOOL", false, "fuzz target: a boolean parameter");
static Param<std::string> kFuzzString("TRELLIS_FUZZ_STRING", "x", "fuzz target: a string parameter");

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 8) {
    case 0: {
      auto v = parseSize(text);
      if (v && !parseSize(std::to_string(v.value()))) __builtin_trap();  // its own output parses
      break;
    }
    case 1:
      (void)parseBool(text);
      break;
    case 2: {
      ParamBase* ps[] = {&kFuzzInt, &kFuzzDouble, &kFuzzBool, &kFuzzString};
      for (ParamBase* p : ps) {
        (void)p->setOverride(text);
        (void)p->valueString();
        (void)p->setOverride("");
      }
      (void)kFuzzInt.get();
      break;
    }
    case 3:
      (void)parseConfigText(text);
      break;
    case 4: {  // interface selection rules
      size_t cut = text.find('\n');
      (void)findParam("TRELLIS_SOCKET_IFNAME")->setOverride(text.substr(0, cut));
      if (cut != std::string::npos) (void)findParam("TRELLIS_SOCKET_FAMILY")->setOverride(text.substr(cut + 1));
      (void)net::findInterfaces();
      (void)findParam("TRELLIS_SOCKET_IFNAME")->setOverride("");
      (void)findParam("TRELLIS_SOCKET_FAMILY")->setOverride("");
      break;
    }
    case 5: {  // host:port, numeric hosts only (a name would be a DNS query per input)
      for (char c : text)
        if (!(c >= '0' && c <= '9') && c != '.' && c != ':' && c != '[' && c != ']' && c != '%') return 0;
      auto a = net::parseHostPort(text);
      if (a) (void)a->toString();
      break;
    }
    case 6: {  // logging configuration
      size_t cut = text.find('\n');
      (void)findParam("TRELLIS_DEBUG")->setOverride(text.substr(0, cut));
      if (cut != std::string::npos) (void)findParam("TRELLIS_DEBUG_SUBSYS")->setOverride(text.substr(cut + 1));
      reloadLogConfig();
      (void)logEnabled(LogLevel::kInfo, Subsys::kNet);
      (void)findParam("TRELLIS_DEBUG")->setOverride("");
      (void)findParam("TRELLIS_DEBUG_SUBSYS")->setOverride("");
      reloadLogConfig();
      break;
    }
    default: {  // every registered parameter of the library
      for (ParamBase* p : allParams()) {
        if (std::string(p->name()).rfind("TRELLIS_DEBUG", 0) == 0) continue;  // would reopen log files
        (void)p->setOverride(text);
        (void)p->valueString();
        (void)p->setOverride("");
      }
      break;
    }
  }
  return 0;
}
