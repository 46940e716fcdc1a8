// `trellis-topo tune`: what the tuner would choose, per collective and size, on a described
// cluster (a simulation by the cost model, nothing is run): the choice with its chunk size, the
// predicted time and bus bandwidth, and the runner-up; optionally the topology-blind baseline.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace trellis::tools {

struct TuneArgs {
  std::string input, cluster;
  int nodes = 0;
  std::string ranksPerNode;  // "8" or a list "8,8,4"
  int rails = 0;
  int nodesPerLeaf = -1;
  double oversub = 0;
  double nicGbps = 0;
  std::string kind;   // gpu | cpu
  std::string intra;  // shm | tcp
  bool direct = false;
  int cores = -1;
  std::vector<std::string> set;  // NAME=VALUE
  std::string colls = "allreduce,alltoall,allgather,reducescatter,broadcast,reduce";
  std::string sizes;
  std::string minBytes = "1K", maxBytes = "1G";
  double factor = 8;
  std::string algo;  // coll:algo
  std::string tune;
  std::string chunk;  // fixed pipeline chunk (as TRELLIS_CHUNK_BYTES set by the user)
  bool blind = false;
  uint64_t seed = 1;
  bool planned = false;
  bool json = false;
  bool constants = false;
  bool inPlace = false;
  bool all = false;
};

/// Adds the subcommand and its options to `app`.
CLI::App* addTuneCommand(CLI::App& app, TuneArgs* args);
/// Runs it; returns the exit code (0, or 2 with a message on stderr).
int runTune(const TuneArgs& args);

}  // namespace trellis::tools
