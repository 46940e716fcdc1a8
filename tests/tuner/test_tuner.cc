// The tuner on its own: the TRELLIS_TUNE parser (valid and invalid strings, error positions), the
// constants table, shapes from fabric files, the cost model's sanity (monotonic in size, bounded
// by link rates, contention and oversubscription never help), selection (forcing, ranges,
// exclusions, knobs, the cache) and golden tables of choices on fixed shapes.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "topo/fabric/fabric.h"
#include "tuner/select.h"
#include "tuner/shape_topo.h"

namespace trellis::tuner {
namespace {

using algos::Coll;

// ------------------------------------------------------------------ TRELLIS_TUNE

TEST(TuneString, ValidStrings) {
  auto r = parseTuneString("allreduce:0-64k:@rhd#allreduce:64k-inf:@ring");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  const TuneEntry& a = (*r)[0];
  EXPECT_EQ(a.colls, std::vector<Coll>{Coll::kAllReduce});
  ASSERT_EQ(a.ranges.size(), 1u);
  EXPECT_EQ(a.ranges[0].lo, 0u);
  EXPECT_EQ(a.ranges[0].hi, 65536u);
  ASSERT_NE(a.force, nullptr);
  EXPECT_STREQ(a.force->name, "rabenseifner");  // rhd: recursive halving-doubling
  EXPECT_TRUE(a.matches(Coll::kAllReduce, 65535, 4));
  EXPECT_FALSE(a.matches(Coll::kAllReduce, 65536, 4));
  EXPECT_FALSE(a.matches(Coll::kBroadcast, 100, 4));
  const TuneEntry& b = (*r)[1];
  EXPECT_EQ(b.ranges[0].lo, 65536u);
  EXPECT_EQ(b.ranges[0].hi, UINT64_MAX);
  EXPECT_STREQ(b.force->name, "ring");
  EXPECT_TRUE(b.matches(Coll::kAllReduce, uint64_t{1} << 40, 4));
  EXPECT_EQ(b.position, 21u);

  // Tokens in any order, team sizes, exclusions, knobs, several ranges and collectives.
  r = parseTuneString("@ring:1M-inf:allreduce:[2-8]:chunk=512K#allreduce,broadcast:!direct:0-4k,1M-16M:channels=2");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].teamLo, 2);
  EXPECT_EQ((*r)[0].teamHi, 8);
  EXPECT_EQ((*r)[0].chunkBytes, 512u << 10);
  EXPECT_TRUE((*r)[0].matches(Coll::kAllReduce, 1 << 20, 8));
  EXPECT_FALSE((*r)[0].matches(Coll::kAllReduce, 1 << 20, 9));
  EXPECT_EQ((*r)[1].exclude.size(), 2u);  // allreduce:direct and broadcast:direct
  EXPECT_EQ((*r)[1].channels, 2);
  EXPECT_TRUE((*r)[1].matches(Coll::kBroadcast, 4095, 3));
  EXPECT_FALSE((*r)[1].matches(Coll::kBroadcast, 4096, 3));
  EXPECT_TRUE((*r)[1].matches(Coll::kBroadcast, 1 << 20, 3));
  EXPECT_FALSE((*r)[1].matches(Coll::kBroadcast, 16 << 20, 3));

  // 'all' with @: the collectives that have that algorithm.
  r = parseTuneString("all:@ring:[16-inf]");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  std::set<Coll> colls((*r)[0].colls.begin(), (*r)[0].colls.end());
  EXPECT_EQ(colls, (std::set<Coll>{Coll::kAllReduce, Coll::kAllGather, Coll::kReduceScatter}));

  r = parseTuneString("");
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(r->empty());
}

struct Bad {
  const char* text;
  size_t position;
  const char* says;
};

