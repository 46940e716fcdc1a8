// TRELLIS_IB_HCA: which RDMA devices and ports a rank may use, in NCCL's NCCL_IB_HCA syntax.
//
//   mlx5_0:1,mlx5_1:1   only these device:port pairs (a name without ":port" takes every port)
//   mlx5                names are prefixes: mlx5_0, mlx5_1, mlx5_10 ... all match
//   =mlx5_1             '=' first: names must match exactly
//   ^mlx5_2             '^' first: every device except those listed ("^=" combines both)
//
// An empty specification allows everything. The order of an inclusive list is the order of
// preference (the first entry is the first NIC used).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace trellis::transport::verbs {

struct HcaFilter {
  struct Entry {
    std::string name;
    int port = -1;  // -1: every port
  };
  bool exclude = false;
  bool exact = false;
  std::vector<Entry> entries;

  bool empty() const { return entries.empty(); }
  /// Whether device `name` port `port` may be used.
  bool allows(const std::string& name, int port) const;
  /// Position of the first inclusive entry matching (name, port), for ordering; entries.size()
  /// when none matches or the filter excludes.
  size_t rank(const std::string& name, int port) const;
};

/// Parses a TRELLIS_IB_HCA value. Errors name the bad token ("mlx5_0:x: port is not a number").
Result<HcaFilter> parseHcaFilter(const std::string& spec);

}  // namespace trellis::transport::verbs
