// TRELLIS_TUNER_CALIBRATE=1: a short probe at communicator creation of what the shape's path kinds
// really cost here, replacing the table's defaults (constants.h).
//   1. compute: the first rank of every node times memcpy (8 MiB) and a float32 sum (4 MiB), then
//      as many ranks of the node as it has cores copy at once (the node's memory traffic);
//   2. inside nodes: the first two ranks of every node ping-pong 8 B (latency = half the round
//      trip) and send 4 MiB one way (bandwidth), over the transport they really use (shm or TCP);
//   3. across nodes: the first ranks of nodes 2k and 2k+1 do the same over the network.
// One pair per node at a time, the other ranks waiting in a barrier, so the numbers are those of
// one flow (the model adds the contention itself). Every rank's results are gathered and each
// value is the median over the ranks that measured it, so every rank ends with the same constants
// (and so makes the same decisions). Takes ~10-50 ms.
#pragma once

#include <string>

#include "algos/exec.h"
#include "tuner/constants.h"
#include "tuner/shape.h"

namespace trellis::tuner {

/// Collective over all ranks of `exec`. Returns `base` with the measured values replaced (each with
/// source "calibrated"); `report` gets one line per replaced value.
Result<Constants> calibrate(algos::Exec& exec, const Shape& shape, const Constants& base, std::string* report);

}  // namespace trellis::tuner
