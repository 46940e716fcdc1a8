// detectLocalTopology: what one rank contributes to the cluster view (src/topo/cluster_view.h).
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/params.h"
#include "topo/cluster_view.h"
#include "topo/fabric/fabric.h"
#include "topo/sysfs.h"

namespace trellis::topo {

static Param<std::string> kFabricFile(
    "TRELLIS_FABRIC_FILE", "",
    "fabric description (ibnetdiscover output or a Trellis cluster file) that "
    "places this host's NICs on leaf switches for the cluster view");

namespace {
Result<fabric::Fabric> loadFabric(const std::string& path) {
  std::ifstream in(path);
  if (!in) return invalidArgument("TRELLIS_FABRIC_FILE: cannot open '%s'", path.c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') return fabric::parseClusterFile(text, path);
  return fabric::parseIbnetdiscover(text, path);
}
}  // namespace

Result<LocalTopology> detectLocalTopology(const std::string& fileIn) {
  std::string file = fileIn;
  if (file.empty())
    if (ParamBase* p = findParam("TRELLIS_TOPO_FILE")) file = p->valueString();
  Result<System> sys = file.empty() ? detectLocalSystem() : loadTopologyFile(file);
  LocalTopology t;
  if (!sys) {
    if (!file.empty())
      return sys.status().withContext("reading the topology file (TRELLIS_TOPO_FILE)");
    t.notes.push_back("topology detection failed: " + sys.status().message());
  } else {
    t = summarize(sys.value());
  }
  if (t.host.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    t.host = host;
  }
  std::string fabricFile = kFabricFile.get();
  if (!fabricFile.empty() && t.known) {
    TRELLIS_ASSIGN_OR_RETURN(fabric::Fabric f, loadFabric(fabricFile));
    Result<fabric::HostPlacement> p = fabric::placeHost(f, t.host);
    if (p)
      addPlacement(&t, p.value());
    else
      t.notes.push_back("not placed on leaf switches: " + p.status().message());
  }
  return t;
}

}  // namespace trellis::topo
