#include "tuner/cost_model.h"

#include "tuner/model_engine.h"

namespace trellis::tuner {

Prediction predictWith(const Shape& s, Engine& e, algos::Coll coll, std::string_view algo, double bytes,
                       const Knobs& knobs);  // model_algos.cc

double busFactor(algos::Coll coll, int n) {
  if (n <= 1) return 1;
  switch (coll) {
    case algos::Coll::kAllReduce: return 2.0 * (n - 1) / n;
    case algos::Coll::kAllGather:
    case algos::Coll::kReduceScatter:
    case algos::Coll::kAlltoAll:
    case algos::Coll::kAlltoAllv: return static_cast<double>(n - 1) / n;
    default: return 1;
  }
}

struct CostModel::Impl {
  explicit Impl(Shape sh) : shape(std::move(sh)), engine(shape) {}
  Shape shape;
  mutable Engine engine;  // scratch loads, reset after every step
};

CostModel::CostModel(Shape shape) : impl_(std::make_unique<Impl>(std::move(shape))) {}
CostModel::~CostModel() = default;
CostModel::CostModel(CostModel&&) noexcept = default;
CostModel& CostModel::operator=(CostModel&&) noexcept = default;

const Shape& CostModel::shape() const { return impl_->shape; }

Prediction CostModel::predict(algos::Coll coll, std::string_view algo, double bytes, const Knobs& knobs) const {
  return predictWith(impl_->shape, impl_->engine, coll, algo, bytes, knobs);
}

}  // namespace trellis::tuner
