#include "cases.h"

#include <cstring>
#include <vector>

#include "../support/reference.h"

namespace trellis::test {

const char* collKindName(CollKind k) {
  switch (k) {
    case CollKind::kAllReduce: return "allreduce";
    case CollKind::kBroadcast: return "broadcast";
    case CollKind::kReduce: return "reduce";
    case CollKind::kAllGather: return "allgather";
    case CollKind::kReduceScatter: return "reducescatter";
    case CollKind::kAlltoAll: return "alltoall";
    case CollKind::kAlltoAllv: return "alltoallv";
    case CollKind::kSendRecv: return "sendrecv";
  }
  return "?";
}

std::string Case::describe() const {
  char b[160];
  snprintf(b, sizeof b, "%s %s %s count=%zu %s root=%d", collKindName(coll), typeName(dtype), redopName(op), count,
           inPlace ? "in-place" : "out-of-place", root);
  return b;
}

static bool isReduction(CollKind k) {
  return k == CollKind::kAllReduce || k == CollKind::kReduce || k == CollKind::kReduceScatter;
}
static bool hasInPlace(CollKind k) {
  return k != CollKind::kAlltoAll && k != CollKind::kAlltoAllv && k != CollKind::kSendRecv;
}

static void addCases(std::vector<Case>& out, int nranks, CollKind k, trellisDataType_t dt, trellisRedOp_t op,
                     size_t count) {
  for (int ip = 0; ip < (hasInPlace(k) ? 2 : 1); ++ip)
    out.push_back({k, dt, op, count, ip == 1, static_cast<int>((out.size() * 7 + count) % nranks)});
}

static const CollKind kAllKinds[] = {CollKind::kAllReduce, CollKind::kBroadcast, CollKind::kReduce,
                                     CollKind::kAllGather, CollKind::kReduceScatter, CollKind::kAlltoAll,
                                     CollKind::kAlltoAllv, CollKind::kSendRecv};

std::vector<Case> fullMatrix(int nranks, const std::vector<size_t>& counts) {
  std::vector<Case> out;
  for (size_t count : counts)
    for (CollKind k : kAllKinds)
      for (int d = 0; d < trellisNumTypes; ++d)
        for (int o = 0; o < (isReduction(k) ? trellisNumOps : 1); ++o)
          addCases(out, nranks, k, static_cast<trellisDataType_t>(d), static_cast<trellisRedOp_t>(o), count);
  return out;
}

std::vector<Case> crossSection(int nranks, const std::vector<size_t>& counts) {
  std::vector<Case> out;
  for (size_t count : counts)
    for (CollKind k : kAllKinds) {
      for (int d = 0; d < trellisNumTypes; ++d) addCases(out, nranks, k, static_cast<trellisDataType_t>(d), trellisSum, count);
      if (!isReduction(k)) continue;
      for (trellisDataType_t dt : {trellisInt32, trellisFloat32, trellisBfloat16})
        for (int o = 1; o < trellisNumOps; ++o) addCases(out, nranks, k, dt, static_cast<trellisRedOp_t>(o), count);
    }
  return out;
}

static std::string fail(int rank, const Case& c, const std::string& what) {
  return "rank " + std::to_string(rank) + ": " + c.describe() + ": " + what;
}

static std::string callError(int rank, const Case& c, trellisResult_t r, trellisComm_t comm) {
  return fail(rank, c, std::string(trellisGetErrorString(r)) + ": " + trellisGetLastError(comm));
}

std::string runCase(trellisComm_t comm, int rank, int n, const Case& c) {
  const trellisDataType_t dt = c.dtype;
  const size_t es = elemSize(dt), cnt = c.count;
  const trellisRedOp_t fillOp = isReduction(c.coll) ? c.op : trellisSum;
  auto value = [&](int r, size_t i) { return inputValue(fillOp, dt, r, i); };
  std::vector<char> send, recv;
  trellisResult_t res = trellisSuccess;
  switch (c.coll) {
    case CollKind::kAllReduce:
    case CollKind::kReduce: {
      recv.assign(cnt * es + 1, 0x55);
      send.resize(cnt * es + 1);
      void* in = c.inPlace ? recv.data() : send.data();
      fill(in, cnt, dt, c.op, rank);
      if (c.coll == CollKind::kAllReduce) res = trellisAllReduce(in, recv.data(), cnt, dt, c.op, comm, nullptr);
      else res = trellisReduce(in, recv.data(), cnt, dt, c.op, c.root, comm, nullptr);
      if (res != trellisSuccess) return callError(rank, c, res, comm);
      if (c.coll == CollKind::kReduce && rank != c.root) return "";
      std::string e = compare(recv.data(), cnt, dt, [&](size_t i) { return expectedReduce(c.op, dt, n, i); });
      return e.empty() ? "" : fail(rank, c, e);
    }
    case CollKind::kBroadcast: {
      recv.assign(cnt * es + 1, 0x55);
      send.resize(cnt * es + 1);
      void* in = c.inPlace ? recv.data() : send.data();
      if (rank == c.root) fill(in, cnt, dt, trellisSum, c.root);
      res = trellisBroadcast(in, recv.data(), cnt, dt, c.root, comm, nullptr);
      if (res != trellisSuccess) return callError(rank, c, res, comm);
      std::string e = compare(recv.data(), cnt, dt, [&](size_t i) { return value(c.root, i); });
      return e.empty() ? "" : fail(rank, c, e);
    }
    case CollKind::kAllGather: {
      recv.assign(n * cnt * es + 1, 0x55);
      send.resize(cnt * es + 1);
      void* in = c.inPlace ? recv.data() + rank * cnt * es : send.data();
      fill(in, cnt, dt, trellisSum, rank);
      res = trellisAllGather(in, recv.data(), cnt, dt, comm, nullptr);
      if (res != trellisSuccess) return callError(rank, c, res, comm);
      std::string e = compare(recv.data(), n * cnt, dt, [&](size_t i) { return value(static_cast<int>(i / cnt), i % cnt); });
      return e.empty() ? "" : fail(rank, c, e);
    }
    case CollKind::kReduceScatter: {
      send.resize(n * cnt * es + 1);
      recv.assign(cnt * es + 1, 0x55);
      fill(send.data(), n * cnt, dt, c.op, rank);
      void* out = c.inPlace ? send.data() + rank * cnt * es : recv.data();
      res = trellisReduceScatter(send.data(), out, cnt, dt, c.op, comm, nullptr);
      if (res != trellisSuccess) return callError(rank, c, res, comm);
      std::string e = compare(out, cnt, dt, [&](size_t i) { return expectedReduce(c.op, dt, n, rank * cnt + i); });
      return e.empty() ? "" : fail(rank, c, e);
    }
    case CollKind::kAlltoAll: {
      send.resize(n * cnt * es + 1);
      recv.assign(n * cnt * es + 1, 0x55);
      fill(send.data(), n * cnt, dt, trellisSum, rank);
      res = trellisAlltoAll(send.data(), recv.data(), cnt, dt, comm, nullptr);
      if (res != trellisSuccess) return callError(rank, c, res, comm);
      // Block p of the output is block `rank` of rank p's input.
      std::string e = compare(recv.data(), n * cnt, dt,
                              [&](size_t i) { return value(static_cast<int>(i / cnt), rank * cnt + i % cnt); });
      return e.empty() ? "" : fail(rank, c, e);
    }
    case CollKind::kAlltoAllv: {
      // Rank s sends (s + d) % 3 * cnt / 2 + 1 elements to rank d (uneven, never empty unless cnt==0).
      auto amount = [&](int s, int d) { return cnt == 0 ? size_t{0} : ((s + d) % 3) * cnt / 2 + 1; };
      std::vector<size_t> sc(n), sd(n), rc(n), rd(n);
      size_t stot = 0, rtot = 0;
      for (int p = 0; p < n; ++p) {
        sc[p] = amount(rank, p); sd[p] = stot; stot += sc[p] + 1;  // gaps between blocks
        rc[p] = amount(p, rank); rd[p] = rtot; rtot += rc[p] + 2;
      }
      send.resize(stot * es + 1);
      recv.assign(rtot * es + 1, 0x55);
      for (int p = 0; p < n; ++p)
        for (size_t i = 0; i < sc[p]; ++i) writeElem(send.data(), dt, sd[p] + i, value(rank, p * 1000 + i));
      res = trellisAlltoAllv(send.data(), sc.data(), sd.data(), recv.data(), rc.data(), rd.data(), dt, comm, nullptr);
      if (res != trellisSuccess) return callError(rank, c, res, comm);
      for (int p = 0; p < n; ++p) {
        std::string e = compare(recv.data() + rd[p] * es, rc[p], dt, [&](size_t i) { return value(p, rank * 1000 + i); });
        if (!e.empty()) return fail(rank, c, "from rank " + std::to_string(p) + ": " + e);
      }
      return "";
    }
    case CollKind::kSendRecv: {
      // Ring exchange inside a group, receive posted before send on odd ranks and after on even.
      int to = (rank + 1) % n, from = (rank - 1 + n) % n;
      send.resize(cnt * es + 1);
      recv.assign(cnt * es + 1, 0x55);
      fill(send.data(), cnt, dt, trellisSum, rank);
      trellisGroupStart();
      if (rank % 2) trellisRecv(recv.data(), cnt, dt, from, comm, nullptr);
      trellisSend(send.data(), cnt, dt, to, comm, nullptr);
      if (rank % 2 == 0) trellisRecv(recv.data(), cnt, dt, from, comm, nullptr);
      res = trellisGroupEnd();
      if (res != trellisSuccess) return callError(rank, c, res, comm);
      std::string e = compare(recv.data(), cnt, dt, [&](size_t i) { return value(from, i); });
      return e.empty() ? "" : fail(rank, c, e);
    }
  }
  return "unknown collective";
}

}  // namespace trellis::test
