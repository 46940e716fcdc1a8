#include "work.h"

#include <stdexcept>
#include <utility>

namespace trellis_torch {

Work::Work(int rank, c10d::OpType type, const char* profilingTitle, std::vector<at::Tensor> outputs,
           std::string what)
    : c10d::Work(rank, type, profilingTitle),
      outputs_(std::move(outputs)),
      what_(std::move(what)),
      future_(c10::make_intrusive<c10::ivalue::Future>(c10::ListType::create(c10::TensorType::get()))) {}

bool Work::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (timeout == kNoTimeout) {
    cv_.wait(lock, [this] { return completed_; });
  } else if (!cv_.wait_for(lock, timeout, [this] { return completed_; })) {
    TORCH_CHECK(false, "trellis: ", what_, " did not complete within ", timeout.count(),
                " ms (Work.wait timeout); it is still in progress");
  }
  if (exception_) std::rethrow_exception(exception_);
  return true;
}

c10::intrusive_ptr<c10::ivalue::Future> Work::getFuture() { return future_; }

std::vector<at::Tensor> Work::result() { return outputs_; }

void Work::complete(const Outcome& outcome) {
  if (outcome.ok()) {
    finish();
    future_->markCompleted(c10::IValue(outputs_));
  } else {
    auto error = std::make_exception_ptr(std::runtime_error(outcome.message));
    finish(error);
    future_->setError(error);
  }
}

}  // namespace trellis_torch
