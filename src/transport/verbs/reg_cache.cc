#include "transport/verbs/reg_cache.h"

#include <unistd.h>

#include <algorithm>

namespace trellis::transport::verbs {

RegCache::~RegCache() {
  for (auto& [start, e] : index_) reg_->dereg(e->keys.handle);
  for (auto& e : retired_) reg_->dereg(e->keys.handle);
  for (auto& [start, e] : pinned_) reg_->dereg(e->keys.handle);
}

void RegCache::retire(std::map<uintptr_t, std::unique_ptr<Entry>>::iterator it) {
  std::unique_ptr<Entry> e = std::move(it->second);
  bytes_ -= e->end - e->start;
  index_.erase(it);
  if (e->refs == 0) {
    reg_->dereg(e->keys.handle);
  } else {
    e->retired = true;
    retired_.push_back(std::move(e));
  }
}

Result<RegCache::Entry*> RegCache::acquire(const void* addr, size_t len) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  if (len == 0) len = 1;
  const uintptr_t b = a + len;
  if (Entry* p = findPinned(a, b)) {
    ++p->refs;
    p->lastUse = ++clock_;
    ++stats_.hits;
    ++stats_.pinnedHits;
    return p;
  }
  auto it = index_.upper_bound(a);
  if (it != index_.begin()) {
    auto prev = std::prev(it);
    if (prev->second->end >= b) {
      Entry* e = prev->second.get();
      ++e->refs;
      e->lastUse = ++clock_;
      ++stats_.hits;
      return e;
    }
  }
  ++stats_.misses;
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t align = std::max<uintptr_t>(opt_.align, page);
  // Candidates, tried in order until one registers:
  //  1. the request rounded out to `align` (as far as memory is mapped), merged with the regions
  //     it overlaps, and, when it extends such a region, grown ahead (in the direction it extends)
  //     by up to the merged size over mapped memory: a buffer walked chunk by chunk is then
  //     registered O(log n) times in regions of doubling size (2-4x its size in all) instead of
  //     once per chunk in ever longer regions (quadratic);
  //  2. the same without growing;
  //  3. the request's own pages alone (a region it overlaps may describe memory unmapped since).
  struct Range {
    uintptr_t lo, hi;
  };
  Range cand[3];
  int ncand = 0;
  const Range pages{a & ~(page - 1), (b + page - 1) & ~(page - 1)};
  {
    uintptr_t lo = a & ~(align - 1), hi = (b + align - 1) & ~(align - 1);
    if (lo < pages.lo && !reg_->mapped(lo, pages.lo - lo)) lo = pages.lo;
    if (hi > pages.hi && !reg_->mapped(pages.hi, hi - pages.hi)) hi = pages.hi;
    uintptr_t oldLo = UINTPTR_MAX, oldHi = 0;  // extent of the regions merged
    auto first = index_.upper_bound(lo);
    if (first != index_.begin() && std::prev(first)->second->end > lo) --first;
    for (auto m = first; m != index_.end() && m->first < hi; ++m) {
      oldLo = std::min(oldLo, m->second->start);
      oldHi = std::max(oldHi, m->second->end);
    }
    if (oldHi > 0) {
      lo = std::min(lo, oldLo);
      hi = std::max(hi, oldHi);
      if (opt_.growAhead && (b > oldHi || a < oldLo)) {
        // Grow by the merged size, or as far as memory is mapped when less (found by bisection
        // with the registrar's cheap probe): near the end of a buffer the region then covers the
        // rest of it in one registration.
        const uintptr_t want = std::min<uintptr_t>(hi - lo, opt_.maxGrowBytes) & ~(page - 1);
        auto reach = [&](bool up) -> uintptr_t {
          const uintptr_t room = up ? UINTPTR_MAX - hi : lo;
          uintptr_t good = 0, bad = std::min(want, room & ~(page - 1)) + page;
          auto ok = [&](uintptr_t g) { return up ? reg_->mapped(hi, g) : reg_->mapped(lo - g, g); };
          if (bad > page && ok(bad - page)) return bad - page;
          while (bad - good > page) {
            const uintptr_t mid = ((good + bad) / 2) & ~(page - 1);
            (ok(mid) ? good : bad) = mid;
          }
          return good;
        };
        Range g{lo, hi};
        if (b > oldHi) g.hi = hi + reach(true);
        if (a < oldLo) g.lo = lo - reach(false);
        if (g.lo != lo || g.hi != hi) cand[ncand++] = g;
      }
    }
    cand[ncand++] = {lo, hi};
    if (pages.lo != lo || pages.hi != hi) cand[ncand++] = pages;
  }
  for (int attempt = 0; attempt < ncand; ++attempt) {
    const uintptr_t lo = cand[attempt].lo, hi = cand[attempt].hi;
    Result<Registrar::Keys> keys = reg_->reg(lo, hi - lo);
    if (!keys) {
      if (attempt + 1 < ncand) {
        ++stats_.fallbacks;
        continue;
      }
      return keys.status();
    }
    ++stats_.registrations;
    stats_.registeredBytes += hi - lo;
    // The new region supersedes every region it overlaps (after a fallback they may extend past it:
    // they are older than the new one and may describe memory that was unmapped since).
    auto first = index_.upper_bound(lo);
    if (first != index_.begin() && std::prev(first)->second->end > lo) --first;
    while (first != index_.end() && first->first < hi) {
      auto next = std::next(first);
      retire(first);
      first = next;
    }
    auto e = std::make_unique<Entry>();
    e->start = lo;
    e->end = hi;
    e->keys = keys.value();
    e->refs = 1;
    e->lastUse = ++clock_;
    Entry* raw = e.get();
    bytes_ += hi - lo;
    index_.emplace(lo, std::move(e));
    evict(raw);
    return raw;
  }
  return internalError("unreachable");
}

