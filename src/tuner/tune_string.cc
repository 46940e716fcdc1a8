#include "tuner/tune_string.h"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace trellis::tuner {

namespace {

struct Alias {
  algos::Coll coll;
  const char* alias;
  const char* name;
};
constexpr Alias kAliases[] = {
    {algos::Coll::kAllReduce, "rhd", "rabenseifner"},
    {algos::Coll::kAllReduce, "rec_doubling", "rd"},
};

std::string validAlgos(algos::Coll coll) {
  std::string valid;
  for (const auto& a : algos::allAlgorithms())
    if (a.coll == coll) valid += (valid.empty() ? "" : ", ") + std::string(a.name);
  for (const Alias& a : kAliases)
    if (a.coll == coll && algos::findAlgorithm(coll, a.name)) valid += std::string(", ") + a.alias;
  return valid;
}

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  Result<std::vector<TuneEntry>> run() {
    std::vector<TuneEntry> out;
    if (text_.empty()) return out;
    size_t pos = 0;
    for (;;) {
      size_t end = text_.find('#', pos);
      if (end == std::string::npos) end = text_.size();
      if (end == pos) return error(pos, "", "an empty entry ('#' at an end, or two in a row)");
      TuneEntry e;
      TRELLIS_TRY(entry(pos, end, &e));
      out.push_back(std::move(e));
      if (end == text_.size()) break;
      pos = end + 1;
    }
    return out;
  }

 private:
  Status error(size_t at, const std::string& tok, const std::string& what) const {
    return invalidArgument("TRELLIS_TUNE='%s': at position %zu%s%s%s: %s", text_.c_str(), at,
                           tok.empty() ? "" : " ('", tok.c_str(), tok.empty() ? "" : "')", what.c_str());
  }

  Status entry(size_t begin, size_t end, TuneEntry* e) {
    e->position = begin;
    bool haveColls = false, haveRanges = false, haveTeam = false, haveAction = false;
    bool all = false;
    std::vector<std::pair<size_t, std::string>> algoToks;  // '@x' / '!x', resolved after the colls
    size_t pos = begin;
    while (pos <= end) {
      size_t colon = text_.find(':', pos);
      if (colon == std::string::npos || colon > end) colon = end;
      const std::string tok = text_.substr(pos, colon - pos);
      if (tok.empty()) return error(pos, "", "an empty token (two ':' in a row, or ':' at an end of an entry)");
      const char c0 = tok[0];
      if (c0 == '@' || c0 == '!') {
        if (c0 == '@' && std::any_of(algoToks.begin(), algoToks.end(), [](auto& t) { return t.second[0] == '@'; }))
          return error(pos, tok, "a second '@algorithm' in one entry");
        algoToks.push_back({pos, tok});
        haveAction = true;
      } else if (tok.rfind("chunk=", 0) == 0) {
        uint64_t v = 0;
        if (!parseSize(tok.substr(6), &v) || v < 4096 || v > (1ull << 30))
          return error(pos, tok, "chunk= takes a size from 4k to 1G (e.g. chunk=256k)");
        e->chunkBytes = v;
        haveAction = true;
      } else if (tok.rfind("channels=", 0) == 0) {
        uint64_t v = 0;
        if (!parseSize(tok.substr(9), &v) || v < 1 || v > 64)
          return error(pos, tok, "channels= takes an integer from 1 to 64");
        e->channels = static_cast<int>(v);
        haveAction = true;
      } else if (c0 == '[') {
        if (haveTeam) return error(pos, tok, "a second team-size range in one entry");
        TRELLIS_TRY(team(pos, tok, e));
        haveTeam = true;
      } else if (std::isdigit(static_cast<unsigned char>(c0))) {
        if (haveRanges) return error(pos, tok, "a second size-range list in one entry (use commas: 0-4k,1M-inf)");
        TRELLIS_TRY(ranges(pos, tok, e));
        haveRanges = true;
      } else if (std::isalpha(static_cast<unsigned char>(c0))) {
        if (haveColls) return error(pos, tok, "a second collective list in one entry (use commas: allreduce,broadcast)");
        TRELLIS_TRY(colls(pos, tok, e, &all));
        haveColls = true;
      } else {
        return error(pos, tok,
                     "expected a collective, a size range (0-64k), a team size ([2-8]), @algorithm, !algorithm, "
                     "chunk= or channels=");
      }
      pos = colon + 1;
    }
    if (!haveColls) return error(begin, text_.substr(begin, end - begin), "the entry names no collective");
    if (!haveAction)
      return error(begin, text_.substr(begin, end - begin), "the entry sets nothing (@algo, !algo, chunk= or channels=)");
    for (auto& [at, tok] : algoToks) {
      const std::string name = tok.substr(1);
      if (name.empty()) return error(at, tok, "an algorithm name must follow '" + tok.substr(0, 1) + "'");
      std::vector<algos::Coll> kept;
      for (algos::Coll c : e->colls) {
        const algos::Algorithm* a = findAlgorithmOrAlias(c, name);
        if (a == nullptr) {
          if (all) continue;
          return error(at, tok, formatString("%s has no algorithm '%s' (valid: %s)", algos::collName(c), name.c_str(),
                                             validAlgos(c).c_str()));
        }
        if (tok[0] == '@') {
          if (e->colls.size() > 1 && !all)
            return error(at, tok, "'@' forces one algorithm: give one collective per entry");
          e->force = a;
        } else {
          e->exclude.push_back(a);
        }
        kept.push_back(c);
      }
      if (kept.empty()) return error(at, tok, "no collective has an algorithm '" + name + "'");
      if (all && tok[0] == '@') e->colls = kept;  // 'all:@ring': the collectives that have a ring
    }
    return Status::ok();
  }

