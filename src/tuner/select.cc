#include "tuner/select.h"

#include <algorithm>
#include <cmath>

#include "core/log.h"
#include "core/params.h"

namespace trellis::tuner {

static Param<std::string> kAlgo("TRELLIS_ALGO", "",
                                "force algorithms: <collective>:<algo>,... e.g. allreduce:ring,broadcast:binomial "
                                "(trellis-info algos lists them)");
static Param<std::string> kTune("TRELLIS_TUNE", "",
                                "adjust the tuner per collective, size range and team size, UCC style: "
                                "allreduce:0-64k:@rd#allreduce:64k-inf:@ring (grammar in docs/TUNER.md)");

namespace {

constexpr double kChunkTieMargin = 0.03;  // keep the default chunk unless another is 3% faster
constexpr double kAwareMargin = 0.03;     // see decideAt

std::string humanSize(double b) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) {
    b /= 1024;
    ++u;
  }
  return formatString(b == std::floor(b) ? "%.0f %s" : "%.1f %s", b, unit[u]);
}

std::string usText(double s) { return s < 0 ? std::string("-") : formatString("%.1f us", s * 1e6); }

// Quarter-octave bucket of a size, and the size the model is evaluated at for it (the bucket's
// geometric middle, so all sizes of a bucket are within 9% of it).
// Quarter-octave buckets: the index is cheap (every call computes it); the representative size
// (the geometric middle of the bucket) only matters when a bucket is first decided.
uint64_t bucketOf(uint64_t bytes) {
  if (bytes == 0) return 0;
  const int lz = 63 - __builtin_clzll(bytes);
  if (lz < 2) return 1 + static_cast<uint64_t>(lz) * 4 + ((bytes & 3) << 8);  // 1..3 B: exact sizes
  return 1 + static_cast<uint64_t>(lz) * 4 + ((bytes >> (lz - 2)) & 3);
}

double modelBytesOf(uint64_t bytes) {
  if (bytes == 0) return 0;
  const int lz = 63 - __builtin_clzll(bytes);
  if (lz < 2) return static_cast<double>(bytes);
  const uint64_t frac = (bytes >> (lz - 2)) & 3;
  const double lo = std::ldexp(static_cast<double>(4 + frac), lz - 2);
  const double hi = std::ldexp(static_cast<double>(5 + frac), lz - 2);
  return std::sqrt(lo * hi);
}

}  // namespace

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
    const algos::Algorithm* a = findAlgorithmOrAlias(coll, aname);
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

const std::vector<size_t>& chunkCandidates() {
  static const std::vector<size_t> k = {64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20};
  return k;
}

uint64_t ncclTestsSize(const algos::CollArgs& args, int nranks) {
  const uint64_t b = args.bytes();
  switch (args.coll) {
    case algos::Coll::kAllGather:
    case algos::Coll::kReduceScatter:
    case algos::Coll::kAlltoAll: return b * static_cast<uint64_t>(nranks);
    default: return b;
  }
}

Result<Tuner> Tuner::fromParams(Shape shape, size_t defaultChunk, bool chunkFixed, bool topologyAware) {
  TunerOptions o;
  o.flatOnly = !topologyAware;
  TRELLIS_ASSIGN_OR_RETURN(o.overrides, parseAlgoOverrides(kAlgo.get()));
  TRELLIS_ASSIGN_OR_RETURN(o.tune, parseTuneString(kTune.get()));
  if (o.tune.size() > 64) return invalidArgument("TRELLIS_TUNE has %zu entries; at most 64 are supported", o.tune.size());
  o.defaultChunk = defaultChunk;
  o.chunkFixed = chunkFixed;
  std::string bad = shape.validate();
  if (!bad.empty()) return invalidArgument("tuner shape: %s", bad.c_str());
  return Tuner(std::move(shape), std::move(o));
}

