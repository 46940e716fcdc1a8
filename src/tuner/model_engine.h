// The cost model's step evaluator (internal to src/tuner). An algorithm model adds the flows,
// copies, reductions and peer reads of one step, then takes the step's time. See cost_model.h for
// the resources and the formula.
#pragma once

#include <vector>

#include "tuner/shape.h"

namespace trellis::tuner {

/// The time of one step, split so pipelined steps can add their fill.
struct StepTime {
  double latency = 0;  ///< slowest path's latency (+ wake-up when ranks outnumber cores)
  double busy = 0;     ///< the most loaded resource's seconds (or a stream's ceiling)
  bool wire = false;   ///< some bytes crossed a wire (NIC / NVLink) that overlaps with compute
  double total() const { return latency + busy; }
};

class Engine {
 public:
  explicit Engine(const Shape& s);

  const Shape& shape() const { return s_; }
  int nranks() const { return n_; }
  int nodeOf(int r) const { return s_.nodeOfRank[r]; }
  /// Channels the current step's flows are striped over.
  void setChannels(int c) { channels_ = c < 1 ? 1 : c; }
  /// CPU byte rates for this prediction relative to the table's (cache-resident or streaming).
  void setRateScale(double x) { rate_ = x > 0 ? x : 1; }

  /// `bytes` from src to dst in `msgs` messages (a zero-byte message still costs its latency and
  /// per-message CPU). src == dst is a local copy.
  void flow(int src, int dst, double bytes, double msgs = 1);
  /// `bytes` of output reduced by `rank` (reads two inputs, writes one).
  void reduce(int rank, double bytes);
  /// `bytes` copied locally by `rank`.
  void copy(int rank, double bytes);
  /// `bytes` read by `reader` straight from `owner`'s memory (direct algorithms).
  void readPeer(int reader, int owner, double bytes);
  /// `bytes` written by `writer` straight into `owner`'s memory from its cache (direct algorithms).
  void writePeer(int writer, int owner, double bytes);
  /// Ends the step: its time, and resets the loads.
  StepTime take();

 private:
  void add(int res, double seconds);
  void cpu(int rank, double seconds);
  void mem(int node, double bytes);
  int leafOf(int node, int rail) const;

  const Shape& s_;
  int n_ = 0, nodes_ = 0, rails_ = 1;
  int oCpu_ = 0, oPool_ = 0, oMem_ = 0, oTx_ = 0, oRx_ = 0, oNicTx_ = 0, oNicRx_ = 0, oUp_ = 0, oDown_ = 0;
  std::vector<double> cap_;   // capacity per resource in units per second (<= 0: unlimited)
  std::vector<double> load_;  // seconds per resource in this step
  std::vector<int> touched_;
  std::vector<int> cores_;    // per node
  std::vector<int> group_;    // leaf group per node
  int channels_ = 1;
  double rate_ = 1;
  double lat_ = 0, stream_ = 0;
  bool wire_ = false;
  bool wake_ = false;     // some node has more ranks than cores: waits sleep and are woken
  int wakeRounds_ = 1;    // most ranks per core on a node: turns a wait can take to be served
  std::vector<int> fanIn_;   // per rank: messages it waits for in this step (oversubscribed only)
  std::vector<int> fanTouched_;
  int maxFanIn_ = 0;
};

}  // namespace trellis::tuner