TEST(TuneString, InvalidStringsPointAtTheToken) {
  const Bad bad[] = {
      {"allreduse:@ring", 0, "unknown collective"},
      {"allreduce:0-64k:@rhdx", 16, "allreduce has no algorithm 'rhdx' (valid: ring, rd, oneshot, rabenseifner"},
      {"allreduce:64k-0:@ring", 10, "the range is empty"},
      {"allreduce:0-64q:@ring", 12, "upper end of a size range"},
      {"allreduce:1x-4k:@ring", 10, "a size range is <from>-<to>"},
      {"allreduce::@ring", 10, "an empty token"},
      {"allreduce:@ring#", 16, "an empty entry"},
      {"#allreduce:@ring", 0, "an empty entry"},
      {"allreduce", 0, "the entry sets nothing"},
      {"0-64k:@ring", 0, "the entry names no collective"},
      {"allreduce:@ring#broadcast:@ring", 26, "broadcast has no algorithm 'ring'"},
      {"allreduce,broadcast:@direct", 20, "'@' forces one algorithm"},
      {"allreduce:chunk=1", 10, "chunk= takes a size"},
      {"allreduce:channels=0:@ring", 10, "channels= takes an integer"},
      {"allreduce:[8-2]:@ring", 10, "team size range is empty"},
      {"allreduce:[8]:@ring", 10, "a team size range is [<from>-<to>]"},
      {"allreduce:%:@ring", 10, "expected a collective"},
      {"allreduce:@ring:@rd", 16, "a second '@algorithm'"},
      {"allreduce:0-1k:0-2k:@ring", 15, "a second size-range list"},
      {"allreduce:broadcast:@ring", 10, "a second collective list"},
      {"allreduce:@", 10, "an algorithm name must follow '@'"},
      {"all:@nosuch", 4, "no collective has an algorithm 'nosuch'"},
  };
  for (const Bad& b : bad) {
    auto r = parseTuneString(b.text);
    ASSERT_FALSE(r.isOk()) << b.text;
    const std::string m = r.status().message();
    EXPECT_NE(m.find(formatString("at position %zu", b.position)), std::string::npos) << b.text << " -> " << m;
    EXPECT_NE(m.find(b.says), std::string::npos) << b.text << " -> " << m;
    EXPECT_NE(m.find(std::string("TRELLIS_TUNE='") + b.text + "'"), std::string::npos) << m;
  }
}

TEST(TuneString, Sizes) {
  uint64_t v = 0;
  EXPECT_TRUE(parseSize("4096", &v));
  EXPECT_EQ(v, 4096u);
  EXPECT_TRUE(parseSize("64k", &v));
  EXPECT_EQ(v, 65536u);
  EXPECT_TRUE(parseSize("3G", &v));
  EXPECT_EQ(v, uint64_t{3} << 30);
  EXPECT_FALSE(parseSize("", &v));
  EXPECT_FALSE(parseSize("k", &v));
  EXPECT_FALSE(parseSize("1kb", &v));
  EXPECT_FALSE(parseSize("99999999999999999999", &v));
  EXPECT_FALSE(parseSize("17179869184G", &v));  // overflows 64 bits
}

TEST(AlgoOverrides, AcceptAliases) {
  auto o = parseAlgoOverrides("allreduce:rhd");
  ASSERT_TRUE(o.isOk());
  EXPECT_STREQ((*o)[static_cast<size_t>(Coll::kAllReduce)]->name, "rabenseifner");
}

// ------------------------------------------------------------------ constants and shapes

TEST(Constants, OneTableWithUnitsAndSources) {
  std::set<std::string> names;
  for (size_t i = 0; i < constantTable().size(); ++i) {
    const ConstantInfo& c = constantTable()[i];
    EXPECT_EQ(static_cast<size_t>(c.id), i) << c.name;
    EXPECT_TRUE(names.insert(c.name).second) << c.name;
    EXPECT_GT(std::strlen(c.unit), 0u) << c.name;
    EXPECT_GT(std::strlen(c.source), 20u) << c.name;
    EXPECT_GE(c.value, 0) << c.name;
  }
  K id;
  EXPECT_TRUE(constantByName("net.nic_bps", &id));
  EXPECT_EQ(id, K::kNicBps);
  EXPECT_TRUE(constantByName("nic_bps", &id));
  EXPECT_FALSE(constantByName("nic", &id));
  Constants c;
  c.set(K::kNicBps, 1e9, "test");
  EXPECT_EQ(c[K::kNicBps], 1e9);
  EXPECT_TRUE(c.replaced(K::kNicBps));
  EXPECT_FALSE(c.replaced(K::kCopyBps));
}

