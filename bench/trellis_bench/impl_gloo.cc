// trellis-bench through Gloo (Debian's libgloo-dev): TCP device on the given
// address, FileStore rendezvous in a directory shared by the ranks, ring
// allreduce out of place (Gloo's default algorithm). This snapshot has no
// gloo::reduce_scatter function, only the older algorithm class
// ReduceScatterHalvingDoubling (in place, result in the first block, set up per
// buffer and size): it is built once per row and its result block moved to the
// API's output (a copy of count elements, 1/n of the data). float16 runs as
// gloo::float16 (IEEE half, reduced in half precision by Gloo); Gloo has no
// bfloat16, which is reported as unsupported.
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/alltoall.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/reduce.h>
#include <gloo/reduce_scatter.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/types.h>

#include <cstdlib>
#include <cstring>

#include "algos/kernels/reduce.h"
#include "impl.h"

namespace trellis::bench {
namespace {

template <typename T>
gloo::AllreduceOptions::Func reduceFn(trellisRedOp_t op) {
  using Fn = void (*)(void*, const void*, const void*, size_t);
  switch (op) {
    case trellisProd:
      return static_cast<Fn>(&gloo::product<T>);
    case trellisMax:
      return static_cast<Fn>(&gloo::max<T>);
    case trellisMin:
      return static_cast<Fn>(&gloo::min<T>);
    default:
      return static_cast<Fn>(&gloo::sum<T>);
  }
}

template <typename T>
const gloo::ReductionFunction<T>* reductionFn(trellisRedOp_t op) {
  switch (op) {
    case trellisProd:
      return gloo::ReductionFunction<T>::product;
    case trellisMax:
      return gloo::ReductionFunction<T>::max;
    case trellisMin:
      return gloo::ReductionFunction<T>::min;
    default:
      return gloo::ReductionFunction<T>::sum;
  }
}

class GlooImpl final : public Impl {
 public:
  GlooImpl(std::shared_ptr<gloo::rendezvous::Context> ctx) : ctx_(std::move(ctx)) {}
  const char* name() const override { return "gloo"; }
  int rank() const override { return ctx_->rank; }
  int nranks() const override { return ctx_->size; }
  std::string unsupported(Coll, trellisDataType_t dt, trellisRedOp_t) const override {
    if (dt == trellisBfloat16) return "Gloo has no bfloat16 type";
    return "";
  }

  std::string run(Coll c, const void* send, void* recv, size_t count, trellisDataType_t dt,
                  trellisRedOp_t op, int root) override {
    if (count == 0) return "";  // Gloo divides by the element count in places; nothing to move
    switch (dt) {
      case trellisInt8:
        return runT<int8_t>(c, send, recv, count, dt, op, root);
      case trellisUint8:
        return runT<uint8_t>(c, send, recv, count, dt, op, root);
      case trellisInt32:
        return runT<int32_t>(c, send, recv, count, dt, op, root);
      case trellisUint32:
        return runT<uint32_t>(c, send, recv, count, dt, op, root);
      case trellisInt64:
        return runT<int64_t>(c, send, recv, count, dt, op, root);
      case trellisUint64:
        return runT<uint64_t>(c, send, recv, count, dt, op, root);
      case trellisFloat16:
        return runT<gloo::float16>(c, send, recv, count, dt, op, root);
      case trellisFloat32:
        return runT<float>(c, send, recv, count, dt, op, root);
      case trellisFloat64:
        return runT<double>(c, send, recv, count, dt, op, root);
      default:
        return "unsupported datatype";
    }
  }

  double combine(double v, int op) override {
    double out = v;
    gloo::AllreduceOptions o(ctx_);
    o.setInput(&v, 1);
    o.setOutput(&out, 1);
    o.setReduceFunction(op == 0   ? reduceFn<double>(trellisSum)
                        : op == 1 ? reduceFn<double>(trellisMin)
                                  : reduceFn<double>(trellisMax));
    gloo::allreduce(o);
    return out;
  }
  void allgatherBytes(const void* in, void* out, size_t bytes) override {
    gloo::AllgatherOptions o(ctx_);
    o.setInput(static_cast<uint8_t*>(const_cast<void*>(in)), bytes);
    o.setOutput(static_cast<uint8_t*>(out), bytes * ctx_->size);
    gloo::allgather(o);
  }
  void barrier() override {
    gloo::BarrierOptions o(ctx_);
    gloo::barrier(o);
  }

