#include "topo/inventory.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace trellis::topo {

namespace {
std::string line(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}
uint32_t hexOf(const fs::path& p) { return static_cast<uint32_t>(std::strtoul(line(p).c_str(), nullptr, 16)); }
}  // namespace

const char* pciClassName(uint32_t cls) {
  switch (cls >> 8) {
    case 0x0100: return "SCSI storage";
    case 0x0106: return "SATA controller";
    case 0x0108: return "NVMe";
    case 0x0200: return "Ethernet";
    case 0x0207: return "InfiniBand";
    case 0x0300: return "VGA";
    case 0x0302: return "3D controller";
    case 0x0600: return "host bridge";
    case 0x0601: return "ISA bridge";
    case 0x0604: return "PCI bridge";
    case 0x0680: return "bridge (other)";
    case 0x0c03: return "USB";
    default: break;
  }
  switch (cls >> 16) {
    case 0x01: return "storage";
    case 0x02: return "network";
    case 0x03: return "display";
    case 0x06: return "bridge";
    case 0x08: return "system peripheral";
    case 0x12: return "accelerator";
    default: return "other";
  }
}

std::vector<PciFunction> listPciFunctions(const std::string& rootIn) {
  const fs::path root = rootIn.empty() ? fs::path("/") : fs::path(rootIn);
  std::vector<PciFunction> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root / "sys/bus/pci/devices", ec)) {
    PciFunction f;
    f.busId = e.path().filename().string();
    f.pciClass = hexOf(e.path() / "class");
    f.vendor = hexOf(e.path() / "vendor");
    f.device = hexOf(e.path() / "device");
    std::string numa = line(e.path() / "numa_node");
    f.numa = numa.empty() ? -1 : std::atoi(numa.c_str());
    std::error_code ec2;
    fs::path drv = fs::read_symlink(e.path() / "driver", ec2);
    if (!ec2) f.driver = drv.filename().string();
    out.push_back(f);
  }
  std::sort(out.begin(), out.end(), [](const PciFunction& a, const PciFunction& b) { return a.busId < b.busId; });
  return out;
}

std::vector<NetInterface> listNetInterfaces(const std::string& rootIn) {
  const fs::path root = rootIn.empty() ? fs::path("/") : fs::path(rootIn);
  std::vector<NetInterface> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root / "sys/class/net", ec)) {
    NetInterface n;
    n.name = e.path().filename().string();
    n.state = line(e.path() / "operstate");
    long long speed = std::atoll(line(e.path() / "speed").c_str());
    n.speedMbps = speed > 0 ? speed : 0;
    std::error_code ec2;
    fs::path dev = fs::canonical(e.path() / "device", ec2);
    if (!ec2) {
      // virtio-net sits one level below its PCI function.
      for (fs::path p = dev; !p.empty() && p != p.root_path(); p = p.parent_path()) {
        std::string f = p.filename().string();
        if (f.size() == 12 && f[4] == ':' && f[7] == ':' && f[10] == '.') {
          n.busId = f;
          break;
        }
      }
      n.rdma = fs::exists(dev / "infiniband", ec2);
    }
    out.push_back(n);
  }
  std::sort(out.begin(), out.end(), [](const NetInterface& a, const NetInterface& b) { return a.name < b.name; });
  return out;
}

}  // namespace trellis::topo
