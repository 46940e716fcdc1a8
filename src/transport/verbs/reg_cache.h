// Memory-registration cache: one per protection domain (NIC). Registering memory pins its pages and
// costs far more than a small transfer, so registrations are reused: an interval index (start ->
// entry, entries never overlap) answers "is [addr, addr+len) inside a registered region" in
// O(log n). A miss registers the request rounded out to `align` (falling back to whole pages when
// the rounded region is not all mapped) and absorbs the registered regions it overlaps, so the
// index stays disjoint and grows toward the buffers' real extent; a miss that extends a region
// grows it ahead geometrically (RegCacheOptions::growAhead), so walking a buffer in chunks
// registers 2x its size in O(log n) registrations rather than a quadratic volume.
//
// Registrations of memory the caller may free are only valid while the caller keeps that memory:
// a region unmapped and mapped again at the same address gets new pages, and a cached registration
// would still point at the old ones (data silently lands in the wrong place). So the cache forgets
// caller memory when the owner says it may go (invalidate(), dropAll() at the end of each
// communicator call) unless the user promised otherwise (TRELLIS_IB_REG_CACHE=keep).
//
// Bounded: at most maxEntries regions and maxBytes registered bytes; least recently used regions
// not in use are deregistered first. Regions in use (a transfer holds a reference) are never
// deregistered under it; an invalidated region in use is deregistered when its last user releases
// it.
//
// Pinned regions (pin(), what trellisCommRegister asks for): the user promises the memory stays
// mapped until it deregisters, so its registration is kept across calls until unpin(). They live
// in an index of their own (user registrations may overlap each other and the cached regions), are
// looked up first by acquire(), are not rounded beyond whole pages, and are never evicted,
// invalidated or dropped by dropAll(): the user bounds them by what it registers, and unpin() is
// their invalidation.
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
  /// Whether [addr, addr+len) is all mapped, asked before growing a region ahead (a cheap probe;
  /// reg() stays the judge). The default says yes.
  virtual bool mapped(uintptr_t addr, size_t len) {
    (void)addr;
    (void)len;
    return true;
  }
};

struct RegCacheOptions {
  size_t maxBytes = size_t{4} << 30;
  size_t maxEntries = 1024;
  size_t align = 1 << 20;  // misses register the request rounded out to this (power of two)
  // A miss that extends a cached region registers the merged region grown ahead by its own size
  // (at most maxGrowBytes, as far as Registrar::mapped says memory is mapped), so a buffer walked
  // chunk by chunk costs O(log n) registrations. The verbs transport turns it on except when
  // registrations outlive calls (TRELLIS_IB_REG_CACHE=keep: nothing beyond the pages passed).
  bool growAhead = false;
  size_t maxGrowBytes = size_t{1} << 30;
};

class RegCache {
 public:
  struct Entry {
    uintptr_t start = 0, end = 0;
    Registrar::Keys keys;
    int refs = 0;
    uint64_t lastUse = 0;
    bool retired = false;  // out of the index; deregistered when refs reach 0
    uint64_t pinId = 0;    // non-zero: a pinned region (pin()), kept until unpin(pinId)
  };
  struct Stats {
    uint64_t hits = 0, misses = 0, evictions = 0, registrations = 0, fallbacks = 0;
    size_t entries = 0, bytes = 0;
    uint64_t registeredBytes = 0;  // bytes registered so far (all registrations, cumulative)
    uint64_t pinnedHits = 0;  // hits (counted in `hits` too) served by a pinned region
    size_t pinned = 0, pinnedBytes = 0;
  };

  RegCache(Registrar* registrar, RegCacheOptions options) : reg_(registrar), opt_(options) {}
  ~RegCache();
  RegCache(const RegCache&) = delete;
  RegCache& operator=(const RegCache&) = delete;

  /// A registered region containing [addr, addr+len) (len > 0), with a reference held until
  /// release().
  Result<Entry*> acquire(const void* addr, size_t len);
  void release(Entry* e);
  /// Forgets every region overlapping [addr, addr+len).
  void invalidate(const void* addr, size_t len);
  /// Forgets every region (pinned regions stay).
  void dropAll();
  const Stats& stats();

  /// Registers [addr, addr+len) (len > 0, rounded out to whole pages) now and keeps it until
  /// unpin(): acquire() of a range inside it is a hit. Returns the pin's id (never 0).
  Result<uint64_t> pin(const void* addr, size_t len);
  /// Forgets the pinned region `id` (deregistered now, or when the last transfer using it
  /// releases it). False when `id` is not a live pin of this cache.
  bool unpin(uint64_t id);

 private:
  void retire(std::map<uintptr_t, std::unique_ptr<Entry>>::iterator it);
  void evict(const Entry* keep);
  Entry* findPinned(uintptr_t a, uintptr_t b);

  Registrar* reg_;
  RegCacheOptions opt_;
  std::map<uintptr_t, std::unique_ptr<Entry>> index_;  // by start; disjoint
  std::vector<std::unique_ptr<Entry>> retired_;        // still referenced
  size_t bytes_ = 0;                                   // registered bytes in the index
  uint64_t clock_ = 0;
  Stats stats_;
  std::multimap<uintptr_t, std::unique_ptr<Entry>> pinned_;  // by start; may overlap
  size_t pinnedBytes_ = 0;
  size_t pinnedMaxLen_ = 0;  // longest pinned region (bounds the containment search)
  uint64_t nextPin_ = 1;
};

}  // namespace trellis::transport::verbs
