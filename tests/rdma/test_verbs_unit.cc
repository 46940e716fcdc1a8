// Verbs transport pieces that need no RDMA device: the TRELLIS_IB_HCA parser, the registration
// cache (over a fake protection domain), NIC choice from a topology, and the host fallback (no
// device: "no RDMA device" logged once, collectives between emulated hosts run over TCP).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "../collectives/cases.h"
#include "../support/harness.h"
#include "core/log.h"
#include "core/params.h"
#include "transport/verbs/device.h"
#include "transport/verbs/hca_filter.h"
#include "transport/verbs/reg_cache.h"

namespace trellis::transport::verbs {
namespace {

const int kEnvInit =
    (setenv("TRELLIS_TIMEOUT_S", "60", 0), setenv("TRELLIS_BOOTSTRAP_TIMEOUT_S", "30", 0), 0);

TEST(HcaFilter, NcclSyntax) {
  auto f = parseHcaFilter("mlx5_0:1,mlx5_1:1");
  ASSERT_TRUE(f.isOk()) << f.status().message();
  EXPECT_FALSE(f->exclude);
  EXPECT_FALSE(f->exact);
  ASSERT_EQ(f->entries.size(), 2u);
  EXPECT_EQ(f->entries[1].name, "mlx5_1");
  EXPECT_EQ(f->entries[1].port, 1);
  EXPECT_TRUE(f->allows("mlx5_0", 1));
  EXPECT_FALSE(f->allows("mlx5_0", 2));
  EXPECT_FALSE(f->allows("mlx5_2", 1));
  EXPECT_EQ(f->rank("mlx5_1", 1), 1u);
  EXPECT_EQ(f->rank("mlx5_2", 1), 2u);

  // Prefixes: "mlx5_1" also matches mlx5_10 unless '=' asks for exact names.
  auto pre = parseHcaFilter("mlx5_1");
  ASSERT_TRUE(pre.isOk());
  EXPECT_TRUE(pre->allows("mlx5_10", 1));
  EXPECT_TRUE(pre->allows("mlx5_1", 2));  // no port: every port
  auto exact = parseHcaFilter("=mlx5_1");
  ASSERT_TRUE(exact.isOk());
  EXPECT_TRUE(exact->exact);
  EXPECT_FALSE(exact->allows("mlx5_10", 1));
  EXPECT_TRUE(exact->allows("mlx5_1", 1));

  auto excl = parseHcaFilter("^mlx5_2,rxe");
  ASSERT_TRUE(excl.isOk());
  EXPECT_TRUE(excl->exclude);
  EXPECT_TRUE(excl->allows("mlx5_0", 1));
  EXPECT_FALSE(excl->allows("mlx5_2", 1));
  EXPECT_FALSE(excl->allows("rxe0", 1));
  auto exclExact = parseHcaFilter("^=mlx5_2:1");
  ASSERT_TRUE(exclExact.isOk());
  EXPECT_TRUE(exclExact->exclude && exclExact->exact);
  EXPECT_FALSE(exclExact->allows("mlx5_2", 1));
  EXPECT_TRUE(exclExact->allows("mlx5_2", 2));
  EXPECT_TRUE(exclExact->allows("mlx5_20", 1));

  auto empty = parseHcaFilter("");
  ASSERT_TRUE(empty.isOk());
  EXPECT_TRUE(empty->allows("anything", 3));
  auto spaced = parseHcaFilter("  rxe0:1 ");
  ASSERT_TRUE(spaced.isOk());
  EXPECT_TRUE(spaced->allows("rxe0", 1));
}

TEST(HcaFilter, ErrorsNameTheBadToken) {
  struct Bad {
    const char* spec;
    const char* says;
  };
  for (const Bad& b : {Bad{"mlx5_0:x", "port 'x' is not a number"}, Bad{"mlx5_0:0", "port '0'"},
                       Bad{"mlx5_0:", "port ''"}, Bad{"mlx5_0,,mlx5_1", "empty entry"},
                       Bad{"mlx5_0,", "trailing comma"}, Bad{"^", "no device names after '^'"},
                       Bad{":1", "':1' has no device name"},
                       Bad{"mlx5_0,^mlx5_1", "'^mlx5_1' is not a device name"},
                       Bad{"mlx5 0", "'mlx5 0' is not a device name"}}) {
    auto f = parseHcaFilter(b.spec);
    ASSERT_FALSE(f.isOk()) << b.spec;
    EXPECT_NE(f.status().message().find(b.says), std::string::npos)
        << b.spec << ": " << f.status().message();
    EXPECT_NE(f.status().message().find(std::string("TRELLIS_IB_HCA='") + b.spec + "'"),
              std::string::npos);
  }
}

// A protection domain that records registrations; it refuses regions outside `mapped`.
class FakePd final : public Registrar {
 public:
  uintptr_t mappedLo = 0, mappedHi = UINTPTR_MAX;
  std::map<void*, std::pair<uintptr_t, size_t>> live;
  int regs = 0, deregs = 0;
  Result<Keys> reg(uintptr_t addr, size_t len) override {
    if (addr < mappedLo || addr + len > mappedHi) return systemError(EFAULT, "fake ibv_reg_mr");
    ++regs;
    void* h = reinterpret_cast<void*>(static_cast<uintptr_t>(regs));
    live[h] = {addr, len};
    return Keys{static_cast<uint32_t>(regs), static_cast<uint32_t>(1000 + regs), h};
  }
  void dereg(void* h) override {
    ASSERT_EQ(live.erase(h), 1u) << "double or unknown deregistration";
    ++deregs;
  }
  bool mapped(uintptr_t addr, size_t len) override { return addr >= mappedLo && addr + len <= mappedHi; }
};

constexpr uintptr_t kMiB = 1 << 20;
const void* at(uintptr_t a) { return reinterpret_cast<const void*>(a); }

TEST(RegCache, HitsWithinARegionAndMergesNeighbours) {
  FakePd pd;
  {
    RegCache cache(&pd, RegCacheOptions{});
    auto a = cache.acquire(at(100 * kMiB + 4096), 64 * 1024);
    ASSERT_TRUE(a.isOk());
    EXPECT_EQ(a.value()->start, 100 * kMiB);  // rounded out to 1 MiB
    EXPECT_EQ(a.value()->end, 101 * kMiB);
    auto b = cache.acquire(at(100 * kMiB + 512 * 1024), 4096);  // inside: a hit
    ASSERT_TRUE(b.isOk());
    EXPECT_EQ(b.value(), a.value());
    EXPECT_EQ(cache.stats().hits, 1u);
    EXPECT_EQ(pd.regs, 1);
    // Straddling the end: one new region covering both, the old one retired when released.
    auto c = cache.acquire(at(101 * kMiB - 4096), 2 * 4096);
    ASSERT_TRUE(c.isOk());
    EXPECT_EQ(c.value()->start, 100 * kMiB);
    EXPECT_EQ(c.value()->end, 102 * kMiB);
    EXPECT_EQ(cache.stats().entries, 1u);
    EXPECT_EQ(pd.live.size(), 2u);  // the old region is still in use by a and b
    cache.release(a.value());
    EXPECT_EQ(pd.live.size(), 2u);
    cache.release(b.value());
    EXPECT_EQ(pd.live.size(), 1u);  // deregistered with its last user
    cache.release(c.value());
    EXPECT_EQ(pd.live.size(), 1u);  // idle regions stay cached
  }
  EXPECT_TRUE(pd.live.empty());
  EXPECT_EQ(pd.regs, pd.deregs);
}

TEST(RegCache, FallsBackToPagesWhenTheRoundedRegionIsNotMapped) {
  FakePd pd;
  pd.mappedLo = 10 * kMiB + 8192;
  pd.mappedHi = 10 * kMiB + 3 * 4096;
  RegCache cache(&pd, RegCacheOptions{});
  // The registrar's probe says the rounded region is not all mapped: the request's pages are
  // registered without a failed attempt.
  auto a = cache.acquire(at(10 * kMiB + 8192 + 100), 200);
  ASSERT_TRUE(a.isOk()) << a.status().message();
  EXPECT_EQ(a.value()->start, 10 * kMiB + 8192);
  EXPECT_EQ(a.value()->end, 10 * kMiB + 3 * 4096);
  EXPECT_EQ(cache.stats().fallbacks, 0u);
  EXPECT_EQ(pd.regs, 1);
  // A registrar whose probe knows nothing (the default: mapped): the failed registration of the
  // rounded region falls back to the pages.
  struct NoProbe final : Registrar {
    FakePd* pd;
    explicit NoProbe(FakePd* p) : pd(p) {}
    Result<Keys> reg(uintptr_t addr, size_t len) override { return pd->reg(addr, len); }
    void dereg(void* h) override { pd->dereg(h); }
  } noProbe(&pd);
  RegCache blind(&noProbe, RegCacheOptions{});
  auto b = blind.acquire(at(10 * kMiB + 8192 + 100), 200);
  ASSERT_TRUE(b.isOk()) << b.status().message();
  EXPECT_EQ(b.value()->start, 10 * kMiB + 8192);
  EXPECT_EQ(blind.stats().fallbacks, 1u);
  blind.release(b.value());
  auto bad = cache.acquire(at(20 * kMiB), 10);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("fake ibv_reg_mr"), std::string::npos);
  cache.release(a.value());
}

TEST(RegCache, InvalidateAndDropForgetRegions) {
  FakePd pd;
  RegCache cache(&pd, RegCacheOptions{});
  auto a = cache.acquire(at(50 * kMiB), 100);
  auto b = cache.acquire(at(60 * kMiB), 100);
  ASSERT_TRUE(a.isOk() && b.isOk());
  cache.release(a.value());
  // b is in use: invalidating it takes it out of the index now, deregisters it on release.
  cache.invalidate(at(60 * kMiB + 10), 1);
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_EQ(pd.live.size(), 2u);
  auto b2 = cache.acquire(at(60 * kMiB), 100);  // a miss: the memory may have been remapped
  ASSERT_TRUE(b2.isOk());
  EXPECT_NE(b2.value(), b.value());
  EXPECT_EQ(cache.stats().misses, 3u);
  cache.release(b.value());
  cache.release(b2.value());
  EXPECT_EQ(pd.live.size(), 2u);
  cache.dropAll();
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_TRUE(pd.live.empty());
}

TEST(RegCache, BoundedByEntriesAndBytes) {
  FakePd pd;
  RegCacheOptions o;
  o.maxEntries = 4;
  o.maxBytes = 64 * kMiB;
  RegCache cache(&pd, o);
  for (int i = 0; i < 10; ++i) {
    auto e = cache.acquire(at((200 + 2 * i) * kMiB), 1000);
    ASSERT_TRUE(e.isOk());
    cache.release(e.value());
    EXPECT_LE(cache.stats().entries, 4u);
  }
  EXPECT_EQ(cache.stats().evictions, 6u);
  // The least recently used go first: touch the oldest survivor, add one more, it survives.
  auto keep = cache.acquire(at(212 * kMiB), 1000);
  ASSERT_TRUE(keep.isOk());
  EXPECT_EQ(cache.stats().hits, 1u);
  cache.release(keep.value());
  auto more = cache.acquire(at(300 * kMiB), 1000);
  ASSERT_TRUE(more.isOk());
  cache.release(more.value());
  auto again = cache.acquire(at(212 * kMiB), 1000);
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(cache.stats().hits, 2u);
  cache.release(again.value());
  // Bytes: a 62 MiB region pushes out the two least recently used 1 MiB regions (66 > 64 MiB).
  auto big = cache.acquire(at(400 * kMiB), 62 * kMiB);
  ASSERT_TRUE(big.isOk());
  cache.release(big.value());
  EXPECT_EQ(cache.stats().bytes, 64 * kMiB);
  EXPECT_EQ(cache.stats().entries, 3u);
  // Regions in use are never evicted, even over the bound.
  std::vector<RegCache::Entry*> held;
  for (int i = 0; i < 6; ++i) {
    auto e = cache.acquire(at((600 + 2 * i) * kMiB), 1000);
    ASSERT_TRUE(e.isOk());
    held.push_back(e.value());
  }
  EXPECT_EQ(cache.stats().entries, 6u);
  for (auto* e : held) cache.release(e);
  EXPECT_LE(cache.stats().entries, 4u);
}

// A buffer walked chunk by chunk (what a collective does with a large buffer): the region grows
// ahead geometrically, so 256 chunks of a 64 MiB buffer cost a few registrations and 2-4 times
// the buffer in registered bytes (it was one registration per MiB, 2 GiB in all: quadratic), and
// never reach memory that is not mapped; without growth (TRELLIS_IB_REG_CACHE=keep) nothing beyond
// the pages passed is registered.
TEST(RegCache, WalkingABufferGrowsRegionsGeometrically) {
  const uintptr_t base = 1000 * kMiB + 12345 * 4096;  // not MiB-aligned
  const size_t total = 64 * kMiB, chunk = 256 * 1024;
  for (bool endMapped : {true, false}) {
    FakePd pd;
    if (!endMapped) {  // nothing mapped past the buffer (or before its first MiB)
      pd.mappedLo = base & ~(kMiB - 1);
      pd.mappedHi = base + total;
    }
    RegCacheOptions grow;
    grow.growAhead = true;
    RegCache cache(&pd, grow);
    for (size_t off = 0; off < total; off += chunk) {
      auto e = cache.acquire(at(base + off), chunk);
      ASSERT_TRUE(e.isOk()) << off << ": " << e.status().message();
      EXPECT_GE(e.value()->start, pd.mappedLo);
      EXPECT_LE(e.value()->end, pd.mappedHi);
      cache.release(e.value());
    }
    const auto& st = cache.stats();
    EXPECT_LE(st.registrations, 12u) << "end mapped " << endMapped;
    EXPECT_LE(st.registeredBytes, 4 * total) << "end mapped " << endMapped;
    EXPECT_EQ(st.entries, 1u);
    EXPECT_EQ(st.hits + st.misses, total / chunk);
  }
  // Growing downward too (a buffer walked from its end).
  FakePd down;
  RegCacheOptions growDown;
  growDown.growAhead = true;
  RegCache back(&down, growDown);
  for (size_t off = total; off > 0; off -= chunk) {
    auto e = back.acquire(at(base + off - chunk), chunk);
    ASSERT_TRUE(e.isOk());
    back.release(e.value());
  }
  EXPECT_LE(back.stats().registrations, 12u);
  EXPECT_LE(back.stats().registeredBytes, 4 * total);
  // Without growth, 1 MiB rounding: one registration per MiB, each the whole region so far
  // (what the cache did before: quadratic).
  FakePd quad;
  RegCache flat(&quad, RegCacheOptions{});
  for (size_t off = 0; off < total; off += chunk) {
    auto e = flat.acquire(at(base + off), chunk);
    ASSERT_TRUE(e.isOk());
    flat.release(e.value());
  }
  EXPECT_GE(flat.stats().registrations, 64u);
  EXPECT_GE(flat.stats().registeredBytes, 30 * total);
  // No growth, page alignment (keep): only the pages passed (a chunk straddling a region merges
  // with it, no more).
  FakePd keep;
  RegCacheOptions o;
  o.align = 4096;
  o.growAhead = false;
  RegCache exact(&keep, o);
  for (size_t off = 0; off < 4 * kMiB; off += chunk) {
    auto e = exact.acquire(at(base + off), chunk);
    ASSERT_TRUE(e.isOk());
    EXPECT_EQ(e.value()->start, base + off);
    EXPECT_EQ(e.value()->end, base + off + chunk);
    exact.release(e.value());
  }
  auto straddle = exact.acquire(at(base + chunk - 4096), 2 * 4096);
  ASSERT_TRUE(straddle.isOk());
  EXPECT_EQ(straddle.value()->start, base);
  EXPECT_EQ(straddle.value()->end, base + 2 * chunk);
  exact.release(straddle.value());
}

// Pinned regions (trellisCommRegister): registered at once, whole pages, hit by every request
// inside them across dropAll() (the end of each call), never evicted, and deregistered by unpin()
// (or with their last user when a transfer still holds them).
TEST(RegCache, PinnedRegionsSurviveCallsUntilUnpinned) {
  FakePd pd;
  RegCacheOptions o;
  o.maxEntries = 2;
  RegCache cache(&pd, o);
  auto pin = cache.pin(at(300 * kMiB + 100), 3 * 4096);  // spans 4 pages
  ASSERT_TRUE(pin.isOk()) << pin.status().message();
  EXPECT_NE(pin.value(), 0u);
  EXPECT_EQ(pd.regs, 1);
  EXPECT_EQ(pd.live.begin()->second.first, 300 * kMiB);  // whole pages, not 1 MiB
  EXPECT_EQ(pd.live.begin()->second.second, 4 * 4096u);
  for (int call = 0; call < 5; ++call) {
    auto e = cache.acquire(at(300 * kMiB + 4096 + call), 2 * 4096);
    ASSERT_TRUE(e.isOk());
    EXPECT_EQ(e.value()->pinId, pin.value());
    cache.release(e.value());
    cache.dropAll();  // the end of a call
    // Unpinned traffic pushing the bound does not evict the pin either.
    for (int i = 0; i < 4; ++i) {
      auto u = cache.acquire(at((500 + 2 * i) * kMiB), 100);
      ASSERT_TRUE(u.isOk());
      cache.release(u.value());
    }
  }
  EXPECT_EQ(cache.stats().pinnedHits, 5u);
  EXPECT_EQ(cache.stats().pinned, 1u);
  EXPECT_EQ(cache.stats().pinnedBytes, 4 * 4096u);
  // A request reaching past the pinned region is an ordinary miss, cached apart from the pin.
  auto past = cache.acquire(at(300 * kMiB + 4 * 4096 - 8), 16);
  ASSERT_TRUE(past.isOk());
  EXPECT_EQ(past.value()->pinId, 0u);
  cache.release(past.value());
  EXPECT_EQ(cache.stats().pinnedHits, 5u);
  // Overlapping pins are independent; a request inside both takes one of them.
  auto inner = cache.pin(at(300 * kMiB + 4096), 4096);
  ASSERT_TRUE(inner.isOk());
  EXPECT_NE(inner.value(), pin.value());
  auto both = cache.acquire(at(300 * kMiB + 4096 + 8), 8);
  ASSERT_TRUE(both.isOk());
  EXPECT_NE(both.value()->pinId, 0u);
  // Unpinning a region in use deregisters it when the transfer releases it.
  const uint64_t held = both.value()->pinId;
  const size_t liveBefore = pd.live.size();
  EXPECT_TRUE(cache.unpin(held));
  EXPECT_EQ(pd.live.size(), liveBefore);
  EXPECT_FALSE(cache.unpin(held));  // twice: unknown
  cache.release(both.value());
  EXPECT_EQ(pd.live.size(), liveBefore - 1);
  EXPECT_EQ(cache.stats().pinned, 1u);
  // The other pin still serves; after unpinning it the same request is a miss.
  const uint64_t other = held == pin.value() ? inner.value() : pin.value();
  auto again = cache.acquire(at(300 * kMiB + 4096 + 8), 8);
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again.value()->pinId, other);
  cache.release(again.value());
  EXPECT_TRUE(cache.unpin(other));
  EXPECT_EQ(cache.stats().pinned, 0u);
  EXPECT_EQ(cache.stats().pinnedBytes, 0u);
  cache.dropAll();  // `past` left a 1 MiB region around the pins: the end of the call forgets it
  const uint64_t misses = cache.stats().misses;
  auto miss = cache.acquire(at(300 * kMiB + 4096 + 8), 8);
  ASSERT_TRUE(miss.isOk());
  EXPECT_EQ(miss.value()->pinId, 0u);
  EXPECT_EQ(cache.stats().misses, misses + 1);
  cache.release(miss.value());
  EXPECT_FALSE(cache.unpin(0));
  cache.dropAll();
  EXPECT_TRUE(pd.live.empty());
  EXPECT_EQ(pd.regs, pd.deregs);
}

