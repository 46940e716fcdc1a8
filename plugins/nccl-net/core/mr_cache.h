// The registration cache behind regMr/deregMr. Registrations are global (regIsGlobal = 1): a handle
// from one comm is valid on every comm. A request for a range that an existing registration of the
// same memory type covers returns that registration (a hit: same handle, one more reference);
// deregMr drops a reference and the entry goes with the last one. isend/irecv check that their
// buffer lies inside the handle's range, which catches a stale or mismatched handle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_set>
#include <utility>

#include "core/status.h"

namespace trellis::ncclnet {

struct MrEntry {
  static constexpr uint32_t kMagic = 0x54524d52u;  // "TRMR"
  uint32_t magic = kMagic;
  uintptr_t start = 0, end = 0;  // [start, end)
  int type = 0;                  // NCCL_PTR_* of the memory
  int refs = 0;
  uint64_t id = 0;
};

struct MrStats {
  uint64_t registrations = 0;  // regMr calls that succeeded
  uint64_t hits = 0;           // of those, served by an existing entry
  uint64_t deregistrations = 0;
  uint64_t live = 0;  // entries alive now
};

class MrCache {
 public:
  ~MrCache();
  /// Registers [data, data+size) of memory type `type`; *hit says whether an entry was reused.
  Status reg(const void* data, size_t size, int type, MrEntry** out, bool* hit);
  /// Drops a reference; when it was the last, *gone (optional) receives the entry's range.
  Status dereg(void* handle, std::pair<uintptr_t, size_t>* gone = nullptr);
  /// Checks that `handle` is a live registration covering [data, data+size); `what` names the call.
  Status check(const void* handle, const void* data, size_t size, const char* what);
  MrStats stats();

 private:
  std::mutex mu_;
  std::multimap<uintptr_t, MrEntry*> byStart_;
  std::unordered_set<const void*> live_;
  uint64_t nextId_ = 1;
  MrStats stats_;
};

}  // namespace trellis::ncclnet