TEST(Shape, FromHostsNumbersNodesByFirstRank) {
  Constants c;
  Shape s = shapeFromHosts({7, 9, 7, 9, 9}, {4, 2, 4, 2, 2}, false, false, c);
  EXPECT_EQ(s.nodeOfRank, (std::vector<int>{0, 1, 0, 1, 1}));
  EXPECT_EQ(s.ranksPerNode(), (std::vector<int>{2, 3}));
  EXPECT_EQ(s.coresPerNode, 2);  // the smallest: every rank must build the same shape
  EXPECT_TRUE(s.oversubscribed());
  EXPECT_EQ(s.validate(), "");
  EXPECT_EQ(s.intraKind, IntraKind::kShm);
  EXPECT_EQ(s.netKind, NetKind::kTcp);
}

TEST(Shape, ValidateNamesTheField) {
  Constants c;
  UniformSpec u;
  u.nodes = 2;
  u.ranksPerNode = 2;
  Shape s = uniformShape(u, c);
  EXPECT_EQ(s.validate(), "");
  Shape t = s;
  t.railOfRank[1] = 3;
  EXPECT_NE(t.validate().find("rank 1 uses rail 3"), std::string::npos);
  t = s;
  t.ringOrder = {0, 1, 1, 3};
  EXPECT_NE(t.validate().find("ringOrder is not a permutation"), std::string::npos);
  t = s;
  t.spineOversub = 0.5;
  EXPECT_NE(t.validate().find("spineOversub"), std::string::npos);
}

TEST(Shape, ScrambledKeepsEveryNodesRanks) {
  Constants c;
  UniformSpec u;
  u.nodes = 16;
  u.ranksPerNode = 8;
  u.rails = 8;
  u.gpu = true;
  Shape s = uniformShape(u, c);
  Shape x = scrambled(s, 1);
  EXPECT_EQ(x.ranksPerNode(), s.ranksPerNode());
  EXPECT_NE(x.nodeOfRank, s.nodeOfRank);
  EXPECT_EQ(x.validate(), "");
}

TEST(Shape, FromClusterView) {
  Constants c;
  topo::ClusterView v = topo::ClusterView::synthetic({3, 3, 2}, 2);
  Shape s = shapeFromCluster(v, {2, 2, 2, 2, 2, 2, 2, 2}, false, false, c);
  EXPECT_EQ(s.validate(), "");
  EXPECT_EQ(s.nodes(), 3);
  EXPECT_EQ(s.ranksPerNode(), (std::vector<int>{3, 3, 2}));
  EXPECT_EQ(s.railsPerNode, 2);
  EXPECT_EQ(s.ringOrder, v.ringOrder());
  for (int r = 0; r < s.nranks(); ++r) {
    EXPECT_EQ(s.nodeOfRank[r], v.nodeOf(r));
    EXPECT_EQ(s.railOfRank[r], std::max(0, v.railOf(r)));
  }
  CostModel m(s);
  for (const char* a : {"hier", "topo_ring"}) EXPECT_TRUE(m.predict(Coll::kAllReduce, a, 1 << 20).supported) << a;
  EXPECT_TRUE(m.predict(Coll::kAlltoAll, "rail", 1 << 20).supported);
}

std::string fixture(const char* rel) { return std::string(TRELLIS_SOURCE_DIR) + "/" + rel; }

TEST(Shape, FactsOfClusterFiles) {
  Constants c;
  // 128 nodes x 8 rails, 4 scalable units of 32 nodes, 8 uplinks per leaf: 4:1.
  auto f = topo::fabric::loadClusterFile(fixture("tests/topo_fabric/data/fat_tree_128x8.json"));
  ASSERT_TRUE(f.isOk()) << f.status().message();
  auto facts = fabricFacts(f.value(), topo::fabric::analyze(f.value()), c);
  ASSERT_TRUE(facts.isOk()) << facts.status().message();
  EXPECT_EQ(facts->nodes, 128);
  EXPECT_EQ(facts->rails, 8);
  EXPECT_TRUE(facts->railOptimized);
  EXPECT_EQ(facts->nodesPerLeaf, 32);
  EXPECT_DOUBLE_EQ(facts->spineOversub, 4.0);
  EXPECT_NEAR(facts->nicBps, 400e9 / 8 * c[K::kNetPayloadShare], 1);
  std::set<int> groups(facts->groupOfNode.begin(), facts->groupOfNode.end());
  EXPECT_EQ(groups.size(), 4u);
  // The same with 16 uplinks per leaf: the issue's 2:1 cluster (docs/TUNER.md).
  f = topo::fabric::loadClusterFile(fixture("docs/examples/fat_tree_128x8_2to1.json"));
  ASSERT_TRUE(f.isOk()) << f.status().message();
  facts = fabricFacts(f.value(), topo::fabric::analyze(f.value()), c);
  ASSERT_TRUE(facts.isOk());
  EXPECT_EQ(facts->nodes, 128);
  EXPECT_DOUBLE_EQ(facts->spineOversub, 2.0);
}

