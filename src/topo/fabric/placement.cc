// placeHost: a host's leaf group, spine group and per-HCA leaf and rail, for the communicator's
// cluster view.
#include "topo/fabric/fabric.h"

namespace trellis::topo::fabric {

Result<HostPlacement> placeHost(const Fabric& f, const Analysis& a, std::string_view host) {
  int hi = a.hostIndex(std::string(host));
  if (hi < 0)
    return invalidArgument("host '%.*s' is not in the fabric read from %s (%zu named hosts)",
                           static_cast<int>(host.size()), host.data(), f.sourceName.c_str(),
                           a.hosts.size());
  const HostInfo& info = a.hosts[hi];
  HostPlacement p;
  p.host = info.name;
  if (info.leafGroup >= 0) {
    const LeafGroup& g = a.leafGroups[info.leafGroup];
    p.leafGroup = g.name;
    if (g.spineGroup >= 0) p.spineGroup = a.spineGroups[g.spineGroup].name;
  }
  for (uint32_t h : info.hcas) {
    const Hca& hca = f.hcas[h];
    HcaPlacement hp;
    hp.hcaName = hca.hcaName;
    hp.hcaIndex = hca.hcaIndex;
    hp.guid = hca.guid;
    int li = h < a.hcaLeaf.size() ? a.hcaLeaf[h] : -1;
    if (li >= 0) {
      hp.leafSwitch = f.switches[a.leaves[li].switchIndex].name;
      hp.leafPort = a.hcaPort[h];
      hp.rail = a.leaves[li].rail;
      hp.onRail = hp.hcaIndex < 0 || hp.rail < 0 || hp.hcaIndex == hp.rail;
    }
    p.hcas.push_back(std::move(hp));
  }
  return p;
}

Result<HostPlacement> placeHost(const Fabric& f, std::string_view host) {
  return placeHost(f, analyze(f), host);
}

}  // namespace trellis::topo::fabric
