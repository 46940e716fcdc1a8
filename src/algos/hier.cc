#include "algos/hier.h"

#include <algorithm>

#include "algos/common.h"
#include "algos/kernels/reduce.h"

namespace trellis::algos {

int Hierarchy::ownerSlot(int node, int s) const {
  const int L = local(node);
  int j = std::min(L - 1, s * L / K);
  while (j + 1 < L && sliceBegin(node, j + 1) <= s) ++j;
  while (j > 0 && sliceBegin(node, j) > s) --j;
  return j;
}

std::vector<int> Hierarchy::sliceGroup(int s) const {
  std::vector<int> g;
  g.reserve(nodeOrder.size());
  for (int n : nodeOrder) g.push_back(owner(n, s));
  return g;
}

int Hierarchy::proxy(int node, int d) const {
  if (nodeOf[d] == node) return d;
  const std::vector<int>& here = slots[node];
  if (rail[d] >= 0) {
    int idx = 0;  // d's index among the ranks of its node on its rail
    for (int x : slots[nodeOf[d]]) {
      if (x == d) break;
      if (rail[x] == rail[d]) ++idx;
    }
    std::vector<int> cands;
    for (int x : here)
      if (rail[x] == rail[d]) cands.push_back(x);
    if (!cands.empty()) return cands[idx % cands.size()];
  }
  return here[slotOf[d] % here.size()];
}

Hierarchy makeHierarchy(const Exec& exec) {
  Hierarchy h;
  const int n = exec.nranks();
  h.me = exec.rank();
  const topo::ClusterView* v = exec.cluster();
  h.rail.assign(n, -1);
  if (v != nullptr && v->nranks() == n) {
    h.nnodes = v->nnodes();
    for (int i = 0; i < h.nnodes; ++i) h.slots.push_back(v->slots(i));
    h.nodeOrder = v->nodeOrder();
    for (int r = 0; r < n; ++r) h.rail[r] = v->railOf(r);
  } else {
    h.nnodes = n;
    for (int i = 0; i < n; ++i) {
      h.slots.push_back({i});
      h.nodeOrder.push_back(i);
    }
  }
  h.nodeOf.assign(n, 0);
  h.slotOf.assign(n, 0);
  h.K = 1;
  for (int i = 0; i < h.nnodes; ++i) {
    h.K = std::max(h.K, h.local(i));
    for (int j = 0; j < h.local(i); ++j) {
      h.nodeOf[h.slots[i][j]] = i;
      h.slotOf[h.slots[i][j]] = j;
    }
  }
  return h;
}

GroupExec::GroupExec(Exec& base, std::vector<int> members)
    : base_(base), members_(std::move(members)) {
  for (size_t i = 0; i < members_.size(); ++i)
    if (members_[i] == base.rank()) pos_ = static_cast<int>(i);
}

Status postChunkedSends(Exec& exec, int to, const void* data, size_t count, size_t es,
                        std::deque<Request>* reqs) {
  const size_t chunkElems = std::max<size_t>(1, exec.chunkBytes() / es);
  const size_t n = count == 0 ? 1 : (count + chunkElems - 1) / chunkElems;
  const char* p = static_cast<const char*>(data);
  for (size_t i = 0; i < n; ++i) {
    size_t len = std::min(chunkElems, count - std::min(count, i * chunkElems));
    reqs->emplace_back();
    TRELLIS_TRY(exec.isend(to, p + i * chunkElems * es, len * es, &reqs->back()));
  }
  return Status::ok();
}

Status waitDeque(Exec& exec, std::deque<Request>& reqs) {
  std::vector<Request*> ptrs;
  ptrs.reserve(reqs.size());
  for (Request& r : reqs) ptrs.push_back(&r);
  return exec.waitAll(ptrs.data(), ptrs.size());
}

Status ringReduceScatterSegs(Exec& exec, const std::vector<int>& group, int pos,
                             const std::vector<Segments>& sets, const void* inV, void* workV,
                             void* outV, trellisDataType_t dtype, trellisRedOp_t op) {
  const int L = static_cast<int>(group.size());
  const size_t es = dtypeSize(dtype);
  const char* in = static_cast<const char*>(inV);
  char* work = static_cast<char*>(workV);
  char* out = static_cast<char*>(outV);
  auto mod = [&](int x) { return (x % L + L) % L; };
  if (L == 1) {
    size_t o = 0;
    for (const auto& [off, cnt] : sets[pos]) {
      copyIfDistinct(out ? out + o * es : work + off * es, in + off * es, cnt * es);
      o += cnt;
    }
    return Status::ok();
  }
  const int right = group[mod(pos + 1)], left = group[mod(pos - 1)];
  for (int s = 0; s < L - 1; ++s) {
    const Segments& S = sets[mod(pos - s - 1)];
    const Segments& R = sets[mod(pos - s - 2)];
    const bool last = s == L - 2;
    size_t o = 0;
    // Segment k of each side in lockstep: the neighbours pair their k-th calls the same way.
    for (size_t k = 0; k < std::max(S.size(), R.size()); ++k) {
      const bool snd = k < S.size(), rcv = k < R.size();
      const char* sp = snd ? (s == 0 ? in : work) + S[k].first * es : nullptr;
      char* dst = nullptr;
      const char* a = nullptr;
      if (rcv) {
        dst = last && out ? out + o * es : work + R[k].first * es;
        a = in + R[k].first * es;
        o += R[k].second;
      }
      TRELLIS_TRY(sendRecvReduce(exec, snd ? right : -1, sp, snd ? S[k].second : 0, rcv ? left : -1,
                                 dst, a, rcv ? R[k].second : 0, dtype, op));
    }
  }
  return Status::ok();
}

Status ringAllGatherSegs(Exec& exec, const std::vector<int>& group, int pos,
                         const std::vector<Segments>& sets, void* bufV, size_t es) {
  const int L = static_cast<int>(group.size());
  if (L == 1) return Status::ok();
  char* buf = static_cast<char*>(bufV);
  auto mod = [&](int x) { return (x % L + L) % L; };
  const int right = group[mod(pos + 1)], left = group[mod(pos - 1)];
  std::vector<Request> reqs;
  std::vector<Request*> ptrs;
  for (int s = 0; s < L - 1; ++s) {
    const Segments& S = sets[mod(pos - s)];
    const Segments& R = sets[mod(pos - s - 1)];
    reqs.assign(S.size() + R.size(), Request{});
    ptrs.clear();
    size_t k = 0;
    for (const auto& [off, cnt] : R) {
      TRELLIS_TRY(exec.irecv(left, buf + off * es, cnt * es, &reqs[k]));
      ptrs.push_back(&reqs[k++]);
    }
    for (const auto& [off, cnt] : S) {
      TRELLIS_TRY(exec.isend(right, buf + off * es, cnt * es, &reqs[k]));
      ptrs.push_back(&reqs[k++]);
    }
    TRELLIS_TRY(exec.waitAll(ptrs.data(), ptrs.size()));
  }
  return Status::ok();
}

}  // namespace trellis::algos