// ------------------------------------------------------------------ the model

Shape gpuCluster(int nodes, int perNode, int rails, int perLeaf, double oversub) {
  Constants c;
  UniformSpec u;
  u.nodes = nodes;
  u.ranksPerNode = perNode;
  u.rails = rails;
  u.nodesPerLeaf = perLeaf;
  u.spineOversub = oversub;
  u.gpu = true;
  return uniformShape(u, c);
}

Shape host(int ranks, int cores, bool tcp) {
  Constants c;
  UniformSpec u;
  u.ranksPerNode = ranks;
  u.coresPerNode = cores;
  u.intraTcp = tcp;
  u.direct = !tcp;
  return uniformShape(u, c);
}

Shape tcpCluster(int nodes, int perNode, int rails, double nicGbps, int cores) {
  Constants c;
  UniformSpec u;
  u.nodes = nodes;
  u.ranksPerNode = perNode;
  u.rails = rails;
  u.coresPerNode = cores;
  u.nicBps = nicGbps * 1e9 / 8;
  return uniformShape(u, c);
}

double predict(const Shape& s, Coll coll, const char* algo, double bytes, Knobs k = {}) {
  CostModel m(s);
  Prediction p = m.predict(coll, algo, bytes, k);
  EXPECT_TRUE(p.supported) << algo << ": " << p.why;
  return p.seconds;
}

struct ModelCase {
  Coll coll;
  const char* algo;
};
const ModelCase kFlat[] = {
    {Coll::kAllReduce, "ring"},       {Coll::kAllReduce, "rd"},       {Coll::kAllReduce, "rabenseifner"},
    {Coll::kBroadcast, "binomial"},   {Coll::kBroadcast, "scatter_allgather"},
    {Coll::kReduce, "binomial"},      {Coll::kAllGather, "ring"},     {Coll::kReduceScatter, "ring"},
    {Coll::kAlltoAll, "pairwise"},
};

TEST(Model, MonotonicInSizeOnEveryShape) {
  std::vector<Shape> shapes = {host(2, 2, false), host(4, 2, false), host(4, 2, true), host(3, 8, false),
                               gpuCluster(4, 8, 8, 2, 2), tcpCluster(3, 3, 1, 10, 4)};
  for (const Shape& s : shapes) {
    CostModel m(s);
    for (const ModelCase& mc : kFlat) {
      double prev = -1;
      for (double b = 0; b <= (1 << 28); b = b == 0 ? 8 : b * 4) {
        Prediction p = m.predict(mc.coll, mc.algo, b);
        ASSERT_TRUE(p.supported) << mc.algo << " " << s.describe();
        EXPECT_GT(p.seconds, 0) << mc.algo << " at " << b << " on " << s.describe();
        EXPECT_GE(p.seconds, prev) << algos::collName(mc.coll) << ":" << mc.algo << " at " << b << " on "
                                   << s.describe();
        prev = p.seconds;
      }
    }
  }
}

TEST(Model, BoundedByTheLinks) {
  // One rail: every byte of a ring AllReduce crosses a NIC at most at the NIC's rate, so the bus
  // bandwidth cannot exceed it (nccl-tests busbw of a ring equals the per-link rate).
  Shape s = gpuCluster(8, 8, 1, 0, 1);
  const double S = 1 << 30;
  const double t = predict(s, Coll::kAllReduce, "ring", S);
  const double busbw = S / t * busFactor(Coll::kAllReduce, s.nranks());
  EXPECT_LE(busbw, s.net.bytesPerS * 1.0001);
  EXPECT_GT(busbw, s.net.bytesPerS * 0.8);  // and a large message gets close to it
  // One host over shared memory: AllGather cannot beat the single-copy read rate per rank.
  Shape h = host(2, 2, false);
  const double tg = predict(h, Coll::kAllGather, "ring", S);
  EXPECT_GE(tg, S / 2 / h.directReadBps);
}

