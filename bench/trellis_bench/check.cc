#include "check.h"

#include <algorithm>
#include <cstring>

#include "../../tests/support/reference.h"
#include "algos/kernels/reduce.h"

namespace trellis::bench {

void operands(Coll c, size_t param, size_t es, int rank, bool inPlace, char* send, char* recv,
              const void** in, void** out) {
  *in = send;
  *out = recv;
  if (!inPlace) return;
  switch (c) {
    case Coll::kAllGather:
      *in = recv + rank * param * es;  // send == recv + rank * sendcount
      break;
    case Coll::kReduceScatter:
      *out = send + rank * param * es;  // recv == send + rank * recvcount
      break;
    default:
      *in = recv;
      break;
  }
}

int64_t checkOnce(Impl& impl, const CheckArgs& a, char* send, char* recv, std::string* err) {
  using trellis::test::countWrong;
  using trellis::test::expectedReduce;
  using trellis::test::fill;
  using trellis::test::inputValue;
  const int me = impl.rank(), n = impl.nranks();
  const size_t es = algos::dtypeSize(a.dt), cnt = a.counts.param;
  const trellisDataType_t dt = a.dt;
  const trellisRedOp_t op = a.op;
  // Data movement uses the Sum pattern (any values do; these are distinct per
  // rank and index).
  auto value = [&](int r, size_t i) { return inputValue(trellisSum, dt, r, i); };
  const void* in;
  void* out;
  operands(a.coll, cnt, es, me, a.inPlace, send, recv, &in, &out);
  void* inw = const_cast<void*>(in);
  // Poison the output first (the input fill below overwrites its own part when
  // in place), so a result left by an earlier run of the same size cannot pass
  // for this one.
  const bool gathers = a.coll == Coll::kAllGather || a.coll == Coll::kAlltoAll;
  std::memset(out, 0xff, (gathers ? n * cnt : cnt) * es);
  switch (a.coll) {
    case Coll::kAllReduce:
    case Coll::kReduce:
      fill(inw, cnt, dt, op, me);
      break;
    case Coll::kBroadcast:
      if (me == a.root) fill(inw, cnt, dt, trellisSum, a.root);
      break;
    case Coll::kAllGather:
    case Coll::kSendRecv:
      fill(inw, cnt, dt, trellisSum, me);
      break;
    case Coll::kReduceScatter:
      fill(inw, n * cnt, dt, op, me);
      break;
    case Coll::kAlltoAll:
      fill(inw, n * cnt, dt, trellisSum, me);
      break;
  }
  *err = impl.run(a.coll, in, out, cnt, dt, op, a.root);
  if (!err->empty()) return static_cast<int64_t>(cnt);
  if (a.corrupt > 0 && me == 0) {
    const size_t outElems = gathers ? n * cnt : cnt;
    std::memset(out, 0xff, std::min<size_t>(a.corrupt, outElems) * es);
  }
  auto reduced = [&](size_t i) { return expectedReduce(op, dt, n, i); };
  size_t wrong = 0;
  switch (a.coll) {
    case Coll::kAllReduce:
      wrong = countWrong(out, cnt, dt, reduced);
      break;
    case Coll::kReduce:
      wrong = me != a.root ? 0 : countWrong(out, cnt, dt, reduced);
      break;
    case Coll::kBroadcast:
      wrong = countWrong(out, cnt, dt, [&](size_t i) { return value(a.root, i); });
      break;
    case Coll::kAllGather:
      wrong = countWrong(out, n * cnt, dt,
                         [&](size_t i) { return value(static_cast<int>(i / cnt), i % cnt); });
      break;
    case Coll::kReduceScatter:
      wrong = countWrong(out, cnt, dt, [&](size_t i) { return reduced(me * cnt + i); });
      break;
    case Coll::kAlltoAll:
      wrong = countWrong(out, n * cnt, dt, [&](size_t i) {
        return value(static_cast<int>(i / cnt), me * cnt + i % cnt);
      });
      break;
    case Coll::kSendRecv:
      wrong = countWrong(out, cnt, dt, [&](size_t i) { return value((me - 1 + n) % n, i); });
      break;
  }
  return static_cast<int64_t>(wrong);
}

}  // namespace trellis::bench
