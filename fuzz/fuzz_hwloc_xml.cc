// hwloc XML (lstopo --of xml), then everything downstream.
#include "fuzz_common.h"
#include "topo/hwloc_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto s = trellis::topo::fromHwlocXml(trellis::fuzz::text(data, size), "fuzz");
  if (s) trellis::fuzz::exerciseSystem(s.value());
  return 0;
}
