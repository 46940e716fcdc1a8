// The topology C API (include/trellis/topology.h) over src/topo.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "api/api_internal.h"
#include "topo/nccl_xml.h"
#include "topo/paths.h"
#include "topo/sysfs.h"
#include "trellis/topology.h"

using namespace trellis;  // NOLINT

struct trellisTopo {
  topo::System sys;
  topo::Rails rails;
};

namespace {
trellisResult_t wrap(Result<topo::System> r, trellisTopo_t* out, const char* api) {
  if (out == nullptr) return report(nullptr, invalidArgument("%s: topo is NULL", api));
  *out = nullptr;
  if (!r) return report(nullptr, r.status().withContext(api));
  auto* t = new trellisTopo{std::move(r.value()), {}};
  t->rails = topo::computeRails(t->sys);
  *out = t;
  return trellisSuccess;
}
Status checkDev(trellisTopo_t t, int id, const char* api) {
  if (t == nullptr) return invalidArgument("%s: topo is NULL", api);
  if (id < 0 || id >= static_cast<int>(t->sys.nodes.size()))
    return invalidArgument("%s: device %d out of range [0, %zu)", api, id, t->sys.nodes.size());
  return Status::ok();
}
}  // namespace

extern "C" {

TRELLIS_EXPORT trellisResult_t trellisTopoDetect(trellisTopo_t* topo) {
  return wrap(topo::detectLocalSystem(), topo, "trellisTopoDetect");
}

TRELLIS_EXPORT trellisResult_t trellisTopoLoad(const char* path, trellisTopo_t* topo) {
  if (path == nullptr) return report(nullptr, invalidArgument("trellisTopoLoad: path is NULL"));
  return wrap(topo::loadTopologyFile(path), topo, "trellisTopoLoad");
}

TRELLIS_EXPORT trellisResult_t trellisTopoSave(trellisTopo_t t, const char* path, trellisTopoFormat_t format) {
  if (t == nullptr || path == nullptr) return report(nullptr, invalidArgument("trellisTopoSave: topo or path is NULL"));
  if (rawEnum(format) != trellisTopoFormatJson && rawEnum(format) != trellisTopoFormatNcclXml)
    return report(nullptr, invalidArgument("trellisTopoSave: format %d is not a trellisTopoFormat_t", rawEnum(format)));
  std::ofstream out(path);
  if (!out) return report(nullptr, systemError(errno, "trellisTopoSave: cannot write '%s'", path));
  out << (rawEnum(format) == trellisTopoFormatJson ? topo::toJson(t->sys) : topo::toNcclXml(t->sys));
  return out ? trellisSuccess : report(nullptr, systemError(errno, "trellisTopoSave: writing '%s'", path));
}

TRELLIS_EXPORT trellisResult_t trellisTopoFree(trellisTopo_t t) {
  delete t;
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisTopoFindDevices(trellisTopo_t t, int kind, int* ids, int capacity, int* found) {
  if (t == nullptr || found == nullptr || (ids == nullptr && capacity > 0))
    return report(nullptr, invalidArgument("trellisTopoFindDevices: NULL argument"));
  if (kind < -1 || kind > trellisTopoPciDevice)
    return report(nullptr, invalidArgument("trellisTopoFindDevices: kind %d is not a trellisTopoDeviceKind_t", kind));
  int n = 0;
  for (const topo::Node& node : t->sys.nodes) {
    if (kind != -1 && static_cast<int>(node.kind) != kind) continue;
    if (n < capacity) ids[n] = node.id;
    ++n;
  }
  *found = n;
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisTopoDeviceCount(trellisTopo_t t, int kind, int* count) {
  return trellisTopoFindDevices(t, kind, nullptr, 0, count);
}

TRELLIS_EXPORT trellisResult_t trellisTopoGetDevice(trellisTopo_t t, int id, trellisTopoDeviceInfo_t* info) {
  Status s = checkDev(t, id, "trellisTopoGetDevice");
  if (s.isOk() && (info == nullptr || info->size < sizeof(trellisTopoDeviceInfo_t)))
    s = invalidArgument("trellisTopoGetDevice: info is NULL or info->size is not sizeof(trellisTopoDeviceInfo_t)");
  if (!s.isOk()) return report(nullptr, s);
  const topo::Node& n = t->sys.nodes[id];
  std::memset(reinterpret_cast<char*>(info) + sizeof(size_t), 0, sizeof(*info) - sizeof(size_t));
  info->kind = static_cast<int>(n.kind);
  info->parent = n.parent;
  info->numa = n.numa;
  info->degraded = n.degraded ? 1 : 0;
  std::snprintf(info->busId, sizeof info->busId, "%s", n.busId.c_str());
  info->pciClass = n.pciClass;
  info->vendor = n.vendor;
  info->device = n.device;
  if (!n.ports.empty()) std::snprintf(info->name, sizeof info->name, "%s", n.ports[0].name.c_str());
  info->linkGBps = topo::pcieGBps(n.linkSpeed, n.linkWidth);
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisTopoGetPath(trellisTopo_t t, int a, int b, trellisTopoPathKind_t* kind,
                                                  double* gbps) {
  Status s = checkDev(t, a, "trellisTopoGetPath");
  if (s.isOk()) s = checkDev(t, b, "trellisTopoGetPath");
  if (s.isOk() && kind == nullptr) s = invalidArgument("trellisTopoGetPath: kind is NULL");
  if (!s.isOk()) return report(nullptr, s);
  topo::Path p = topo::pathBetween(t->sys, a, b);
  *kind = static_cast<trellisTopoPathKind_t>(p.kind);
  if (gbps) *gbps = p.gbps;
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisTopoNearestNics(trellisTopo_t t, int id, int* nics, int capacity, int* found) {
  Status s = checkDev(t, id, "trellisTopoNearestNics");
  if (s.isOk() && (found == nullptr || (nics == nullptr && capacity > 0)))
    s = invalidArgument("trellisTopoNearestNics: NULL argument");
  if (!s.isOk()) return report(nullptr, s);
  std::vector<int> order = topo::nearestNics(t->sys, id);
  for (int i = 0; i < capacity && i < static_cast<int>(order.size()); ++i) nics[i] = order[i];
  *found = static_cast<int>(order.size());
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisTopoRailOfNic(trellisTopo_t t, int nic, int* rail) {
  Status s = checkDev(t, nic, "trellisTopoRailOfNic");
  if (s.isOk() && rail == nullptr) s = invalidArgument("trellisTopoRailOfNic: rail is NULL");
  if (s.isOk() && t->sys.nodes[nic].kind != topo::NodeKind::kNic)
    s = invalidArgument("trellisTopoRailOfNic: device %d is a %s, not a NIC", nic, topo::nodeKindName(t->sys.nodes[nic].kind));
  if (!s.isOk()) return report(nullptr, s);
  *rail = t->rails.railOfNic(nic);
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisTopoToJson(trellisTopo_t t, char* buf, size_t bufSize, size_t* needed) {
  if (t == nullptr || needed == nullptr) return report(nullptr, invalidArgument("trellisTopoToJson: NULL argument"));
  std::string j = topo::toJson(t->sys);
  *needed = j.size() + 1;
  if (buf != nullptr && bufSize > 0) {
    size_t n = std::min(bufSize - 1, j.size());
    std::memcpy(buf, j.data(), n);
    buf[n] = '\0';
  }
  return trellisSuccess;
}

TRELLIS_EXPORT const char* trellisTopoPathKindName(trellisTopoPathKind_t kind) {
  if (rawEnum(kind) < 0 || rawEnum(kind) > trellisTopoPathNet) return "?";
  return topo::pathKindName(static_cast<topo::PathKind>(kind));
}

TRELLIS_EXPORT trellisResult_t trellisCommGetTopology(trellisComm_t comm, trellisTopo_t* topo) {
  Status s = checkComm(comm, "trellisCommGetTopology");
  if (!s.isOk()) return report(nullptr, s);
  return wrap(topo::detectLocalSystem(), topo, "trellisCommGetTopology");
}

TRELLIS_EXPORT trellisResult_t trellisCommGetRankPlacement(trellisComm_t comm, int rank, trellisRankPlacement_t* info) {
  Status s = checkComm(comm, "trellisCommGetRankPlacement");
  if (s.isOk() && (info == nullptr || info->size < sizeof(trellisRankPlacement_t)))
    s = invalidArgument("trellisCommGetRankPlacement: info is NULL or info->size is not sizeof(trellisRankPlacement_t)");
  if (s.isOk() && (rank < 0 || rank >= comm->nranks()))
    s = invalidArgument("trellisCommGetRankPlacement: rank %d out of range [0, %d)", rank, comm->nranks());
  if (!s.isOk()) return report(comm, s);
  const topo::ClusterView& v = comm->clusterView();
  const topo::RankPlace& p = v.ranks[rank];
  const topo::ClusterNode& node = v.nodes[p.node];
  std::memset(reinterpret_cast<char*>(info) + sizeof(size_t), 0, sizeof(*info) - sizeof(size_t));
  info->node = p.node;
  info->nnodes = v.nnodes();
  info->localRank = p.localRank;
  info->localSize = static_cast<int>(node.ranks.size());
  info->rail = p.rail;
  info->nrails = static_cast<int>(p.rails.size());
  info->gpu = p.gpu;
  info->numa = p.numa;
  std::snprintf(info->host, sizeof info->host, "%s", node.topo.host.c_str());
  std::snprintf(info->nic, sizeof info->nic, "%s", p.nic.c_str());
  std::snprintf(info->leaf, sizeof info->leaf, "%s", p.leaf.c_str());
  return trellisSuccess;
}

TRELLIS_EXPORT trellisResult_t trellisCommClusterViewJson(trellisComm_t comm, char* buf, size_t bufSize,
                                                          size_t* needed) {
  Status s = checkComm(comm, "trellisCommClusterViewJson");
  if (s.isOk() && needed == nullptr) s = invalidArgument("trellisCommClusterViewJson: needed is NULL");
  if (!s.isOk()) return report(comm, s);
  std::string j = comm->clusterView().toJson();
  *needed = j.size() + 1;
  if (buf != nullptr && bufSize > 0) {
    size_t n = std::min(bufSize - 1, j.size());
    std::memcpy(buf, j.data(), n);
    buf[n] = '\0';
  }
  return trellisSuccess;
}

}  // extern "C"
