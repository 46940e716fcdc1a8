// The unique id: its 128 bytes as a framework passes them (decode), and its hex form as launchers
// pass it in TRELLIS_UNIQUE_ID (fromHex, then decode). A decoded id must re-encode to itself.
#include <cstring>

#include "core/bootstrap.h"

using trellis::UniqueIdData;

static void roundTrip(const trellisUniqueId& id) {
  auto d = UniqueIdData::decode(id);
  if (!d) return;
  trellisUniqueId again;
  d->encode(&again);
  auto d2 = UniqueIdData::decode(again);
  if (!d2 || !(d2->root == d->root) || std::memcmp(d2->secret, d->secret, 16) != 0) __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  trellisUniqueId id;
  std::memset(&id, 0, sizeof id);
  std::memcpy(id.internal, data, size < sizeof id.internal ? size : sizeof id.internal);
  roundTrip(id);
  auto h = UniqueIdData::fromHex(std::string(reinterpret_cast<const char*>(data), size));
  if (h) {
    roundTrip(h.value());
    if (UniqueIdData::toHex(h.value()).size() != 2 * sizeof id.internal) __builtin_trap();
  }
  return 0;
}
