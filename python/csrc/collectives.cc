#include "collectives.h"

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>

#include <cmath>
#include <cstring>
#include <utility>

namespace trellis_torch {
namespace {

using c10d::OpType;
using c10d::ReduceOp;

const char* opName(ReduceOp::RedOpType op) {
  switch (op) {
    case ReduceOp::SUM: return "SUM";
    case ReduceOp::AVG: return "AVG";
    case ReduceOp::PRODUCT: return "PRODUCT";
    case ReduceOp::MIN: return "MIN";
    case ReduceOp::MAX: return "MAX";
    case ReduceOp::BAND: return "BAND";
    case ReduceOp::BOR: return "BOR";
    case ReduceOp::BXOR: return "BXOR";
    case ReduceOp::PREMUL_SUM: return "PREMUL_SUM";
    default: return "UNUSED";
  }
}

/// How a torch dtype and ReduceOp map onto Trellis: the element type, the operation, and how many
/// Trellis elements one torch element is (2 for complex, reduced as (re, im) pairs).
struct Reduction {
  trellisDataType_t type;
  trellisRedOp_t op;
  int64_t perElement;
};

Reduction reductionFor(at::ScalarType st, const ReduceOp& rop, const std::string& ctx) {
  trellisRedOp_t op = trellisSum;
  switch (rop.op_) {
    case ReduceOp::SUM: op = trellisSum; break;
    case ReduceOp::AVG: op = trellisAvg; break;
    case ReduceOp::PRODUCT: op = trellisProd; break;
    case ReduceOp::MIN: op = trellisMin; break;
    case ReduceOp::MAX: op = trellisMax; break;
    default:
      TORCH_CHECK(false, ctx, ": ReduceOp.", opName(rop.op_),
                  " is not supported by Trellis (it reduces with SUM, AVG, PRODUCT, MIN and MAX)");
  }
  switch (st) {
    case at::kByte: return {trellisUint8, op, 1};
    case at::kChar: return {trellisInt8, op, 1};
    case at::kInt: return {trellisInt32, op, 1};
    case at::kLong: return {trellisInt64, op, 1};
    case at::kHalf: return {trellisFloat16, op, 1};
    case at::kBFloat16: return {trellisBfloat16, op, 1};
    case at::kFloat: return {trellisFloat32, op, 1};
    case at::kDouble: return {trellisFloat64, op, 1};
    case at::kBool:
      // A bool is one byte holding 0 or 1: SUM is a logical or (MAX), PRODUCT a logical and (MIN).
      TORCH_CHECK(op != trellisAvg, ctx, ": ReduceOp.AVG of a bool tensor is not defined");
      if (op == trellisSum) op = trellisMax;
      if (op == trellisProd) op = trellisMin;
      return {trellisUint8, op, 1};
    case at::kComplexHalf:
    case at::kComplexFloat:
    case at::kComplexDouble:
      TORCH_CHECK(op == trellisSum || op == trellisAvg, ctx, ": ReduceOp.", opName(rop.op_), " of a ", st,
                  " tensor is not defined (SUM and AVG are)");
      return {st == at::kComplexHalf ? trellisFloat16 : st == at::kComplexFloat ? trellisFloat32 : trellisFloat64,
              op, 2};
    default:
      TORCH_CHECK(false, ctx, ": Trellis cannot reduce dtype ", st,
                  " (it reduces Bool, Byte, Char, Int, Long, Half, BFloat16, Float, Double, and complex with "
                  "SUM/AVG)");
  }
  return {};  // not reached
}

void checkTensor(const at::Tensor& t, const std::string& ctx, const char* role) {
  TORCH_CHECK(t.defined(), ctx, ": the ", role, " tensor is undefined");
  TORCH_CHECK(t.device().is_cpu(), ctx, ": the ", role, " tensor is on ", t.device(),
              "; this build of Trellis takes CPU tensors only");
  TORCH_CHECK(t.layout() == at::kStrided, ctx, ": the ", role, " tensor has layout ", t.layout(),
              "; only dense (strided) tensors are supported");
}

/// An output tensor with elements sharing memory (expanded, stride 0) cannot take one value each.
void checkWritable(const at::Tensor& t, const std::string& ctx, const char* role) {
  checkTensor(t, ctx, role);
  TORCH_CHECK(at::has_internal_overlap(t) != at::MemOverlap::Yes, ctx, ": the ", role,
              " tensor has elements sharing memory (sizes ", t.sizes(), ", strides ", t.strides(),
              "); pass a tensor that can hold one value per element");
}

at::Tensor& single(std::vector<at::Tensor>& ts, const std::string& ctx) {
  TORCH_CHECK(ts.size() == 1, ctx, ": takes exactly one tensor per rank (got ", ts.size(), ")");
  return ts[0];
}

void checkRoot(int64_t root, int size, const std::string& ctx) {
  TORCH_CHECK(root >= 0 && root < size, ctx, ": root rank ", root, " out of range [0, ", size, ")");
}

void checkSameKind(const at::Tensor& t, const at::Tensor& ref, int64_t numel, const std::string& ctx,
                   const std::string& role) {
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), ctx, ": ", role, " has dtype ", t.scalar_type(), ", expected ",
              ref.scalar_type());
  TORCH_CHECK(numel < 0 || t.numel() == numel, ctx, ": ", role, " has ", t.numel(), " elements, expected ", numel);
}

