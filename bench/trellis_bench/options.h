// trellis-bench's command line: nccl-tests' flags (-b -e -f -i -n -w -m -c -d
// -o -r -a -J, sizes with K/M/G suffixes, `all` for -d/-o/-r) plus --op-name
// and --impl. The parsed sweep is a Config.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "impl.h"

namespace trellis::bench {

struct Config {
  std::vector<Coll> colls;
  std::vector<trellisDataType_t> types;
  std::vector<trellisRedOp_t> ops;
  std::string root = "0";  ///< a rank, or "all"
  size_t minBytes = 32 << 20, maxBytes = 32 << 20, stepBytes = 1 << 20;
  double factor = 0;  ///< 0: add stepBytes each step
  int iters = 20, warmup = 1, aggIters = 1, check = 1, average = 1;
  /// "mean": total time / iterations (nccl-tests); "min": every iteration timed on its own after a
  /// barrier, the fastest kept (a shared, loaded machine: the iterations nothing preempted).
  std::string iterTime = "mean";
  int debugCorrupt = 0;  ///< test hook: rank 0 spoils this many output elements before checking
  bool typeColumnFromList = false;  ///< print the type as given (`float`) rather than canonical
  std::string typeArg = "float";
  std::string impl = "trellis";
  std::string jsonFile, glooStore, glooHost = "127.0.0.1", glooIface;
};

/// Parses argv. Returns -1 to go on, else the exit code (after printing help or
/// the error).
int parseArgs(int argc, char** argv, Config* cfg);

/// "8", "64K", "1M", "2G" (powers of 1024, optional B). False on anything else.
bool parseSize(const std::string& s, size_t* out);
bool parseType(const std::string& s, trellisDataType_t* out);
bool parseOp(const std::string& s, trellisRedOp_t* out);
bool parseColl(const std::string& s, Coll* out);
/// Comma-separated lists of collectives ("all" for every one). Returns "" or
/// the error.
std::string parseCollList(const std::string& s, std::vector<Coll>* out);

/// The sizes of the sweep, in order.
std::vector<size_t> sweepSizes(const Config& cfg);

}  // namespace trellis::bench
