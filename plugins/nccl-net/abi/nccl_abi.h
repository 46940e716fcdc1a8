// The NCCL plugin ABI as Trellis implements it: net plugin v6..v11 (NCCL 2.14 .. 2.29) and tuner
// plugin v4/v5, written from the facts in docs/NCCL_PLUGIN.md (argument lists, field order, sizes).
// Nothing here is NCCL's header text: names live in trellis::nccl_abi and only the layouts match.
// Every struct NCCL reads or writes is pinned below with static_asserts on its size and on the
// field offsets NCCL relies on (LP64); tests/nccl_net/abi_check.cc compares the enums and the
// device-handle layout against the NCCL headers installed with CUDA when they are present.
#pragma once

#include <cstddef>
#include <cstdint>

namespace trellis::nccl_abi {

// ---- Common ---------------------------------------------------------------------------------

/// ncclResult_t values.
enum Result : int {
  kSuccess = 0,
  kUnhandledCudaError = 1,
  kSystemError = 2,
  kInternalError = 3,
  kInvalidArgument = 4,
  kInvalidUsage = 5,
  kRemoteError = 6,
  kInProgress = 7,
};

/// ncclDebugLogLevel values.
enum LogLevel : int {
  kLogNone = 0,
  kLogVersion = 1,
  kLogWarn = 2,
  kLogInfo = 3,
  kLogAbort = 4,
  kLogTrace = 5
};

/// NCCL's subsystem flags (the `flags` argument of the logger).
enum LogFlag : unsigned long {
  kFlagInit = 0x1,
  kFlagColl = 0x2,
  kFlagP2p = 0x4,
  kFlagShm = 0x8,
  kFlagNet = 0x10,
  kFlagGraph = 0x20,
  kFlagTuning = 0x40,
  kFlagEnv = 0x80,
  kFlagAlloc = 0x100,
  kFlagCall = 0x200,
  kFlagProxy = 0x400,
  kFlagNvls = 0x800,
  kFlagBootstrap = 0x1000,
  kFlagReg = 0x2000,
};

using Logger = void (*)(LogLevel level, unsigned long flags, const char* file, int line,
                        const char* fmt, ...);
using ProfilerCallback = Result (*)(void** eHandle, int type, void* pHandle, int64_t pluginId,
                                    void* extData);

// ---- Net constants ----------------------------------------------------------------------------

constexpr int kHandleMaxSize = 128;  // listen handle buffer supplied by NCCL
constexpr int kPtrHost = 0x1;
constexpr int kPtrCuda = 0x2;
constexpr int kPtrDmaBuf = 0x4;
constexpr int kMaxRequests = 32;   // in-flight requests per comm NCCL may post
constexpr int kMaxDevsPerNic = 4;  // members of one virtual device (v9..v11)
constexpr size_t kMaxNetSizeBytes = size_t{1}
                                    << 40;  // largest maxP2pBytes/maxCollBytes NCCL accepts
constexpr int kTrafficClassUndef = -1;
/// NCCL (v9+) puts this value in *request before irecv when the LL/LL128 protocols poll flags in
/// the data themselves: the plugin may complete such a receive early, but must still return a
/// real request.
constexpr uintptr_t kNetOptionalRecvCompletion = 0x1;
constexpr int kNetAttrUndef = -1;

/// ncclNetDeviceType values.
enum NetDeviceType : int {
  kDeviceHost = 0,
  kDeviceUnpack = 1,
  kDeviceGinProxy = 2,
  kDeviceGinGdaki = 3
};

/// Device offload handle (identical from v7 to v11); a host-only plugin never fills it.
struct NetDeviceHandle {
  NetDeviceType netDeviceType;
  int netDeviceVersion;
  void* handle;
  size_t size;
  int needsProxyProgress;
};

struct NetVDeviceProps {  // v9, v10, v11
  int ndevs;
  int devs[kMaxDevsPerNic];
};

struct NetCommConfig {  // v10 (connect argument), v11 (init argument)
  int trafficClass;
};

struct NetCommAttr {  // v11
  int32_t maxConcurrentPeers;
  int32_t minConcurrentPeers;
  int32_t maxFlowsPerPeer;
  int32_t minFlowsPerPeer;
};

struct NetAttr {  // v11
  NetCommAttr sendCommAttr;
  NetCommAttr recvCommAttr;
  uint32_t op;
  uint32_t algo;
  uint32_t proto;
};

// ---- Properties per version -----------------------------------------------------------------

struct NetPropertiesV6 {
  char* name;
  char* pciPath;
  uint64_t guid;
  int ptrSupport;
  int speed;  // Mbps
  int port;
  float latency;  // us
  int maxComms;
  int maxRecvs;
};

struct NetPropertiesV7 {
  char* name;
  char* pciPath;
  uint64_t guid;
  int ptrSupport;
  int speed;
  int port;
  float latency;
  int maxComms;
  int maxRecvs;
  NetDeviceType netDeviceType;
  int netDeviceVersion;
};

struct NetPropertiesV8 {
  char* name;
  char* pciPath;
  uint64_t guid;
  int ptrSupport;
  int regIsGlobal;
  int speed;
  int port;
  float latency;
  int maxComms;
  int maxRecvs;
  NetDeviceType netDeviceType;
  int netDeviceVersion;
};

struct NetPropertiesV9 {  // also v10
  char* name;
  char* pciPath;
  uint64_t guid;
  int ptrSupport;
  int regIsGlobal;
  int forceFlush;
  int speed;
  int port;
  float latency;
  int maxComms;
  int maxRecvs;
  NetDeviceType netDeviceType;
  int netDeviceVersion;
  NetVDeviceProps vProps;
  size_t maxP2pBytes;
  size_t maxCollBytes;
};
using NetPropertiesV10 = NetPropertiesV9;

struct NetPropertiesV11 {
  char* name;
  char* pciPath;
  uint64_t guid;
  int ptrSupport;
  int regIsGlobal;
  int forceFlush;
  int speed;
  int port;
  float latency;
  int maxComms;
  int maxRecvs;
  NetDeviceType netDeviceType;
  int netDeviceVersion;
  NetVDeviceProps vProps;
  size_t maxP2pBytes;
  size_t maxCollBytes;
  int maxMultiRequestSize;
};

// ---- Function tables per version --------------------------------------------------------------
// Sizes are `int` up to v8 (regMr: up to v7), `size_t` from v9; iflush and test keep `int*`.

struct NetV6 {
  const char* name;
  Result (*init)(Logger log);
  Result (*devices)(int* ndev);
  Result (*getProperties)(int dev, NetPropertiesV6* props);
  Result (*listen)(int dev, void* handle, void** listenComm);
  Result (*connect)(int dev, void* handle, void** sendComm);
  Result (*accept)(void* listenComm, void** recvComm);
  Result (*regMr)(void* comm, void* data, int size, int type, void** mhandle);
  Result (*regMrDmaBuf)(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                        void** mhandle);
  Result (*deregMr)(void* comm, void* mhandle);
  Result (*isend)(void* sendComm, void* data, int size, int tag, void* mhandle, void** request);
  Result (*irecv)(void* recvComm, int n, void** data, int* sizes, int* tags, void** mhandles,
                  void** request);
  Result (*iflush)(void* recvComm, int n, void** data, int* sizes, void** mhandles, void** request);
  Result (*test)(void* request, int* done, int* sizes);
  Result (*closeSend)(void* sendComm);
  Result (*closeRecv)(void* recvComm);
  Result (*closeListen)(void* listenComm);
};

struct NetV7 {
  const char* name;
  Result (*init)(Logger log);
  Result (*devices)(int* ndev);
  Result (*getProperties)(int dev, NetPropertiesV7* props);
  Result (*listen)(int dev, void* handle, void** listenComm);
  Result (*connect)(int dev, void* handle, void** sendComm, NetDeviceHandle** sendDevComm);
  Result (*accept)(void* listenComm, void** recvComm, NetDeviceHandle** recvDevComm);
  Result (*regMr)(void* comm, void* data, int size, int type, void** mhandle);
  Result (*regMrDmaBuf)(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                        void** mhandle);
  Result (*deregMr)(void* comm, void* mhandle);
  Result (*isend)(void* sendComm, void* data, int size, int tag, void* mhandle, void** request);
  Result (*irecv)(void* recvComm, int n, void** data, int* sizes, int* tags, void** mhandles,
                  void** request);
  Result (*iflush)(void* recvComm, int n, void** data, int* sizes, void** mhandles, void** request);
  Result (*test)(void* request, int* done, int* sizes);
  Result (*closeSend)(void* sendComm);
  Result (*closeRecv)(void* recvComm);
  Result (*closeListen)(void* listenComm);
  Result (*getDeviceMr)(void* comm, void* mhandle, void** dptrMhandle);
  Result (*irecvConsumed)(void* recvComm, int n, void* request);
};

struct NetV8 {
  const char* name;
  Result (*init)(Logger log);
  Result (*devices)(int* ndev);
  Result (*getProperties)(int dev, NetPropertiesV8* props);
  Result (*listen)(int dev, void* handle, void** listenComm);
  Result (*connect)(int dev, void* handle, void** sendComm, NetDeviceHandle** sendDevComm);
  Result (*accept)(void* listenComm, void** recvComm, NetDeviceHandle** recvDevComm);
  Result (*regMr)(void* comm, void* data, size_t size, int type, void** mhandle);
  Result (*regMrDmaBuf)(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                        void** mhandle);
  Result (*deregMr)(void* comm, void* mhandle);
  Result (*isend)(void* sendComm, void* data, int size, int tag, void* mhandle, void** request);
  Result (*irecv)(void* recvComm, int n, void** data, int* sizes, int* tags, void** mhandles,
                  void** request);
  Result (*iflush)(void* recvComm, int n, void** data, int* sizes, void** mhandles, void** request);
  Result (*test)(void* request, int* done, int* sizes);
  Result (*closeSend)(void* sendComm);
  Result (*closeRecv)(void* recvComm);
  Result (*closeListen)(void* listenComm);
  Result (*getDeviceMr)(void* comm, void* mhandle, void** dptrMhandle);
  Result (*irecvConsumed)(void* recvComm, int n, void* request);
};

struct NetV9 {
  const char* name;
  Result (*init)(Logger log);
  Result (*devices)(int* ndev);
  Result (*getProperties)(int dev, NetPropertiesV9* props);
  Result (*listen)(int dev, void* handle, void** listenComm);
  Result (*connect)(int dev, void* handle, void** sendComm, NetDeviceHandle** sendDevComm);
  Result (*accept)(void* listenComm, void** recvComm, NetDeviceHandle** recvDevComm);
  Result (*regMr)(void* comm, void* data, size_t size, int type, void** mhandle);
  Result (*regMrDmaBuf)(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                        void** mhandle);
  Result (*deregMr)(void* comm, void* mhandle);
  Result (*isend)(void* sendComm, void* data, size_t size, int tag, void* mhandle, void** request);
  Result (*irecv)(void* recvComm, int n, void** data, size_t* sizes, int* tags, void** mhandles,
                  void** request);
  Result (*iflush)(void* recvComm, int n, void** data, int* sizes, void** mhandles, void** request);
  Result (*test)(void* request, int* done, int* sizes);
  Result (*closeSend)(void* sendComm);
  Result (*closeRecv)(void* recvComm);
  Result (*closeListen)(void* listenComm);
  Result (*getDeviceMr)(void* comm, void* mhandle, void** dptrMhandle);
  Result (*irecvConsumed)(void* recvComm, int n, void* request);
  Result (*makeVDevice)(int* d, NetVDeviceProps* props);
};

struct NetV10 {
  const char* name;
  Result (*init)(Logger log, ProfilerCallback prof);
  Result (*devices)(int* ndev);
  Result (*getProperties)(int dev, NetPropertiesV10* props);
  Result (*listen)(int dev, void* handle, void** listenComm);
  Result (*connect)(int dev, NetCommConfig* config, void* handle, void** sendComm,
                    NetDeviceHandle** sendDevComm);
  Result (*accept)(void* listenComm, void** recvComm, NetDeviceHandle** recvDevComm);
  Result (*regMr)(void* comm, void* data, size_t size, int type, void** mhandle);
  Result (*regMrDmaBuf)(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                        void** mhandle);
  Result (*deregMr)(void* comm, void* mhandle);
  Result (*isend)(void* sendComm, void* data, size_t size, int tag, void* mhandle, void* phandle,
                  void** request);
  Result (*irecv)(void* recvComm, int n, void** data, size_t* sizes, int* tags, void** mhandles,
                  void** phandles, void** request);
  Result (*iflush)(void* recvComm, int n, void** data, int* sizes, void** mhandles, void** request);
  Result (*test)(void* request, int* done, int* sizes);
  Result (*closeSend)(void* sendComm);
  Result (*closeRecv)(void* recvComm);
  Result (*closeListen)(void* listenComm);
  Result (*getDeviceMr)(void* comm, void* mhandle, void** dptrMhandle);
  Result (*irecvConsumed)(void* recvComm, int n, void* request);
  Result (*makeVDevice)(int* d, NetVDeviceProps* props);
};

struct NetV11 {
  const char* name;
  Result (*init)(void** ctx, uint64_t commId, NetCommConfig* config, Logger log,
                 ProfilerCallback prof);
  Result (*devices)(int* ndev);
  Result (*getProperties)(int dev, NetPropertiesV11* props);
  Result (*listen)(void* ctx, int dev, void* handle, void** listenComm);
  Result (*connect)(void* ctx, int dev, void* handle, void** sendComm,
                    NetDeviceHandle** sendDevComm);
  Result (*accept)(void* listenComm, void** recvComm, NetDeviceHandle** recvDevComm);
  Result (*regMr)(void* comm, void* data, size_t size, int type, void** mhandle);
  Result (*regMrDmaBuf)(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                        void** mhandle);
  Result (*deregMr)(void* comm, void* mhandle);
  Result (*isend)(void* sendComm, void* data, size_t size, int tag, void* mhandle, void* phandle,
                  void** request);
  Result (*irecv)(void* recvComm, int n, void** data, size_t* sizes, int* tags, void** mhandles,
                  void** phandles, void** request);
  Result (*iflush)(void* recvComm, int n, void** data, int* sizes, void** mhandles, void** request);
  Result (*test)(void* request, int* done, int* sizes);
  Result (*closeSend)(void* sendComm);
  Result (*closeRecv)(void* recvComm);
  Result (*closeListen)(void* listenComm);
  Result (*getDeviceMr)(void* comm, void* mhandle, void** dptrMhandle);
  Result (*irecvConsumed)(void* recvComm, int n, void* request);
  Result (*makeVDevice)(int* d, NetVDeviceProps* props);
  Result (*finalize)(void* ctx);
  Result (*setNetAttr)(void* ctx, NetAttr* attr);
};

// ---- Tuner ------------------------------------------------------------------------------------

/// ncclFunc_t values.
enum Func : int {
  kFuncBroadcast = 0,
  kFuncReduce = 1,
  kFuncAllGather = 2,
  kFuncReduceScatter = 3,
  kFuncAllReduce = 4,
  kFuncSendRecv = 5,
  kFuncSend = 6,
  kFuncRecv = 7,
  kFuncAlltoAll = 8,
  kFuncScatter = 9,
  kFuncGather = 10,
};

/// Cost-table rows (NCCL_ALGO_*) and columns (NCCL_PROTO_*). NCCL passes the table as `float**`
/// whose memory is really `float[numAlgo][numProto]` (7 x 3 in NCCL 2.24 .. 2.29).
enum Algo : int {
  kAlgoTree = 0,
  kAlgoRing = 1,
  kAlgoCollNetDirect = 2,
  kAlgoCollNetChain = 3,
  kAlgoNvls = 4,
  kAlgoNvlsTree = 5,
  kAlgoPat = 6,
  kNumAlgorithms = 7
};
enum Proto : int { kProtoLL = 0, kProtoLL128 = 1, kProtoSimple = 2, kNumProtocols = 3 };
constexpr float kAlgoProtoIgnore = -1.0f;  // a disabled table entry

struct NvlDomainInfoV5 {
  int nNvlDomains;
  int minRanksPerNvlDomain;
  int maxRanksPerNvlDomain;
};

/// The model constants NCCL lets a v5 tuner overwrite at init ([hw link][algo][proto],
/// [compcap][scale]).
struct TunerConstantsV5 {
  double baseLatencies[7][3];
  double hwLatencies[3][7][3];
  double llMaxBws[4][3];
  double perChMaxRingLL128Bws[4][3];
  double perChMaxTreeLL128Bws[4][3];
  double perChMaxTreeBws[4][3];
  double perChMaxNVLSTreeBws[4][3];
};

struct TunerV4 {
  const char* name;
  Result (*init)(size_t nRanks, size_t nNodes, Logger log, void** context);
  Result (*getCollInfo)(void* context, Func collType, size_t nBytes, int numPipeOps,
                        float** collCostTable, int numAlgo, int numProto, int regBuff,
                        int* nChannels);
  Result (*destroy)(void* context);
};

struct TunerV5 {
  const char* name;
  Result (*init)(void** ctx, uint64_t commId, size_t nRanks, size_t nNodes, Logger log,
                 NvlDomainInfoV5* nvlDomainInfo, TunerConstantsV5* constants);
  Result (*getCollInfo)(void* context, Func collType, size_t nBytes, int numPipeOps,
                        float** collCostTable, int numAlgo, int numProto, int regBuff,
                        int* nChannels);
  Result (*finalize)(void* context);
};

// ---- Layout pins (LP64) -----------------------------------------------------------------------
static_assert(sizeof(void*) == 8, "the layouts below are for LP64");
static_assert(sizeof(Result) == 4 && sizeof(NetDeviceType) == 4, "C enums are int-sized");

static_assert(sizeof(NetDeviceHandle) == 32 && offsetof(NetDeviceHandle, handle) == 8 &&
              offsetof(NetDeviceHandle, size) == 16 &&
              offsetof(NetDeviceHandle, needsProxyProgress) == 24);
static_assert(sizeof(NetVDeviceProps) == 20 && offsetof(NetVDeviceProps, devs) == 4);
static_assert(sizeof(NetCommConfig) == 4);
static_assert(sizeof(NetCommAttr) == 16 && sizeof(NetAttr) == 44 &&
              offsetof(NetAttr, recvCommAttr) == 16 && offsetof(NetAttr, op) == 32 &&
              offsetof(NetAttr, proto) == 40);

static_assert(sizeof(NetPropertiesV6) == 48 && offsetof(NetPropertiesV6, guid) == 16 &&
              offsetof(NetPropertiesV6, ptrSupport) == 24 &&
              offsetof(NetPropertiesV6, speed) == 28 && offsetof(NetPropertiesV6, latency) == 36 &&
              offsetof(NetPropertiesV6, maxRecvs) == 44);
static_assert(sizeof(NetPropertiesV7) == 56 && offsetof(NetPropertiesV7, maxRecvs) == 44 &&
              offsetof(NetPropertiesV7, netDeviceType) == 48 &&
              offsetof(NetPropertiesV7, netDeviceVersion) == 52);
static_assert(sizeof(NetPropertiesV8) == 64 && offsetof(NetPropertiesV8, regIsGlobal) == 28 &&
              offsetof(NetPropertiesV8, speed) == 32 && offsetof(NetPropertiesV8, maxRecvs) == 48 &&
              offsetof(NetPropertiesV8, netDeviceVersion) == 56);
static_assert(sizeof(NetPropertiesV9) == 104 && offsetof(NetPropertiesV9, forceFlush) == 32 &&
              offsetof(NetPropertiesV9, speed) == 36 && offsetof(NetPropertiesV9, maxRecvs) == 52 &&
              offsetof(NetPropertiesV9, vProps) == 64 &&
              offsetof(NetPropertiesV9, maxP2pBytes) == 88 &&
              offsetof(NetPropertiesV9, maxCollBytes) == 96);
static_assert(sizeof(NetPropertiesV11) == 112 && offsetof(NetPropertiesV11, speed) == 36 &&
              offsetof(NetPropertiesV11, maxRecvs) == 52 &&
              offsetof(NetPropertiesV11, vProps) == 64 &&
              offsetof(NetPropertiesV11, maxP2pBytes) == 88 &&
              offsetof(NetPropertiesV11, maxCollBytes) == 96 &&
              offsetof(NetPropertiesV11, maxMultiRequestSize) == 104);

// Function tables: `name` plus one pointer per function, in NCCL's order (v6 has 16 functions,
// v7/v8 18, v9/v10 19, v11 21).
static_assert(sizeof(NetV6) == 17 * 8 && offsetof(NetV6, regMr) == 7 * 8 &&
              offsetof(NetV6, test) == 13 * 8 && offsetof(NetV6, closeListen) == 16 * 8);
static_assert(sizeof(NetV7) == 19 * 8 && offsetof(NetV7, getDeviceMr) == 17 * 8);
static_assert(sizeof(NetV8) == 19 * 8 && offsetof(NetV8, irecvConsumed) == 18 * 8);
static_assert(sizeof(NetV9) == 20 * 8 && offsetof(NetV9, makeVDevice) == 19 * 8);
static_assert(sizeof(NetV10) == 20 * 8 && offsetof(NetV10, isend) == 10 * 8 &&
              offsetof(NetV10, makeVDevice) == 19 * 8);
static_assert(sizeof(NetV11) == 22 * 8 && offsetof(NetV11, listen) == 4 * 8 &&
              offsetof(NetV11, makeVDevice) == 19 * 8 && offsetof(NetV11, finalize) == 20 * 8 &&
              offsetof(NetV11, setNetAttr) == 21 * 8);

static_assert(sizeof(NvlDomainInfoV5) == 12);
static_assert(sizeof(TunerConstantsV5) == (21 + 63 + 5 * 12) * 8 &&
              offsetof(TunerConstantsV5, hwLatencies) == 21 * 8 &&
              offsetof(TunerConstantsV5, llMaxBws) == 84 * 8 &&
              offsetof(TunerConstantsV5, perChMaxNVLSTreeBws) == 132 * 8);
static_assert(sizeof(TunerV4) == 32 && sizeof(TunerV5) == 32 && offsetof(TunerV5, finalize) == 24);

}  // namespace trellis::nccl_abi
