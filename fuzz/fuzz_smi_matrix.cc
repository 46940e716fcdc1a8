// `nvidia-smi topo -m` text, then everything downstream.
#include "fuzz_common.h"
#include "topo/smi_matrix.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto s = trellis::topo::fromSmiMatrix(trellis::fuzz::text(data, size), "fuzz");
  if (s) trellis::fuzz::exerciseSystem(s.value());
  return 0;
}