// Sizes of 4 B and more have buckets 9..256 (bucketOf); smaller ones take the locked path.
struct Tuner::FastTable {
  static constexpr size_t kBuckets = 257;
  std::array<std::atomic<const Decision*>, static_cast<size_t>(algos::Coll::kCount) * kBuckets> slot{};
};

Tuner::Tuner(Shape shape, TunerOptions options)
    : model_(std::make_unique<CostModel>(std::move(shape))), opts_(std::move(options)),
      fast_(std::make_unique<FastTable>()) {}
Tuner::Tuner(Tuner&& o) noexcept
    : model_(std::move(o.model_)), opts_(std::move(o.opts_)), cache_(std::move(o.cache_)), fast_(std::move(o.fast_)) {}
Tuner::~Tuner() = default;

bool Tuner::feasible(const algos::Algorithm* a) const { return a != nullptr && (!a->needsDirect || shape().direct); }

std::vector<const algos::Algorithm*> Tuner::algorithmsFor(algos::Coll coll) const {
  std::vector<const algos::Algorithm*> out;
  auto consider = [&](const algos::Algorithm& a) {
    if (a.coll != coll) return;
    if (opts_.flatOnly && algoTraits(a.coll, a.name).topologyAware) return;
    out.push_back(&a);
  };
  for (const algos::Algorithm& a : algos::allAlgorithms()) consider(a);
  if (opts_.includePlanned)
    for (const algos::Algorithm& a : plannedAlgorithms()) consider(a);
  return out;
}

Tuner::Candidate Tuner::best(const algos::Algorithm* a, double bytes, bool inPlace, size_t chunkSet,
                             int channelsSet) const {
  const AlgoTraits tr = algoTraits(a->coll, a->name);
  Knobs k;
  k.inPlace = inPlace;
  k.chunkBytes = chunkSet ? chunkSet : opts_.defaultChunk;
  k.channels = channelsSet ? std::min(channelsSet, tr.maxChannels) : 1;
  Candidate c{a, tr.usesChunk ? k.chunkBytes : 0, k.channels, model_->predict(a->coll, a->name, bytes, k)};
  if (!c.prediction.supported) return c;
  std::vector<int> channelOptions = {k.channels};
  if (!channelsSet)
    for (int ch = 2; ch <= tr.maxChannels; ch *= 2) channelOptions.push_back(ch);
  std::vector<size_t> chunkOptions = {k.chunkBytes};
  if (tr.usesChunk && !chunkSet && !opts_.chunkFixed)
    for (size_t ch : chunkCandidates())
      if (ch != k.chunkBytes && (ch <= bytes || ch == chunkCandidates().front())) chunkOptions.push_back(ch);
  for (int ch : channelOptions)
    for (size_t chunk : chunkOptions) {
      if (ch == k.channels && chunk == k.chunkBytes) continue;
      Knobs t = k;
      t.channels = ch;
      t.chunkBytes = chunk;
      Prediction p = model_->predict(a->coll, a->name, bytes, t);
      if (p.supported && p.seconds < c.prediction.seconds * (1 - kChunkTieMargin)) {
        c.prediction = p;
        c.chunkBytes = tr.usesChunk ? chunk : 0;
        c.channels = ch;
      }
    }
  return c;
}

std::vector<Tuner::Candidate> Tuner::candidates(algos::Coll coll, uint64_t bytes, bool inPlace) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Candidate> out;
  for (const algos::Algorithm* a : algorithmsFor(coll)) {
    if (!feasible(a)) {
      Candidate c{a, 0, 1, {}};
      c.prediction.why = "needs ranks that read each other's memory (one host, single copy)";
      out.push_back(c);
      continue;
    }
    out.push_back(best(a, static_cast<double>(bytes), inPlace, 0, 0));
  }
  return out;
}