/// The buffer Trellis works on: `t` itself when it is contiguous, else a contiguous copy.
at::Tensor contiguousBuf(const at::Tensor& t) { return t.is_contiguous() ? t : t.contiguous(); }

/// Copies `buf` back into `t` after the call when `buf` is a staging copy (progress thread).
std::function<void()> copyBack(const at::Tensor& t, const at::Tensor& buf) {
  if (buf.is_same(t)) return {};
  return [t, buf]() mutable { t.copy_(buf); };
}

size_t nbytes(const at::Tensor& t) { return static_cast<size_t>(t.numel()) * t.element_size(); }

char* bytePtr(const at::Tensor& t) { return static_cast<char*>(t.data_ptr()); }

/// The address of a buffer; a valid one for zero bytes too (an empty tensor may have none).
void* addressOf(const at::Tensor& t) {
  static char empty;
  return t.numel() ? t.data_ptr() : &empty;
}

/// Whether two contiguous buffers share any byte.
bool overlaps(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0) return false;
  const char* a0 = bytePtr(a);
  const char* b0 = bytePtr(b);
  return a0 < b0 + nbytes(b) && b0 < a0 + nbytes(a);
}

/// One contiguous buffer holding `ts` one after the other (a copy).
at::Tensor flatten(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> flat;
  flat.reserve(ts.size());
  for (const at::Tensor& t : ts) flat.push_back(t.reshape({-1}));
  return at::cat(flat);
}

/// Copies consecutive pieces of `flat` into `outs` (progress thread).
void unflatten(const at::Tensor& flat, std::vector<at::Tensor>& outs) {
  int64_t offset = 0;
  for (at::Tensor& o : outs) {
    o.copy_(flat.narrow(0, offset, o.numel()).view(o.sizes()));
    offset += o.numel();
  }
}

std::string shape(const char* name, const at::Tensor& t) {
  return std::string(name) + " of " + std::to_string(t.numel()) + " x " + c10::toString(t.scalar_type());
}

std::string shape(const char* name, const at::Tensor& t, const ReduceOp& op) {
  return shape(name, t) + " (" + opName(op.op_) + ")";
}

/// Number of elements in one index of dimension 0 (the unit of alltoall split sizes).
int64_t rowElems(const at::Tensor& t) {
  int64_t n = 1;
  for (int64_t d = 1; d < t.dim(); ++d) n *= t.size(d);
  return n;
}

/// Per-peer byte counts and displacements from dim-0 split sizes (even when `splits` is empty).
void splitCounts(const at::Tensor& t, const std::vector<int64_t>& splits, int size, const std::string& ctx,
                 const char* role, std::vector<size_t>& counts, std::vector<size_t>& displs) {
  TORCH_CHECK(t.dim() >= 1, ctx, ": the ", role, " tensor is 0-dimensional; split sizes index dimension 0");
  std::vector<int64_t> s = splits;
  if (s.empty()) {
    TORCH_CHECK(t.size(0) % size == 0, ctx, ": the ", role, " tensor's dimension 0 (", t.size(0),
                ") does not divide evenly among ", size, " ranks; pass split sizes");
    s.assign(size, t.size(0) / size);
  }
  TORCH_CHECK(static_cast<int>(s.size()) == size, ctx, ": ", s.size(), " ", role, " split sizes for ", size,
              " ranks");
  const size_t row = static_cast<size_t>(rowElems(t)) * t.element_size();
  int64_t total = 0;
  counts.assign(size, 0);
  displs.assign(size, 0);
  for (int r = 0; r < size; ++r) {
    TORCH_CHECK(s[r] >= 0, ctx, ": ", role, " split size ", s[r], " for rank ", r, " is negative");
    counts[r] = static_cast<size_t>(s[r]) * row;
    displs[r] = static_cast<size_t>(total) * row;
    total += s[r];
  }
  TORCH_CHECK(total == t.size(0), ctx, ": ", role, " split sizes add up to ", total, " but dimension 0 is ",
              t.size(0));
}

}  // namespace

