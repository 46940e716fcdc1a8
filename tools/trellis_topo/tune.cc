#include "tune.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "topo/fabric/fabric.h"
#include "topo/sysfs.h"
#include "tuner/select.h"
#include "tuner/shape_topo.h"

namespace trellis::tools {

namespace {

using algos::Coll;
using tuner::K;

int fail(const std::string& msg) {
  std::fprintf(stderr, "trellis-topo tune: %s\n", msg.c_str());
  return 2;
}

std::string sizeText(uint64_t b) {
  const char* unit[] = {"B", "K", "M", "G", "T"};
  int u = 0;
  double v = static_cast<double>(b);
  while (v >= 1024 && u < 4 && std::fmod(v, 1024) == 0) {
    v /= 1024;
    ++u;
  }
  return formatString("%.0f%s", v, u ? unit[u] : "");
}

std::string timeText(double s) {
  if (s < 0) return "-";
  if (s < 1e-3) return formatString("%.1f us", s * 1e6);
  if (s < 1) return formatString("%.2f ms", s * 1e3);
  return formatString("%.3f s", s);
}

// What a file holds: a cluster fabric (trellis-cluster JSON, ibnetdiscover) or a node topology.
bool looksLikeFabric(const std::string& path, bool* clusterFile) {
  std::ifstream in(path);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  *clusterFile = head.find("\"trellis-cluster\"") != std::string::npos;
  if (*clusterFile) return true;
  return head.find("\nSwitch") != std::string::npos || head.rfind("Switch", 0) == 0 ||
         head.find("#\tTopology file") != std::string::npos || head.find("# Topology file") != std::string::npos;
}

Status loadFabric(const std::string& path, bool clusterFile, tuner::FabricFacts* out, const tuner::Constants& c) {
  TRELLIS_ASSIGN_OR_RETURN(topo::fabric::Fabric f,
                           clusterFile ? topo::fabric::loadClusterFile(path) : topo::fabric::loadIbnetdiscover(path));
  topo::fabric::Analysis a = topo::fabric::analyze(f);
  TRELLIS_ASSIGN_OR_RETURN(*out, tuner::fabricFacts(f, a, c));
  return Status::ok();
}

Result<std::vector<uint64_t>> sizesOf(const TuneArgs& a) {
  std::vector<uint64_t> out;
  if (!a.sizes.empty()) {
    std::stringstream ss(a.sizes);
    std::string tok;
    while (std::getline(ss, tok, ',')) {
      uint64_t v = 0;
      if (!tuner::parseSize(tok, &v)) return invalidArgument("--sizes: '%s' is not a size (4096, 64K, 1M)", tok.c_str());
      out.push_back(v);
    }
    return out;
  }
  uint64_t lo = 0, hi = 0;
  if (!tuner::parseSize(a.minBytes, &lo) || !tuner::parseSize(a.maxBytes, &hi) || lo == 0 || hi < lo)
    return invalidArgument("-b %s -e %s: sizes like 1K and 1G, min <= max", a.minBytes.c_str(), a.maxBytes.c_str());
  if (a.factor < 1.01) return invalidArgument("-f %g must exceed 1", a.factor);
  for (double v = static_cast<double>(lo); v <= static_cast<double>(hi) * 1.0001; v *= a.factor)
    out.push_back(static_cast<uint64_t>(std::llround(v)));
  return out;
}

}  // namespace

CLI::App* addTuneCommand(CLI::App& app, TuneArgs* a) {
  CLI::App* c = app.add_subcommand(
      "tune", "the tuner's choices per collective and size on a described cluster (a simulation by the cost model)");
  c->add_option("--input", a->input,
                "a node topology (Trellis JSON, NCCL XML, hwloc XML, nvidia-smi topo -m) or a cluster fabric "
                "(trellis-cluster JSON, ibnetdiscover output); default: this machine");
  c->add_option("--cluster", a->cluster, "a cluster fabric, when --input is a node topology");
  c->add_option("--nodes", a->nodes, "nodes (default: the fabric's hosts, else 1)");
  c->add_option("--ranks-per-node", a->ranksPerNode,
                "ranks per node, or a list per node (8,8,4); default: the node's GPUs, else its cores");
  c->add_option("--rails", a->rails, "compute NICs per node (default: the topology's, else 1)");
  c->add_option("--nodes-per-leaf", a->nodesPerLeaf, "nodes under one leaf switch per rail (0: all)");
  c->add_option("--oversub", a->oversub, "spine oversubscription (2 = 2:1; default: the fabric's, else 1)");
  c->add_option("--nic-gbps", a->nicGbps, "NIC line rate in Gb/s (default: the topology's, else the table's)");
  c->add_option("--kind", a->kind, "gpu (NVLink + RDMA) or cpu (shm + TCP); default: gpu when the node has GPUs")
      ->check(CLI::IsMember({"gpu", "cpu"}));
  c->add_option("--intra", a->intra, "cpu ranks inside a node: shm (default) or tcp")->check(CLI::IsMember({"shm", "tcp"}));
  c->add_flag("--direct", a->direct, "cpu ranks on one node read each other's memory (the direct algorithms)");
  c->add_option("--cores", a->cores, "cores per node shared by its ranks (cpu; 0: one per rank)");
  c->add_option("--set", a->set, "replace a constant: NAME=VALUE in SI units (see --constants), repeatable");
  c->add_option("--coll", a->colls, "collectives, comma separated (default: all but alltoallv)");
  c->add_option("--sizes", a->sizes, "sizes (nccl-tests meaning), comma separated: 1M,16M");
  c->add_option("-b,--minbytes", a->minBytes, "smallest size of the sweep (default 1K)");
  c->add_option("-e,--maxbytes", a->maxBytes, "largest size of the sweep (default 1G)");
  c->add_option("-f,--stepfactor", a->factor, "size factor of the sweep (default 4)");
  c->add_option("--algo", a->algo, "force algorithms as TRELLIS_ALGO does (allreduce:ring,...)");
  c->add_option("--tune", a->tune, "a TRELLIS_TUNE string");
  c->add_option("--chunk", a->chunk, "a fixed pipeline chunk, as TRELLIS_CHUNK_BYTES set by the user (not tuned)");
  c->add_flag("--blind", a->blind,
              "also the topology-blind baseline: the best algorithm that ignores the topology, on ranks numbered "
              "in a scrambled order");
  c->add_option("--seed", a->seed, "seed of the scrambled order (default 1)");
  c->add_flag("--planned", a->planned, "also consider modelled algorithms the registry does not have yet");
  c->add_flag("--all", a->all, "print every algorithm's prediction, not only the choice and runner-up");
  c->add_flag("--in-place", a->inPlace, "in-place calls");
  c->add_flag("--json", a->json, "one JSON document instead of tables");
  c->add_flag("--constants", a->constants, "print the constants table (after --set) and exit");
  a->factor = 4;
  return c;
}

int runTune(const TuneArgs& a) {
  tuner::Constants c;
  for (const std::string& kv : a.set) {
    Status st = tuner::applyConstantOverrides(kv, "--set", &c);
    if (!st.isOk()) return fail(st.message());
  }
  if (a.constants) {
    for (const tuner::ConstantInfo& info : tuner::constantTable())
      std::printf("%-22s %12.4g %-4s %s%s\n", info.name, c[info.id], info.unit,
                  c.replaced(info.id) ? "[--set] " : "", info.source);
    return 0;
  }
  // What the files say.
  tuner::NodeFacts node;
  tuner::FabricFacts fabric;
  bool haveNode = false, haveFabric = false;
  std::vector<std::pair<std::string, bool>> files;
  if (!a.input.empty()) files.push_back({a.input, false});
  if (!a.cluster.empty()) files.push_back({a.cluster, true});
  for (auto& [path, mustBeFabric] : files) {
    bool clusterFile = false;
    if (!std::ifstream(path)) return fail("cannot read '" + path + "'");
    if (looksLikeFabric(path, &clusterFile)) {
      Status s = loadFabric(path, clusterFile, &fabric, c);
      if (!s.isOk()) return fail(s.message());
      haveFabric = true;
    } else if (mustBeFabric) {
      return fail("--cluster '" + path + "' is neither a trellis-cluster file nor ibnetdiscover output");
    } else {
      auto sys = topo::loadTopologyFile(path);
      if (!sys) return fail(sys.status().message());
      node = tuner::nodeFacts(sys.value());
      haveNode = true;
    }
  }
  if (!haveNode && !haveFabric) {
    auto sys = topo::detectLocalSystem();
    if (sys) {
      node = tuner::nodeFacts(sys.value());
      haveNode = true;
    }
  }
  tuner::UniformSpec u;
  u.gpu = a.kind.empty() ? (haveNode && node.gpus > 0) || (!haveNode && haveFabric) : a.kind == "gpu";
  u.nodes = a.nodes > 0 ? a.nodes : haveFabric ? fabric.nodes : 1;
  u.rails = a.rails > 0 ? a.rails : haveFabric ? fabric.rails : (haveNode && node.rails > 0 ? node.rails : 1);
  u.nodesPerLeaf = a.nodesPerLeaf >= 0 ? a.nodesPerLeaf : haveFabric ? fabric.nodesPerLeaf : 0;
  u.spineOversub = a.oversub > 0 ? a.oversub : haveFabric ? fabric.spineOversub : 1;
  u.railOptimized = haveFabric ? fabric.railOptimized || u.rails == 1 : true;
  u.nicBps = a.nicGbps > 0 ? a.nicGbps * 1e9 / 8 * c[K::kNetPayloadShare]
             : haveFabric && fabric.nicBps > 0 ? fabric.nicBps
             : haveNode && node.nicBps > 0 ? node.nicBps * c[K::kNetPayloadShare] : 0;
  u.intraTcp = a.intra == "tcp";
  u.direct = !u.gpu && u.nodes == 1 && !u.intraTcp && a.direct;
  u.coresPerNode = a.cores >= 0 ? a.cores : 0;
  std::vector<int> perNode;
  if (!a.ranksPerNode.empty()) {
    std::stringstream ss(a.ranksPerNode);
    std::string tok;
    while (std::getline(ss, tok, ',')) {
      char* end = nullptr;
      long v = std::strtol(tok.c_str(), &end, 10);
      if (tok.empty() || *end != '\0' || v < 1 || v > 4096) return fail("--ranks-per-node '" + tok + "' is not 1..4096");
      perNode.push_back(static_cast<int>(v));
    }
    if (perNode.size() > 1 && a.nodes > 0 && static_cast<int>(perNode.size()) != a.nodes)
      return fail(formatString("--ranks-per-node lists %zu nodes but --nodes is %d", perNode.size(), a.nodes));
    if (perNode.size() > 1) u.nodes = static_cast<int>(perNode.size());
  }
  const int defaultRanks = u.gpu ? (haveNode && node.gpus > 0 ? node.gpus : 8) : (haveNode && node.cores > 0 ? node.cores : 1);
  u.ranksPerNode = perNode.empty() ? defaultRanks : perNode[0];
  if (static_cast<int64_t>(u.nodes) * u.ranksPerNode > (1 << 16)) return fail("more than 65536 ranks");
  tuner::Shape shape = tuner::uniformShape(u, c);
  if (perNode.size() > 1) {
    tuner::placeNodeMajor(&shape, perNode);
    tuner::applyWaitPolicy(&shape, c);
  }
  if (haveFabric && static_cast<int>(fabric.groupOfNode.size()) == shape.nodes()) shape.groupOfNode = fabric.groupOfNode;
  if (haveNode && u.gpu && node.gpuPathBps > 0 && !node.nvlink) {  // GPUs over PCIe: that path's rate
    shape.intra.bytesPerS = node.gpuPathBps;
    shape.intraKind = tuner::IntraKind::kNvLink;
  }
  if (std::string bad = shape.validate(); !bad.empty()) return fail("shape: " + bad);

  tuner::TunerOptions opts;
  auto ov = tuner::parseAlgoOverrides(a.algo);
  if (!ov) return fail(ov.status().message());
  opts.overrides = ov.value();
  auto tune = tuner::parseTuneString(a.tune);
  if (!tune) return fail(tune.status().message());
  opts.tune = tune.value();
  opts.includePlanned = a.planned;
  if (!a.chunk.empty()) {
    uint64_t ch = 0;
    if (!tuner::parseSize(a.chunk, &ch) || ch < 4096) return fail("--chunk '" + a.chunk + "' is not a size of at least 4K");
    opts.defaultChunk = ch;
    opts.chunkFixed = true;
  }
  tuner::Tuner aware(shape, opts);
  tuner::TunerOptions blindOpts = opts;
  blindOpts.flatOnly = true;
  blindOpts.includePlanned = false;
  tuner::Tuner blind(tuner::scrambled(shape, a.seed), blindOpts);

  std::vector<Coll> colls;
  {
    std::stringstream ss(a.colls);
    std::string tok;
    while (std::getline(ss, tok, ',')) {
      Coll cl;
      if (!algos::parseColl(tok, &cl)) return fail("--coll: unknown collective '" + tok + "'");
      colls.push_back(cl);
    }
  }
  auto sizes = sizesOf(a);
  if (!sizes) return fail(sizes.status().message());
  const int n = shape.nranks();

  nlohmann::json doc = {{"format", "trellis-tune"},
                        {"simulation", true},
                        {"shape", shape.describe()},
                        {"nranks", n},
                        {"rows", nlohmann::json::array()}};
  if (!a.json) {
    std::printf("# trellis-topo tune: a SIMULATION by the cost model (nothing was run)\n# shape: %s (%d ranks)\n",
                shape.describe().c_str(), n);
    if (a.blind)
      std::printf("# blind: the best topology-ignoring algorithm on the same ranks numbered in a scrambled order "
                  "(seed %llu)\n", static_cast<unsigned long long>(a.seed));
  }
  for (Coll cl : colls) {
    if (!a.json) {
      std::printf("\n## %s\n%10s  %-26s %11s %9s  %-26s %11s", algos::collName(cl), "size", "choice", "time", "busbw",
                  "runner-up", "time");
      if (a.blind) std::printf("  %-18s %11s %9s %7s", "blind", "time", "busbw", "gain");
      std::printf("\n");
    }
    for (uint64_t sz : sizes.value()) {
      tuner::Decision d = aware.decide(cl, sz, a.inPlace);
      const double factor = tuner::busFactor(cl, n);
      auto bus = [&](double t) { return t > 0 ? static_cast<double>(sz) / t * factor / 1e9 : 0.0; };
      auto label = [](const algos::Algorithm* x, size_t chunk) {
        if (x == nullptr) return std::string("(none)");
        std::string s = x->name;
        if (x->run == nullptr) s += "*";
        if (chunk) s += " c" + sizeText(chunk);
        return s;
      };
      tuner::Decision b;
      if (a.blind) b = blind.decide(cl, sz, a.inPlace);
      nlohmann::json row = {{"collective", algos::collName(cl)},
                            {"size", sz},
                            {"algo", d.algo ? d.algo->name : ""},
                            {"planned", d.algo != nullptr && d.algo->run == nullptr},
                            {"chunk", d.chunkBytes},
                            {"channels", d.channels},
                            {"how", d.how},
                            {"time_s", d.predictedS},
                            {"busbw_gbps", bus(d.predictedS)},
                            {"runner_up", d.runnerUp ? d.runnerUp->name : ""},
                            {"runner_up_time_s", d.runnerUpS}};
      if (a.blind) {
        row["blind_algo"] = b.algo ? b.algo->name : "";
        row["blind_time_s"] = b.predictedS;
        row["blind_busbw_gbps"] = bus(b.predictedS);
      }
      if (a.all) {
        nlohmann::json all = nlohmann::json::array();
        for (const auto& cand : aware.candidates(cl, sz, a.inPlace))
          all.push_back({{"algo", cand.algo->name},
                         {"chunk", cand.chunkBytes},
                         {"supported", cand.prediction.supported},
                         {"time_s", cand.prediction.supported ? cand.prediction.seconds : -1},
                         {"why", cand.prediction.why}});
        row["all"] = all;
      }
      doc["rows"].push_back(row);
      if (a.json) continue;
      std::printf("%10s  %-26s %11s %9.2f  %-26s %11s", sizeText(sz).c_str(), label(d.algo, d.chunkBytes).c_str(),
                  timeText(d.predictedS).c_str(), bus(d.predictedS), label(d.runnerUp, d.runnerUpChunk).c_str(),
                  timeText(d.runnerUpS).c_str());
      if (a.blind)
        std::printf("  %-18s %11s %9.2f %6.2fx", label(b.algo, b.chunkBytes).c_str(), timeText(b.predictedS).c_str(),
                    bus(b.predictedS), d.predictedS > 0 && b.predictedS > 0 ? b.predictedS / d.predictedS : 0.0);
      std::printf("\n");
      if (a.all)
        for (const auto& cand : aware.candidates(cl, sz, a.inPlace))
          std::printf("%10s    %-24s %11s %9.2f  %s\n", "", label(cand.algo, cand.chunkBytes).c_str(),
                      cand.prediction.supported ? timeText(cand.prediction.seconds).c_str() : "-",
                      cand.prediction.supported ? bus(cand.prediction.seconds) : 0.0, cand.prediction.why.c_str());
    }
  }
  if (a.json) {
    std::printf("%s\n", doc.dump(1).c_str());
  } else {
    std::printf("\n# time: predicted time of one call; busbw: nccl-tests bus bandwidth in GB/s; c<size>: pipeline "
                "chunk; *: modelled, not implemented yet (--planned)%s\n",
                a.blind ? "; gain: blind time / choice time" : "");
  }
  return 0;
}

}  // namespace trellis::tools
