#include "cluster.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "topo/fabric/fabric.h"

namespace trellis::tools {

namespace fabric = trellis::topo::fabric;

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "trellis-topo: %s\n", msg.c_str());
  return 2;
}

Result<fabric::Fabric> loadFabric(const FabricArgs& a) {
  int n = !a.input.empty() + !a.ibnet.empty() + !a.clusterFile.empty();
  if (n != 1)
    return invalidArgument("give exactly one of --input, --ibnetdiscover, --cluster-file (got %d)", n);
  if (!a.ibnet.empty()) return fabric::loadIbnetdiscover(a.ibnet);
  if (!a.clusterFile.empty()) return fabric::loadClusterFile(a.clusterFile);
  std::ifstream in(a.input, std::ios::binary);
  if (!in) return invalidArgument("cannot read '%s'", a.input.c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') return fabric::parseClusterFile(text, a.input);
  return fabric::parseIbnetdiscover(text, a.input);
}

std::string placementText(const fabric::HostPlacement& p, const std::string& format) {
  if (format == "json") {
    nlohmann::json j;
    j["host"] = p.host;
    j["leafGroup"] = p.leafGroup;
    j["spineGroup"] = p.spineGroup;
    j["hcas"] = nlohmann::json::array();
    for (const auto& h : p.hcas)
      j["hcas"].push_back({{"name", h.hcaName}, {"index", h.hcaIndex}, {"leaf", h.leafSwitch},
                           {"leafPort", h.leafPort}, {"rail", h.rail}, {"onRail", h.onRail}});
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::string out = "host " + p.host + ": leaf group " + (p.leafGroup.empty() ? "-" : p.leafGroup) +
                    ", spine group " + (p.spineGroup.empty() ? "-" : p.spineGroup) + "\n";
  char line[512];
  for (const auto& h : p.hcas) {
    std::snprintf(line, sizeof line, "  %-10s nic %-2d leaf %s port %u rail %d%s\n", h.hcaName.c_str(), h.hcaIndex,
                  h.leafSwitch.c_str(), h.leafPort, h.rail, h.onRail ? "" : "  OFF-RAIL");
    out += line;
  }
  return out;
}

}  // namespace

void addFabricSourceOptions(CLI::App* sub, FabricArgs& a) {
  sub->add_option("--ibnetdiscover", a.ibnet, "ibnetdiscover output of the fabric");
  sub->add_option("--cluster-file", a.clusterFile, "Trellis cluster file (JSON, docs/FABRIC.md)");
  sub->add_option("--label-domain", a.domain, "prefix of fabric label keys (default trellis.dev/)");
  sub->add_option("--topology-name", a.topologyName, "Kueue Topology metadata.name");
  sub->add_option("--kueue-api-version", a.kueueApiVersion, "Kueue apiVersion (match the CRD installed)");
  sub->add_option("--block-sizes", a.blockSizes, "Slurm BlockSizes (default: inferred)")->delimiter(',');
}

CLI::App* addClusterCommand(CLI::App& app, FabricArgs& a) {
  CLI::App* c = app.add_subcommand(
      "cluster", "the cluster fabric: rails, leaf groups, spines; Slurm topology.conf, Kueue, Volcano, labels");
  c->add_option("--input", a.input, "ibnetdiscover output or cluster file (detected from the content)");
  addFabricSourceOptions(c, a);
  std::vector<std::string> formats = fabric::emitFormats();
  c->add_option("--format", a.format, "summary (default), json, slurm-tree, slurm-block, kueue, volcano, k8s-labels")
      ->check(CLI::IsMember(formats));
  c->add_option("--host", a.host, "print where this host sits (leaf group, spine group, leaf and rail per NIC)");
  c->add_option("-o,--output", a.output, "file to write (default: stdout)");
  return c;
}

int runCluster(const FabricArgs& a) {
  auto f = loadFabric(a);
  if (!f) return fail(f.status().message());
  // Outputs name the file, not where it was read from: a generated topology.conf kept in
  // configuration management must not change with the directory it was generated in.
  std::string& src = f.value().sourceName;
  if (size_t slash = src.rfind('/'); slash != std::string::npos) src = src.substr(slash + 1);
  fabric::Analysis an = fabric::analyze(f.value());
  std::string text;
  if (!a.host.empty()) {
    auto p = fabric::placeHost(f.value(), an, a.host);
    if (!p) return fail(p.status().message());
    text = placementText(p.value(), a.format);
  } else {
    fabric::EmitOptions o;
    o.labelDomain = a.domain;
    o.topologyName = a.topologyName;
    o.kueueApiVersion = a.kueueApiVersion;
    o.blockSizes = a.blockSizes;
    auto t = fabric::emit(f.value(), an, a.format, o);
    if (!t) return fail(t.status().message());
    text = std::move(t).value();
  }
  // The summary lists the warnings itself; other formats only count them, on stderr.
  if (!an.warnings.empty() && (a.format != "summary" || !a.host.empty()))
    std::fprintf(stderr, "trellis-topo: %zu fabric warning(s); `trellis-topo cluster --format summary` lists them\n",
                 an.warnings.size());
  if (a.output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else if (!(std::ofstream(a.output) << text)) {
    return fail("cannot write '" + a.output + "'");
  }
  return 0;
}

}  // namespace trellis::tools
