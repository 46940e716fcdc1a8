// What schedulers read, generated from a node's topology:
//  - Slurm gres.conf GPU lines with Cores= (the GPU's NUMA node) and Links= (NVLink counts, also
//    through NVSwitches, which Slurm's own NVML detection reports as 0);
//  - Kubernetes node labels (configurable domain, values <= 63 characters) and DRA device
//    attributes (pciBusID, pcieRoot, numaNode, plus our finer pcieSwitch and rail).
#pragma once

#include <string>

#include "topo/model.h"

namespace trellis::topo {

struct EmitOptions {
  std::string nodeName;           // default: the topology's host name
  std::string gpuType;            // default: "sm<NN>" from the GPU, else "gpu"
  std::string labelDomain = "trellis.dev";
};

std::string toSlurmGres(const System& s, const EmitOptions& o);
std::string toK8sLabels(const System& s, const EmitOptions& o);
/// "0-3,8-11" from a hex cpumask such as "0000ffff,ffffffff" (NCCL/sysfs notation).
std::string cpuListFromMask(const std::string& mask);

}  // namespace trellis::topo
