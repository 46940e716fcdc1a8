// The torch 1.x shim: a c10d::ProcessGroup whose virtual methods forward to Collectives, and the
// Python module `trellis_torch._C` with the creator torch.distributed calls for backend "trellis".
// torch 2.x moved these methods to c10d::Backend; its shim would be this file with that base class.
#include <pybind11/chrono.h>
#include <pybind11/pybind11.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/utils/pybind.h>

#include "collectives.h"

namespace trellis_torch {

class ProcessGroupTrellis : public c10d::ProcessGroup {
 public:
  ProcessGroupTrellis(int rank, int size, std::unique_ptr<Collectives> impl)
      : c10d::ProcessGroup(rank, size), impl_(std::move(impl)) {}

  // Joins the progress thread, which may need the GIL meanwhile (to free a tensor whose Python object
  // died first, or to drop a Python callback of a Future): never hold the GIL while waiting for it.
  ~ProcessGroupTrellis() override {
    if (Py_IsInitialized() && PyGILState_Check()) {
      pybind11::gil_scoped_release release;
      impl_.reset();
    }
    impl_.reset();
  }

  const std::string getBackendName() const override { return "trellis"; }

  WorkPtr broadcast(std::vector<at::Tensor>& t, const c10d::BroadcastOptions& o) override {
    return impl_->broadcast(t, o);
  }
  WorkPtr allreduce(std::vector<at::Tensor>& t, const c10d::AllreduceOptions& o) override {
    return impl_->allreduce(t, o);
  }
  WorkPtr allreduce_coalesced(std::vector<at::Tensor>& t, const c10d::AllreduceCoalescedOptions& o) override {
    return impl_->allreduceCoalesced(t, o);
  }
  WorkPtr reduce(std::vector<at::Tensor>& t, const c10d::ReduceOptions& o) override { return impl_->reduce(t, o); }
  WorkPtr allgather(std::vector<std::vector<at::Tensor>>& out, std::vector<at::Tensor>& in,
                    const c10d::AllgatherOptions& o) override {
    return impl_->allgather(out, in, o);
  }
  WorkPtr _allgather_base(at::Tensor& out, at::Tensor& in, const c10d::AllgatherOptions& o) override {
    return impl_->allgatherBase(out, in, o);
  }
  WorkPtr gather(std::vector<std::vector<at::Tensor>>& out, std::vector<at::Tensor>& in,
                 const c10d::GatherOptions& o) override {
    return impl_->gather(out, in, o);
  }
  WorkPtr scatter(std::vector<at::Tensor>& out, std::vector<std::vector<at::Tensor>>& in,
                  const c10d::ScatterOptions& o) override {
    return impl_->scatter(out, in, o);
  }
  WorkPtr reduce_scatter(std::vector<at::Tensor>& out, std::vector<std::vector<at::Tensor>>& in,
                         const c10d::ReduceScatterOptions& o) override {
    return impl_->reduceScatter(out, in, o);
  }
  WorkPtr _reduce_scatter_base(at::Tensor& out, at::Tensor& in, const c10d::ReduceScatterOptions& o) override {
    return impl_->reduceScatterBase(out, in, o);
  }
  WorkPtr alltoall_base(at::Tensor& out, at::Tensor& in, std::vector<int64_t>& outSplits,
                        std::vector<int64_t>& inSplits, const c10d::AllToAllOptions& o) override {
    return impl_->alltoallBase(out, in, outSplits, inSplits, o);
  }
  WorkPtr alltoall(std::vector<at::Tensor>& out, std::vector<at::Tensor>& in,
                   const c10d::AllToAllOptions& o) override {
    return impl_->alltoall(out, in, o);
  }
  WorkPtr send(std::vector<at::Tensor>& t, int dst, int tag) override { return impl_->send(t, dst, tag); }
  WorkPtr recv(std::vector<at::Tensor>& t, int src, int tag) override { return impl_->recv(t, src, tag); }
  WorkPtr barrier(const c10d::BarrierOptions& o) override { return impl_->barrier(o); }
  void startCoalescing() override { impl_->startCoalescing(); }
  void endCoalescing(std::vector<WorkPtr>&) override { impl_->endCoalescing(); }

  Collectives& impl() { return *impl_; }

 private:
  std::unique_ptr<Collectives> impl_;
};

c10::intrusive_ptr<c10d::ProcessGroup> createProcessGroup(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                                          int size, const std::chrono::duration<float>& timeout) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  return c10::make_intrusive<ProcessGroupTrellis>(rank, size, Collectives::create(store, rank, size, ms));
}

}  // namespace trellis_torch

PYBIND11_MODULE(_C, m) {
  namespace py = pybind11;
  using trellis_torch::ProcessGroupTrellis;
  m.doc() = "Trellis backend for torch.distributed (torch 1.x ProcessGroup)";
  py::module_::import("torch.distributed");  // registers the c10d::ProcessGroup base type
  py::class_<ProcessGroupTrellis, c10d::ProcessGroup, c10::intrusive_ptr<ProcessGroupTrellis>>(
      m, "ProcessGroupTrellis")
      .def(
          "_async_error",
          [](ProcessGroupTrellis& pg) { return trellisGetErrorString(pg.impl().engine().asyncError()); },
          "The communicator's asynchronous error ('no error' while healthy).")
      .def(
          "_abort", [](ProcessGroupTrellis& pg) { pg.impl().engine().abort(); },
          py::call_guard<py::gil_scoped_release>(),
          "Aborts the communicator: operations in flight and queued fail; the group is unusable afterwards.");
  m.def("create_process_group", &trellis_torch::createProcessGroup, py::arg("store"), py::arg("rank"),
        py::arg("size"), py::arg("timeout"), py::call_guard<py::gil_scoped_release>(),
        "The creator registered for backend 'trellis': joins the group through the c10d store.");
  int version = 0;
  trellisGetVersion(&version);
  m.attr("trellis_version") = version;
}
