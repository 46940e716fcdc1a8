/// @file topology.h
/// Trellis topology C API: the PCIe/NVLink/NIC layout of a node, usable without a communicator
/// (schedulers, frameworks, operators). Devices are numbered 0..count-1 in one tree (CPUs/NUMA
/// nodes at the roots). All calls return a trellisResult_t; trellisGetLastError(NULL) has the
/// message.
#ifndef TRELLIS_TOPOLOGY_H_
#define TRELLIS_TOPOLOGY_H_

#include <stddef.h>

#include "trellis/trellis.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Opaque topology handle.
typedef struct trellisTopo* trellisTopo_t;

/// Device kinds.
typedef enum {
  trellisTopoCpu = 0,        ///< a CPU package / NUMA node (tree root)
  trellisTopoPciSwitch = 1,  ///< PCIe switch or bridge
  trellisTopoGpu = 2,
  trellisTopoNic = 3,
  trellisTopoNvSwitch = 4,
  trellisTopoPciDevice = 5,  ///< another PCI device (or one whose class is unknown)
  trellisTopoAnyKind = -1    ///< for trellisTopoFindDevices: every kind
} trellisTopoDeviceKind_t;

/// Path kinds between two devices, nearest first (NCCL's and nvidia-smi's meanings).
typedef enum {
  trellisTopoPathLoc = 0,       ///< same device
  trellisTopoPathNvLink = 1,    ///< direct NVLink
  trellisTopoPathNvSwitch = 2,  ///< NVLink through NVSwitches
  trellisTopoPathPix = 3,       ///< one PCIe switch
  trellisTopoPathPxb = 4,       ///< several PCIe switches, no host bridge
  trellisTopoPathPhb = 5,       ///< through a PCIe host bridge
  trellisTopoPathNode = 6,      ///< across host bridges of one NUMA node
  trellisTopoPathSys = 7,       ///< across NUMA nodes (SMP interconnect)
  trellisTopoPathNet = 8        ///< across the network
} trellisTopoPathKind_t;

/// File formats.
typedef enum {
  trellisTopoFormatJson = 0,     ///< Trellis JSON (versioned; schemas/topology.schema.json)
  trellisTopoFormatNcclXml = 1   ///< NCCL_TOPO_FILE-compatible XML
} trellisTopoFormat_t;

/// Facts about one device. Set `size` to sizeof(trellisTopoDeviceInfo_t) before the call.
typedef struct {
  size_t size;
  int kind;            ///< trellisTopoDeviceKind_t
  int parent;          ///< parent device id, -1 for roots
  int numa;            ///< NUMA node, -1 unknown
  int degraded;        ///< 1 when some facts are unknown
  char busId[32];      ///< PCI bus id ("0000:10:1c.0"), empty for CPUs
  unsigned int pciClass, vendor, device;
  char name[64];       ///< first port/interface name of a NIC ("mlx5_0"), else empty
  double linkGBps;     ///< upstream PCIe bandwidth per direction, 0 unknown
  int reserved[8];
} trellisTopoDeviceInfo_t;

/// Detects this machine (TRELLIS_TOPO_FILE replaces detection; TRELLIS_SYSFS_ROOT replays a tree).
TRELLIS_EXPORT trellisResult_t trellisTopoDetect(trellisTopo_t* topo);
/// Loads a Trellis JSON or NCCL XML file (told apart by content).
TRELLIS_EXPORT trellisResult_t trellisTopoLoad(const char* path, trellisTopo_t* topo);
/// Writes `topo` to `path` in `format`.
TRELLIS_EXPORT trellisResult_t trellisTopoSave(trellisTopo_t topo, const char* path, trellisTopoFormat_t format);
/// Frees the handle (NULL is fine).
TRELLIS_EXPORT trellisResult_t trellisTopoFree(trellisTopo_t topo);
/// Number of devices of `kind` (trellisTopoAnyKind: all).
TRELLIS_EXPORT trellisResult_t trellisTopoDeviceCount(trellisTopo_t topo, int kind, int* count);
/// Ids of the devices of `kind`, in tree order; *found is the total (may exceed `capacity`).
TRELLIS_EXPORT trellisResult_t trellisTopoFindDevices(trellisTopo_t topo, int kind, int* ids, int capacity,
                                                      int* found);
