// NCCL topology XML (NCCL_TOPO_FILE dumps), then everything downstream.
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto s = trellis::topo::fromNcclXml(trellis::fuzz::text(data, size), "fuzz");
  if (s) trellis::fuzz::exerciseSystem(s.value());
  return 0;
}