TEST(RegCache, PinFailureIsReportedAndPinsDieWithTheCache) {
  FakePd pd;
  pd.mappedLo = 10 * kMiB;
  pd.mappedHi = 11 * kMiB;
  {
    RegCache cache(&pd, RegCacheOptions{});
    auto bad = cache.pin(at(20 * kMiB), 10);
    ASSERT_FALSE(bad.isOk());
    EXPECT_NE(bad.status().message().find("fake ibv_reg_mr"), std::string::npos);
    EXPECT_EQ(cache.stats().pinned, 0u);
    ASSERT_TRUE(cache.pin(at(10 * kMiB), 100).isOk());
    ASSERT_TRUE(cache.pin(at(10 * kMiB + 8192), 100).isOk());
    EXPECT_EQ(pd.live.size(), 2u);
  }
  EXPECT_TRUE(pd.live.empty());  // the destructor deregisters pins too
}

topo::Node cpu(int numa) {
  topo::Node n;
  n.kind = topo::NodeKind::kCpu;
  n.numa = numa;
  return n;
}
topo::Node nic(int parent, const std::string& bus, const std::string& dev) {
  topo::Node n;
  n.kind = topo::NodeKind::kNic;
  n.parent = parent;
  n.busId = bus;
  topo::NetPort p;
  p.name = dev;
  n.ports.push_back(p);
  return n;
}
PortInfo port(const std::string& dev, int p, const std::string& bus) {
  PortInfo i;
  i.dev = dev;
  i.port = p;
  i.busId = bus;
  return i;
}

