// TRELLIS_TUNE: a UCC-style string that adjusts the tuner's choices per collective, message-size
// range and team size. Grammar (docs/TUNER.md):
//
//   tune    := entry ( '#' entry )*
//   entry   := token ( ':' token )*          tokens in any order, each kind at most once
//   token   := colls | ranges | team | '@' algo | '!' algo | 'chunk=' size | 'channels=' int
//   colls   := coll ( ',' coll )*            allreduce, broadcast, ..., or 'all'
//   ranges  := range ( ',' range )*          range := size '-' ( size | 'inf' ), lower inclusive,
//                                            upper exclusive
//   team    := '[' int '-' ( int | 'inf' ) ']'   ranks, both inclusive
//   size    := digits [ 'k' | 'K' | 'm' | 'M' | 'g' | 'G' ]  (binary: 64k = 65536)
//
// Each entry needs a collective list and at least one action (@algo forces it, !algo never picks
// it, chunk= and channels= set those knobs). Without a range an entry covers every size; without a
// team every rank count. Where several entries match, the later one wins for what it sets.
// Sizes are nccl-tests sizes (see cost_model.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "algos/coll.h"
#include "core/status.h"

namespace trellis::tuner {

struct TuneRange {
  uint64_t lo = 0;
  uint64_t hi = UINT64_MAX;  ///< exclusive; UINT64_MAX = inf
};

struct TuneEntry {
  std::vector<algos::Coll> colls;
  std::vector<TuneRange> ranges;  ///< empty: every size
  int teamLo = 1, teamHi = INT32_MAX;
  const algos::Algorithm* force = nullptr;
  std::vector<const algos::Algorithm*> exclude;
  uint64_t chunkBytes = 0;  ///< 0: not set
  int channels = 0;         ///< 0: not set
  size_t position = 0;      ///< offset of the entry in the string (for messages)

  bool matches(algos::Coll coll, uint64_t bytes, int nranks) const;
};

/// Parses a TRELLIS_TUNE string. Errors quote the string, give the 0-based offset of the bad token
/// and say what was expected there.
Result<std::vector<TuneEntry>> parseTuneString(const std::string& text);

/// Algorithm names the tune string and TRELLIS_ALGO accept besides the registry's: "rhd"
/// (recursive halving-doubling, UCC's name) is "rabenseifner"; "rec_doubling" is "rd".
const algos::Algorithm* findAlgorithmOrAlias(algos::Coll coll, const std::string& name);

/// Parses "64k", "1M", "4096" (binary suffixes); false when malformed or out of range.
bool parseSize(const std::string& text, uint64_t* out);

}  // namespace trellis::tuner