 private:
  template <typename T>
  std::string runT(Coll c, const void* sendv, void* recvv, size_t count, trellisDataType_t dt,
                   trellisRedOp_t op, int root) {
    T* send = static_cast<T*>(const_cast<void*>(sendv));
    T* recv = static_cast<T*>(recvv);
    const int n = ctx_->size, me = ctx_->rank;
    switch (c) {
      case Coll::kAllReduce: {
        gloo::AllreduceOptions o(ctx_);
        o.setInput(send, count);
        o.setOutput(recv, count);
        o.setReduceFunction(reduceFn<T>(op));
        gloo::allreduce(o);
        if (op == trellisAvg) algos::divideInPlace(recv, count, dt, n);
        return "";
      }
      case Coll::kAllGather: {
        gloo::AllgatherOptions o(ctx_);
        o.setInput(send, count);
        o.setOutput(recv, count * n);
        gloo::allgather(o);
        return "";
      }
      case Coll::kBroadcast: {
        gloo::BroadcastOptions o(ctx_);
        if (me == root && send != recv) o.setInput(send, count);
        o.setOutput(recv, count);
        o.setRoot(root);
        gloo::broadcast(o);
        return "";
      }
      case Coll::kReduce: {
        gloo::ReduceOptions o(ctx_);
        o.setInput(send, count);
        o.setOutput(recv, count);
        o.setRoot(root);
        o.setReduceFunction(reduceFn<T>(op));
        gloo::reduce(o);
        if (op == trellisAvg && me == root) algos::divideInPlace(recv, count, dt, n);
        return "";
      }
      case Coll::kAlltoAll: {
        gloo::AlltoallOptions o(ctx_);
        o.setInput(send, count * n);
        o.setOutput(recv, count * n);
        gloo::alltoall(o);
        return "";
      }
      case Coll::kSendRecv: {
        if (n == 1) {  // Gloo has no pair to itself: sending to yourself is a copy
          if (recv != send) std::memcpy(static_cast<void*>(recv), send, count * sizeof(T));
          return "";
        }
        auto sbuf = ctx_->createUnboundBuffer(send, count * sizeof(T));
        auto rbuf = ctx_->createUnboundBuffer(recv, count * sizeof(T));
        // Far above the slots the algorithm classes take from the context
        // (nextSlot counts from 0).
        const uint64_t slot = (uint64_t{1} << 56) + ++slot_;
        rbuf->recv((me - 1 + n) % n, slot);
        sbuf->send((me + 1) % n, slot);
        sbuf->waitSend();
        rbuf->waitRecv();
        return "";
      }
      case Coll::kReduceScatter: {
        if (count * n > static_cast<size_t>(INT32_MAX)) return "gloo: count over INT32_MAX";
        const std::string key = std::to_string(reinterpret_cast<uintptr_t>(send)) + "/" +
                                std::to_string(count) + "/" + std::to_string(dt) + "/" +
                                std::to_string(op);
        if (key != rsKey_) {
          rs_.reset();
          rs_ = std::make_unique<gloo::ReduceScatterHalvingDoubling<T>>(
              ctx_, std::vector<T*>{send}, static_cast<int>(count * n),
              std::vector<int>(n, static_cast<int>(count)), reductionFn<T>(op));
          rsKey_ = key;
        }
        rs_->run();
        if (recv != send) std::memmove(static_cast<void*>(recv), send, count * sizeof(T));
        if (op == trellisAvg) algos::divideInPlace(recv, count, dt, n);
        return "";
      }
    }
    return "unsupported collective";
  }

  std::shared_ptr<gloo::rendezvous::Context> ctx_;
  uint64_t slot_ = 0;
  std::unique_ptr<gloo::Algorithm>
      rs_;  // the reduce-scatter set up for rsKey_ (buffer/size/type/op)
  std::string rsKey_;
};

int envInt(const char* a, const char* b, int def) {
  const char* v = std::getenv(a);
  if (v == nullptr) v = std::getenv(b);
  return v ? std::atoi(v) : def;
}

}  // namespace

std::unique_ptr<Impl> makeGlooImpl(const std::string& storeDir, const std::string& hostname,
                                   const std::string& iface, std::string* error) {
  int rank = envInt("TRELLIS_RANK", "OMPI_COMM_WORLD_RANK", -1);
  int size = envInt("TRELLIS_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", -1);
  const std::string& store = storeDir;
  if (rank < 0 && size < 0) rank = 0, size = 1;  // started by hand: a job of one rank
  if (rank < 0 || size < 1 || rank >= size) {
    *error = "gloo: rank " + std::to_string(rank) + " of " + std::to_string(size) +
             " (TRELLIS_RANK/TRELLIS_WORLD_SIZE or OMPI_COMM_WORLD_RANK/SIZE)";
    return nullptr;
  }
  if (store.empty()) {
    *error =
        "gloo: no rendezvous directory (--gloo-store DIR, or "
        "TRELLIS_UNIQUE_ID from trellis-run)";
    return nullptr;
  }
  try {
    gloo::transport::tcp::attr attr;
    if (iface.empty())
      attr.hostname = hostname;
    else
      attr.iface = iface;
    auto dev = gloo::transport::tcp::CreateDevice(attr);
    gloo::rendezvous::FileStore fileStore(store);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
    ctx->connectFullMesh(fileStore, dev);
    return std::make_unique<GlooImpl>(ctx);
  } catch (const std::exception& e) {
    *error = std::string("gloo: ") + e.what();
    return nullptr;
  }
}

}  // namespace trellis::bench
