/// @file trellis.h
/// Trellis: a topology-aware collective communication library.
///
/// The C API is shaped like NCCL's so that frameworks can adopt it with little change: a communicator
/// is created from a unique id shared by all ranks (or from the launcher's environment), collectives
/// take (send, recv, count, datatype, op, comm, stream), and every call returns a trellisResult_t.
/// A human-readable message naming the values involved is kept per thread and per communicator
/// (trellisGetLastError).
///
/// Host buffers: pass `stream == NULL`; the call returns when the result is in place.
/// Device buffers (builds with CUDA support; found by the driver's pointer attributes, never by the
/// stream argument): `stream` is a CUstream / cudaStream_t (NULL: the legacy default stream); the
/// call queues the operation on it and returns at once, completion is ordered on the stream, and a
/// failure after the call returned is reported by trellisCommGetAsyncError. Host buffers with a
/// non-NULL stream wait for the stream first. A call may not mix device and host buffers.
/// docs/GPU.md gives the ordering rules.
#ifndef TRELLIS_TRELLIS_H_
#define TRELLIS_TRELLIS_H_

#include <stddef.h>
#include <stdint.h>

#include "trellis/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
/// Marks a symbol exported from libtrellis.so (everything else is hidden).
#define TRELLIS_EXPORT __attribute__((visibility("default")))
#else
#define TRELLIS_EXPORT
#endif

/// Result codes. Values are stable (part of the ABI).
typedef enum {
  trellisSuccess = 0,            ///< The call completed.
  trellisUnhandledCudaError = 1, ///< A CUDA call failed.
  trellisSystemError = 2,        ///< A system call failed (socket, mmap, fork...).
  trellisInternalError = 3,      ///< A bug in Trellis or a broken invariant.
  trellisInvalidArgument = 4,    ///< An argument is invalid (null buffer, bad datatype, root out of range...).
  trellisInvalidUsage = 5,       ///< The call is not allowed now (communicator in error, group misuse...).
  trellisRemoteError = 6,        ///< A peer failed or disconnected.
  trellisInProgress = 7,         ///< Non-blocking operation still in progress.
  trellisTimeout = 8,            ///< A wait exceeded its timeout (TRELLIS_TIMEOUT_S).
  trellisNumResults = 9
} trellisResult_t;

/// Element types. Values are stable.
typedef enum {
  trellisInt8 = 0,
  trellisChar = 0,
  trellisUint8 = 1,
  trellisInt32 = 2,
  trellisInt = 2,
  trellisUint32 = 3,
  trellisInt64 = 4,
  trellisUint64 = 5,
  trellisFloat16 = 6,
  trellisHalf = 6,
  trellisFloat32 = 7,
  trellisFloat = 7,
  trellisFloat64 = 8,
  trellisDouble = 8,
  trellisBfloat16 = 9,
  trellisNumTypes = 10
} trellisDataType_t;

/// Reduction operations. Avg is the sum divided by the number of ranks (once, at the end).
typedef enum {
  trellisSum = 0,
  trellisProd = 1,
  trellisMax = 2,
  trellisMin = 3,
  trellisAvg = 4,
  trellisNumOps = 5
} trellisRedOp_t;

/// Size of the opaque unique id, in bytes.
#define TRELLIS_UNIQUE_ID_BYTES 128

/// Opaque id shared by all ranks of a communicator: it carries the root's address and a random
/// 128-bit secret. Treat it as a secret (anyone holding it can join the job).
typedef struct {
  char internal[TRELLIS_UNIQUE_ID_BYTES];
} trellisUniqueId;

/// Opaque communicator handle.
typedef struct trellisComm* trellisComm_t;

/// Version of trellisConfig_t understood by this header.
#define TRELLIS_CONFIG_VERSION 1

/// Communicator options. Initialise with TRELLIS_CONFIG_INITIALIZER so that the size/version fields
/// are set and every option has its "unset" value (-1 or NULL), meaning "use the environment/default".
typedef struct {
  size_t size;          ///< sizeof(trellisConfig_t), set by TRELLIS_CONFIG_INITIALIZER.
  unsigned int magic;   ///< TRELLIS_CONFIG_MAGIC, set by TRELLIS_CONFIG_INITIALIZER.
  unsigned int version; ///< TRELLIS_CONFIG_VERSION.
  int blocking;         ///< 1 (default): init blocks until the communicator is ready.
  int timeoutSeconds;   ///< Collective/bootstrap timeout in seconds; -1: TRELLIS_TIMEOUT_S.
  int numSockets;       ///< TCP sockets per peer; -1: TRELLIS_SOCKETS_PER_PEER.
  const char* netName;  ///< Reserved for transport selection (NULL: automatic).
  const char* commName; ///< Optional name used in log lines and error messages.
  int reservedInt[8];   ///< Reserved; must be zero-initialised (TRELLIS_CONFIG_INITIALIZER does).
  void* reservedPtr[8]; ///< Reserved; must be NULL.
} trellisConfig_t;

