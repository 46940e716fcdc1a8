#include "api/call_check.h"

#include <cstring>
#include <vector>

#include "algos/kernels/reduce.h"
#include "core/params.h"

namespace trellis {

static Param<bool> kCheck("TRELLIS_CHECK", false,
                          "verify before each collective that every rank calls the same collective with the same "
                          "count, datatype, op and root (one extra exchange of 48-byte descriptors per call)");

bool callCheckEnabled() { return kCheck.get(); }

namespace {

using algos::Coll;

constexpr uint32_t kDescMagic = 0x7e11c4ec;

// What one rank tells one peer about the call it is making. Fields a collective does not use are
// -1 (op, root) or 0 (count of AlltoAllv) so that they never cause a mismatch.
struct CallDesc {
  uint32_t magic;
  int32_t coll;
  uint64_t seq;
  uint64_t count;
  int32_t dtype;
  int32_t op;
  int32_t root;
  int32_t reserved;
  uint64_t sendToPeer;    // AlltoAllv: elements this rank sends the peer (sendcounts[peer])
  uint64_t recvFromPeer;  // AlltoAllv: elements this rank expects from the peer (recvcounts[peer])
};
static_assert(sizeof(CallDesc) == 56);

// AlltoAllv's second round: the first pair whose counts disagree, as the receiving rank saw it.
struct Verdict {
  int32_t bad;
  int32_t sender;
  uint64_t sent;      // sender's sendcounts[receiver]
  uint64_t expected;  // receiver's recvcounts[sender]
};
static_assert(sizeof(Verdict) == 24);

bool reduces(Coll c) { return c == Coll::kAllReduce || c == Coll::kReduce || c == Coll::kReduceScatter; }
bool rooted(Coll c) { return c == Coll::kBroadcast || c == Coll::kReduce; }

const char* apiCollName(int c) {
  static const char* kNames[] = {"AllReduce", "Broadcast", "Reduce", "AllGather", "ReduceScatter", "AlltoAll",
                                 "AlltoAllv"};
  return c >= 0 && c < static_cast<int>(Coll::kCount) ? kNames[c] : "<unknown collective>";
}

CallDesc describe(const algos::CollArgs& a, uint64_t seq) {
  CallDesc d{};
  d.magic = kDescMagic;
  d.coll = static_cast<int32_t>(a.coll);
  d.seq = seq;
  d.count = a.coll == Coll::kAlltoAllv ? 0 : a.count;
  std::memcpy(&d.dtype, &a.dtype, sizeof d.dtype);  // C enums may hold any int
  int op;
  std::memcpy(&op, &a.op, sizeof op);
  d.op = reduces(a.coll) ? op : -1;
  d.root = rooted(a.coll) ? a.root : -1;
  return d;
}

std::string text(const CallDesc& d) {
  std::string s = apiCollName(d.coll);
  s += "(";
  const Coll c = static_cast<Coll>(d.coll);
  if (c == Coll::kAllGather) s += formatString("sendcount=%llu, ", static_cast<unsigned long long>(d.count));
  else if (c == Coll::kReduceScatter) s += formatString("recvcount=%llu, ", static_cast<unsigned long long>(d.count));
  else if (c != Coll::kAlltoAllv) s += formatString("count=%llu, ", static_cast<unsigned long long>(d.count));
  s += algos::dtypeName(static_cast<trellisDataType_t>(d.dtype));
  if (d.op >= 0) s += std::string(", ") + algos::opName(static_cast<trellisRedOp_t>(d.op));
  if (d.root >= 0) s += formatString(", root=%d", d.root);
  return s + ")";
}

bool sameCall(const CallDesc& a, const CallDesc& b) {
  return a.coll == b.coll && a.count == b.count && a.dtype == b.dtype && a.op == b.op &&
         a.root == b.root;
}

// Every rank sends `bytes` from out[p] to each peer p and receives each peer's into in[p].
Status exchange(algos::Exec& exec, const std::vector<const void*>& out, const std::vector<void*>& in, size_t bytes) {
  const int n = exec.nranks(), me = exec.rank();
  std::vector<algos::Request> reqs(2 * static_cast<size_t>(n));
  std::vector<algos::Request*> ptrs;
  for (int p = 0; p < n; ++p) {
    if (p == me) continue;
    TRELLIS_TRY(exec.irecv(p, in[p], bytes, &reqs[2 * p]));
    ptrs.push_back(&reqs[2 * p]);
  }
  for (int p = 0; p < n; ++p) {
    if (p == me) continue;
    TRELLIS_TRY(exec.isend(p, out[p], bytes, &reqs[2 * p + 1]));
    ptrs.push_back(&reqs[2 * p + 1]);
  }
  TRELLIS_TRY(exec.waitAll(ptrs.data(), ptrs.size()));
  for (int p = 0; p < n; ++p)
    if (p != me && reqs[2 * p].received != bytes)
      return invalidUsage("TRELLIS_CHECK: rank %d sent a %zu-byte message where a %zu-byte call descriptor was "
                          "expected (is TRELLIS_CHECK=1 set on every rank?)", p, reqs[2 * p].received, bytes);
  return Status::ok();
}

}  // namespace

std::string describeCall(const algos::CollArgs& args) { return text(describe(args, 0)); }

Status checkCollectiveCall(algos::Exec& exec, const algos::CollArgs& args, uint64_t seq, bool* mismatch) {
  *mismatch = false;
  const int n = exec.nranks(), me = exec.rank();
  const bool v = args.coll == Coll::kAlltoAllv;
  std::vector<CallDesc> mine(n, describe(args, seq)), all(n);
  if (v)
    for (int p = 0; p < n; ++p) {
      mine[p].sendToPeer = args.sendcounts[p];
      mine[p].recvFromPeer = args.recvcounts[p];
    }
  all[me] = mine[me];
  std::vector<const void*> out(n);
  std::vector<void*> in(n);
  for (int p = 0; p < n; ++p) {
    out[p] = &mine[p];
    in[p] = &all[p];
  }
  if (n > 1) TRELLIS_TRY(exchange(exec, out, in, sizeof(CallDesc)));
  for (int p = 0; p < n; ++p)
    if (all[p].magic != kDescMagic)
      return invalidUsage("TRELLIS_CHECK: rank %d sent a message that is not a call descriptor (magic 0x%08x); is "
                          "TRELLIS_CHECK=1 set on every rank?", p, all[p].magic);
  // Every rank holds the same table, so every rank reports the same first mismatch. (Descriptors
  // pair up in call order, so the sequence numbers always agree; they only label the message.)
  for (int r = 1; r < n; ++r) {
    if (sameCall(all[0], all[r])) continue;
    *mismatch = true;
    return invalidUsage("TRELLIS_CHECK: rank 0 called %s but rank %d called %s (collective #%llu on this "
                        "communicator)", text(all[0]).c_str(), r, text(all[r]).c_str(),
                        static_cast<unsigned long long>(all[0].seq));
  }
  if (!v) return Status::ok();
  // AlltoAllv: each rank checks the counts its peers send it against what it expects, then all
  // ranks share their verdicts so that every rank fails together.
  std::vector<Verdict> verdicts(n);
  Verdict& own = verdicts[me];
  for (int p = 0; p < n && !own.bad; ++p) {
    uint64_t sent = p == me ? args.sendcounts[me] : all[p].sendToPeer;
    if (sent != args.recvcounts[p]) own = Verdict{1, p, sent, args.recvcounts[p]};
  }
  for (int p = 0; p < n; ++p) {
    out[p] = &own;
    in[p] = &verdicts[p];
  }
  if (n > 1) TRELLIS_TRY(exchange(exec, out, in, sizeof(Verdict)));
  for (int r = 0; r < n; ++r) {
    const Verdict& x = verdicts[r];
    if (!x.bad) continue;
    *mismatch = true;
    return invalidUsage("TRELLIS_CHECK: in AlltoAllv(%s) (collective #%llu) rank %d sends rank %d "
                        "sendcounts[%d]=%llu elements but rank %d expects recvcounts[%d]=%llu from it",
                        algos::dtypeName(static_cast<trellisDataType_t>(all[0].dtype)),
                        static_cast<unsigned long long>(seq), x.sender, r, r,
                        static_cast<unsigned long long>(x.sent), r, x.sender,
                        static_cast<unsigned long long>(x.expected));
  }
  return Status::ok();
}

}  // namespace trellis
