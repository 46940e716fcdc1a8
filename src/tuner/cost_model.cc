#include "tuner/cost_model.h"

#include <optional>

#include "tuner/model_internal.h"

namespace trellis::tuner {

namespace model {
Prediction predict(const Shape& s, Engine& e, const algos::Hierarchy* h, const std::vector<int>* topo,
                   algos::Coll coll, std::string_view algo, double bytes, const Knobs& knobs);  // model_algos.cc
}

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
  Engine engine;  // scratch loads, reset after every step
  // Size-independent structure of the topology-aware algorithms, built on first use.
  std::optional<algos::Hierarchy> hierarchy;
  std::optional<std::vector<int>> topoOrder;
};

CostModel::CostModel(Shape shape) : impl_(std::make_unique<Impl>(std::move(shape))) {}
CostModel::~CostModel() = default;
CostModel::CostModel(CostModel&&) noexcept = default;
CostModel& CostModel::operator=(CostModel&&) noexcept = default;

const Shape& CostModel::shape() const { return impl_->shape; }

Prediction CostModel::predict(algos::Coll coll, std::string_view algo, double bytes, const Knobs& knobs) const {
  Impl& m = *impl_;
  if (algoTraits(coll, algo).topologyAware && !m.hierarchy) {
    m.hierarchy = model::hierarchyOf(m.shape);
    m.topoOrder = m.shape.ringOrder.size() == m.shape.nodeOfRank.size() ? m.shape.ringOrder
                                                                          : model::topoRingOrder(m.shape);
  }
  return model::predict(m.shape, m.engine, m.hierarchy ? &*m.hierarchy : nullptr, m.topoOrder ? &*m.topoOrder : nullptr,
                        coll, algo, bytes, knobs);
}

}  // namespace trellis::tuner
