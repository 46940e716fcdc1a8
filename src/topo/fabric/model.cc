// Fabric model helpers: names of enums, link rates, tier classification and JSON.
#include "topo/fabric/model.h"

#include <cinttypes>
#include <cstdio>
#include <deque>

#include <nlohmann/json.hpp>

namespace trellis::topo::fabric {

const char* sourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kIbnetdiscover: return "ibnetdiscover";
    case SourceKind::kClusterFile: return "cluster-file";
    case SourceKind::kDerived: return "derived";
  }
  return "?";
}

const char* tierName(Tier tier) {
  switch (tier) {
    case Tier::kUnknown: return "unknown";
    case Tier::kLeaf: return "leaf";
    case Tier::kSpine: return "spine";
    case Tier::kCore: return "core";
  }
  return "?";
}

const char* caKindName(CaKind kind) {
  switch (kind) {
    case CaKind::kHost: return "host";
    case CaKind::kAggregationNode: return "aggregation-node";
    case CaKind::kRouter: return "router";
  }
  return "?";
}

const char* nameStatusName(NameStatus status) {
  switch (status) {
    case NameStatus::kNamed: return "named";
    case NameStatus::kPlaceholder: return "placeholder";
    case NameStatus::kMissing: return "missing";
  }
  return "?";
}

double laneGbps(const std::string& speed) {
  // Per-lane data rates of the InfiniBand generations (signalling rate for SDR..QDR, as ibstat
  // and ibnetdiscover report them).
  struct Rate {
    const char* name;
    double gbps;
  };
  static constexpr Rate kRates[] = {{"SDR", 2.5},  {"DDR", 5},   {"QDR", 10},  {"FDR10", 10},
                                    {"FDR", 14},   {"EDR", 25},  {"HDR", 50},  {"NDR", 100},
                                    {"XDR", 200}};
  for (const Rate& r : kRates)
    if (speed == r.name) return r.gbps;
  return 0;
}

double Link::gbps() const { return width * laneGbps(speed); }

std::string guidString(uint64_t guid) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%016" PRIx64, guid);
  return buf;
}

void classifyTiers(Fabric& fabric) {
  const size_t n = fabric.switches.size();
  std::vector<std::vector<uint32_t>> adj(n);
  std::vector<int> level(n, -1);
  std::deque<uint32_t> queue;
  for (const Link& l : fabric.links) {
    if (l.a.isSwitch && l.b.isSwitch) {
      if (l.a.index == l.b.index) continue;
      adj[l.a.index].push_back(l.b.index);
      adj[l.b.index].push_back(l.a.index);
      continue;
    }
    const Endpoint& sw = l.a.isSwitch ? l.a : l.b;
    const Endpoint& ca = l.a.isSwitch ? l.b : l.a;
    if (!sw.isSwitch || ca.isSwitch) continue;  // CA-CA back-to-back cable: no switch
    if (fabric.hcas[ca.index].kind != CaKind::kHost) continue;
    if (level[sw.index] != 0) {
      level[sw.index] = 0;
      queue.push_back(sw.index);
    }
  }
  // Breadth-first from the leaves: distance 1 = spine, 2 = core; anything further is still
  // called core (deeper fabrics are rare and schedulers stop at three levels).
  while (!queue.empty()) {
    uint32_t s = queue.front();
    queue.pop_front();
    for (uint32_t t : adj[s]) {
      if (level[t] >= 0) continue;
      level[t] = level[s] + 1;
      queue.push_back(t);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    Tier t = Tier::kUnknown;
    if (level[i] == 0) t = Tier::kLeaf;
    else if (level[i] == 1) t = Tier::kSpine;
    else if (level[i] >= 2) t = Tier::kCore;
    fabric.switches[i].tier = t;
  }
}

void to_json(nlohmann::json& j, const Origin& o) {
  j = nlohmann::json{{"source", sourceKindName(o.kind)}};
  if (o.line) j["line"] = o.line;
}

void to_json(nlohmann::json& j, const Switch& s) {
  j = nlohmann::json{{"guid", guidString(s.guid)}, {"description", s.description},
                     {"name", s.name},             {"model", s.model},
                     {"ports", s.portCount},       {"lid", s.lid},
                     {"tier", tierName(s.tier)},   {"origin", s.origin}};
}

void to_json(nlohmann::json& j, const Hca& h) {
  j = nlohmann::json{{"guid", guidString(h.guid)},
                     {"systemGuid", guidString(h.systemGuid)},
                     {"description", h.description},
                     {"kind", caKindName(h.kind)},
                     {"nameStatus", nameStatusName(h.nameStatus)},
                     {"host", h.host},
                     {"hca", h.hcaName},
                     {"hcaIndex", h.hcaIndex},
                     {"ports", h.portCount},
                     {"origin", h.origin}};
}

namespace {
nlohmann::json endpointJson(const Endpoint& e) {
  return nlohmann::json{{"type", e.isSwitch ? "switch" : "hca"}, {"index", e.index}, {"port", e.port}};
}
}  // namespace

void to_json(nlohmann::json& j, const Link& l) {
  j = nlohmann::json{{"a", endpointJson(l.a)}, {"b", endpointJson(l.b)}, {"width", l.width},
                     {"speed", l.speed},       {"gbps", l.gbps()},      {"origin", l.origin}};
}

void to_json(nlohmann::json& j, const Fabric& f) {
  j = nlohmann::json{{"source", {{"kind", sourceKindName(f.sourceKind)}, {"name", f.sourceName}}},
                     {"switches", f.switches},
                     {"hcas", f.hcas},
                     {"links", f.links},
                     {"warnings", f.warnings}};
}

}  // namespace trellis::topo::fabric
