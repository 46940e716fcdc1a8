#include "gpu_cases.h"

#include <cstring>
#include <memory>
#include <vector>

#include "../support/reference.h"
#include "gpu_env.h"

namespace trellis::test {

using cuda::testing::DeviceBuffer;
using cuda::testing::drv;

namespace {

bool isReduction(CollKind k) {
  return k == CollKind::kAllReduce || k == CollKind::kReduce || k == CollKind::kReduceScatter;
}

std::string fail(int rank, const Case& c, const std::string& what) {
  return "rank " + std::to_string(rank) + ": " + c.describe() + " (device buffers): " + what;
}

// A host image and its device copy.
struct Mirror {
  std::vector<char> host;
  std::unique_ptr<DeviceBuffer> dev;
  void make(size_t bytes, int fillByte = -1) {
    host.assign(bytes + 1, fillByte < 0 ? 0 : static_cast<char>(fillByte));
    dev = std::make_unique<DeviceBuffer>(bytes + 1);
  }
  void push() { dev->upload(host.data(), host.size()); }
  void pull() { dev->download(host.data(), host.size()); }
  char* d(size_t off = 0) const { return dev->bytes() + off; }
};

}  // namespace

std::string runDeviceCase(trellisComm_t comm, int rank, int n, const Case& c, CUstream s) {
  const trellisDataType_t dt = c.dtype;
  const size_t es = elemSize(dt), cnt = c.count;
  const trellisRedOp_t fillOp = isReduction(c.coll) ? c.op : trellisSum;
  auto value = [&](int r, size_t i) { return inputValue(fillOp, dt, r, i); };
  Mirror send, recv;
  trellisResult_t res = trellisSuccess;
  auto finish = [&]() -> std::string {
    if (res != trellisSuccess)
      return fail(rank, c, std::string(trellisGetErrorString(res)) + ": " + trellisGetLastError(comm));
    CUresult r = drv().cuStreamSynchronize(s);
    if (r != CUDA_SUCCESS) return fail(rank, c, "cuStreamSynchronize: " + cuda::errorText(drv(), r));
    trellisResult_t async = trellisSuccess;
    trellisCommGetAsyncError(comm, &async);
    if (async != trellisSuccess)
      return fail(rank, c, std::string("async error ") + trellisGetErrorString(async) + ": " + trellisGetLastError(comm));
    return "";
  };
  switch (c.coll) {
    case CollKind::kAllReduce:
    case CollKind::kReduce: {
      recv.make(cnt * es, 0x55);
      send.make(cnt * es);
      Mirror& in = c.inPlace ? recv : send;
      fill(in.host.data(), cnt, dt, c.op, rank);
      send.push();
      recv.push();
      if (c.coll == CollKind::kAllReduce) res = trellisAllReduce(in.d(), recv.d(), cnt, dt, c.op, comm, s);
      else res = trellisReduce(in.d(), recv.d(), cnt, dt, c.op, c.root, comm, s);
      if (std::string e = finish(); !e.empty()) return e;
      if (c.coll == CollKind::kReduce && rank != c.root) return "";
      recv.pull();
      std::string e = compare(recv.host.data(), cnt, dt, [&](size_t i) { return expectedReduce(c.op, dt, n, i); });
      if (e.empty() && static_cast<unsigned char>(recv.host[cnt * es]) != 0x55) e = "wrote past the result";
      return e.empty() ? "" : fail(rank, c, e);
    }
    case CollKind::kBroadcast: {
      recv.make(cnt * es, 0x55);
      send.make(cnt * es);
      Mirror& in = c.inPlace ? recv : send;
      if (rank == c.root) fill(in.host.data(), cnt, dt, trellisSum, c.root);
      send.push();
      recv.push();
      res = trellisBroadcast(in.d(), recv.d(), cnt, dt, c.root, comm, s);
      if (std::string e = finish(); !e.empty()) return e;
      recv.pull();
      std::string e = compare(recv.host.data(), cnt, dt, [&](size_t i) { return value(c.root, i); });
      return e.empty() ? "" : fail(rank, c, e);
    }
    case CollKind::kAllGather: {
      recv.make(n * cnt * es, 0x55);
      send.make(cnt * es);
      const size_t inOff = rank * cnt * es;
      fill(c.inPlace ? recv.host.data() + inOff : send.host.data(), cnt, dt, trellisSum, rank);
      send.push();
      recv.push();
      res = trellisAllGather(c.inPlace ? recv.d(inOff) : send.d(), recv.d(), cnt, dt, comm, s);
      if (std::string e = finish(); !e.empty()) return e;
      recv.pull();
      std::string e = compare(recv.host.data(), n * cnt, dt,
                              [&](size_t i) { return value(static_cast<int>(i / cnt), i % cnt); });
      return e.empty() ? "" : fail(rank, c, e);
    }
    case CollKind::kReduceScatter: {
      send.make(n * cnt * es);
      recv.make(cnt * es, 0x55);
      fill(send.host.data(), n * cnt, dt, c.op, rank);
      send.push();
      recv.push();
      const size_t outOff = rank * cnt * es;
      res = trellisReduceScatter(send.d(), c.inPlace ? send.d(outOff) : recv.d(), cnt, dt, c.op, comm, s);
      if (std::string e = finish(); !e.empty()) return e;
      Mirror& out = c.inPlace ? send : recv;
      out.pull();
      std::string e = compare(out.host.data() + (c.inPlace ? outOff : 0), cnt, dt,
                              [&](size_t i) { return expectedReduce(c.op, dt, n, rank * cnt + i); });
      return e.empty() ? "" : fail(rank, c, e);
    }
    case CollKind::kAlltoAll: {
      send.make(n * cnt * es);
      recv.make(n * cnt * es, 0x55);
      fill(send.host.data(), n * cnt, dt, trellisSum, rank);
      send.push();
      recv.push();
      res = trellisAlltoAll(send.d(), recv.d(), cnt, dt, comm, s);
      if (std::string e = finish(); !e.empty()) return e;
      recv.pull();
      std::string e = compare(recv.host.data(), n * cnt, dt,
                              [&](size_t i) { return value(static_cast<int>(i / cnt), rank * cnt + i % cnt); });
      return e.empty() ? "" : fail(rank, c, e);
    }
    case CollKind::kAlltoAllv: {
      auto amount = [&](int sr, int d) { return cnt == 0 ? size_t{0} : ((sr + d) % 3) * cnt / 2 + 1; };
      std::vector<size_t> sc(n), sd(n), rc(n), rd(n);
      size_t stot = 0, rtot = 0;
      for (int p = 0; p < n; ++p) {
        sc[p] = amount(rank, p);
        sd[p] = stot;
        stot += sc[p] + 1;  // gaps between blocks
        rc[p] = amount(p, rank);
        rd[p] = rtot;
        rtot += rc[p] + 2;
      }
      send.make(stot * es);
      recv.make(rtot * es, 0x55);
      for (int p = 0; p < n; ++p)
        for (size_t i = 0; i < sc[p]; ++i) writeElem(send.host.data(), dt, sd[p] + i, value(rank, p * 1000 + i));
      send.push();
      recv.push();
      res = trellisAlltoAllv(send.d(), sc.data(), sd.data(), recv.d(), rc.data(), rd.data(), dt, comm, s);
      // The counts are ours again once the call returns: scribbling on them must not matter.
      std::fill(sc.begin(), sc.end(), 0);
      std::fill(rd.begin(), rd.end(), 0);
      if (std::string e = finish(); !e.empty()) return e;
      recv.pull();
      for (int p = 0; p < n; ++p) {
        rd[p] = p == 0 ? 0 : rd[p - 1] + rc[p - 1] + 2;
        std::string e = compare(recv.host.data() + rd[p] * es, rc[p], dt, [&](size_t i) { return value(p, rank * 1000 + i); });
        if (!e.empty()) return fail(rank, c, "from rank " + std::to_string(p) + ": " + e);
        // The gaps between blocks are not the call's to write.
        for (size_t g = (rd[p] + rc[p]) * es; g < (rd[p] + rc[p] + 2) * es; ++g)
          if (static_cast<unsigned char>(recv.host[g]) != 0x55) return fail(rank, c, "wrote into a gap between blocks");
      }
      return "";
    }
    case CollKind::kSendRecv: {
      int to = (rank + 1) % n, from = (rank - 1 + n) % n;
      send.make(cnt * es);
      recv.make(cnt * es, 0x55);
      fill(send.host.data(), cnt, dt, trellisSum, rank);
      send.push();
      recv.push();
      trellisGroupStart();
      if (rank % 2) trellisRecv(recv.d(), cnt, dt, from, comm, s);
      trellisSend(send.d(), cnt, dt, to, comm, s);
      if (rank % 2 == 0) trellisRecv(recv.d(), cnt, dt, from, comm, s);
      res = trellisGroupEnd();
      if (std::string e = finish(); !e.empty()) return e;
      recv.pull();
      std::string e = compare(recv.host.data(), cnt, dt, [&](size_t i) { return value(from, i); });
      return e.empty() ? "" : fail(rank, c, e);
    }
  }
  return "unknown collective";
}

}  // namespace trellis::test
