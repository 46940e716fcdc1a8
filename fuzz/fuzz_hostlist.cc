// Slurm-style host list expressions ("node[01-16,20],gpu[1-4]-ib"), bounded expansion.
#include <string_view>

#include "topo/fabric/hostlist.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = trellis::topo::fabric::expandHostlist(std::string_view(reinterpret_cast<const char*>(data), size), 1u << 16);
  if (r && r->size() > (1u << 16)) __builtin_trap();  // the limit holds
  return 0;
}