Collectives::Collectives(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}

std::unique_ptr<Collectives> Collectives::create(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                 std::chrono::milliseconds timeout) {
  static const char* const kKey = "trellis_unique_id";
  const std::string who = "trellis: " + describe(rank, size, "torch");
  TORCH_CHECK(size >= 1 && rank >= 0 && rank < size, who, ": invalid rank/size");
  trellisUniqueId id;
  if (rank == 0) {
    trellisResult_t r = trellisGetUniqueId(&id);
    TORCH_CHECK(r == trellisSuccess, who, ": trellisGetUniqueId failed: ", trellisGetErrorString(r), ": ",
                trellisGetLastError(nullptr));
    store->set(kKey, std::vector<uint8_t>(id.internal, id.internal + sizeof id.internal));
  } else {
    std::vector<uint8_t> bytes = store->get(kKey);  // blocks until rank 0 has set it
    TORCH_CHECK(bytes.size() == sizeof id.internal, who, ": the unique id under store key '", kKey, "' has ",
                bytes.size(), " bytes, expected ", sizeof id.internal);
    std::memcpy(id.internal, bytes.data(), bytes.size());
  }
  const int seconds = static_cast<int>(std::ceil(timeout.count() / 1000.0));
  return std::make_unique<Collectives>(std::make_unique<Engine>(id, rank, size, seconds, "torch"));
}

std::string Collectives::where() const {
  return "trellis: " + describe(engine_->rank(), engine_->size(), engine_->name());
}

WorkPtr Collectives::submit(OpType type, const char* title, std::string what, std::vector<at::Tensor> outputs,
                            std::function<trellisResult_t(trellisComm_t)> post, std::function<void()> finish,
                            bool p2p) {
  auto work = c10::make_intrusive<Work>(engine_->rank(), type, title, std::move(outputs), what);
  Op op;
  op.what = what;
  op.p2p = p2p;
  op.post = std::move(post);
  op.done = [work, finish = std::move(finish), prefix = where(), what](const Outcome& o) {
    Outcome out = o;
    if (out.ok() && finish) {
      try {
        at::NoGradGuard noGrad;
        finish();
      } catch (const std::exception& e) {
        out.result = trellisInternalError;
        out.message = prefix + ": " + what + ": copying the result into the output tensors failed: " + e.what();
      }
    }
    work->complete(out);
  };
  {
    std::lock_guard<std::mutex> lock(coalesceMu_);
    if (coalescing_) {
      coalesced_.push_back(std::move(op));
      return work;
    }
  }
  engine_->post(std::move(op));
  return work;
}

void Collectives::startCoalescing() {
  std::lock_guard<std::mutex> lock(coalesceMu_);
  TORCH_CHECK(!coalescing_, where(), ": startCoalescing called twice without endCoalescing");
  coalescing_ = true;
}

void Collectives::endCoalescing() {
  std::vector<Op> ops;
  {
    std::lock_guard<std::mutex> lock(coalesceMu_);
    TORCH_CHECK(coalescing_, where(), ": endCoalescing without startCoalescing");
    coalescing_ = false;
    ops.swap(coalesced_);
  }
  engine_->postGroup(std::move(ops));
}

WorkPtr Collectives::allreduce(std::vector<at::Tensor>& tensors, const c10d::AllreduceOptions& opts) {
  const std::string ctx = where() + ": allreduce";
  at::Tensor& t = single(tensors, ctx);
  checkWritable(t, ctx, "");
  const Reduction red = reductionFor(t.scalar_type(), opts.reduceOp, ctx);
  at::NoGradGuard noGrad;
  at::Tensor buf = contiguousBuf(t);
  const size_t count = static_cast<size_t>(t.numel() * red.perElement);
  return submit(
      OpType::ALLREDUCE, "trellis:all_reduce", shape("allreduce", t, opts.reduceOp), {t},
      [buf, count, red](trellisComm_t c) {
        if (count == 0) return trellisSuccess;
        return trellisAllReduce(buf.data_ptr(), buf.data_ptr(), count, red.type, red.op, c, nullptr);
      },
      copyBack(t, buf));
}

