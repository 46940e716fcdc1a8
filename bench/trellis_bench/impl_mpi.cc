// trellis-bench through OpenMPI (run under mpirun). float16/bfloat16 have no
// MPI datatype and are reported as unsupported; Avg is MPI_SUM followed by a
// division, timed as part of the operation.
#include <mpi.h>

#include <cstring>

#include "algos/kernels/reduce.h"
#include "impl.h"

namespace trellis::bench {
namespace {

MPI_Datatype mpiType(trellisDataType_t dt) {
  switch (dt) {
    case trellisInt8:
      return MPI_INT8_T;
    case trellisUint8:
      return MPI_UINT8_T;
    case trellisInt32:
      return MPI_INT32_T;
    case trellisUint32:
      return MPI_UINT32_T;
    case trellisInt64:
      return MPI_INT64_T;
    case trellisUint64:
      return MPI_UINT64_T;
    case trellisFloat32:
      return MPI_FLOAT;
    case trellisFloat64:
      return MPI_DOUBLE;
    default:
      return MPI_DATATYPE_NULL;
  }
}

MPI_Op mpiOp(trellisRedOp_t op) {
  switch (op) {
    case trellisProd:
      return MPI_PROD;
    case trellisMax:
      return MPI_MAX;
    case trellisMin:
      return MPI_MIN;
    default:
      return MPI_SUM;
  }
}

class MpiImpl final : public Impl {
 public:
  MpiImpl() {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(nullptr, nullptr);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &n_);
  }
  ~MpiImpl() override { MPI_Finalize(); }
  const char* name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int nranks() const override { return n_; }
  std::string unsupported(Coll, trellisDataType_t dt, trellisRedOp_t) const override {
    return mpiType(dt) == MPI_DATATYPE_NULL
               ? std::string("MPI has no ") + algos::dtypeName(dt) + " datatype"
               : "";
  }

  std::string run(Coll c, const void* send, void* recv, size_t count, trellisDataType_t dt,
                  trellisRedOp_t op, int root) override {
    MPI_Datatype t = mpiType(dt);
    const int cnt = static_cast<int>(count);
    const size_t es = algos::dtypeSize(dt);
    int rc = MPI_SUCCESS;
    switch (c) {
      case Coll::kAllReduce:
        rc = MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, cnt, t, mpiOp(op),
                           MPI_COMM_WORLD);
        if (op == trellisAvg) algos::divideInPlace(recv, count, dt, n_);
        break;
      case Coll::kAllGather:
        rc = MPI_Allgather(
            send == static_cast<char*>(recv) + rank_ * count * es ? MPI_IN_PLACE : send, cnt, t,
            recv, cnt, t, MPI_COMM_WORLD);
        break;
      case Coll::kReduceScatter:
        if (recv == static_cast<const char*>(send) + rank_ * count * es) {
          // MPI's in-place form reduces into the send buffer's first block: move
          // it afterwards.
          rc = MPI_Reduce_scatter_block(MPI_IN_PLACE, const_cast<void*>(send), cnt, t, mpiOp(op),
                                        MPI_COMM_WORLD);
          if (rank_ != 0) std::memmove(recv, send, count * es);
        } else {
          rc = MPI_Reduce_scatter_block(send, recv, cnt, t, mpiOp(op), MPI_COMM_WORLD);
        }
        if (op == trellisAvg) algos::divideInPlace(recv, count, dt, n_);
        break;
      case Coll::kBroadcast:
        if (rank_ == root && send != recv) std::memcpy(recv, send, count * es);
        rc = MPI_Bcast(recv, cnt, t, root, MPI_COMM_WORLD);
        break;
      case Coll::kReduce:
        rc = MPI_Reduce(send == recv && rank_ == root ? MPI_IN_PLACE : send, recv, cnt, t,
                        mpiOp(op), root, MPI_COMM_WORLD);
        if (op == trellisAvg && rank_ == root) algos::divideInPlace(recv, count, dt, n_);
        break;
      case Coll::kAlltoAll:
        rc = MPI_Alltoall(send, cnt, t, recv, cnt, t, MPI_COMM_WORLD);
        break;
      case Coll::kSendRecv:
        rc = MPI_Sendrecv(send, cnt, t, (rank_ + 1) % n_, 0, recv, cnt, t, (rank_ - 1 + n_) % n_, 0,
                          MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        break;
    }
    return rc == MPI_SUCCESS ? "" : "MPI error " + std::to_string(rc);
  }

  double combine(double v, int op) override {
    double out = 0;
    MPI_Allreduce(&v, &out, 1, MPI_DOUBLE,
                  op == 0   ? MPI_SUM
                  : op == 1 ? MPI_MIN
                            : MPI_MAX,
                  MPI_COMM_WORLD);
    return out;
  }
  void allgatherBytes(const void* in, void* out, size_t bytes) override {
    MPI_Allgather(in, static_cast<int>(bytes), MPI_BYTE, out, static_cast<int>(bytes), MPI_BYTE,
                  MPI_COMM_WORLD);
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

 private:
  int rank_ = 0, n_ = 1;
};

}  // namespace

std::unique_ptr<Impl> makeMpiImpl(std::string*) { return std::make_unique<MpiImpl>(); }

}  // namespace trellis::bench
