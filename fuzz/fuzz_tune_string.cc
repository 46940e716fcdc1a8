// TRELLIS_TUNE strings ("allreduce:0-4k:@rd#allreduce:4k-inf:[2-8]:@ring:chunk=256k") and the
// size parser they use. Every refusal must say something; accepted entries must be well formed.
#include "tuner/tune_string.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = trellis::tuner::parseTuneString(text);
  if (r) {
    for (const auto& e : r.value()) {
      if (e.colls.empty() || e.teamLo > e.teamHi || e.position > text.size()) __builtin_trap();
      for (const auto& rg : e.ranges)
        if (rg.lo > rg.hi) __builtin_trap();
      (void)e.matches(trellis::algos::Coll::kAllReduce, 4096, 4);
    }
  } else if (r.status().message().empty()) {
    __builtin_trap();
  }
  uint64_t v;
  (void)trellis::tuner::parseSize(text, &v);
  return 0;
}