WorkPtr Collectives::allreduceCoalesced(std::vector<at::Tensor>& tensors,
                                        const c10d::AllreduceCoalescedOptions& opts) {
  const std::string ctx = where() + ": allreduce_coalesced";
  TORCH_CHECK(!tensors.empty(), ctx, ": no tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    checkWritable(tensors[i], ctx, "");
    checkSameKind(tensors[i], tensors[0], -1, ctx, "tensor " + std::to_string(i));
  }
  const Reduction red = reductionFor(tensors[0].scalar_type(), opts.reduceOp, ctx);
  at::NoGradGuard noGrad;
  at::Tensor flat = flatten(tensors);
  const size_t count = static_cast<size_t>(flat.numel() * red.perElement);
  std::vector<at::Tensor> outs = tensors;
  return submit(
      OpType::ALLREDUCE_COALESCED, "trellis:all_reduce_coalesced", shape("allreduce_coalesced", flat, opts.reduceOp),
      tensors,
      [flat, count, red](trellisComm_t c) {
        if (count == 0) return trellisSuccess;
        return trellisAllReduce(flat.data_ptr(), flat.data_ptr(), count, red.type, red.op, c, nullptr);
      },
      [flat, outs]() mutable { unflatten(flat, outs); });
}

WorkPtr Collectives::broadcast(std::vector<at::Tensor>& tensors, const c10d::BroadcastOptions& opts) {
  const std::string ctx = where() + ": broadcast";
  at::Tensor& t = single(tensors, ctx);
  checkWritable(t, ctx, "");
  checkRoot(opts.rootRank, engine_->size(), ctx);
  TORCH_CHECK(opts.rootTensor == 0, ctx, ": rootTensor ", opts.rootTensor, " but there is one tensor per rank");
  at::NoGradGuard noGrad;
  at::Tensor buf = contiguousBuf(t);
  const int root = static_cast<int>(opts.rootRank);
  const size_t bytes = nbytes(t);
  return submit(
      OpType::BROADCAST, "trellis:broadcast", shape("broadcast", t) + " from rank " + std::to_string(root), {t},
      [buf, bytes, root](trellisComm_t c) {
        if (bytes == 0) return trellisSuccess;
        return trellisBroadcast(buf.data_ptr(), buf.data_ptr(), bytes, trellisUint8, root, c, nullptr);
      },
      root == engine_->rank() ? std::function<void()>() : copyBack(t, buf));
}

WorkPtr Collectives::reduce(std::vector<at::Tensor>& tensors, const c10d::ReduceOptions& opts) {
  const std::string ctx = where() + ": reduce";
  at::Tensor& t = single(tensors, ctx);
  checkWritable(t, ctx, "");
  checkRoot(opts.rootRank, engine_->size(), ctx);
  TORCH_CHECK(opts.rootTensor == 0, ctx, ": rootTensor ", opts.rootTensor, " but there is one tensor per rank");
  const Reduction red = reductionFor(t.scalar_type(), opts.reduceOp, ctx);
  at::NoGradGuard noGrad;
  at::Tensor buf = contiguousBuf(t);
  const int root = static_cast<int>(opts.rootRank);
  const size_t count = static_cast<size_t>(t.numel() * red.perElement);
  return submit(
      OpType::REDUCE, "trellis:reduce", shape("reduce", t, opts.reduceOp) + " to rank " + std::to_string(root), {t},
      [buf, count, red, root](trellisComm_t c) {
        if (count == 0) return trellisSuccess;
        return trellisReduce(buf.data_ptr(), buf.data_ptr(), count, red.type, red.op, root, c, nullptr);
      },
      root == engine_->rank() ? copyBack(t, buf) : std::function<void()>());
}

