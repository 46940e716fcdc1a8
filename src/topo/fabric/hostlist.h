// Slurm hostlist expressions: "gpu[001-004,007]" <-> gpu001 gpu002 gpu003 gpu004 gpu007.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace trellis::topo::fabric {

/// Natural order: digit runs compare as numbers ("c2" < "c10"), the rest byte-wise.
bool naturalLess(std::string_view a, std::string_view b);

/// Compresses names into one hostlist expression. Names that end in digits and share the prefix
/// and digit count are bracketed ("gpu[01-03,05]"); others are listed as they are. The output is
/// in natural order; duplicates are dropped.
std::string compressHostlist(std::vector<std::string> names);

/// Expands a hostlist expression with at most one bracket per comma-separated item
/// ("gpu[001-016],login1"). At most `limit` names; errors name the bad item.
Result<std::vector<std::string>> expandHostlist(std::string_view expr, size_t limit = 1u << 20);

}  // namespace trellis::topo::fabric
