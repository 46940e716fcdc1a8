// Cluster fabric API: read a fabric (ibnetdiscover output or an operator cluster file), derive its
// rail structure, place hosts in it, and write what schedulers read (Slurm topology.conf tree and
// block forms, Kueue Topology, Volcano HyperNodes, node labels) or Trellis JSON.
//
//   auto text = readFile(path);                                   // caller's I/O
//   TRELLIS_ASSIGN_OR_RETURN(Fabric f, parseIbnetdiscover(text, path));
//   Analysis a = analyze(f);
//   TRELLIS_ASSIGN_OR_RETURN(std::string conf, emit(f, a, "slurm-tree"));
//
// See docs/FABRIC.md for the formats, the rules used to infer rails and groups, and measurements.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"
#include "topo/fabric/analysis.h"
#include "topo/fabric/model.h"

namespace trellis::topo::fabric {

/// Parses `ibnetdiscover` output (default format, as printed by infiniband-diags). `sourceName`
/// is used in error messages ("file:line: ...") and recorded in the Fabric. Malformed or
/// truncated input gives an invalid-argument Status naming the file and line; the input size is
/// capped at 64 MiB and every number, port and name length is bounded.
Result<Fabric> parseIbnetdiscover(std::string_view text, const std::string& sourceName);

/// Parses an operator cluster file (JSON: nodes -> leaf per HCA -> spines -> cores; the format is
/// in docs/FABRIC.md), so a cluster can be described without ibnetdiscover.
Result<Fabric> parseClusterFile(std::string_view text, const std::string& sourceName);
/// Reads and parses a cluster file from disk.
Result<Fabric> loadClusterFile(const std::string& path);
/// Reads and parses an ibnetdiscover output file from disk.
Result<Fabric> loadIbnetdiscover(const std::string& path);

/// Derives the rail structure: leaves and the HCA index (rail) each serves, spines, leaf groups
/// (scalable units), spine groups, named hosts, unnamed HCAs and rail violations (NIC k of a host
/// cabled to a leaf of another rail). Never fails; oddities become Analysis::warnings.
Analysis analyze(const Fabric& fabric);

/// Options for the emitters.
struct EmitOptions {
  std::string labelDomain = "trellis.dev/";             ///< prefix of our node label keys
  std::string topologyName = "trellis-fabric";          ///< Kueue Topology metadata.name
  std::string kueueApiVersion = "kueue.x-k8s.io/v1alpha1";  ///< check the CRD installed
  std::vector<int> blockSizes;                          ///< Slurm BlockSizes; empty: inferred
};

/// Format names accepted by emit(): "slurm-tree", "slurm-block", "kueue", "volcano",
/// "k8s-labels", "json", "summary".
const std::vector<std::string>& emitFormats();

/// Writes the fabric in one format (see emitFormats()). Hosts without a usable name cannot be
/// scheduled by name and are left out of scheduler formats (a comment line counts them).
Result<std::string> emit(const Fabric& fabric, const Analysis& analysis, std::string_view format,
                         const EmitOptions& options = {});

/// Human-readable summary: counts, rails, leaf groups with node counts, spines, rail violations.
std::string summary(const Fabric& fabric, const Analysis& analysis);

/// Trellis JSON document of a fabric and its analysis ({"format": "trellis-fabric", ...}).
nlohmann::json toJson(const Fabric& fabric, const Analysis& analysis);

/// Where one HCA of a host sits.
struct HcaPlacement {
  std::string hcaName;     ///< "mlx5_0" / "HCA-1"
  int hcaIndex = -1;       ///< NIC index on the host (-1 unknown)
  uint64_t guid = 0;
  std::string leafSwitch;  ///< leaf switch name
  uint32_t leafPort = 0;   ///< port on that leaf
  int rail = -1;           ///< rail of that leaf (the HCA index it serves)
  bool onRail = true;      ///< false when hcaIndex is known and differs from rail
};

/// A host's place in the fabric: its logical leaf (leaf group), the spine group above it and,
/// per HCA, the leaf switch and rail.
struct HostPlacement {
  std::string host;
  std::string leafGroup;   ///< "su03"
  std::string spineGroup;  ///< "spines01"; empty when the leaves have no uplinks
  std::vector<HcaPlacement> hcas;  ///< ordered by hcaIndex
};

/// Places a named host. Fails (invalid argument) when the fabric has no host of that name.
Result<HostPlacement> placeHost(const Fabric& fabric, std::string_view host);
/// As above, reusing an analysis of the same fabric (cheap: a lookup plus one pass over links).
Result<HostPlacement> placeHost(const Fabric& fabric, const Analysis& analysis,
                                std::string_view host);

}  // namespace trellis::topo::fabric
