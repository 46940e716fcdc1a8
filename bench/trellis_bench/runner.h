// One row of the table: checks (-c), times (-w warmups, a barrier, -n x -m
// operations), combines the time over ranks (-a), prints the row on rank 0 and
// keeps it for the JSON file (-J).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "impl.h"
#include "options.h"

namespace trellis::bench {

class Runner {
 public:
  Runner(Impl& impl, const Config& cfg, char* send, char* recv)
      : impl_(impl), cfg_(cfg), send_(send), recv_(recv) {}
  /// Runs and prints one row. Returns "" or the error of a failed call.
  std::string row(Coll c, size_t bytes, trellisDataType_t dt, trellisRedOp_t op, int root);
  /// Records a combination the implementation cannot run (printed as a `#
  /// skipped:` line).
  void skipped(Coll c, trellisDataType_t dt, trellisRedOp_t op, const std::string& why);
  int64_t wrongTotal() const { return wrongTotal_; }
  double avgBusbw() const { return bwCount_ ? bwSum_ / bwCount_ : 0; }
  int skippedCount() const { return skipped_; }
  const nlohmann::json& rows() const { return rows_; }

 private:
  double timeIt(Coll c, size_t param, trellisDataType_t dt, trellisRedOp_t op, int root,
                bool inPlace, std::string* err);
  Impl& impl_;
  const Config& cfg_;
  char* send_;
  char* recv_;
  double bwSum_ = 0;
  int bwCount_ = 0, skipped_ = 0;
  int64_t wrongTotal_ = 0;
  nlohmann::json rows_ = nlohmann::json::array();
};

}  // namespace trellis::bench