TEST(Model, ContentionAndOversubscriptionNeverHelp) {
  const double S = 256 << 20;
  for (const ModelCase& mc : kFlat) {
    // Spine oversubscription.
    double t1 = predict(gpuCluster(8, 8, 8, 2, 1), mc.coll, mc.algo, S);
    double t2 = predict(gpuCluster(8, 8, 8, 2, 4), mc.coll, mc.algo, S);
    EXPECT_GE(t2, t1 * 0.9999) << mc.algo;
    // Ranks sharing cores.
    double c4 = predict(host(4, 4, false), mc.coll, mc.algo, S);
    double c2 = predict(host(4, 2, false), mc.coll, mc.algo, S);
    EXPECT_GT(c2, c4) << mc.algo;
  }
  // A ring in a scrambled order crosses nodes and rails at every hop: each leaf's uplinks carry a
  // flow per NIC through the 2:1 spine, where the topology-ordered ring keeps its few node-crossing
  // hops on one rail: about twice as fast.
  Shape s = gpuCluster(16, 8, 8, 4, 2);
  EXPECT_GT(predict(scrambled(s, 3), Coll::kAllReduce, "ring", S), 1.8 * predict(s, Coll::kAllReduce, "topo_ring", S));
  // The plain ring in rank order hops from rail 7 to rail 0 between nodes: through the spine too.
  EXPECT_GT(predict(s, Coll::kAllReduce, "ring", S), 1.8 * predict(s, Coll::kAllReduce, "topo_ring", S));
}

TEST(Model, TopologyAwareAlgorithmsWinWhereTheyShould) {
  const double S = 256 << 20;
  Shape s = gpuCluster(16, 8, 8, 8, 2);
  // Hierarchical AllReduce drives all 8 rails; a flat ring in node-major order leaves one NIC per node.
  EXPECT_LT(predict(s, Coll::kAllReduce, "hier", S) * 3, predict(s, Coll::kAllReduce, "ring", S));
  // Rail-aligned AlltoAll keeps every flow on its rail; pairwise crosses rails through the spine.
  EXPECT_LT(predict(s, Coll::kAlltoAll, "rail", S) * 1.5, predict(s, Coll::kAlltoAll, "pairwise", S));
  // On one node they reduce to node-local rings and exchanges: about the flat algorithms' time.
  Shape one = host(4, 4, false);
  EXPECT_NEAR(predict(one, Coll::kAllReduce, "hier", S), predict(one, Coll::kAllReduce, "ring", S),
              0.25 * predict(one, Coll::kAllReduce, "ring", S));
}

TEST(Model, DirectNeedsDirectAndChunksMatterForTrees) {
  CostModel tcp(host(4, 4, true));
  Prediction p = tcp.predict(Coll::kAllReduce, "direct", 1 << 20);
  EXPECT_FALSE(p.supported);
  EXPECT_NE(p.why.find("read each other's memory"), std::string::npos);
  // A pipelined tree over a network: a smaller chunk fills the pipeline sooner.
  Shape s = gpuCluster(16, 1, 1, 0, 1);
  Knobs small, big;
  small.chunkBytes = 256 << 10;
  big.chunkBytes = 16 << 20;
  EXPECT_LT(predict(s, Coll::kBroadcast, "binomial", 64 << 20, small),
            predict(s, Coll::kBroadcast, "binomial", 64 << 20, big));
}

TEST(Model, UnevenNodes) {
  Constants c;
  UniformSpec u;
  u.nodes = 3;
  u.rails = 2;
  u.gpu = true;
  Shape s = uniformShape(u, c);
  placeNodeMajor(&s, {4, 3, 1});
  ASSERT_EQ(s.validate(), "");
  EXPECT_EQ(s.nranks(), 8);
  CostModel m(s);
  for (const char* a : {"ring", "rd", "rabenseifner", "hier"}) {
    Prediction p = m.predict(Coll::kAllReduce, a, 16 << 20);
    EXPECT_TRUE(p.supported) << a;
    EXPECT_GT(p.seconds, 0) << a;
  }
  EXPECT_TRUE(m.predict(Coll::kAlltoAll, "rail", 16 << 20).supported);
}

