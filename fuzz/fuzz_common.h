// Shared by the libFuzzer targets: run what consumes a parsed topology, so a model that parses but
// is strange (cycles, dangling ids, huge counts) is exercised too, not only the parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "topo/cluster_view.h"
#include "topo/diff.h"
#include "topo/emit.h"
#include "topo/model.h"
#include "topo/nccl_xml.h"
#include "topo/paths.h"

namespace trellis::fuzz {

inline std::string text(const uint8_t* data, size_t size) { return std::string(reinterpret_cast<const char*>(data), size); }

/// Everything downstream of a parsed System; traps when the JSON round trip of a model that
/// parsed fails (the writer and reader must agree).
inline void exerciseSystem(const topo::System& s) {
  (void)topo::links(s);
  const size_t n = s.nodes.size() < 24 ? s.nodes.size() : 24;
  for (size_t a = 0; a < n; ++a) {
    (void)topo::nearestNics(s, static_cast<int>(a));
    for (size_t b = 0; b < n; ++b) (void)topo::pathBetween(s, static_cast<int>(a), static_cast<int>(b));
  }
  (void)topo::computeRails(s);
  topo::EmitOptions o;
  (void)topo::toSlurmGres(s, o);
  (void)topo::toK8sLabels(s, o);
  (void)topo::toNcclXml(s);
  (void)topo::toDot(s);
  (void)topo::summarize(s);
  std::string json = topo::toJson(s);
  auto back = topo::fromJson(json, "fuzz-roundtrip");
  if (!back) __builtin_trap();
  (void)topo::diffSystems(s, back.value());
}

}  // namespace trellis::fuzz