WorkPtr Collectives::allgather(std::vector<std::vector<at::Tensor>>& outputs, std::vector<at::Tensor>& inputs,
                               const c10d::AllgatherOptions&) {
  const std::string ctx = where() + ": allgather";
  at::Tensor& in = single(inputs, ctx);
  checkTensor(in, ctx, "input");
  TORCH_CHECK(outputs.size() == 1, ctx, ": takes one output list per rank (got ", outputs.size(), ")");
  std::vector<at::Tensor>& outs = outputs[0];
  const int size = engine_->size();
  TORCH_CHECK(static_cast<int>(outs.size()) == size, ctx, ": the output list has ", outs.size(),
              " tensors for ", size, " ranks");
  for (int r = 0; r < size; ++r) {
    checkWritable(outs[r], ctx, "output");
    checkSameKind(outs[r], in, in.numel(), ctx, "output tensor " + std::to_string(r));
  }
  at::NoGradGuard noGrad;
  at::Tensor inBuf = contiguousBuf(in);
  at::Tensor flat = at::empty({size * in.numel()}, in.options());
  const size_t bytes = nbytes(in);
  return submit(
      OpType::ALLGATHER, "trellis:all_gather", shape("allgather", in), outs,
      [inBuf, flat, bytes](trellisComm_t c) {
        if (bytes == 0) return trellisSuccess;
        return trellisAllGather(inBuf.data_ptr(), flat.data_ptr(), bytes, trellisUint8, c, nullptr);
      },
      [flat, outs]() mutable { unflatten(flat, outs); });
}

WorkPtr Collectives::allgatherBase(at::Tensor& output, at::Tensor& input, const c10d::AllgatherOptions&) {
  const std::string ctx = where() + ": _allgather_base";
  checkTensor(input, ctx, "input");
  checkWritable(output, ctx, "output");
  const int size = engine_->size();
  checkSameKind(output, input, input.numel() * size, ctx, "the output tensor");
  at::NoGradGuard noGrad;
  at::Tensor outBuf = contiguousBuf(output);
  at::Tensor inBuf = contiguousBuf(input);
  const size_t bytes = nbytes(input);
  // In place only when the input is this rank's slot of the output; any other overlap gets a copy.
  if (overlaps(inBuf, outBuf) && bytePtr(inBuf) != bytePtr(outBuf) + engine_->rank() * bytes) inBuf = inBuf.clone();
  return submit(
      OpType::_ALLGATHER_BASE, "trellis:_all_gather_base", shape("_allgather_base", input), {output},
      [inBuf, outBuf, bytes](trellisComm_t c) {
        if (bytes == 0) return trellisSuccess;
        return trellisAllGather(inBuf.data_ptr(), outBuf.data_ptr(), bytes, trellisUint8, c, nullptr);
      },
      copyBack(output, outBuf));
}

WorkPtr Collectives::gather(std::vector<std::vector<at::Tensor>>& outputs, std::vector<at::Tensor>& inputs,
                            const c10d::GatherOptions& opts) {
  const std::string ctx = where() + ": gather";
  at::Tensor& in = single(inputs, ctx);
  checkTensor(in, ctx, "input");
  const int size = engine_->size();
  const int rank = engine_->rank();
  checkRoot(opts.rootRank, size, ctx);
  const int root = static_cast<int>(opts.rootRank);
  const size_t bytes = nbytes(in);
  at::NoGradGuard noGrad;
  at::Tensor inBuf = contiguousBuf(in);
  const std::string what = shape("gather", in) + " to rank " + std::to_string(root);
  if (rank != root) {
    TORCH_CHECK(outputs.empty() || (outputs.size() == 1 && outputs[0].empty()), ctx,
                ": only the root rank passes an output list");
    return submit(OpType::GATHER, "trellis:gather", what, {}, [inBuf, bytes, root](trellisComm_t c) {
      if (bytes == 0) return trellisSuccess;
      return trellisSend(inBuf.data_ptr(), bytes, trellisUint8, root, c, nullptr);
    }, {});
  }
  TORCH_CHECK(outputs.size() == 1 && static_cast<int>(outputs[0].size()) == size, ctx,
              ": the root rank passes one output list of ", size, " tensors");
  std::vector<at::Tensor>& outs = outputs[0];
  for (int r = 0; r < size; ++r) {
    checkWritable(outs[r], ctx, "output");
    checkSameKind(outs[r], in, in.numel(), ctx, "output tensor " + std::to_string(r));
  }
  at::Tensor flat = at::empty({size * in.numel()}, in.options());
  return submit(
      OpType::GATHER, "trellis:gather", what, outs,
      [inBuf, flat, bytes, size, rank](trellisComm_t c) {
        if (bytes == 0) return trellisSuccess;
        std::memcpy(bytePtr(flat) + rank * bytes, inBuf.data_ptr(), bytes);
        trellisGroupStart();
        trellisResult_t first = trellisSuccess;
        for (int r = 0; r < size; ++r) {
          if (r == rank) continue;
          trellisResult_t q = trellisRecv(bytePtr(flat) + r * bytes, bytes, trellisUint8, r, c, nullptr);
          if (first == trellisSuccess) first = q;
        }
        trellisResult_t end = trellisGroupEnd();
        return first != trellisSuccess ? first : end;
      },
      [flat, outs]() mutable { unflatten(flat, outs); });
}

