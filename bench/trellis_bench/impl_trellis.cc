// trellis-bench through the Trellis C API. Under trellis-run the communicator
// comes from the environment; under mpirun (when built with MPI) rank 0 creates
// the id and MPI_Bcast's it, as nccl-tests does.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "impl.h"
#ifdef TRELLIS_BENCH_WITH_MPI
#include <mpi.h>
#endif

namespace trellis::bench {
namespace {

// Whether some launcher's environment is there (the ones trellisCommInitFromEnv reads).
bool underLauncher() {
  for (const char* v : {"TRELLIS_RANK", "TRELLIS_UNIQUE_ID", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
                        "PMI_RANK", "SLURM_PROCID", "SLURM_NTASKS", "RANK", "WORLD_SIZE"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

class TrellisImpl final : public Impl {
 public:
  /// `finalizeMpi`: MPI was initialised only to broadcast the id (under
  /// mpirun); finalise it last.
  TrellisImpl(trellisComm_t c, bool finalizeMpi) : comm_(c), finalizeMpi_(finalizeMpi) {
    trellisCommUserRank(c, &rank_);
    trellisCommCount(c, &n_);
  }
  ~TrellisImpl() override {
    trellisCommDestroy(comm_);
#ifdef TRELLIS_BENCH_WITH_MPI
    if (finalizeMpi_) MPI_Finalize();
#endif
  }
  const char* name() const override { return "trellis"; }
  int rank() const override { return rank_; }
  int nranks() const override { return n_; }
  std::string unsupported(Coll, trellisDataType_t, trellisRedOp_t) const override { return ""; }

  std::string run(Coll c, const void* send, void* recv, size_t count, trellisDataType_t dt,
                  trellisRedOp_t op, int root) override {
    trellisResult_t r = trellisSuccess;
    switch (c) {
      case Coll::kAllReduce:
        r = trellisAllReduce(send, recv, count, dt, op, comm_, nullptr);
        break;
      case Coll::kAllGather:
        r = trellisAllGather(send, recv, count, dt, comm_, nullptr);
        break;
      case Coll::kReduceScatter:
        r = trellisReduceScatter(send, recv, count, dt, op, comm_, nullptr);
        break;
      case Coll::kBroadcast:
        r = trellisBroadcast(send, recv, count, dt, root, comm_, nullptr);
        break;
      case Coll::kReduce:
        r = trellisReduce(send, recv, count, dt, op, root, comm_, nullptr);
        break;
      case Coll::kAlltoAll:
        r = trellisAlltoAll(send, recv, count, dt, comm_, nullptr);
        break;
      case Coll::kSendRecv: {
        // The group always ends, so a failed enqueue cannot leave this thread inside a group.
        trellisGroupStart();
        trellisResult_t rs = trellisSend(send, count, dt, (rank_ + 1) % n_, comm_, nullptr);
        trellisResult_t rr = trellisRecv(recv, count, dt, (rank_ - 1 + n_) % n_, comm_, nullptr);
        r = trellisGroupEnd();
        if (rs != trellisSuccess)
          r = rs;
        else if (rr != trellisSuccess)
          r = rr;
        break;
      }
    }
    if (r == trellisSuccess) return "";
    return std::string(trellisGetErrorString(r)) + ": " + trellisGetLastError(comm_);
  }

  double combine(double v, int op) override {
    double out = 0;
    trellisAllReduce(&v, &out, 1, trellisFloat64,
                     op == 0   ? trellisSum
                     : op == 1 ? trellisMin
                               : trellisMax,
                     comm_, nullptr);
    return out;
  }
  void allgatherBytes(const void* in, void* out, size_t bytes) override {
    trellisAllGather(in, out, bytes, trellisUint8, comm_, nullptr);
  }
  void barrier() override {
    char x = 0, y = 0;
    trellisAllReduce(&x, &y, 1, trellisInt8, trellisSum, comm_, nullptr);
  }

 private:
  trellisComm_t comm_;
  bool finalizeMpi_ = false;
  int rank_ = 0, n_ = 1;
};

}  // namespace

std::unique_ptr<Impl> makeTrellisImpl(std::string* error) {
  trellisComm_t comm = nullptr;
#ifdef TRELLIS_BENCH_WITH_MPI
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr &&
      std::getenv("TRELLIS_UNIQUE_ID") == nullptr) {
    MPI_Init(nullptr, nullptr);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    trellisUniqueId id;
    if (rank == 0 && trellisGetUniqueId(&id) != trellisSuccess) {
      // The other ranks wait in MPI_Bcast: say why, then take the job down.
      std::fprintf(stderr, "trellis-bench: rank 0: trellisGetUniqueId: %s\n",
                   trellisGetLastError(nullptr));
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (trellisCommInitRank(&comm, size, id, rank) != trellisSuccess) {
      *error =
          "rank " + std::to_string(rank) + ": trellisCommInitRank: " + trellisGetLastError(nullptr);
      MPI_Finalize();
      return nullptr;
    }
    return std::make_unique<TrellisImpl>(comm, true);
  }
#endif
  if (!underLauncher()) {
    // Started by hand, as nccl-tests' binaries can be: a job of one rank.
    trellisUniqueId id;
    if (trellisGetUniqueId(&id) != trellisSuccess ||
        trellisCommInitRank(&comm, 1, id, 0) != trellisSuccess) {
      *error = std::string("one-rank communicator: ") + trellisGetLastError(nullptr);
      return nullptr;
    }
    return std::make_unique<TrellisImpl>(comm, false);
  }
  if (trellisCommInitFromEnv(&comm) != trellisSuccess) {
    *error = trellisGetLastError(nullptr);  // names the function and the variables it read
    return nullptr;
  }
  return std::make_unique<TrellisImpl>(comm, false);
}

}  // namespace trellis::bench
