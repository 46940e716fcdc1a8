// Emitters, one per scheduler family; emit() in emit.cc dispatches on the format name.
#pragma once

#include <string>
#include <vector>

#include "topo/fabric/fabric.h"

namespace trellis::topo::fabric::detail {

std::string emitSlurmTree(const Fabric& f, const Analysis& a);
Result<std::string> emitSlurmBlock(const Fabric& f, const Analysis& a, const EmitOptions& o);
std::string emitKueue(const Fabric& f, const Analysis& a, const EmitOptions& o);
std::string emitVolcano(const Fabric& f, const Analysis& a, const EmitOptions& o);
std::string emitK8sLabels(const Fabric& f, const Analysis& a, const EmitOptions& o);

/// Leaf groups that have at least one named host (the only ones a scheduler can use).
std::vector<int> schedulableGroups(const Analysis& a);
/// "# Left out: N host HCAs without a usable host name ..." or "" when none.
std::string unnamedNote(const Analysis& a, const char* commentPrefix);
/// Switch names of some switches, hostlist-compressed.
std::string switchList(const Fabric& f, const std::vector<uint32_t>& switches);

}  // namespace trellis::topo::fabric::detail
