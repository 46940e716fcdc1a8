// TRELLIS_ALGO strings ("allreduce:ring,broadcast:binomial").
#include "tuner/select.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = trellis::tuner::parseAlgoOverrides(std::string(reinterpret_cast<const char*>(data), size));
  if (r) {
    for (const auto* a : r.value())
      if (a != nullptr && a->name == nullptr) __builtin_trap();
  } else if (r.status().message().empty()) {
    __builtin_trap();  // every refusal names the bad token
  }
  return 0;
}
