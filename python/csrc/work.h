// The Work object every call of the backend returns. It is completed on the engine's progress
// thread (never inside the call that created it); its Future is what DDP's communication hook
// chains on, and its value is the list of output tensors. Uses only c10d::Work, which torch 1.13
// and 2.x declare alike.
#pragma once

#include <ATen/core/ivalue.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <string>
#include <vector>

#include "engine.h"

namespace trellis_torch {

class Work : public c10d::Work {
 public:
  /// `outputs`: the tensors the operation writes (the Future's value); `what` names it in errors.
  Work(int rank, c10d::OpType type, const char* profilingTitle, std::vector<at::Tensor> outputs,
       std::string what);

  /// Waits for completion; with a timeout, throws a message naming the operation when it expires.
  /// Throws the operation's error when it failed.
  bool wait(std::chrono::milliseconds timeout = kNoTimeout) override;
  c10::intrusive_ptr<c10::ivalue::Future> getFuture() override;
  std::vector<at::Tensor> result() override;

  /// Marks the work finished (progress thread). A failure becomes the exception of wait() and the
  /// error of the Future.
  void complete(const Outcome& outcome);

 private:
  std::vector<at::Tensor> outputs_;
  std::string what_;
  c10::intrusive_ptr<c10::ivalue::Future> future_;
};

}  // namespace trellis_torch