WorkPtr Collectives::scatter(std::vector<at::Tensor>& outputs, std::vector<std::vector<at::Tensor>>& inputs,
                             const c10d::ScatterOptions& opts) {
  const std::string ctx = where() + ": scatter";
  at::Tensor& out = single(outputs, ctx);
  checkWritable(out, ctx, "output");
  const int size = engine_->size();
  const int rank = engine_->rank();
  checkRoot(opts.rootRank, size, ctx);
  const int root = static_cast<int>(opts.rootRank);
  const size_t bytes = nbytes(out);
  at::NoGradGuard noGrad;
  at::Tensor outBuf = contiguousBuf(out);
  const std::string what = shape("scatter", out) + " from rank " + std::to_string(root);
  if (rank != root) {
    TORCH_CHECK(inputs.empty() || (inputs.size() == 1 && inputs[0].empty()), ctx,
                ": only the root rank passes an input list");
    return submit(
        OpType::SCATTER, "trellis:scatter", what, {out},
        [outBuf, bytes, root](trellisComm_t c) {
          if (bytes == 0) return trellisSuccess;
          return trellisRecv(outBuf.data_ptr(), bytes, trellisUint8, root, c, nullptr);
        },
        copyBack(out, outBuf));
  }
  TORCH_CHECK(inputs.size() == 1 && static_cast<int>(inputs[0].size()) == size, ctx,
              ": the root rank passes one input list of ", size, " tensors");
  for (int r = 0; r < size; ++r) {
    checkTensor(inputs[0][r], ctx, "input");
    checkSameKind(inputs[0][r], out, out.numel(), ctx, "input tensor " + std::to_string(r));
  }
  at::Tensor flat = flatten(inputs[0]);
  return submit(
      OpType::SCATTER, "trellis:scatter", what, {out},
      [outBuf, flat, bytes, size, rank](trellisComm_t c) {
        if (bytes == 0) return trellisSuccess;
        std::memcpy(outBuf.data_ptr(), bytePtr(flat) + rank * bytes, bytes);
        trellisGroupStart();
        trellisResult_t first = trellisSuccess;
        for (int r = 0; r < size; ++r) {
          if (r == rank) continue;
          trellisResult_t q = trellisSend(bytePtr(flat) + r * bytes, bytes, trellisUint8, r, c, nullptr);
          if (first == trellisSuccess) first = q;
        }
        trellisResult_t end = trellisGroupEnd();
        return first != trellisSuccess ? first : end;
      },
      copyBack(out, outBuf));
}

WorkPtr Collectives::reduceScatter(std::vector<at::Tensor>& outputs, std::vector<std::vector<at::Tensor>>& inputs,
                                   const c10d::ReduceScatterOptions& opts) {
  const std::string ctx = where() + ": reduce_scatter";
  at::Tensor& out = single(outputs, ctx);
  checkWritable(out, ctx, "output");
  TORCH_CHECK(inputs.size() == 1, ctx, ": takes one input list per rank (got ", inputs.size(), ")");
  const int size = engine_->size();
  TORCH_CHECK(static_cast<int>(inputs[0].size()) == size, ctx, ": the input list has ", inputs[0].size(),
              " tensors for ", size, " ranks");
  for (int r = 0; r < size; ++r) {
    checkTensor(inputs[0][r], ctx, "input");
    checkSameKind(inputs[0][r], out, out.numel(), ctx, "input tensor " + std::to_string(r));
  }
  const Reduction red = reductionFor(out.scalar_type(), opts.reduceOp, ctx);
  at::NoGradGuard noGrad;
  at::Tensor flat = flatten(inputs[0]);
  at::Tensor outBuf = contiguousBuf(out);
  const size_t count = static_cast<size_t>(out.numel() * red.perElement);
  return submit(
      OpType::REDUCE_SCATTER, "trellis:reduce_scatter", shape("reduce_scatter", out, opts.reduceOp), {out},
      [flat, outBuf, count, red](trellisComm_t c) {
        if (count == 0) return trellisSuccess;
        return trellisReduceScatter(flat.data_ptr(), outBuf.data_ptr(), count, red.type, red.op, c, nullptr);
      },
      copyBack(out, outBuf));
}