Decision Tuner::decideAt(algos::Coll coll, double modelBytes, bool inPlace, uint64_t mask) const {
  Decision d;
  // Knobs and exclusions from TRELLIS_TUNE (later entries win).
  const algos::Algorithm* tuneForce = nullptr;
  size_t chunkSet = 0;
  int channelsSet = 0;
  std::vector<const algos::Algorithm*> excluded;
  for (size_t i = 0; i < opts_.tune.size(); ++i) {
    if (!(mask >> i & 1)) continue;
    const TuneEntry& e = opts_.tune[i];
    if (e.force) tuneForce = e.force->coll == coll ? e.force : tuneForce;
    for (const algos::Algorithm* a : e.exclude)
      if (a->coll == coll) excluded.push_back(a);
    if (e.chunkBytes) chunkSet = e.chunkBytes;
    if (e.channels) channelsSet = e.channels;
  }
  const algos::Algorithm* forced = opts_.overrides[static_cast<size_t>(coll)];
  const char* how = "TRELLIS_ALGO";
  if (forced != nullptr && !feasible(forced)) {
    TRELLIS_DEBUG(kTuner, "TRELLIS_ALGO %s:%s needs ranks that read each other's memory; choosing automatically",
                  algos::collName(coll), forced->name);
    forced = nullptr;
  }
  if (forced == nullptr && tuneForce != nullptr) {
    if (feasible(tuneForce)) {
      forced = tuneForce;
      how = "TRELLIS_TUNE";
    } else {
      TRELLIS_DEBUG(kTuner, "TRELLIS_TUNE @%s for %s needs ranks that read each other's memory; choosing automatically",
                    tuneForce->name, algos::collName(coll));
    }
  }
  if (forced != nullptr) {
    Candidate c = best(forced, modelBytes, inPlace, chunkSet, channelsSet);
    d.algo = forced;
    d.chunkBytes = c.chunkBytes;
    d.channels = c.channels;
    d.predictedS = c.prediction.supported ? c.prediction.seconds : -1;
    d.how = how;
    return d;
  }
  // The model: every feasible, modelled, not excluded algorithm with its best knobs.
  const Candidate* first = nullptr;
  std::vector<Candidate> cands;
  for (const algos::Algorithm* a : algorithmsFor(coll)) {
    if (!feasible(a)) continue;
    if (std::find(excluded.begin(), excluded.end(), a) != excluded.end()) continue;
    cands.push_back(best(a, modelBytes, inPlace, chunkSet, channelsSet));
  }
  // A topology-aware algorithm has to beat the best flat one by kAwareMargin: its per-call set-up
  // (the hierarchy, sub-group executors) is not in the model, and on one node it degenerates to
  // the flat rings it would tie with.
  auto effective = [](const Candidate& c) {
    return c.prediction.seconds * (algoTraits(c.algo->coll, c.algo->name).topologyAware ? 1 + kAwareMargin : 1);
  };
  const Candidate* win = nullptr;
  const Candidate* second = nullptr;
  for (const Candidate& c : cands) {
    if (first == nullptr) first = &c;
    if (!c.prediction.supported) continue;
    // Ties (equal step structures, e.g. oneshot and ring on 2 ranks) go to the algorithm
    // registered first, not to rounding.
    if (win == nullptr || effective(c) < effective(*win) * (1 - 1e-9)) {
      second = win;
      win = &c;
    } else if (second == nullptr || effective(c) < effective(*second)) {
      second = &c;
    }
  }
  if (win == nullptr) {  // nothing modelled: the first registered algorithm that can run
    if (first != nullptr) {
      d.algo = first->algo;
      d.chunkBytes = chunkSet;
      d.how = "fallback";
    }
    return d;
  }
  d.algo = win->algo;
  d.chunkBytes = win->chunkBytes;
  d.channels = win->channels;
  d.predictedS = win->prediction.seconds;
  if (second != nullptr) {
    d.runnerUp = second->algo;
    d.runnerUpChunk = second->chunkBytes;
    d.runnerUpS = second->prediction.seconds;
  }
  return d;
}

