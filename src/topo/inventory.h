// A plain inventory of this machine (or a replayed sysfs root) for `trellis-topo show`: every PCI
// function and every network interface, including those the topology model leaves out (virtual
// interfaces, storage, bridges that lead to no GPU or NIC).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace trellis::topo {

struct PciFunction {
  std::string busId, driver;
  uint32_t pciClass = 0, vendor = 0, device = 0;
  int numa = -1;
};
struct NetInterface {
  std::string name, state, busId;  // busId "" for virtual interfaces
  int64_t speedMbps = 0;           // 0 unknown
  bool rdma = false;               // has an RDMA device (infiniband/<hca>)
};

std::vector<PciFunction> listPciFunctions(const std::string& root);
std::vector<NetInterface> listNetInterfaces(const std::string& root);
/// "3D controller", "Ethernet", "InfiniBand", "PCI bridge", ... for a 24-bit class code.
const char* pciClassName(uint32_t cls);

}  // namespace trellis::topo
