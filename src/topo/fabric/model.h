// The cluster fabric model: switches, channel adapters (host HCAs and switch-embedded aggregation
// nodes) and the links between their ports, as read from `ibnetdiscover` output or an operator's
// cluster file. Pure data: every fact carries the line it came from, nothing is inferred here
// except the switch tier (leaf / spine / core), which is derived from the link graph and marked
// as such. Entities refer to each other by index into the Fabric vectors, not by pointer, so a
// Fabric copies and serialises freely.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace trellis::topo::fabric {

/// Where a fact came from.
enum class SourceKind {
  kIbnetdiscover,  ///< a line of `ibnetdiscover` output
  kClusterFile,    ///< an operator-supplied cluster description (loadClusterFile)
  kDerived,        ///< computed from other facts (tiers, rails, groups)
};
const char* sourceKindName(SourceKind kind);

/// A fact's origin: the kind of source and, for file sources, the 1-based line (0: not known).
struct Origin {
  SourceKind kind = SourceKind::kDerived;
  uint32_t line = 0;
};

/// Switch tier, counted up from the hosts: leaves have host HCAs attached, spines sit directly
/// above leaves, cores above spines. kUnknown: not connected to any host path.
enum class Tier { kUnknown, kLeaf, kSpine, kCore };
const char* tierName(Tier tier);

/// What a channel adapter is.
enum class CaKind {
  kHost,             ///< an HCA in a server (compute, storage or management node)
  kAggregationNode,  ///< a switch-embedded SHARP aggregation node ("Mellanox Technologies Aggregation Node")
  kRouter,           ///< an IB router ("Rt" entries)
};
const char* caKindName(CaKind kind);

/// How much of a host HCA's node description could be trusted as "<host> <hca>".
enum class NameStatus {
  kNamed,        ///< "dgx001 mlx5_3": host and HCA name both known
  kPlaceholder,  ///< a default OS host name ("localhost", "ubuntu"): not unique, treated as unnamed
  kMissing,      ///< a firmware default such as "MT4129 ConnectX7   Mellanox Technologies"
};
const char* nameStatusName(NameStatus status);

/// One InfiniBand switch.
struct Switch {
  uint64_t guid = 0;         ///< node GUID (0 in cluster files)
  std::string description;   ///< node description as reported ("MF0;A09-P1-IBLEAF-04-04:MQM9701/U1")
  std::string name;          ///< host name part of the description ("A09-P1-IBLEAF-04-04")
  std::string model;         ///< model part ("MQM9701"), empty when not in the description
  uint32_t portCount = 0;    ///< ports reported in the "Switch N" header (0: unknown)
  uint32_t lid = 0;          ///< base LID (0: unknown)
  Tier tier = Tier::kUnknown;  ///< derived by classifyTiers (Origin kDerived)
  Origin origin;
};

/// One channel adapter (a single-port HCA as ibnetdiscover lists it, or an aggregation node).
struct Hca {
  uint64_t guid = 0;            ///< node GUID (0 in cluster files)
  uint64_t systemGuid = 0;      ///< sysimgguid (same for ports of one physical adapter), 0 unknown
  std::string description;      ///< node description as reported
  CaKind kind = CaKind::kHost;
  NameStatus nameStatus = NameStatus::kMissing;
  std::string host;             ///< host name; empty unless nameStatus == kNamed
  std::string hcaName;          ///< device name ("mlx5_3", "HCA-4"); may be set for placeholders too
  int hcaIndex = -1;            ///< index of the device on its host: mlx5_K -> K, HCA-N -> N-1; -1 unknown
  uint32_t portCount = 0;
  Origin origin;
};

/// One end of a link.
struct Endpoint {
  bool isSwitch = false;
  uint32_t index = 0;  ///< into Fabric::switches or Fabric::hcas
  uint32_t port = 0;   ///< 1-based port number
};

/// A cable between two ports, listed once even though ibnetdiscover reports it from both ends.
struct Link {
  Endpoint a, b;
  uint32_t width = 0;    ///< lanes (4 for "4xNDR"); 0 unknown
  std::string speed;     ///< lane speed name ("NDR", "HDR", "EDR", "FDR10"...); empty unknown
  Origin origin;
  /// Total data rate in Gb/s from width x per-lane rate (4xNDR = 400); 0 when unknown.
  double gbps() const;
};

/// A whole fabric, as discovered from one source.
struct Fabric {
  std::string sourceName;  ///< file name (or label) the facts were read from
  SourceKind sourceKind = SourceKind::kIbnetdiscover;
  std::vector<Switch> switches;
  std::vector<Hca> hcas;
  std::vector<Link> links;
  /// Non-fatal oddities found while reading ("port 3 reported linked to two peers"...).
  std::vector<std::string> warnings;
};

/// Per-lane rate in Gb/s of an IB speed name (SDR 2.5 ... NDR 100, XDR 200); 0 when unknown.
double laneGbps(const std::string& speed);

/// Sets Switch::tier from the link graph: leaf = has a host HCA attached, spine = linked to a
/// leaf, core = linked to a spine only. Aggregation nodes do not make a switch a leaf.
void classifyTiers(Fabric& fabric);

void to_json(nlohmann::json& j, const Origin& o);
void to_json(nlohmann::json& j, const Switch& s);
void to_json(nlohmann::json& j, const Hca& h);
void to_json(nlohmann::json& j, const Link& l);
void to_json(nlohmann::json& j, const Fabric& f);

/// "0x2c5eab0300b87b40"
std::string guidString(uint64_t guid);

}  // namespace trellis::topo::fabric