  Status colls(size_t at, const std::string& tok, TuneEntry* e, bool* all) {
    size_t p = 0;
    while (p <= tok.size()) {
      size_t comma = tok.find(',', p);
      if (comma == std::string::npos) comma = tok.size();
      std::string name = tok.substr(p, comma - p);
      if (name == "all") {
        *all = true;
        for (int i = 0; i < static_cast<int>(algos::Coll::kCount); ++i) e->colls.push_back(static_cast<algos::Coll>(i));
      } else {
        algos::Coll c;
        if (!algos::parseColl(name, &c))
          return error(at + p, name,
                       "unknown collective (allreduce, broadcast, reduce, allgather, reducescatter, alltoall, "
                       "alltoallv, all)");
        e->colls.push_back(c);
      }
      p = comma + 1;
    }
    return Status::ok();
  }

  Status ranges(size_t at, const std::string& tok, TuneEntry* e) {
    size_t p = 0;
    while (p <= tok.size()) {
      size_t comma = tok.find(',', p);
      if (comma == std::string::npos) comma = tok.size();
      const std::string r = tok.substr(p, comma - p);
      const size_t dash = r.find('-');
      TuneRange range;
      if (dash == std::string::npos || !parseSize(r.substr(0, dash), &range.lo))
        return error(at + p, r, "a size range is <from>-<to> with sizes like 4096, 64k, 1M or 'inf' (0-64k, 1M-inf)");
      const std::string hi = r.substr(dash + 1);
      if (hi != "inf" && !parseSize(hi, &range.hi))
        return error(at + p + dash + 1, hi, "the upper end of a size range is a size (64k, 1M) or 'inf'");
      if (range.hi <= range.lo) return error(at + p, r, "the range is empty (the upper end must exceed the lower)");
      e->ranges.push_back(range);
      p = comma + 1;
    }
    return Status::ok();
  }

  Status team(size_t at, const std::string& tok, TuneEntry* e) {
    if (tok.size() < 3 || tok.back() != ']') return error(at, tok, "a team size range is [<from>-<to>] (e.g. [2-8], [16-inf])");
    const std::string in = tok.substr(1, tok.size() - 2);
    const size_t dash = in.find('-');
    uint64_t lo = 0, hi = 0;
    if (dash == std::string::npos || !parseSize(in.substr(0, dash), &lo) || lo > INT32_MAX)
      return error(at, tok, "a team size range is [<from>-<to>] (e.g. [2-8], [16-inf])");
    const std::string h = in.substr(dash + 1);
    if (h == "inf") hi = INT32_MAX;
    else if (!parseSize(h, &hi) || hi > INT32_MAX)
      return error(at, tok, "the upper end of a team size range is a rank count or 'inf'");
    if (hi < lo) return error(at, tok, "the team size range is empty");
    e->teamLo = static_cast<int>(lo);
    e->teamHi = static_cast<int>(hi);
    return Status::ok();
  }

  const std::string& text_;
};

}  // namespace

bool TuneEntry::matches(algos::Coll coll, uint64_t bytes, int nranks) const {
  if (nranks < teamLo || nranks > teamHi) return false;
  if (std::find(colls.begin(), colls.end(), coll) == colls.end()) return false;
  if (ranges.empty()) return true;
  for (const TuneRange& r : ranges)
    if (bytes >= r.lo && (r.hi == UINT64_MAX || bytes < r.hi)) return true;
  return false;
}

bool parseSize(const std::string& text, uint64_t* out) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return false;
  uint64_t v = 0;
  size_t i = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  int shift = 0;
  if (i < text.size()) {
    switch (text[i]) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      default: return false;
    }
    if (i + 1 != text.size()) return false;
  }
  if (shift && v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

const algos::Algorithm* findAlgorithmOrAlias(algos::Coll coll, const std::string& name) {
  if (const algos::Algorithm* a = algos::findAlgorithm(coll, name)) return a;
  for (const Alias& a : kAliases)
    if (a.coll == coll && strcasecmp(a.alias, name.c_str()) == 0) return algos::findAlgorithm(coll, a.name);
  return nullptr;
}

Result<std::vector<TuneEntry>> parseTuneString(const std::string& text) { return Parser(text).run(); }

}  // namespace trellis::tuner
