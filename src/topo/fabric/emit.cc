// emit() dispatch, the Trellis JSON document and the human summary.
#include <map>

#include <nlohmann/json.hpp>

#include "topo/fabric/emit_internal.h"
#include "topo/fabric/hostlist.h"

namespace trellis::topo::fabric {

const std::vector<std::string>& emitFormats() {
  static const std::vector<std::string> kFormats = {"slurm-tree", "slurm-block", "kueue", "volcano",
                                                    "k8s-labels", "json",        "summary"};
  return kFormats;
}

Result<std::string> emit(const Fabric& f, const Analysis& a, std::string_view format,
                         const EmitOptions& o) {
  if (format == "slurm-tree") return detail::emitSlurmTree(f, a);
  if (format == "slurm-block") return detail::emitSlurmBlock(f, a, o);
  if (format == "kueue") return detail::emitKueue(f, a, o);
  if (format == "volcano") return detail::emitVolcano(f, a, o);
  if (format == "k8s-labels") return detail::emitK8sLabels(f, a, o);
  // Names come from untrusted files: invalid UTF-8 is replaced (U+FFFD), never thrown.
  if (format == "json") return toJson(f, a).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (format == "summary") return summary(f, a);
  std::string known;
  for (const std::string& n : emitFormats()) known += (known.empty() ? "" : ", ") + n;
  return invalidArgument("unknown fabric format '%.*s' (known: %s)", static_cast<int>(format.size()),
                         format.data(), known.c_str());
}

nlohmann::json toJson(const Fabric& f, const Analysis& a) {
  using nlohmann::json;
  auto names = [&](const std::vector<uint32_t>& sw) {
    json arr = json::array();
    for (uint32_t s : sw) arr.push_back(f.switches[s].name);
    return arr;
  };
  json leaves = json::array();
  for (const LeafInfo& l : a.leaves)
    leaves.push_back({{"switch", f.switches[l.switchIndex].name},
                      {"guid", guidString(f.switches[l.switchIndex].guid)},
                      {"rail", l.rail},
                      {"group", l.group >= 0 ? a.leafGroups[l.group].name : ""},
                      {"spines", names(l.spines)},
                      {"uplinkCables", l.uplinkCables},
                      {"namedHcas", l.namedHcas},
                      {"unnamedHcas", l.unnamedHcas},
                      {"offRailHcas", l.offRailHcas}});
  json groups = json::array();
  for (const LeafGroup& g : a.leafGroups) {
    std::vector<uint32_t> sw;
    for (uint32_t li : g.leaves) sw.push_back(a.leaves[li].switchIndex);
    groups.push_back({{"name", g.name},
                      {"leaves", names(sw)},
                      {"hosts", g.hosts},
                      {"unnamedHostsAtLeast", g.unnamedHostsAtLeast},
                      {"spineGroup", g.spineGroup >= 0 ? a.spineGroups[g.spineGroup].name : ""}});
  }
  json spineGroups = json::array();
  for (const SpineGroup& sg : a.spineGroups) {
    json lg = json::array();
    for (int g : sg.leafGroups) lg.push_back(a.leafGroups[g].name);
    spineGroups.push_back({{"name", sg.name}, {"spines", names(sg.spines)}, {"leafGroups", lg}});
  }
  json hosts = json::array();
  for (const HostInfo& h : a.hosts) {
    Result<HostPlacement> p = placeHost(f, a, h.name);
    json hcas = json::array();
    for (const HcaPlacement& hp : p->hcas)
      hcas.push_back({{"hca", hp.hcaName}, {"index", hp.hcaIndex}, {"guid", guidString(hp.guid)},
                      {"leaf", hp.leafSwitch}, {"port", hp.leafPort}, {"rail", hp.rail},
                      {"onRail", hp.onRail}});
    hosts.push_back({{"name", h.name}, {"leafGroup", p->leafGroup}, {"spineGroup", p->spineGroup},
                     {"hcas", hcas}});
  }
  json unnamed = json::array();
  for (uint32_t h : a.unnamedHcas) {
    int li = a.hcaLeaf[h];
    unnamed.push_back({{"guid", guidString(f.hcas[h].guid)},
                       {"description", f.hcas[h].description},
                       {"nameStatus", nameStatusName(f.hcas[h].nameStatus)},
                       {"leaf", li >= 0 ? f.switches[a.leaves[li].switchIndex].name : ""},
                       {"port", a.hcaPort[h]},
                       {"rail", li >= 0 ? a.leaves[li].rail : -1}});
  }
  json violations = json::array();
  for (const RailViolation& v : a.railViolations)
    violations.push_back({{"host", v.host}, {"hca", f.hcas[v.hca].hcaName},
                          {"hcaIndex", v.hcaIndex}, {"leaf", f.switches[v.leaf].name},
                          {"leafRail", v.leafRail}, {"message", v.message}});
  json analysis = {{"railOptimized", a.railOptimized}, {"rails", a.rails},
                   {"leaves", leaves},                 {"spines", names(a.spines)},
                   {"cores", names(a.cores)},          {"leafGroups", groups},
                   {"spineGroups", spineGroups},       {"hosts", hosts},
                   {"unnamedHcas", unnamed},           {"aggregationNodes", a.aggregationNodes},
                   {"railViolations", violations},     {"warnings", a.warnings}};
  return {{"format", "trellis-fabric"}, {"version", 1}, {"fabric", f}, {"analysis", analysis}};
}

std::string summary(const Fabric& f, const Analysis& a) {
  size_t swsw = 0;
  std::map<std::string, size_t> rates;
  for (const Link& l : f.links) {
    if (l.a.isSwitch && l.b.isSwitch) ++swsw;
    rates[l.width ? std::to_string(l.width) + "x" + l.speed : "unknown"]++;
  }
  size_t hostHcas = 0, missing = 0, placeholder = 0;
  for (const Hca& h : f.hcas) {
    if (h.kind != CaKind::kHost) continue;
    ++hostHcas;
    missing += h.nameStatus == NameStatus::kMissing;
    placeholder += h.nameStatus == NameStatus::kPlaceholder;
  }
  std::string out = formatString("Fabric from %s (%s)\n", f.sourceName.c_str(), sourceKindName(f.sourceKind));
  out += formatString("  switches: %zu (%zu leaf, %zu spine, %zu core)\n", f.switches.size(),
                      a.leaves.size(), a.spines.size(), a.cores.size());
  out += formatString("  links: %zu (%zu switch-switch, %zu to HCAs);", f.links.size(), swsw,
                      f.links.size() - swsw);
  for (const auto& [rate, n] : rates) out += formatString(" %s x%zu", rate.c_str(), n);
  out += formatString("\n  HCAs: %zu host HCAs + %u aggregation nodes; %zu hosts named, %zu HCAs "
                      "without a usable host name (%zu missing, %zu placeholder)\n",
                      hostHcas, a.aggregationNodes, a.hosts.size(), a.unnamedHcas.size(), missing,
                      placeholder);
  std::string rails;
  for (int r : a.rails) rails += (rails.empty() ? "" : ",") + std::to_string(r);
  out += formatString("  rail-optimized: %s; %zu rails (HCA indices %s)\n",
                      a.railOptimized ? "yes" : "no", a.rails.size(), rails.c_str());
  out += formatString("  leaf groups (scalable units): %zu\n", a.leafGroups.size());
  for (const LeafGroup& g : a.leafGroups) {
    std::string gr;
    for (uint32_t li : g.leaves) gr += (gr.empty() ? "" : ",") + std::to_string(a.leaves[li].rail);
    out += formatString("    %s  %zu leaves (rails %s)  %zu named hosts + at least %u unnamed  %s  %s\n",
                        g.name.c_str(), g.leaves.size(), gr.c_str(), g.hosts.size(),
                        g.unnamedHostsAtLeast,
                        g.spineGroup >= 0 ? a.spineGroups[g.spineGroup].name.c_str() : "-",
                        compressHostlist(g.hosts).c_str());
  }
  out += formatString("  spine groups: %zu\n", a.spineGroups.size());
  for (const SpineGroup& sg : a.spineGroups)
    out += formatString("    %s  %zu spines %s  above %zu leaf groups\n", sg.name.c_str(),
                        sg.spines.size(), detail::switchList(f, sg.spines).c_str(), sg.leafGroups.size());
  out += formatString("  rail violations: %zu\n", a.railViolations.size());
  for (const RailViolation& v : a.railViolations) out += "    " + v.message + "\n";
  out += formatString("  warnings: %zu\n", a.warnings.size());
  for (const std::string& w : a.warnings) out += "    " + w + "\n";
  return out;
}

}  // namespace trellis::topo::fabric
