#include "core/mr_cache.h"

namespace trellis::ncclnet {

MrCache::~MrCache() {
  for (auto& [start, e] : byStart_) delete e;
}

Status MrCache::reg(const void* data, size_t size, int type, MrEntry** out, bool* hit) {
  uintptr_t s = reinterpret_cast<uintptr_t>(data);
  if (size > 0 && s + size < s)
    return invalidArgument("regMr: range %p + %zu bytes wraps around", data, size);
  uintptr_t e = s + size;
  std::lock_guard<std::mutex> lock(mu_);
  // Entries starting at or before s, newest start first: the first that covers [s, e) is reused.
  for (auto it = byStart_.upper_bound(s); it != byStart_.begin();) {
    --it;
    MrEntry* m = it->second;
    if (m->type == type && m->end >= e) {
      ++m->refs;
      ++stats_.registrations;
      ++stats_.hits;
      *out = m;
      *hit = true;
      return Status::ok();
    }
  }
  auto* m = new MrEntry;
  m->start = s;
  m->end = e;
  m->type = type;
  m->refs = 1;
  m->id = nextId_++;
  byStart_.emplace(s, m);
  live_.insert(m);
  ++stats_.registrations;
  ++stats_.live;
  *out = m;
  *hit = false;
  return Status::ok();
}

Status MrCache::dereg(void* handle, std::pair<uintptr_t, size_t>* gone) {
  if (handle == nullptr) return invalidArgument("deregMr: null memory handle");
  std::lock_guard<std::mutex> lock(mu_);
  if (live_.count(handle) == 0)
    return invalidArgument("deregMr: %p is not a live registration of this plugin", handle);
  auto* m = static_cast<MrEntry*>(handle);
  auto range = byStart_.equal_range(m->start);
  for (auto it = range.first; it != range.second; ++it)
    if (it->second == m) {
      ++stats_.deregistrations;
      if (--m->refs == 0) {
        if (gone != nullptr) *gone = {m->start, m->end - m->start};
        byStart_.erase(it);
        live_.erase(m);
        m->magic = 0;
        delete m;
        --stats_.live;
      }
      return Status::ok();
    }
  return invalidArgument("deregMr: %p is not a live registration of this plugin", handle);
}

Status MrCache::check(const void* handle, const void* data, size_t size, const char* what) {
  if (handle == nullptr) {
    if (size == 0) return Status::ok();
    return invalidArgument("%s: buffer %p (%zu bytes) has no memory handle (regMr it first)", what,
                           data, size);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (live_.count(handle) == 0)
    return invalidArgument("%s: memory handle %p is not a live registration of this plugin", what,
                           handle);
  const auto* m = static_cast<const MrEntry*>(handle);
  uintptr_t s = reinterpret_cast<uintptr_t>(data);
  if (size > 0 && (s < m->start || s + size > m->end))
    return invalidArgument("%s: buffer %p + %zu bytes lies outside its registration %p + %zu bytes",
                           what, data, size, reinterpret_cast<const void*>(m->start),
                           static_cast<size_t>(m->end - m->start));
  return Status::ok();
}

MrStats MrCache::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace trellis::ncclnet