/// Magic number that marks an initialised trellisConfig_t.
#define TRELLIS_CONFIG_MAGIC 0x7e11150fu

/// Initialiser for trellisConfig_t.
#define TRELLIS_CONFIG_INITIALIZER                                                              \
  {                                                                                            \
    sizeof(trellisConfig_t), TRELLIS_CONFIG_MAGIC, TRELLIS_CONFIG_VERSION, 1, -1, -1, NULL, NULL, \
        {0, 0, 0, 0, 0, 0, 0, 0}, {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}                \
  }

/// Color value for trellisCommSplit meaning "do not join any new communicator" (*newcomm = NULL).
#define TRELLIS_SPLIT_NOCOLOR (-1)

/// Returns the library version as MAJOR*10000 + MINOR*100 + PATCH.
TRELLIS_EXPORT trellisResult_t trellisGetVersion(int* version);

/// Creates a new unique id. Call on one rank and distribute the id to all others (MPI_Bcast, a file,
/// a key-value store...). Starts a rendezvous listener in this process that lives until every rank
/// of the communicator has joined (or TRELLIS_BOOTSTRAP_TIMEOUT_S expires).
TRELLIS_EXPORT trellisResult_t trellisGetUniqueId(trellisUniqueId* uniqueId);

/// Creates the communicator of rank `rank` among `nranks`. Blocks until all ranks have joined.
TRELLIS_EXPORT trellisResult_t trellisCommInitRank(trellisComm_t* comm, int nranks,
                                                   trellisUniqueId commId, int rank);

/// As trellisCommInitRank, with options (config may be NULL).
TRELLIS_EXPORT trellisResult_t trellisCommInitRankConfig(trellisComm_t* comm, int nranks,
                                                         trellisUniqueId commId, int rank,
                                                         trellisConfig_t* config);

/// Creates a communicator from the launcher's environment: TRELLIS_UNIQUE_ID/TRELLIS_RANK/
/// TRELLIS_WORLD_SIZE (trellis-run), OMPI_COMM_WORLD_*, PMI_*, SLURM_*, or torchrun's
/// MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE. See the README for the exact rules.
TRELLIS_EXPORT trellisResult_t trellisCommInitFromEnv(trellisComm_t* comm);

/// Splits `comm` into sub-communicators by `color`; ranks are ordered by (key, old rank). Collective
/// over `comm`. A rank passing TRELLIS_SPLIT_NOCOLOR gets *newcomm = NULL. config may be NULL.
TRELLIS_EXPORT trellisResult_t trellisCommSplit(trellisComm_t comm, int color, int key,
                                                trellisComm_t* newcomm, trellisConfig_t* config);

/// Frees the communicator once its pending operations are done (or failed).
TRELLIS_EXPORT trellisResult_t trellisCommDestroy(trellisComm_t comm);

/// Aborts every operation in progress on `comm` (callable from another thread; blocked calls return
/// within about a second) and frees the communicator.
TRELLIS_EXPORT trellisResult_t trellisCommAbort(trellisComm_t comm);

/// Reports an asynchronous error of the communicator (a failed peer, an abort, a timeout).
TRELLIS_EXPORT trellisResult_t trellisCommGetAsyncError(trellisComm_t comm,
                                                        trellisResult_t* asyncError);

/// Number of ranks in `comm`.
TRELLIS_EXPORT trellisResult_t trellisCommCount(const trellisComm_t comm, int* count);

/// Rank of the caller in `comm`.
TRELLIS_EXPORT trellisResult_t trellisCommUserRank(const trellisComm_t comm, int* rank);

/// Registers `size` bytes at `buff` with `comm` for use in later calls, as ncclCommRegister does.
/// Local to the calling rank (not collective). Where a transport registers memory with its
/// hardware (RDMA verbs), the registration is made now and kept across calls until
/// trellisCommDeregister, so calls on buffers inside the region skip registering; unregistered
/// buffers are registered per call. Transports with nothing to register (shared memory, TCP, UCX)
/// only record the handle. The buffer must stay allocated until it is deregistered (deregister
/// before freeing it: a registration pins the pages it was made on). Registrations may overlap.
/// `*handle` receives an opaque handle for trellisCommDeregister; handles are released with the
/// communicator if not deregistered.
TRELLIS_EXPORT trellisResult_t trellisCommRegister(const trellisComm_t comm, void* buff, size_t size,
                                                   void** handle);

