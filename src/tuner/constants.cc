// THE table of the cost model's constants. Host values were measured on the project machine (a
// 2-vCPU AMD EPYC VM: docs/PERFORMANCE.md and docs/TUNER.md give the commands); network and GPU
// values are link rates and published figures, for the simulated clusters of `trellis-topo tune`.
// On another machine run with TRELLIS_TUNER_CALIBRATE=1, which measures the host and path values
// at communicator creation and replaces these.
#include "tuner/constants.h"

#include <cstdlib>
#include <cstring>

namespace trellis::tuner {

namespace {
constexpr double kKiB = 1024, kGB = 1e9;

const std::array<ConstantInfo, static_cast<size_t>(K::kCount)> kTable = {{
    {K::kCopyBps, "host.copy_bps", 14.3 * kGB, "B/s",
     "memcpy, one core, 8 MiB, best of 4: 13.1-14.3 GB/s in the calibration probe on the project "
     "machine (docs/TUNER.md); Google Benchmark's 64 MiB memcpy in docs/PERFORMANCE.md counts "
     "38.0 GiB/s read+write = 20.4 GB/s copied"},
    {K::kReduceBps, "host.reduce_bps", 14.2 * kGB, "B/s",
     "float32 sum AVX-512, one core, 64 MiB: 39.8 GiB/s counted over 2 reads + 1 write = 14.2 GB/s "
     "of output (docs/PERFORMANCE.md, reduction kernels table)"},
    {K::kMemBps, "host.mem_bps", 0, "B/s",
     "memory traffic (read + write) of a host, all cores together: 0 = not a limit in the model; on "
     "the project machine the calibration probe could not measure it (the shared machine's load "
     "preempts one of the copiers, docs/TUNER.md); TRELLIS_TUNER_CALIBRATE=1 measures it"},
    {K::kWakeS, "host.wake_s", 8e-6, "s",
     "a step when ranks outnumber cores (futex sleep/wake, time slice): 4-rank AllReduce 32 B..2 KiB "
     "takes ~20 us for 2 recursive-doubling steps (docs/PERFORMANCE.md, 4-rank table)"},
    {K::kCallS, "host.call_s", 0.6e-6, "s",
     "per call: argument checks, the tuner's cached lookup, set-up; 2-rank calls of 32 B take 2.0-2.5 us "
     "(PERFORMANCE.md, 2-rank tables) of which one exchange is ~1.5 us"},
    {K::kCacheBytes, "host.cache_bytes", 2.0 * 1024 * 1024, "B",
     "L2 per core of the project VM (lscpu: 2 MiB); a rank's send + receive buffers up to this size are "
     "cache-resident across calls"},
    {K::kCacheSpeedup, "host.cache_speedup", 3.1, "1",
     "memcpy on the project VM, trellis-micro-tuner --benchmark_filter=Memcpy (nice -20, median of 3, "
     "docs/TUNER.md): 40-42 GiB/s for 128-256 KiB against 12.0-12.2 GiB/s for 4-16 MiB, the regime "
     "the rates above were measured in"},
    {K::kStreamBytes, "host.stream_bytes", 32.0 * 1024 * 1024, "B",
     "above this a rank's buffers stream from memory the VM shares with its neighbours"},
    {K::kStreamFactor, "host.stream_factor", 0.45, "1",
     "the same memcpy at 64 MiB: 5.5 GiB/s against 12.0 at 16 MiB"},
    {K::kShmLatencyS, "shm.latency_s", 50e-6, "s",
     "two ranks with a core each wait by spinning, then sleeping: on the shared project VM the peer is "
     "rarely running when the spin ends, so a step costs a sleep and a wake: 74-232 us one way in the "
     "calibration probe's 8 B ping-pong; 50 us per step fits the interleaved A/B of ring (2 steps, "
     "112 us) and direct (3 steps, 148 us) AllReduce at 2 ranks, 32 KiB (docs/TUNER.md). An idle host "
     "spins: ~1 us (2-rank AllReduce of 32 B in 2.1 us, PERFORMANCE.md); TRELLIS_TUNER_CALIBRATE=1 "
     "measures it"},
    {K::kShmYieldLatencyS, "shm.yield_latency_s", 2.3e-6, "s",
     "when ranks outnumber cores a waiting rank yields its core to the one it waits for: 2.3 us one "
     "way in the calibration probe at 4 ranks on 2 cores (the wake-ups are host.wake_s)"},
    {K::kShmMsgCpuS, "shm.msg_cpu_s", 0.3e-6, "s",
     "posting + polling one message, each side: part of the same 2.1 us"},
    {K::kShmReadBps, "shm.read_bps", 12 * kGB, "B/s",
     "process_vm_readv of a peer's 4 MiB buffer into ours, one core: 10.7-14.4 GB/s in the "
     "calibration probe on the project machine (median of 7 runs ~12; docs/TUNER.md)"},
    {K::kShmEagerMax, "shm.eager_max_bytes", 64 * kKiB, "B",
     "TRELLIS_SHM_CMA_MIN_BYTES default: smaller messages go through the ring slots (two copies)"},
    {K::kShmHandshakeS, "shm.handshake_s", 70e-6, "s",
     "a single-copy message (>= shm.eager_max_bytes) completes when the reader has been scheduled, has "
     "read it and told the sender: on the shared project VM that is a sleep and a wake, 74-232 us in the "
     "calibration probe's 2-rank ping-pong, and the measured gap between ring and direct AllReduce at "
     "2 ranks, 512 KiB (378 vs 234 us, 2 such messages) and ring and direct ReduceScatter at 4 ranks, "
     "2 MiB (1.16 vs 0.61 ms, 6): 70-90 us each (docs/TUNER.md); an idle host with a core per rank "
     "spins: ~1 us (TRELLIS_TUNER_CALIBRATE=1 measures it)"},
    {K::kTcpLatencyS, "tcp.latency_s", 12e-6, "s",
     "one small message over loopback TCP, one way: calibration probe, docs/TUNER.md"},
    {K::kTcpMsgCpuS, "tcp.msg_cpu_s", 2e-6, "s", "send()/recv() system calls per message, each side"},
    {K::kTcpSendBps, "tcp.send_bps", 5 * kGB, "B/s",
     "bytes one core pushes through send() on loopback: calibration probe, docs/TUNER.md"},
    {K::kTcpRecvBps, "tcp.recv_bps", 5 * kGB, "B/s",
     "bytes one core pulls through recv() on loopback: calibration probe, docs/TUNER.md"},
    {K::kTcpStreamBps, "tcp.stream_bps", 0, "B/s",
     "ceiling of one TCP connection: none modelled (the transport stripes over 2 sockets per peer)"},
    {K::kTcpNetLatencyS, "tcp.net_latency_s", 25e-6, "s",
     "one small message between hosts over kernel TCP on Ethernet, one way: order of 15-30 us "
     "(published ping-pong figures for 10-100 GbE without kernel bypass; not measured here)"},
    {K::kTcpNetBps, "tcp.net_bps", 0, "B/s",
     "unknown without a topology: the NIC speed comes from the topology file's port speed, from "
     "calibration, or from trellis-topo tune --nic-gbps"},
    {K::kNicBps, "net.nic_bps", 48 * kGB, "B/s",
     "400 Gb/s NDR InfiniBand (ConnectX-7 data sheet) = 50 GB/s x net.payload_share 0.96"},
    {K::kNetPayloadShare, "net.payload_share", 0.96, "1",
     "payload share of an InfiniBand link's line rate after packet headers (4 KiB MTU: ~2% headers; "
     "an estimate), applied to the rates of fabric files"},
    {K::kNicLatencyS, "net.latency_s", 3e-6, "s",
     "RDMA message NIC to NIC through one switch including the send/receive software path "
     "(ib_send_lat-class figures of 1-2 us plus a collective's progress overhead; published, not "
     "measured here)"},
    {K::kSwitchHopS, "net.switch_hop_s", 0.2e-6, "s",
     "one InfiniBand switch traversal, order of 100-200 ns port to port (vendor data sheets)"},
    {K::kNicMsgS, "net.msg_s", 0.5e-6, "s",
     "per message at each end: a proxy thread posts and completes RDMA work requests at 1-2 million per "
     "second (an estimate of the order NCCL's proxy reaches; not measured here)"},
    {K::kNvlinkBps, "nvlink.bps", 360 * kGB, "B/s",
     "H100 SXM: 18 NVLink-4 links x 25 GB/s = 450 GB/s per direction (NVIDIA data sheet); 80% of it "
     "reached by a copy (an estimate)"},
    {K::kNvlinkLatencyS, "nvlink.latency_s", 2e-6, "s",
     "one small message GPU to GPU through NVSwitch including the kernel-side handshake (an estimate "
     "of the order NCCL's low-latency protocols reach)"},
    {K::kNvlinkMsgS, "nvlink.msg_s", 0.2e-6, "s",
     "per message at each end inside a node: a flag write and poll between GPU kernels (an estimate)"},
    {K::kGpuReduceBps, "gpu.reduce_bps", 1000 * kGB, "B/s",
     "H100 HBM3 3.35 TB/s over 2 reads + 1 write = ~1.1 TB/s of output (NVIDIA data sheet)"},
    {K::kGpuCopyBps, "gpu.copy_bps", 1500 * kGB, "B/s", "H100 HBM3 3.35 TB/s over read + write (data sheet)"},
    {K::kGpuCallS, "gpu.call_s", 4e-6, "s",
     "per call on a GPU: a kernel launch and enqueue, a few microseconds (published launch-latency figures; "
     "an estimate)"},
}};
}  // namespace

const std::array<ConstantInfo, static_cast<size_t>(K::kCount)>& constantTable() { return kTable; }

const ConstantInfo& constantInfo(K id) { return kTable[static_cast<size_t>(id)]; }

bool constantByName(const std::string& name, K* out) {
  for (const ConstantInfo& c : kTable) {
    const char* dot = std::strchr(c.name, '.');
    if (name == c.name || (dot != nullptr && name == dot + 1)) {
      *out = c.id;
      return true;
    }
  }
  return false;
}

Constants::Constants() {
  for (const ConstantInfo& c : kTable) {
    v_[static_cast<size_t>(c.id)] = c.value;
    src_[static_cast<size_t>(c.id)] = "table";
  }
}

void Constants::set(K id, double value, const std::string& source) {
  v_[static_cast<size_t>(id)] = value;
  src_[static_cast<size_t>(id)] = source;
  replaced_[static_cast<size_t>(id)] = true;
}

Status applyConstantOverrides(const std::string& spec, const char* what, Constants* c) {
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    K id;
    if (eq == std::string::npos || !constantByName(item.substr(0, eq), &id))
      return invalidArgument("%s: '%s' is not <constant>=<value> with a constant of the cost model's table "
                             "(trellis-topo tune --constants lists them)", what, item.c_str());
    char* end = nullptr;
    const double v = std::strtod(item.c_str() + eq + 1, &end);
    if (end == item.c_str() + eq + 1 || *end != '\0' || !(v >= 0))
      return invalidArgument("%s: '%s': the value is not a number >= 0", what, item.c_str());
    c->set(id, v, what);
  }
  return Status::ok();
}

}  // namespace trellis::tuner
