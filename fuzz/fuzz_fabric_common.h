#pragma once

#include <nlohmann/json.hpp>

#include "topo/fabric/fabric.h"

namespace trellis::fuzz {

/// Analysis, every emitter, the summary, JSON and the placement of the first few hosts.
inline void exerciseFabric(const topo::fabric::Fabric& f) {
  using namespace topo::fabric;
  Analysis a = analyze(f);
  for (const std::string& fmt : emitFormats()) (void)emit(f, a, fmt);
  (void)summary(f, a);
  (void)toJson(f, a).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  int placed = 0;
  for (const auto& h : f.hcas) {
    if (placed++ >= 4) break;
    (void)placeHost(f, a, h.host);
  }
}

}  // namespace trellis::fuzz
