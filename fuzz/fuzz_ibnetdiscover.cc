// ibnetdiscover output (trellis-topo fabric --ibnetdiscover), then analysis and every emitter.
#include <string_view>

#include "fuzz_fabric_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = trellis::topo::fabric::parseIbnetdiscover(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (f) trellis::fuzz::exerciseFabric(f.value());
  return 0;
}
