// Shared helpers for the fabric tests: locating fixtures and golden files.
#pragma once

#include <string>

#include "topo/fabric/fabric.h"

namespace trellis::topo::fabric::testing {

/// Path of a file in ../shared/fixtures/real-topo (the repo's sibling folder).
std::string realTopoFixture(const std::string& name);
/// Path of a file in tests/topo_fabric/golden.
std::string goldenPath(const std::string& name);
/// Whole file; fails the calling test (ADD_FAILURE) and returns "" if it cannot be read.
std::string readAll(const std::string& path);
/// The SuperPOD fixture, parsed once per process.
const Fabric& superpod();
const Analysis& superpodAnalysis();

}  // namespace trellis::topo::fabric::testing
