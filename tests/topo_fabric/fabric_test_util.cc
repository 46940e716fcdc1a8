#include "fabric_test_util.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace trellis::topo::fabric::testing {

std::string realTopoFixture(const std::string& name) {
  for (std::string base : {std::string(TRELLIS_SOURCE_DIR) + "/../shared/fixtures/real-topo/",
                           std::string("/work/shared/fixtures/real-topo/")}) {
    if (std::filesystem::exists(base + name)) return base + name;
  }
  return std::string(TRELLIS_SOURCE_DIR) + "/../shared/fixtures/real-topo/" + name;
}

std::string goldenPath(const std::string& name) {
  return std::string(TRELLIS_SOURCE_DIR) + "/tests/topo_fabric/golden/" + name;
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return "";
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Fabric& superpod() {
  static const Fabric f = [] {
    std::string path = realTopoFixture("ibnetdiscover-dgx-h100-superpod.out");
    Result<Fabric> r = parseIbnetdiscover(readAll(path), "ibnetdiscover-dgx-h100-superpod.out");
    if (!r.isOk()) {
      ADD_FAILURE() << r.status().toString();
      return Fabric{};
    }
    return std::move(r).value();
  }();
  return f;
}

const Analysis& superpodAnalysis() {
  static const Analysis a = analyze(superpod());
  return a;
}

}  // namespace trellis::topo::fabric::testing