TEST(ChooseNics, NearestInTopologyElseFilterElseAll) {
  topo::System s;
  int c0 = s.add(cpu(0)), c1 = s.add(cpu(1));
  topo::Node sw;
  sw.kind = topo::NodeKind::kPciSwitch;
  sw.parent = c0;
  sw.busId = "0000:10:00.0";
  int sw0 = s.add(sw);
  s.add(nic(sw0, "0000:11:00.0", "mlx5_0"));
  s.add(nic(sw0, "0000:12:00.0", "mlx5_1"));
  s.add(nic(c1, "0000:90:00.0", "mlx5_2"));
  std::vector<PortInfo> ports = {port("mlx5_2", 1, "0000:90:00.0"),
                                 port("mlx5_1", 1, "0000:12:00.0"),
                                 port("mlx5_0", 1, "0000:11:00.0"), port("rxe0", 1, "")};
  HcaFilter none;
  std::string why;
  // NUMA 0: both NICs behind its switch, striped; NUMA 1: its own NIC only.
  auto near0 = chooseNics(ports, none, &s, c0, 4, &why);
  ASSERT_EQ(near0.size(), 2u) << why;
  EXPECT_EQ(ports[near0[0]].dev, "mlx5_0");
  EXPECT_EQ(ports[near0[1]].dev, "mlx5_1");
  EXPECT_NE(why.find("PHB"), std::string::npos) << why;
  auto near1 = chooseNics(ports, none, &s, c1, 4, &why);
  ASSERT_EQ(near1.size(), 1u);
  EXPECT_EQ(ports[near1[0]].dev, "mlx5_2");
  EXPECT_EQ(chooseNics(ports, none, &s, c0, 1, &why).size(), 1u);
  // An inclusive TRELLIS_IB_HCA wins over the topology and sets the order.
  auto f = parseHcaFilter("mlx5_2:1,rxe");
  ASSERT_TRUE(f.isOk());
  auto forced = chooseNics(ports, f.value(), &s, c0, 4, &why);
  ASSERT_EQ(forced.size(), 2u);
  EXPECT_EQ(ports[forced[0]].dev, "mlx5_2");
  EXPECT_EQ(ports[forced[1]].dev, "rxe0");
  EXPECT_EQ(why, "TRELLIS_IB_HCA");
  // An exclusion filters, then the topology picks among the rest.
  auto ex = parseHcaFilter("^mlx5_0");
  ASSERT_TRUE(ex.isOk());
  auto rest = chooseNics(ports, ex.value(), &s, c0, 4, &why);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(ports[rest[0]].dev, "mlx5_1");
  // The cluster view's rails (device or interface names) win over the topology, in their order.
  ports[1].netdev = "ens2f0";
  auto rails = chooseNics(ports, none, &s, c0, 4, &why, {"ens2f0", "mlx5_2"});
  ASSERT_EQ(rails.size(), 2u);
  EXPECT_EQ(ports[rails[0]].dev, "mlx5_1");
  EXPECT_EQ(ports[rails[1]].dev, "mlx5_2");
  EXPECT_EQ(why, "this rank's rails");
  // Rails naming nothing we have (a TCP-only NIC): the topology decides.
  EXPECT_EQ(chooseNics(ports, none, &s, c0, 4, &why, {"eth0"}).size(), 2u);
  EXPECT_NE(why.find("PHB"), std::string::npos) << why;
  // Software devices the topology does not know: all of them, by name.
  std::vector<PortInfo> soft = {port("rxe1", 1, ""), port("rxe0", 1, "")};
  auto sw2 = chooseNics(soft, none, &s, c0, 4, &why);
  ASSERT_EQ(sw2.size(), 2u);
  EXPECT_EQ(soft[sw2[0]].dev, "rxe0");
  EXPECT_NE(why.find("no port in the topology"), std::string::npos);
  EXPECT_EQ(chooseNics(soft, none, nullptr, -1, 4, &why).size(), 2u);
}