/// Facts about device `id`.
TRELLIS_EXPORT trellisResult_t trellisTopoGetDevice(trellisTopo_t topo, int id, trellisTopoDeviceInfo_t* info);
/// Path kind and bottleneck bandwidth (GB/s per direction, 0 unknown) between devices a and b.
TRELLIS_EXPORT trellisResult_t trellisTopoGetPath(trellisTopo_t topo, int a, int b, trellisTopoPathKind_t* kind,
                                                  double* gbps);
/// NICs nearest first for device `id`; *found is the total.
TRELLIS_EXPORT trellisResult_t trellisTopoNearestNics(trellisTopo_t topo, int id, int* nics, int capacity,
                                                      int* found);
/// Rail of a NIC (-1: not a compute NIC, e.g. storage or front-end).
TRELLIS_EXPORT trellisResult_t trellisTopoRailOfNic(trellisTopo_t topo, int nic, int* rail);
/// The topology as Trellis JSON. Copies at most bufSize bytes (NUL-terminated when it fits) and
/// sets *needed to the full length + 1; pass buf NULL to ask the size.
TRELLIS_EXPORT trellisResult_t trellisTopoToJson(trellisTopo_t topo, char* buf, size_t bufSize, size_t* needed);
/// "LOC", "NVL", "NVS", "PIX", "PXB", "PHB", "NODE", "SYS", "NET".
TRELLIS_EXPORT const char* trellisTopoPathKindName(trellisTopoPathKind_t kind);
/// The topology of the node this rank runs on, as the communicator sees it.
TRELLIS_EXPORT trellisResult_t trellisCommGetTopology(trellisComm_t comm, trellisTopo_t* topo);

/// Where one rank of a communicator sits, from the cluster view every rank builds at communicator
/// creation (docs/CLUSTER.md). Set `size` to sizeof(trellisRankPlacement_t) before the call.
typedef struct {
  size_t size;
  int node;        ///< node index (nodes numbered in the order of their first rank)
  int nnodes;      ///< nodes in the communicator
  int localRank;   ///< among the ranks of its node, in rank order
  int localSize;   ///< ranks on its node
  int rail;        ///< its (first) rail; -1 unknown or topology-blind (TRELLIS_TOPO_AWARE=0)
  int nrails;      ///< rails it uses (several: traffic striped over them), 0 unknown
  int gpu;         ///< its GPU on the node (local rank mod the node's GPUs), -1 when none
  int numa;        ///< NUMA node of its GPU, else of its NIC, -1 unknown
  char host[64];   ///< host name of its node
  char nic[32];    ///< NIC of `rail` ("mlx5_0"), empty when unknown
  char leaf[64];   ///< leaf switch of that NIC, empty unless TRELLIS_FABRIC_FILE places it
  int reserved[8];
} trellisRankPlacement_t;

/// Placement of `rank` (0..nranks-1) in `comm`'s cluster view.
TRELLIS_EXPORT trellisResult_t trellisCommGetRankPlacement(trellisComm_t comm, int rank, trellisRankPlacement_t* info);
/// `comm`'s whole cluster view as JSON (ranks, nodes with their NICs and leaves, rail warnings).
/// Copies at most bufSize bytes (NUL-terminated when it fits) and sets *needed to the full
/// length + 1; pass buf NULL to ask the size.
TRELLIS_EXPORT trellisResult_t trellisCommClusterViewJson(trellisComm_t comm, char* buf, size_t bufSize,
                                                          size_t* needed);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TRELLIS_TOPOLOGY_H_
