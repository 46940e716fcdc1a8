/* Extra C entry points of libnccl-net-trellis.so, next to the NCCL ABI symbols
 * (ncclNetPlugin_v6..v11, ncclTunerPlugin_v4/v5). NCCL never calls these; tests and diagnostics do.
 */
#ifndef TRELLIS_NCCL_NET_H_
#define TRELLIS_NCCL_NET_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Counters of the plugin since it was loaded.
typedef struct {
  uint64_t registrations;      ///< successful regMr calls
  uint64_t registrationHits;   ///< of those, served from the registration cache
  uint64_t deregistrations;    ///< deregMr calls
  uint64_t liveRegistrations;  ///< cache entries alive now
  uint64_t listens;            ///< listen comms opened
  uint64_t connects;           ///< send comms completed
  uint64_t accepts;            ///< receive comms completed
  uint64_t virtualDevices;     ///< devices made by makeVDevice
  uint64_t contexts;           ///< v11 contexts alive now
  uint64_t legacyInits;        ///< successful init calls of v6..v10 (all share one initialisation)
  uint64_t
      backendInits;  ///< times a transport backend was created (1 per load when init succeeded)
} trellisNcclNetStats_t;

/// Fills *out; returns 0 (1 when out is NULL).
int trellisNcclNetGetStats(trellisNcclNetStats_t* out);

#ifdef __cplusplus
}
#endif

#endif