// On a machine without RDMA devices (these build machines), the automatic choice falls back to
// TCP between hosts and says so once; forcing verbs is an error that says why.
TEST(VerbsFallback, NoDeviceMeansTcpAndOneLogLine) {
  if (!listActivePorts(-1, nullptr).empty())
    GTEST_SKIP() << "this machine has an RDMA device; tests/rdma covers it";
  char path[] = "/tmp/trellis-verbs-log-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_TRUE(findParam("TRELLIS_DEBUG")->setOverride("info").isOk());
  ASSERT_TRUE(findParam("TRELLIS_DEBUG_SUBSYS")->setOverride("net").isOk());
  ASSERT_TRUE(findParam("TRELLIS_DEBUG_FILE")->setOverride(path).isOk());
  reloadLogConfig();
  // Two emulated hosts of two ranks (threads: one process, so "once" is testable).
  auto cases = test::crossSection(4, {1000});
  std::string err = test::runRanksOver(test::Wire::kMixed, 4, test::RankMode::kThreads,
                                       [&](trellisComm_t c, int r, int n) {
                                         for (const auto& k : cases) {
                                           std::string e = test::runCase(c, r, n, k);
                                           if (!e.empty()) return e;
                                         }
                                         return std::string();
                                       });
  // Again, in the same process: still one line.
  std::string err2 = test::runRanksOver(
      test::Wire::kMixed, 2, test::RankMode::kThreads,
      [&](trellisComm_t c, int r, int n) { return test::runCase(c, r, n, cases[0]); });
  (void)findParam("TRELLIS_DEBUG")->setOverride("");
  (void)findParam("TRELLIS_DEBUG_SUBSYS")->setOverride("");
  (void)findParam("TRELLIS_DEBUG_FILE")->setOverride("");
  reloadLogConfig();
  EXPECT_EQ(err, "");
  EXPECT_EQ(err2, "");
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string log = ss.str();
  unlink(path);
  size_t count = 0;
  for (size_t p = log.find("no RDMA device"); p != std::string::npos;
       p = log.find("no RDMA device", p + 1))
    ++count;
  EXPECT_EQ(count, 1u) << log;
  EXPECT_NE(log.find("tcp transport up"), std::string::npos) << log;
  EXPECT_EQ(log.find("verbs transport up"), std::string::npos) << log;
}

TEST(VerbsFallback, ForcedVerbsWithoutDeviceFailsClearly) {
  if (!listActivePorts(-1, nullptr).empty())
    GTEST_SKIP() << "this machine has an RDMA device; tests/rdma covers it";
  std::string err = test::runRanksOver(test::Wire::kVerbs, 2, test::RankMode::kThreads,
                                       [](trellisComm_t, int, int) { return std::string(); });
  EXPECT_NE(err.find("TRELLIS_TRANSPORT=verbs but rank(s)"), std::string::npos) << err;
  EXPECT_NE(err.find("no usable RDMA device"), std::string::npos) << err;
}

}  // namespace
}  // namespace trellis::transport::verbs