// ------------------------------------------------------------------ selection

Tuner tunerFor(Shape s, const std::string& algo = "", const std::string& tune = "", bool planned = false) {
  TunerOptions o;
  auto ov = parseAlgoOverrides(algo);
  EXPECT_TRUE(ov.isOk());
  o.overrides = ov.value();
  auto t = parseTuneString(tune);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  o.tune = t.value();
  o.includePlanned = planned;
  return Tuner(std::move(s), o);
}

algos::CollArgs argsOf(Coll coll, size_t count) {
  algos::CollArgs a;
  a.coll = coll;
  a.count = count;
  a.dtype = trellisFloat32;
  return a;
}

TEST(Select, ForcedAndTuned) {
  Tuner t = tunerFor(host(4, 4, false), "allreduce:rd,alltoall:direct", "broadcast:0-1M:@scatter_allgather");
  Decision d = t.decide(Coll::kAllReduce, 64 << 20);
  EXPECT_STREQ(d.algo->name, "rd");
  EXPECT_STREQ(d.how, "TRELLIS_ALGO");
  EXPECT_GT(d.predictedS, 0);
  EXPECT_STREQ(t.decide(Coll::kBroadcast, 1000).algo->name, "scatter_allgather");
  EXPECT_STREQ(t.decide(Coll::kBroadcast, 1000).how, "TRELLIS_TUNE");
  EXPECT_STREQ(t.decide(Coll::kBroadcast, 1 << 20).how, "model");  // 1M is outside [0, 1M)
  // A forced direct algorithm where ranks cannot read each other's memory: chosen automatically.
  Tuner tcp = tunerFor(host(4, 4, true), "alltoall:direct");
  EXPECT_STREQ(tcp.decide(Coll::kAlltoAll, 64 << 20).algo->name, "pairwise");
}

TEST(Select, ExclusionsAndKnobs) {
  Tuner t = tunerFor(host(4, 4, false), "", "allreduce:!rd:!direct#reducescatter:chunk=64k#allreduce:16M-inf:chunk=1M");
  for (uint64_t b = 8; b <= (uint64_t{1} << 30); b *= 8) {
    Decision d = t.decide(Coll::kAllReduce, b);
    EXPECT_STRNE(d.algo->name, "rd") << b;
    EXPECT_STRNE(d.algo->name, "direct") << b;
  }
  EXPECT_EQ(t.decide(Coll::kReduceScatter, 64 << 20, false).chunkBytes, t.decide(Coll::kReduceScatter, 64 << 20).chunkBytes);
  Decision rs = t.decide(Coll::kReduceScatter, 64 << 20);
  if (std::string(rs.algo->name) == "ring") {
    EXPECT_EQ(rs.chunkBytes, 64u << 10);
  }
  Decision ar = t.decide(Coll::kAllReduce, 64 << 20);
  if (algoTraits(Coll::kAllReduce, ar.algo->name).usesChunk) {
    EXPECT_EQ(ar.chunkBytes, 1u << 20);
  }
}

