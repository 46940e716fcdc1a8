// TRELLIS_CHECK=1: before a collective moves any data, every rank sends every other rank a small
// descriptor of the call it is making (collective, count, datatype, op, root, its sequence number
// on the communicator and, for AlltoAllv, the counts it sends to and expects from that peer). Each
// rank then holds every rank's descriptor and finds the same first mismatch, so every rank returns
// the same error naming both ranks' arguments instead of hanging or corrupting memory. The
// exchange is one round of fixed-size messages (two for AlltoAllv, whose pairwise counts each rank
// only sees for its own pairs), so a mismatch never desynchronises the connections: after the
// error the communicator stays usable.
#pragma once

#include <cstdint>
#include <string>

#include "algos/coll.h"
#include "core/status.h"

namespace trellis {

/// Whether TRELLIS_CHECK is set (read once per communicator at creation).
bool callCheckEnabled();

/// Runs the check for the `seq`-th collective (0-based) this rank calls on the communicator that
/// `exec` drives. Returns ok when all ranks agree, invalid usage naming the first mismatch, or the
/// transport's error if the exchange itself failed (then the communicator is broken).
/// `mismatch` is set to true only for an argument mismatch.
Status checkCollectiveCall(algos::Exec& exec, const algos::CollArgs& args, uint64_t seq, bool* mismatch);

/// "AllReduce(count=1024, float32, sum)" and the like, as the check reports a call.
std::string describeCall(const algos::CollArgs& args);

}  // namespace trellis
