// Trellis topology JSON (TRELLIS_TOPO_FILE, trellis-topo --input), then everything downstream.
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto s = trellis::topo::fromJson(trellis::fuzz::text(data, size), "fuzz");
  if (s) trellis::fuzz::exerciseSystem(s.value());
  return 0;
}