TEST(Select, CachedDecisionsMatchTheModelAtTheBucket) {
  Tuner t = tunerFor(host(4, 2, false));
  for (size_t count : {size_t{1}, size_t{100}, size_t{5000}, size_t{300000}, size_t{4000000}}) {
    for (Coll c : {Coll::kAllReduce, Coll::kBroadcast, Coll::kAllGather, Coll::kAlltoAll}) {
      algos::CollArgs a = argsOf(c, count);
      Decision first = t.select(a);
      Decision again = t.select(a);
      ASSERT_NE(first.algo, nullptr);
      EXPECT_EQ(first.algo, again.algo);
      EXPECT_EQ(first.chunkBytes, again.chunkBytes);
      // The bucket's representative size is within 12% of the call's: the uncached choice at
      // the call's own size is the same or within a few percent of it.
      Decision exact = t.decide(c, ncclTestsSize(a, 4));
      if (exact.algo != first.algo) {
        EXPECT_NEAR(exact.predictedS, exact.runnerUpS, 0.15 * exact.predictedS)
            << algos::collName(c) << " count " << count << ": " << exact.algo->name << " vs " << first.algo->name;
      }
    }
  }
  // In place or not, a call gets the decision of the same call out of place: ranks may differ in
  // that (ReduceScatter's in-place receive buffer is at a per-rank offset), and every rank must
  // choose the same algorithm and chunk.
  for (Coll c : {Coll::kAllReduce, Coll::kReduceScatter, Coll::kAllGather, Coll::kBroadcast}) {
    for (size_t count : {size_t{1000}, size_t{100003}, size_t{3000000}}) {
      algos::CollArgs a = argsOf(c, count);
      Decision out = t.select(a);
      std::vector<char> buf(ncclTestsSize(a, 4) + 64);
      a.send = a.recv = buf.data();
      Decision in = t.select(a);
      EXPECT_EQ(in.algo, out.algo) << algos::collName(c) << " " << count;
      EXPECT_EQ(in.chunkBytes, out.chunkBytes) << algos::collName(c) << " " << count;
    }
  }
}

// ------------------------------------------------------------------ golden tables

// Choices the model makes on fixed shapes, as "size:algo" for sizes 8 B, 4 KiB, 64 KiB, 1 MiB,
// 16 MiB, 256 MiB. A change here is a change of behaviour: check it against measurements
// (docs/PERFORMANCE.md) or the reasoning in docs/TUNER.md before updating the table.
const char* const kCollEnum[] = {"kAllReduce", "kBroadcast", "kReduce", "kAllGather", "kReduceScatter", "kAlltoAll"};

struct Golden {
  const char* shape;
  Coll coll;
  const char* choices;
};

std::string choicesOf(const Tuner& t, Coll c) {
  std::string out;
  for (uint64_t b : {uint64_t{8}, uint64_t{4} << 10, uint64_t{64} << 10, uint64_t{1} << 20, uint64_t{16} << 20,
                     uint64_t{256} << 20}) {
    Decision d = t.decide(c, b);
    out += (out.empty() ? "" : " ") + std::string(d.algo ? d.algo->name : "-");
  }
  return out;
}

Shape namedShape(const std::string& name) {
  if (name == "host2") return host(2, 2, false);
  if (name == "host4-2cores") return host(4, 2, false);
  if (name == "host4-tcp") return host(4, 2, true);
  if (name == "tcp4x2-400M") return tcpCluster(4, 2, 2, 0.4, 2);
  if (name == "gpu128x8") {
    Shape s = gpuCluster(128, 8, 8, 32, 2);
    return s;
  }
  if (name == "gpu3-uneven") {
    Constants c;
    UniformSpec u;
    u.nodes = 3;
    u.rails = 4;
    u.gpu = true;
    Shape s = uniformShape(u, c);
    placeNodeMajor(&s, {4, 4, 2});
    return s;
  }
  ADD_FAILURE() << name;
  return host(2, 2, false);
}

TEST(Golden, ChoicesOnFixedShapes) {
#include "golden_choices.inc"
  if (std::getenv("TRELLIS_TUNER_GOLDEN_PRINT") != nullptr) {  // regenerate: review before committing
    for (const char* shape : {"host2", "host4-2cores", "host4-tcp", "tcp4x2-400M", "gpu128x8", "gpu3-uneven"})
      for (int c = 0; c < static_cast<int>(Coll::kAlltoAllv); ++c) {
        Tuner t = tunerFor(namedShape(shape), "", "", true);
        std::printf("    {\"%s\", Coll::%s, \"%s\"},\n", shape, kCollEnum[c], choicesOf(t, static_cast<Coll>(c)).c_str());
      }
  }
  for (const Golden& g : kGolden) {
    Tuner t = tunerFor(namedShape(g.shape), "", "", /*planned=*/true);
    EXPECT_EQ(choicesOf(t, g.coll), g.choices) << "{\"" << g.shape << "\", Coll::k" << algos::collName(g.coll) << "}";
  }
}

}  // namespace
}  // namespace trellis::tuner
