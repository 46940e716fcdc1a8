#include "tuner/select.h"

#include <algorithm>

#include "core/log.h"
#include "core/params.h"

namespace trellis::tuner {

static Param<std::string> kAlgo("TRELLIS_ALGO", "",
                                "force algorithms: <collective>:<algo>,... e.g. allreduce:ring,broadcast:binomial "
                                "(trellis-info algos lists them)");
static Param<int64_t> kRdMax("TRELLIS_ALLREDUCE_RD_MAX_BYTES", 16 * 1024,
                             "largest AllReduce that uses recursive doubling");
static Param<int64_t> kRabMax("TRELLIS_ALLREDUCE_RABENSEIFNER_MAX_BYTES", 1 << 20,
                              "largest AllReduce that uses Rabenseifner (above: ring)");
static Param<int64_t> kDirectMin("TRELLIS_DIRECT_MIN_BYTES", 64 * 1024,
                                  "on one host with single copy, collectives from this size read peers' buffers "
                                  "directly (the \"direct\" algorithms)");
static Param<int64_t> kBcastTreeMax("TRELLIS_BROADCAST_TREE_MAX_BYTES", 512 * 1024,
                                    "largest Broadcast that uses the binomial tree on more than 3 ranks");

Result<AlgoOverrides> parseAlgoOverrides(const std::string& spec) {
  AlgoOverrides out{};
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    std::string tok = spec.substr(pos, comma - pos);
    pos = comma + 1;
    if (tok.empty()) continue;
    size_t colon = tok.find(':');
    if (colon == std::string::npos)
      return invalidArgument("TRELLIS_ALGO token '%s' is not <collective>:<algorithm>", tok.c_str());
    algos::Coll coll;
    std::string cname = tok.substr(0, colon), aname = tok.substr(colon + 1);
    if (!algos::parseColl(cname, &coll))
      return invalidArgument("TRELLIS_ALGO token '%s': unknown collective '%s' (allreduce, broadcast, reduce, "
                             "allgather, reducescatter, alltoall, alltoallv)", tok.c_str(), cname.c_str());
    const algos::Algorithm* a = algos::findAlgorithm(coll, aname);
    if (a == nullptr) {
      std::string valid;
      for (const auto& x : algos::allAlgorithms())
        if (x.coll == coll) valid += (valid.empty() ? "" : ", ") + std::string(x.name);
      return invalidArgument("TRELLIS_ALGO token '%s': %s has no algorithm '%s' (valid: %s)", tok.c_str(),
                             cname.c_str(), aname.c_str(), valid.c_str());
    }
    out[static_cast<size_t>(coll)] = a;
  }
  return out;
}

Tuner::Tuner(AlgoOverrides overrides)
    : overrides_(overrides),
      rdMax_(static_cast<size_t>(std::max<int64_t>(kRdMax.get(), 0))),
      rabMax_(static_cast<size_t>(std::max<int64_t>(kRabMax.get(), 0))),
      bcastTreeMax_(static_cast<size_t>(std::max<int64_t>(kBcastTreeMax.get(), 0))),
      directMin_(static_cast<size_t>(std::max<int64_t>(kDirectMin.get(), 0))) {}

Result<Tuner> Tuner::fromParams() {
  TRELLIS_ASSIGN_OR_RETURN(AlgoOverrides o, parseAlgoOverrides(kAlgo.get()));
  return Tuner(o);
}

const algos::Algorithm* Tuner::select(const algos::CollArgs& args, int nranks, bool direct,
                                      const topo::ClusterView* cluster) const {
  using algos::Coll;
  if (const algos::Algorithm* forced = overrides_[static_cast<size_t>(args.coll)]) {
    if (!forced->needsDirect || direct) return forced;
    TRELLIS_DEBUG(kTuner, "TRELLIS_ALGO %s:%s needs ranks that read each other's memory; choosing automatically",
                  algos::collName(args.coll), forced->name);
  }
  const size_t bytes = args.bytes();
  const char* name = nullptr;
  const bool useDirect = direct && nranks > 1 && bytes >= directMin_;
  if (useDirect && args.coll != Coll::kAlltoAllv) name = "direct";
  // Several nodes, some with several ranks: the topology-aware algorithms (simple rules; the cost
  // model replaces them).
  const bool multiNode = cluster != nullptr && cluster->nnodes() > 1 && cluster->maxLocal() > 1;
  // Small calls are latency-bound: the flat algorithms take fewer dependent steps (measured on the
  // emulated cluster, docs/PERFORMANCE.md: AllReduce up to rdMax, AlltoAll below 64 KiB per peer).
  constexpr size_t kHierMin = 64 * 1024;
  if (name == nullptr && multiNode) switch (args.coll) {
    case Coll::kAllReduce:
      if (bytes > rdMax_) name = "hier";
      break;
    case Coll::kReduceScatter:
    case Coll::kAllGather:
    case Coll::kBroadcast:
    case Coll::kReduce:
      if (bytes >= kHierMin) name = "hier";
      break;
    case Coll::kAlltoAll:
      if (bytes >= kHierMin) name = "rail";
      break;
    default: break;
  }
  if (name == nullptr) switch (args.coll) {
    case Coll::kAllReduce:
      if (bytes <= rdMax_) name = "rd";
      else if (bytes <= rabMax_ && nranks > 2) name = "rabenseifner";
      else name = "ring";
      break;
    case Coll::kBroadcast:
      name = (nranks <= 3 || bytes <= bcastTreeMax_) ? "binomial" : "scatter_allgather";
      break;
    case Coll::kReduce: name = "binomial"; break;
    case Coll::kAllGather: name = "ring"; break;
    case Coll::kReduceScatter: name = "ring"; break;
    case Coll::kAlltoAll:
    case Coll::kAlltoAllv: name = "pairwise"; break;
    case Coll::kCount: break;
  }
  const algos::Algorithm* a = algos::findAlgorithm(args.coll, name ? name : "");
  TRELLIS_DEBUG(kTuner, "%s %zu bytes on %d ranks -> %s", algos::collName(args.coll), bytes, nranks,
                a ? a->name : "(none)");
  return a;
}

}  // namespace trellis::tuner
