// nvidia-smi topo -m text as input: the real 8xH100 / 8xA100 matrices, a synthetic matrix with
// NICs whose every PIX/PXB/PHB/NODE/SYS cell must come back from the inferred tree, and truncation.
#include <gtest/gtest.h>

#include <filesystem>

#include "topo/emit.h"
#include "topo/paths.h"
#include "topo/smi_matrix.h"
#include "topo/sysfs.h"

namespace fs = std::filesystem;

namespace trellis::topo {
namespace {

std::string realPath(const std::string& name) {
  std::string path = std::string(TRELLIS_SOURCE_DIR) + "/../shared/fixtures/real-topo/" + name;
  return fs::exists(path) ? path : "/work/shared/fixtures/real-topo/" + name;
}

TEST(SmiMatrix, RealH100AndA100Matrices) {
  for (auto [file, nv] : {std::pair{"nvidia-smi-topo-m-8xH100.txt", 18}, std::pair{"nvidia-smi-topo-m-8xA100.txt", 12}}) {
    auto r = loadTopologyFile(realPath(file));
    ASSERT_TRUE(r.isOk()) << r.status().message();
    const System& s = r.value();
    auto gpus = s.ofKind(NodeKind::kGpu);
    ASSERT_EQ(gpus.size(), 8u) << file;
    EXPECT_EQ(s.ofKind(NodeKind::kCpu).size(), 2u) << file;
    for (int a : gpus)
      for (int b : gpus) {
        if (a == b) continue;
        Path p = pathBetween(s, a, b);
        EXPECT_EQ(p.kind, PathKind::kNvLink) << file;
        EXPECT_EQ(p.nvlinks, nv) << file;
      }
    EXPECT_EQ(s.nodes[gpus[4]].numa, 1);
  }
  auto h = loadTopologyFile(realPath("nvidia-smi-topo-m-8xH100.txt"));
  ASSERT_TRUE(h.isOk());
  EXPECT_EQ(cpuListFromMask(h->nodes[h->ofKind(NodeKind::kCpu)[0]].affinity), "0-51,104-155");
}

constexpr const char* kMatrix =
    "\x1b[4m\tGPU0\tGPU1\tGPU2\tNIC0\tNIC1\tNIC2\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m\n"
    "GPU0\t X \tPXB\tSYS\tPIX\tNODE\tPHB\t0-7\t0\t\tN/A\n"
    "GPU1\tPXB\t X \tSYS\tPXB\tNODE\tPHB\t0-7\t0\t\tN/A\n"
    "GPU2\tSYS\tSYS\t X \tSYS\tSYS\tSYS\t8-15\t1\t\tN/A\n"
    "NIC0\tPIX\tPXB\tSYS\t X \tNODE\tPHB\n"
    "NIC1\tNODE\tNODE\tSYS\tNODE\t X \tNODE\n"
    "NIC2\tPHB\tPHB\tSYS\tPHB\tNODE\t X \n"
    "\nLegend:\n\n  X    = Self\n  SYS  = PCIe as well as the SMP interconnect between NUMA nodes\n"
    "\nNIC Legend:\n\n  NIC0: mlx5_0\n  NIC1: mlx5_1\n  NIC2: mlx5_bond_0\n";

TEST(SmiMatrix, InferredTreeReproducesEveryCell) {
  ASSERT_TRUE(looksLikeSmiMatrix(kMatrix));
  auto r = fromSmiMatrix(kMatrix, "m.txt");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  const System& s = r.value();
  std::vector<int> devs = s.ofKind(NodeKind::kGpu);
  for (int n : s.ofKind(NodeKind::kNic)) devs.push_back(n);
  ASSERT_EQ(devs.size(), 6u);
  const char* cells[6][6] = {{"X", "PXB", "SYS", "PIX", "NODE", "PHB"},  {"PXB", "X", "SYS", "PXB", "NODE", "PHB"},
                             {"SYS", "SYS", "X", "SYS", "SYS", "SYS"},   {"PIX", "PXB", "SYS", "X", "NODE", "PHB"},
                             {"NODE", "NODE", "SYS", "NODE", "X", "NODE"}, {"PHB", "PHB", "SYS", "PHB", "NODE", "X"}};
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j)
      if (i != j) {
        EXPECT_STREQ(pathKindName(pathBetween(s, devs[i], devs[j]).kind), cells[i][j]) << i << "," << j;
      }
  EXPECT_EQ(s.nodes[devs[5]].ports.at(0).name, "mlx5_bond_0");
  Rails rails = computeRails(s);
  EXPECT_EQ(rails.gpuNic[0], devs[3]);  // GPU0 -> its PIX NIC
  EXPECT_EQ(maskFromCpuList("0-51,104-155"), "fffffff,ffffff00,00000000,000fffff,ffffffff");
}

TEST(SmiMatrix, TruncatedOrWrongInputNamesFileAndLine) {
  std::string cut = "\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tNV4\t0-7\t0\n";
  auto r = fromSmiMatrix(cut, "cut.txt");
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("cut.txt:2: 1 rows for 2 columns"), std::string::npos) << r.status().message();
  auto short_ = fromSmiMatrix("\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X\n", "s.txt");
  ASSERT_FALSE(short_.isOk());
  EXPECT_NE(short_.status().message().find("s.txt:2: row GPU0 has 1 cells for 2 columns"), std::string::npos)
      << short_.status().message();
  EXPECT_FALSE(looksLikeSmiMatrix("hello\n"));
}

}  // namespace
}  // namespace trellis::topo
