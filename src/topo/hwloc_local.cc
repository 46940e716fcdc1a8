#include "topo/hwloc_local.h"

#include <hwloc.h>

#include "core/log.h"

namespace trellis::topo {

Status addHwlocCpuFacts(System& s) {
  hwloc_topology_t t = nullptr;
  if (hwloc_topology_init(&t) != 0) return internalError("hwloc_topology_init failed");
  // Only cores, threads, packages and NUMA nodes are used: skipping caches, groups and I/O halves
  // the load time (the 50 ms detection budget).
  hwloc_topology_set_cache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
  hwloc_topology_set_type_filter(t, HWLOC_OBJ_GROUP, HWLOC_TYPE_FILTER_KEEP_NONE);
  hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
  if (hwloc_topology_load(t) != 0) {
    hwloc_topology_destroy(t);
    TRELLIS_INFO(kTopo, "hwloc could not load this machine's topology; CPU counts unknown");
    return Status::ok();
  }
  std::string model;
  if (hwloc_obj_t pkg = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0))
    if (const char* m = hwloc_obj_get_info_by_name(pkg, "CPUModel")) model = m;
  while (!model.empty() && model.back() == ' ') model.pop_back();
  int numas = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < numas; ++i) {
    hwloc_obj_t numa = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, i);
    for (Node& n : s.nodes) {
      if (n.kind != NodeKind::kCpu || n.numa != static_cast<int>(numa->os_index)) continue;
      n.pus = hwloc_bitmap_weight(numa->cpuset);
      n.cores = hwloc_get_nbobjs_inside_cpuset_by_type(t, numa->cpuset, HWLOC_OBJ_CORE);
      n.cpuModel = model;
    }
  }
  hwloc_topology_destroy(t);
  return Status::ok();
}

}  // namespace trellis::topo