void RegCache::evict(const Entry* keep) {
  while (index_.size() > opt_.maxEntries || bytes_ > opt_.maxBytes) {
    auto victim = index_.end();
    for (auto it = index_.begin(); it != index_.end(); ++it) {
      const Entry* e = it->second.get();
      if (e == keep || e->refs > 0) continue;
      if (victim == index_.end() || e->lastUse < victim->second->lastUse) victim = it;
    }
    if (victim == index_.end()) return;  // everything left is in use: over the bound until released
    ++stats_.evictions;
    retire(victim);
  }
}

void RegCache::release(Entry* e) {
  if (--e->refs > 0) return;
  if (!e->retired) {
    evict(nullptr);
    return;
  }
  auto it =
      std::find_if(retired_.begin(), retired_.end(), [&](const auto& p) { return p.get() == e; });
  reg_->dereg(e->keys.handle);
  retired_.erase(it);
}

void RegCache::invalidate(const void* addr, size_t len) {
  const uintptr_t lo = reinterpret_cast<uintptr_t>(addr), hi = lo + std::max<size_t>(len, 1);
  auto it = index_.upper_bound(lo);
  if (it != index_.begin() && std::prev(it)->second->end > lo) --it;
  while (it != index_.end() && it->first < hi) {
    auto next = std::next(it);
    retire(it);
    it = next;
  }
}

void RegCache::dropAll() {
  while (!index_.empty()) retire(index_.begin());
}

const RegCache::Stats& RegCache::stats() {
  stats_.entries = index_.size();
  stats_.bytes = bytes_;
  stats_.pinned = pinned_.size();
  stats_.pinnedBytes = pinnedBytes_;
  return stats_;
}

RegCache::Entry* RegCache::findPinned(uintptr_t a, uintptr_t b) {
  if (pinned_.empty()) return nullptr;
  // A region containing [a, b) starts at or before a, and no earlier than a - pinnedMaxLen_.
  const uintptr_t floor = a > pinnedMaxLen_ ? a - pinnedMaxLen_ : 0;
  for (auto it = pinned_.upper_bound(a); it != pinned_.begin();) {
    --it;
    if (it->first < floor) break;
    if (it->second->end >= b) return it->second.get();
  }
  return nullptr;
}

Result<uint64_t> RegCache::pin(const void* addr, size_t len) {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  const uintptr_t lo = a & ~(page - 1),
                  hi = (a + std::max<size_t>(len, 1) + page - 1) & ~(page - 1);
  Result<Registrar::Keys> keys = reg_->reg(lo, hi - lo);
  if (!keys) return keys.status();
  ++stats_.registrations;
  stats_.registeredBytes += hi - lo;
  auto e = std::make_unique<Entry>();
  e->start = lo;
  e->end = hi;
  e->keys = keys.value();
  e->lastUse = ++clock_;
  e->pinId = nextPin_++;
  const uint64_t id = e->pinId;
  pinnedBytes_ += hi - lo;
  pinnedMaxLen_ = std::max<size_t>(pinnedMaxLen_, hi - lo);
  pinned_.emplace(lo, std::move(e));
  return id;
}

bool RegCache::unpin(uint64_t id) {
  auto it = std::find_if(pinned_.begin(), pinned_.end(),
                         [&](const auto& p) { return p.second->pinId == id; });
  if (id == 0 || it == pinned_.end()) return false;
  std::unique_ptr<Entry> e = std::move(it->second);
  pinned_.erase(it);
  pinnedBytes_ -= e->end - e->start;
  pinnedMaxLen_ = 0;
  for (const auto& [start, p] : pinned_)
    pinnedMaxLen_ = std::max<size_t>(pinnedMaxLen_, p->end - start);
  if (e->refs == 0) {
    reg_->dereg(e->keys.handle);
  } else {
    e->retired = true;
    retired_.push_back(std::move(e));
  }
  return true;
}

}  // namespace trellis::transport::verbs
