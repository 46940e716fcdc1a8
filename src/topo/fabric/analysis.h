// The rail structure of a fabric, derived from the link graph (see analyze() in fabric.h).
//
// Rail-optimized fabrics (NVIDIA SuperPOD style) put HCA k of every node of a scalable unit on
// the same leaf, so each node sits under one leaf per rail. Schedulers that expect a tree need a
// "logical leaf": the group of leaves that share hosts (a scalable unit). That is a LeafGroup here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace trellis::topo::fabric {

/// A leaf switch and what it serves.
struct LeafInfo {
  uint32_t switchIndex = 0;          ///< into Fabric::switches
  int rail = -1;                     ///< HCA index most of its host HCAs have (-1: none known)
  int group = -1;                    ///< into Analysis::leafGroups
  std::vector<uint32_t> spines;      ///< uplink switches (Fabric::switches indices), sorted
  uint32_t uplinkCables = 0;         ///< cables to spines
  uint32_t namedHcas = 0;            ///< host HCAs with a usable host name
  uint32_t unnamedHcas = 0;          ///< host HCAs without one (missing or placeholder)
  uint32_t offRailHcas = 0;          ///< HCAs whose index is known and differs from `rail`
};

/// Leaves sharing hosts: a scalable unit on rail-optimized fabrics, a single leaf otherwise.
struct LeafGroup {
  std::string name;                  ///< "su01", "su02", ... ordered by the leaves' switch names
  std::vector<uint32_t> leaves;      ///< indices into Analysis::leaves
  std::vector<std::string> hosts;    ///< named hosts, sorted
  uint32_t unnamedHostsAtLeast = 0;  ///< max unnamed HCAs on one leaf: a lower bound on unnamed hosts
  int spineGroup = -1;               ///< into Analysis::spineGroups
};

/// Spines that serve a connected set of leaf groups (one per pod in a 3-tier fat tree).
struct SpineGroup {
  std::string name;                  ///< "spines01", ...
  std::vector<uint32_t> spines;      ///< Fabric::switches indices
  std::vector<int> leafGroups;       ///< indices into Analysis::leafGroups
};

/// A named host and its HCAs.
struct HostInfo {
  std::string name;
  int leafGroup = -1;
  std::vector<uint32_t> hcas;        ///< Fabric::hcas indices, ordered by hcaIndex
};

/// An HCA whose index k is not the rail k of the leaf it is cabled to.
struct RailViolation {
  std::string host;                  ///< empty for unnamed HCAs
  uint32_t hca = 0;                  ///< Fabric::hcas index
  uint32_t leaf = 0;                 ///< Fabric::switches index
  int hcaIndex = -1;
  int leafRail = -1;
  std::string message;               ///< "b08-p1-dgx-08-c01: HCA-6 (NIC 5) is on leaf ... of rail 4"
};

/// Result of analyze().
struct Analysis {
  bool railOptimized = false;        ///< >1 rail and every leaf dominated by one HCA index
  std::vector<int> rails;            ///< HCA indices that have their own leaves, sorted
  std::vector<LeafInfo> leaves;      ///< ordered by switch name
  std::vector<uint32_t> spines;      ///< tier-1 switches (Fabric::switches), by name
  std::vector<uint32_t> cores;       ///< tier-2 switches, by name
  std::vector<LeafGroup> leafGroups;
  std::vector<SpineGroup> spineGroups;
  std::vector<HostInfo> hosts;       ///< named hosts, sorted by name
  std::vector<uint32_t> unnamedHcas; ///< host HCAs without a usable name (Fabric::hcas)
  uint32_t aggregationNodes = 0;
  std::vector<RailViolation> railViolations;
  std::vector<std::string> warnings; ///< fabric warnings plus structural ones found here
  std::vector<int> hcaLeaf;          ///< per Fabric::hcas: index into `leaves` of its leaf, -1 none
  std::vector<uint32_t> hcaPort;     ///< per Fabric::hcas: its port on that leaf (0: none)

  /// Index into `leaves` of a switch, or -1.
  int leafOf(uint32_t switchIndex) const;
  /// Index into `hosts`, or -1.
  int hostIndex(const std::string& name) const;
};

}  // namespace trellis::topo::fabric