WorkPtr Collectives::reduceScatterBase(at::Tensor& output, at::Tensor& input,
                                       const c10d::ReduceScatterOptions& opts) {
  const std::string ctx = where() + ": _reduce_scatter_base";
  checkTensor(input, ctx, "input");
  checkWritable(output, ctx, "output");
  const int size = engine_->size();
  checkSameKind(input, output, output.numel() * size, ctx, "the input tensor");
  const Reduction red = reductionFor(output.scalar_type(), opts.reduceOp, ctx);
  at::NoGradGuard noGrad;
  at::Tensor outBuf = contiguousBuf(output);
  at::Tensor inBuf = contiguousBuf(input);
  // In place only when the output is this rank's slot of the input; any other overlap gets a copy.
  if (overlaps(inBuf, outBuf) && bytePtr(outBuf) != bytePtr(inBuf) + engine_->rank() * nbytes(output)) {
    inBuf = inBuf.clone();
  }
  const size_t count = static_cast<size_t>(output.numel() * red.perElement);
  return submit(
      OpType::_REDUCE_SCATTER_BASE, "trellis:_reduce_scatter_base",
      shape("_reduce_scatter_base", output, opts.reduceOp), {output},
      [inBuf, outBuf, count, red](trellisComm_t c) {
        if (count == 0) return trellisSuccess;
        return trellisReduceScatter(inBuf.data_ptr(), outBuf.data_ptr(), count, red.type, red.op, c, nullptr);
      },
      copyBack(output, outBuf));
}

WorkPtr Collectives::alltoallBase(at::Tensor& output, at::Tensor& input, std::vector<int64_t>& outputSplits,
                                  std::vector<int64_t>& inputSplits, const c10d::AllToAllOptions&) {
  const std::string ctx = where() + ": alltoall_base";
  checkTensor(input, ctx, "input");
  checkWritable(output, ctx, "output");
  checkSameKind(output, input, -1, ctx, "the output tensor");
  const int size = engine_->size();
  at::NoGradGuard noGrad;
  at::Tensor outBuf = contiguousBuf(output);
  at::Tensor inBuf = contiguousBuf(input);
  if (overlaps(inBuf, outBuf)) inBuf = inBuf.clone();  // Trellis's AlltoAll is never in place
  std::function<void()> finish = copyBack(output, outBuf);
  if (outputSplits.empty() && inputSplits.empty()) {
    TORCH_CHECK(input.numel() % size == 0, ctx, ": the input's ", input.numel(), " elements do not divide among ",
                size, " ranks");
    TORCH_CHECK(output.numel() == input.numel(), ctx, ": the output has ", output.numel(),
                " elements, the input ", input.numel());
    const size_t per = nbytes(input) / size;
    return submit(
        OpType::ALLTOALL_BASE, "trellis:all_to_all", shape("alltoall_base", input), {output},
        [inBuf, outBuf, per](trellisComm_t c) {
          if (per == 0) return trellisSuccess;
          return trellisAlltoAll(inBuf.data_ptr(), outBuf.data_ptr(), per, trellisUint8, c, nullptr);
        },
        std::move(finish));
  }
  std::vector<size_t> sendCounts, sendDispls, recvCounts, recvDispls;
  splitCounts(input, inputSplits, size, ctx, "input", sendCounts, sendDispls);
  splitCounts(output, outputSplits, size, ctx, "output", recvCounts, recvDispls);
  return submit(
      OpType::ALLTOALL_BASE, "trellis:all_to_all", shape("alltoall_base (uneven)", input), {output},
      [inBuf, outBuf, sendCounts, sendDispls, recvCounts, recvDispls](trellisComm_t c) {
        return trellisAlltoAllv(addressOf(inBuf), sendCounts.data(), sendDispls.data(), addressOf(outBuf), recvCounts.data(),
                                recvDispls.data(), trellisUint8, c, nullptr);
      },
      std::move(finish));
}

