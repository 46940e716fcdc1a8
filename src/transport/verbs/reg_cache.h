// Memory-registration cache: one per protection domain (NIC). Registering memory pins its pages and
// costs far more than a small transfer, so registrations are reused: an interval index (start ->
// entry, entries never overlap) answers "is [addr, addr+len) inside a registered region" in
// O(log n). A miss registers the request rounded out to `align` (falling back to whole pages when
// the rounded region is not all mapped) and absorbs the registered regions it overlaps, so the
// index stays disjoint and grows toward the buffers' real extent.
//
// Registrations of memory the caller may free are only valid while the caller keeps that memory:
// a region unmapped and mapped again at the same address gets new pages, and a cached registration
// would still point at the old ones (data silently lands in the wrong place). So the cache forgets
// caller memory when the owner says it may go (invalidate(), dropAll() at the end of each
// communicator call) unless the user promised otherwise (TRELLIS_IB_REG_CACHE=keep).
//
// Bounded: at most maxEntries regions and maxBytes registered bytes; least recently used regions
// not in use are deregistered first. Regions in use (a transfer holds a reference) are never
// deregistered under it; an invalidated region in use is deregistered when its last user releases it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "core/status.h"

namespace trellis::transport::verbs {

/// What the cache needs from a protection domain (a fake in unit tests).
class Registrar {
 public:
  struct Keys {
    uint32_t lkey = 0, rkey = 0;
    void* handle = nullptr;
  };
  virtual ~Registrar() = default;
  /// Registers exactly [addr, addr+len) for local and remote write and remote read.
  virtual Result<Keys> reg(uintptr_t addr, size_t len) = 0;
  virtual void dereg(void* handle) = 0;
};

struct RegCacheOptions {
  size_t maxBytes = size_t{4} << 30;
  size_t maxEntries = 1024;
  size_t align = 1 << 20;  // misses register the request rounded out to this (power of two)
};

class RegCache {
 public:
  struct Entry {
    uintptr_t start = 0, end = 0;
    Registrar::Keys keys;
    int refs = 0;
    uint64_t lastUse = 0;
    bool retired = false;  // out of the index; deregistered when refs reach 0
  };
  struct Stats {
    uint64_t hits = 0, misses = 0, evictions = 0, registrations = 0, fallbacks = 0;
    size_t entries = 0, bytes = 0;
  };

  RegCache(Registrar* registrar, RegCacheOptions options) : reg_(registrar), opt_(options) {}
  ~RegCache();
  RegCache(const RegCache&) = delete;
  RegCache& operator=(const RegCache&) = delete;

  /// A registered region containing [addr, addr+len) (len > 0), with a reference held until release().
  Result<Entry*> acquire(const void* addr, size_t len);
  void release(Entry* e);
  /// Forgets every region overlapping [addr, addr+len).
  void invalidate(const void* addr, size_t len);
  /// Forgets every region.
  void dropAll();
  const Stats& stats();

 private:
  void retire(std::map<uintptr_t, std::unique_ptr<Entry>>::iterator it);
  void evict(const Entry* keep);

  Registrar* reg_;
  RegCacheOptions opt_;
  std::map<uintptr_t, std::unique_ptr<Entry>> index_;  // by start; disjoint
  std::vector<std::unique_ptr<Entry>> retired_;        // still referenced
  size_t bytes_ = 0;                                   // registered bytes in the index
  uint64_t clock_ = 0;
  Stats stats_;
};

}  // namespace trellis::transport::verbs