/// Releases a registration made by trellisCommRegister on `comm`. A handle that is NULL, already
/// released, or from another communicator is an invalid argument naming it.
TRELLIS_EXPORT trellisResult_t trellisCommDeregister(const trellisComm_t comm, void* handle);

/// Short description of a result code ("invalid argument", ...).
TRELLIS_EXPORT const char* trellisGetErrorString(trellisResult_t result);

/// The last error message: of `comm` when comm is not NULL, else of the calling thread. Names the
/// values involved ("trellisBroadcast: root 7 out of range [0, 4)"). Empty when there was none.
TRELLIS_EXPORT const char* trellisGetLastError(trellisComm_t comm);

/// Collectives below: a call whose count is 0 (AlltoAllv excepted) checks its arguments and
/// returns at once without communicating, as NCCL does, unless TRELLIS_CHECK=1 (then it runs, so
/// ranks that disagree on the count are reported).

/// recv[i] = op over ranks of send[i], on every rank. In place when send == recv.
TRELLIS_EXPORT trellisResult_t trellisAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                                                trellisDataType_t datatype, trellisRedOp_t op,
                                                trellisComm_t comm, void* stream);

/// Copies `count` elements from root's sendbuff into recvbuff of every rank. In place when
/// sendbuff == recvbuff on the root (sendbuff is only read on the root).
TRELLIS_EXPORT trellisResult_t trellisBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                                                trellisDataType_t datatype, int root,
                                                trellisComm_t comm, void* stream);

/// recvbuff on `root` = op over ranks of sendbuff. recvbuff is only written on the root.
TRELLIS_EXPORT trellisResult_t trellisReduce(const void* sendbuff, void* recvbuff, size_t count,
                                             trellisDataType_t datatype, trellisRedOp_t op, int root,
                                             trellisComm_t comm, void* stream);

/// recvbuff[r*sendcount + i] = sendbuff of rank r [i]. In place when
/// sendbuff == recvbuff + rank*sendcount*sizeof(datatype).
TRELLIS_EXPORT trellisResult_t trellisAllGather(const void* sendbuff, void* recvbuff,
                                                size_t sendcount, trellisDataType_t datatype,
                                                trellisComm_t comm, void* stream);

/// recvbuff[i] = op over ranks of sendbuff[rank*recvcount + i]. In place when
/// recvbuff == sendbuff + rank*recvcount*sizeof(datatype).
TRELLIS_EXPORT trellisResult_t trellisReduceScatter(const void* sendbuff, void* recvbuff,
                                                    size_t recvcount, trellisDataType_t datatype,
                                                    trellisRedOp_t op, trellisComm_t comm,
                                                    void* stream);

/// recvbuff[p*count + i] = sendbuff of rank p [rank*count + i]. `count` is per peer. Not in place.
TRELLIS_EXPORT trellisResult_t trellisAlltoAll(const void* sendbuff, void* recvbuff, size_t count,
                                               trellisDataType_t datatype, trellisComm_t comm,
                                               void* stream);

/// AlltoAll with per-peer counts and displacements (in elements), as MPI_Alltoallv.
TRELLIS_EXPORT trellisResult_t trellisAlltoAllv(const void* sendbuff, const size_t* sendcounts,
                                                const size_t* sdispls, void* recvbuff,
                                                const size_t* recvcounts, const size_t* rdispls,
                                                trellisDataType_t datatype, trellisComm_t comm,
                                                void* stream);

/// Sends `count` elements to `peer`. Outside a group it blocks until the data is handed to the
/// transport; pair sends and receives between two ranks inside trellisGroupStart/End.
TRELLIS_EXPORT trellisResult_t trellisSend(const void* sendbuff, size_t count,
                                           trellisDataType_t datatype, int peer, trellisComm_t comm,
                                           void* stream);

/// Receives `count` elements from `peer`. Messages between two ranks match in the order posted.
TRELLIS_EXPORT trellisResult_t trellisRecv(void* recvbuff, size_t count, trellisDataType_t datatype,
                                           int peer, trellisComm_t comm, void* stream);

/// Starts a group: operations are queued until trellisGroupEnd, which runs them together (grouped
/// sends and receives never deadlock, whatever the order of the calls). Groups nest.
TRELLIS_EXPORT trellisResult_t trellisGroupStart(void);

/// Ends a group; returns when every queued operation has completed (host buffers), or once a
/// communicator's device-buffer operations are queued on their (common) stream.
TRELLIS_EXPORT trellisResult_t trellisGroupEnd(void);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TRELLIS_TRELLIS_H_