WorkPtr Collectives::alltoall(std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
                              const c10d::AllToAllOptions&) {
  const std::string ctx = where() + ": alltoall";
  const int size = engine_->size();
  TORCH_CHECK(static_cast<int>(inputs.size()) == size && static_cast<int>(outputs.size()) == size, ctx, ": ",
              inputs.size(), " input and ", outputs.size(), " output tensors for ", size, " ranks");
  for (int r = 0; r < size; ++r) {
    checkTensor(inputs[r], ctx, "input");
    checkWritable(outputs[r], ctx, "output");
    checkSameKind(inputs[r], inputs[0], -1, ctx, "input tensor " + std::to_string(r));
    checkSameKind(outputs[r], inputs[0], -1, ctx, "output tensor " + std::to_string(r));
  }
  at::NoGradGuard noGrad;
  at::Tensor flatIn = flatten(inputs);
  int64_t outElems = 0;
  for (const at::Tensor& o : outputs) outElems += o.numel();
  at::Tensor flatOut = at::empty({outElems}, inputs[0].options());
  std::vector<size_t> sendCounts(size), sendDispls(size), recvCounts(size), recvDispls(size);
  size_t s = 0, d = 0;
  for (int r = 0; r < size; ++r) {
    sendCounts[r] = nbytes(inputs[r]);
    sendDispls[r] = s;
    s += sendCounts[r];
    recvCounts[r] = nbytes(outputs[r]);
    recvDispls[r] = d;
    d += recvCounts[r];
  }
  std::vector<at::Tensor> outs = outputs;
  return submit(
      OpType::ALLTOALL, "trellis:all_to_all", shape("alltoall", flatIn), outputs,
      [flatIn, flatOut, sendCounts, sendDispls, recvCounts, recvDispls](trellisComm_t c) {
        return trellisAlltoAllv(addressOf(flatIn), sendCounts.data(), sendDispls.data(), addressOf(flatOut), recvCounts.data(),
                                recvDispls.data(), trellisUint8, c, nullptr);
      },
      [flatOut, outs]() mutable { unflatten(flatOut, outs); });
}

WorkPtr Collectives::send(std::vector<at::Tensor>& tensors, int dstRank, int tag) {
  const std::string ctx = where() + ": send to rank " + std::to_string(dstRank);
  at::Tensor& t = single(tensors, ctx);
  checkTensor(t, ctx, "");
  TORCH_CHECK(dstRank >= 0 && dstRank < engine_->size() && dstRank != engine_->rank(), ctx,
              ": the peer must be another rank in [0, ", engine_->size(), ")");
  TORCH_CHECK(tag == 0, ctx, ": tag ", tag,
              ": Trellis matches the messages between two ranks in posting order and has no tags (use tag 0)");
  at::NoGradGuard noGrad;
  at::Tensor buf = contiguousBuf(t);
  const size_t bytes = nbytes(t);
  return submit(
      OpType::SEND, "trellis:send", shape("send", t) + " to rank " + std::to_string(dstRank), {t},
      [buf, bytes, dstRank](trellisComm_t c) {
        if (bytes == 0) return trellisSuccess;
        return trellisSend(buf.data_ptr(), bytes, trellisUint8, dstRank, c, nullptr);
      },
      {}, /*p2p=*/true);
}

WorkPtr Collectives::recv(std::vector<at::Tensor>& tensors, int srcRank, int tag) {
  const std::string ctx = where() + ": recv from rank " + std::to_string(srcRank);
  at::Tensor& t = single(tensors, ctx);
  checkWritable(t, ctx, "");
  TORCH_CHECK(srcRank >= 0 && srcRank < engine_->size() && srcRank != engine_->rank(), ctx,
              ": the peer must be another rank in [0, ", engine_->size(), ")");
  TORCH_CHECK(tag == 0, ctx, ": tag ", tag,
              ": Trellis matches the messages between two ranks in posting order and has no tags (use tag 0)");
  at::NoGradGuard noGrad;
  at::Tensor buf = contiguousBuf(t);
  const size_t bytes = nbytes(t);
  return submit(
      OpType::RECV, "trellis:recv", shape("recv", t) + " from rank " + std::to_string(srcRank), {t},
      [buf, bytes, srcRank](trellisComm_t c) {
        if (bytes == 0) return trellisSuccess;
        return trellisRecv(buf.data_ptr(), bytes, trellisUint8, srcRank, c, nullptr);
      },
      copyBack(t, buf), /*p2p=*/true);
}

WorkPtr Collectives::barrier(const c10d::BarrierOptions&) {
  // A one-byte AllReduce: it completes on a rank only once every rank has reached it, and since the
  // engine runs operations in order, after everything this rank queued before it.
  at::Tensor flag = at::zeros({1}, at::kByte);
  return submit(
      OpType::BARRIER, "trellis:barrier", "barrier", {},
      [flag](trellisComm_t c) {
        return trellisAllReduce(flag.data_ptr(), flag.data_ptr(), 1, trellisUint8, trellisMax, c, nullptr);
      },
      {});
}

}  // namespace trellis_torch