Decision Tuner::decide(algos::Coll coll, uint64_t bytes, bool inPlace) const {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t mask = 0;
  for (size_t i = 0; i < opts_.tune.size(); ++i)
    if (opts_.tune[i].matches(coll, bytes, shape().nranks())) mask |= uint64_t{1} << i;
  return decideAt(coll, static_cast<double>(bytes), inPlace, mask);
}

Decision Tuner::select(const algos::CollArgs& args) {
  const int n = shape().nranks();
  const uint64_t bytes = ncclTestsSize(args, n);
  // Every rank must reach the same decision from its own arguments. Whether a call is in place is
  // a rank's own business (NCCL lets ranks mix; for ReduceScatter/AllGather "in place" means an
  // offset that differs per rank), so it is not an input here: the model prices the out-of-place
  // form, whose extra local copy is the same for every candidate or nearly so.
  const bool inPlace = false;
  uint64_t mask = 0;
  for (size_t i = 0; i < opts_.tune.size(); ++i)
    if (opts_.tune[i].matches(args.coll, bytes, n)) mask |= uint64_t{1} << i;
  const uint64_t bucket = bucketOf(bytes);
  std::atomic<const Decision*>* fast = nullptr;
  if (mask == 0 && bytes >= 4 && bucket < FastTable::kBuckets) {
    fast = &fast_->slot[static_cast<size_t>(args.coll) * FastTable::kBuckets + bucket];
    if (const Decision* d = fast->load(std::memory_order_acquire)) {
      if (logEnabled(LogLevel::kDebug, Subsys::kTuner))
        TRELLIS_DEBUG(kTuner, "%s %llu B on %d ranks: %s (%s, cached)", algos::collName(args.coll),
                      static_cast<unsigned long long>(bytes), n, d->algo ? d->algo->name : "(none)", d->how);
      return *d;
    }
  }
  const std::pair<uint64_t, uint64_t> key{static_cast<uint64_t>(args.coll) | uint64_t{inPlace} << 4 | bucket << 5, mask};
  std::lock_guard<std::mutex> l(mu_);
  auto it = cache_.find(key);
  const bool fresh = it == cache_.end();
  const double modelBytes = modelBytesOf(bytes);
  if (fresh) it = cache_.emplace(key, decideAt(args.coll, modelBytes, inPlace, mask)).first;
  if (fast != nullptr) fast->store(&it->second, std::memory_order_release);  // the map's nodes stay put
  if (fresh) {
    if (logEnabled(LogLevel::kInfo, Subsys::kTuner)) {
      const Decision& x = it->second;
      TRELLIS_INFO(kTuner, "%s %s%s on %d ranks (bucket ~%s): %s%s%s (%s, predicted %s)%s%s%s", algos::collName(args.coll),
                   humanSize(static_cast<double>(bytes)).c_str(), inPlace ? " in place" : "", n,
                   humanSize(modelBytes).c_str(), x.algo ? x.algo->name : "(none)",
                   x.chunkBytes ? (" chunk " + humanSize(static_cast<double>(x.chunkBytes))).c_str() : "",
                   x.channels > 1 ? formatString(" x%d channels", x.channels).c_str() : "", x.how,
                   usText(x.predictedS).c_str(), x.runnerUp ? "; runner-up " : "",
                   x.runnerUp ? x.runnerUp->name : "",
                   x.runnerUp ? ((x.runnerUpChunk ? " chunk " + humanSize(static_cast<double>(x.runnerUpChunk)) : "") +
                                 " " + usText(x.runnerUpS)).c_str()
                              : "");
    }
  } else if (logEnabled(LogLevel::kDebug, Subsys::kTuner)) {
    const Decision& x = it->second;
    TRELLIS_DEBUG(kTuner, "%s %llu B on %d ranks: %s (%s, cached)", algos::collName(args.coll),
                  static_cast<unsigned long long>(bytes), n, x.algo ? x.algo->name : "(none)", x.how);
  }
  return it->second;
}

}  // namespace trellis::tuner
