// Kubernetes outputs: node labels in our domain, a Kueue Topology whose levels are those labels,
// and Volcano HyperNodes (tier 1 = leaf group, tier 2 = spine group, tier 3 = cores). Node names
// are lower-cased as the kubelet registers them.
#include "topo/fabric/emit_internal.h"

namespace trellis::topo::fabric::detail {
namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The kubelet registers a node under its lower-cased host name.
std::string nodeName(const std::string& host) {
  std::string out = host;
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string hyperNode(const std::string& name, int tier, const char* memberType,
                      const std::vector<std::string>& members) {
  std::string out = "apiVersion: topology.volcano.sh/v1alpha1\nkind: HyperNode\nmetadata:\n";
  out += "  name: " + name + "\nspec:\n";
  out += formatString("  tier: %d\n", tier);
  out += "  members:\n";
  for (const std::string& m : members) {
    out += std::string("  - type: ") + memberType + "\n";
    out += "    selector:\n      exactMatch:\n        name: " + quoted(m) + "\n";
  }
  return out;
}

}  // namespace

std::string emitK8sLabels(const Fabric& f, const Analysis& a, const EmitOptions& o) {
  std::string out = "# Node labels for the fabric in " + f.sourceName + " (" + o.labelDomain +
                    "spine-group, " + o.labelDomain + "leaf-group)\n";
  out += unnamedNote(a, "#");
  for (const HostInfo& h : a.hosts) {
    if (h.leafGroup < 0) continue;
    const LeafGroup& g = a.leafGroups[h.leafGroup];
    out += "kubectl label node " + nodeName(h.name) + " --overwrite";
    if (g.spineGroup >= 0) out += " " + o.labelDomain + "spine-group=" + a.spineGroups[g.spineGroup].name;
    out += " " + o.labelDomain + "leaf-group=" + g.name + "\n";
  }
  return out;
}

std::string emitKueue(const Fabric& f, const Analysis& a, const EmitOptions& o) {
  std::string out = "# Kueue Topology for the fabric in " + f.sourceName +
                    "; nodes carry these labels (trellis-topo --format k8s-labels)\n";
  out += "apiVersion: " + o.kueueApiVersion + "\nkind: Topology\nmetadata:\n";
  out += "  name: " + o.topologyName + "\nspec:\n  levels:\n";
  if (!a.spineGroups.empty()) out += "  - nodeLabel: " + o.labelDomain + "spine-group\n";
  out += "  - nodeLabel: " + o.labelDomain + "leaf-group\n";
  out += "  - nodeLabel: kubernetes.io/hostname\n";  // lowest level: needed for node hot-swap
  return out;
}

std::string emitVolcano(const Fabric& f, const Analysis& a, const EmitOptions&) {
  std::string out = "# Volcano HyperNodes for the fabric in " + f.sourceName +
                    ": tier 1 = leaf group (scalable unit), tier 2 = spine group\n";
  out += unnamedNote(a, "#");
  bool first = true;
  auto sep = [&]() {
    if (!first) out += "---\n";
    first = false;
  };
  for (int g : schedulableGroups(a)) {
    sep();
    std::vector<std::string> nodes;
    for (const std::string& h : a.leafGroups[g].hosts) nodes.push_back(nodeName(h));
    out += hyperNode(a.leafGroups[g].name, 1, "Node", nodes);
  }
  std::vector<std::string> top;
  for (const SpineGroup& sg : a.spineGroups) {
    std::vector<std::string> children;
    for (int g : sg.leafGroups)
      if (!a.leafGroups[g].hosts.empty()) children.push_back(a.leafGroups[g].name);
    if (children.empty()) continue;
    sep();
    out += hyperNode(sg.name, 2, "HyperNode", children);
    top.push_back(sg.name);
  }
  if (top.size() > 1 && !a.cores.empty()) {
    sep();
    out += hyperNode("core", 3, "HyperNode", top);
  }
  return out;
}

}  // namespace trellis::topo::fabric::detail
