// Parser for `ibnetdiscover` output (infiniband-diags, default format). The file is a sequence of
// node blocks:
//
//   vendid=0x2c9 / devid=... / sysimgguid=0x... / switchguid=0x...(...) | caguid=0x...
//   Switch  65 "S-<guid>"   # "<node description>" enhanced port 0 lid 73 lmc 0
//   [1]  "H-<guid>"[1](<portguid>)   # "<peer description>" lid 647 4xNDR
//   Ca  1 "H-<guid>"   # "<node description>"
//   [1](<portguid>)  "S-<guid>"[65]  # lid 193 lmc 0 "<peer description>" lid 73 4xNDR
//
// Every cable is reported from both ends; links are keyed by their two (node, port) ends and kept
// once. A node may be referenced before its own block (switches come first), so entities are
// created on first mention and completed when their header arrives.
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <unordered_map>
#include <vector>

#include "topo/fabric/fabric.h"
#include "topo/fabric/text_util.h"

namespace trellis::topo::fabric {
namespace {

constexpr size_t kMaxInputBytes = size_t{64} << 20;
constexpr size_t kMaxLineBytes = 4096;
constexpr uint32_t kMaxPort = 255;     // IB port numbers are 8-bit
constexpr uint32_t kMaxNodes = 1u << 20;

struct PeerRef {
  char type = 0;  // 'S', 'H' or 'R'
  uint64_t guid = 0;
  uint32_t port = 0;
};

// Comment part of a header or port line: the description (between the first and last double
// quote), the LID that follows it, and a trailing "<width>x<speed>" token.
struct Comment {
  bool hasDesc = false;
  std::string_view desc;
  uint32_t lid = 0;
  uint32_t width = 0;
  std::string_view speed;
};

class Parser {
 public:
  Parser(std::string_view text, const std::string& name) : text_(text), name_(name) {
    fabric_.sourceName = name;
    fabric_.sourceKind = SourceKind::kIbnetdiscover;
  }

  Result<Fabric> run() {
    if (text_.size() > kMaxInputBytes)
      return invalidArgument("%s: %zu bytes is over the %zu-byte limit for ibnetdiscover input",
                             name_.c_str(), text_.size(), kMaxInputBytes);
    size_t pos = 0;
    while (pos < text_.size()) {
      size_t end = text_.find('\n', pos);
      if (end == std::string_view::npos) end = text_.size();
      ++line_;
      std::string_view l = text_.substr(pos, end - pos);
      pos = end + 1;
      if (l.size() > kMaxLineBytes)
        return fail("line is %zu bytes long (limit %zu)", l.size(), kMaxLineBytes);
      TRELLIS_TRY(parseLine(trim(l)));
    }
    if (fabric_.switches.empty() && fabric_.hcas.empty())
      return invalidArgument("%s: no Switch or Ca entries found (is this ibnetdiscover output?)",
                             name_.c_str());
    for (Hca& h : fabric_.hcas) describeHca(h);
    for (Switch& s : fabric_.switches) describeSwitch(s);
    classifyTiers(fabric_);
    return std::move(fabric_);
  }

 private:
  Status fail(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return invalidArgument("%s:%u: %s", name_.c_str(), line_, buf);
  }

  Status parseLine(std::string_view l) {
    if (l.empty() || l[0] == '#') return Status::ok();
    if (l[0] == '[') return parsePortLine(l);
    if (startsWith(l, "Switch") || startsWith(l, "Ca") || startsWith(l, "Rt")) return parseHeader(l);
    size_t eq = l.find('=');
    if (eq != std::string_view::npos && eq > 0 && isIdent(l.substr(0, eq))) {
      std::string_view key = l.substr(0, eq), value = l.substr(eq + 1);
      if (key == "sysimgguid") {
        uint64_t g = 0;
        if (!parseHex(stripHexPrefix(value), &g)) return fail("bad sysimgguid '%s'", clip(value).c_str());
        pendingSystemGuid_ = g;
      }
      return Status::ok();  // vendid, devid, switchguid, caguid: nothing we need beyond the header
    }
    return fail("unrecognised line '%s'", clip(l).c_str());
  }

  // "Switch\t65 \"S-2c5e...\"\t\t# \"desc\" enhanced port 0 lid 73 lmc 0"
  Status parseHeader(std::string_view l) {
    Scanner sc(l);
    std::string_view word = sc.word();
    char type = word == "Switch" ? 'S' : word == "Ca" ? 'H' : word == "Rt" ? 'R' : 0;
    if (!type) return fail("unrecognised node header '%s'", clip(l).c_str());
    sc.skipSpace();
    uint32_t ports = 0;
    if (!sc.number(&ports) || ports > kMaxPort)
      return fail("%s header: expected a port count of at most %u", std::string(word).c_str(), kMaxPort);
    sc.skipSpace();
    PeerRef id;
    TRELLIS_TRY(quotedId(sc, &id));
    if (id.type != type)
      return fail("%s header names a node of type '%c'", std::string(word).c_str(), id.type);
    Comment c;
    TRELLIS_TRY(comment(sc, &c));
    TRELLIS_ASSIGN_OR_RETURN(uint32_t index, entity(type, id.guid, c, /*fromHeader=*/true));
    current_ = {type, index, ports};
    if (type == 'S') {
      Switch& s = fabric_.switches[index];
      s.portCount = ports;
      if (c.lid) s.lid = c.lid;
    } else {
      Hca& h = fabric_.hcas[index];
      h.portCount = ports;
      h.systemGuid = pendingSystemGuid_;
      if (type == 'R') h.kind = CaKind::kRouter;
    }
    pendingSystemGuid_ = 0;
    return Status::ok();
  }

  // "[1]\t\"H-e09d...\"[1](e09d...) \t\t# \"desc\" lid 647 4xNDR" (switch block) or
  // "[1](2c5e...) \t\"S-2c5e...\"[65]\t\t# lid 193 lmc 0 \"desc\" lid 73 4xNDR" (CA block).
  Status parsePortLine(std::string_view l) {
    if (!current_.type) return fail("port line before any Switch/Ca header");
    Scanner sc(l);
    uint32_t port = 0;
    TRELLIS_TRY(bracketNumber(sc, &port, "local port"));
    if (sc.peek() == '[') {  // optional "[ext N]" external port label on some switches
      size_t close = sc.rest().find(']');
      if (close == std::string_view::npos) return fail("unterminated '[' after port %u", port);
      sc.advance(close + 1);
    }
    TRELLIS_TRY(optionalParenGuid(sc));
    sc.skipSpace();
    PeerRef peer;
    TRELLIS_TRY(quotedId(sc, &peer));
    TRELLIS_TRY(bracketNumber(sc, &peer.port, "peer port"));
    TRELLIS_TRY(optionalParenGuid(sc));
    Comment c;
    TRELLIS_TRY(comment(sc, &c));
    if (current_.ports && port > current_.ports)
      fabric_.warnings.push_back(formatString("%s:%u: port %u is above the node's %u ports",
                                              name_.c_str(), line_, port, current_.ports));
    TRELLIS_ASSIGN_OR_RETURN(uint32_t peerIndex, entity(peer.type, peer.guid, c, false));
    Endpoint self{current_.type == 'S', current_.index, port};
    Endpoint other{peer.type == 'S', peerIndex, peer.port};
    addLink(self, other, c);
    return Status::ok();
  }

  Status quotedId(Scanner& sc, PeerRef* id) {
    if (sc.peek() != '"') return fail("expected a quoted node id such as \"S-<guid>\"");
    sc.advance(1);
    size_t close = sc.rest().find('"');
    if (close == std::string_view::npos) return fail("unterminated quoted node id");
    std::string_view s = sc.rest().substr(0, close);
    sc.advance(close + 1);
    if (s.size() < 3 || s[1] != '-' || (s[0] != 'S' && s[0] != 'H' && s[0] != 'R'))
      return fail("node id '%s' is not of the form S-/H-/R-<guid>", clip(s).c_str());
    id->type = s[0];
    if (!parseHex(s.substr(2), &id->guid)) return fail("bad GUID in node id '%s'", clip(s).c_str());
    return Status::ok();
  }

  Status bracketNumber(Scanner& sc, uint32_t* out, const char* what) {
    if (sc.peek() != '[') return fail("expected '[' before the %s number", what);
    sc.advance(1);
    if (!sc.number(out) || *out > kMaxPort) return fail("bad %s number (1..%u)", what, kMaxPort);
    if (sc.peek() != ']') return fail("expected ']' after the %s number", what);
    sc.advance(1);
    return Status::ok();
  }

  Status optionalParenGuid(Scanner& sc) {
    if (sc.peek() != '(') return Status::ok();
    size_t close = sc.rest().find(')');
    if (close == std::string_view::npos) return fail("unterminated '(' port GUID");
    uint64_t g = 0;
    if (!parseHex(sc.rest().substr(1, close - 1), &g)) return fail("bad port GUID");
    sc.advance(close + 1);
    return Status::ok();
  }

  Status comment(Scanner& sc, Comment* c) {
    sc.skipSpace();
    if (sc.atEnd()) return Status::ok();
    if (sc.peek() != '#') return fail("unexpected text '%s'", clip(sc.rest()).c_str());
    std::string_view rest = sc.rest().substr(1);
    size_t open = rest.find('"');
    std::string_view tail = rest;
    if (open != std::string_view::npos) {
      size_t close = rest.rfind('"');
      if (close == open) return fail("unterminated quoted description");
      c->hasDesc = true;
      c->desc = rest.substr(open + 1, close - open - 1);
      if (c->desc.size() > kMaxDescBytes)
        return fail("description is %zu bytes (limit %zu)", c->desc.size(), kMaxDescBytes);
      tail = rest.substr(close + 1);
    }
    Scanner t(tail);
    for (;;) {
      t.skipSpace();
      std::string_view w = t.word();
      if (w.empty()) break;
      if (w == "lid") {
        t.skipSpace();
        uint32_t lid = 0;
        if (t.number(&lid) && lid <= 0xffff) c->lid = lid;
        continue;
      }
      size_t x = w.find('x');
      uint32_t width = 0;
      if (x != std::string_view::npos && x > 0 && x + 1 < w.size() &&
          parseUint(w.substr(0, x), &width) && width >= 1 && width <= 32 &&
          w[x + 1] >= 'A' && w[x + 1] <= 'Z') {
        c->width = width;
        c->speed = w.substr(x + 1);
      }
    }
    return Status::ok();
  }

  // Finds or creates the switch/CA with this GUID; the description of a header wins over one
  // seen on a peer's port line.
  Result<uint32_t> entity(char type, uint64_t guid, const Comment& c, bool fromHeader) {
    auto& map = type == 'S' ? switchIndex_ : caIndex_;
    auto it = map.find(guid);
    uint32_t index;
    if (it == map.end()) {
      if (fabric_.switches.size() + fabric_.hcas.size() >= kMaxNodes)
        return fail("more than %u nodes", kMaxNodes);
      if (type == 'S') {
        index = static_cast<uint32_t>(fabric_.switches.size());
        fabric_.switches.emplace_back();
        fabric_.switches.back().guid = guid;
      } else {
        index = static_cast<uint32_t>(fabric_.hcas.size());
        fabric_.hcas.emplace_back();
        fabric_.hcas.back().guid = guid;
      }
      map.emplace(guid, index);
    } else {
      index = it->second;
    }
    std::vector<char>& seen = type == 'S' ? switchHeaderSeen_ : caHeaderSeen_;
    if (seen.size() <= index) seen.resize(index + 1, 0);
    std::string& desc = type == 'S' ? fabric_.switches[index].description : fabric_.hcas[index].description;
    Origin& origin = type == 'S' ? fabric_.switches[index].origin : fabric_.hcas[index].origin;
    if (fromHeader) {
      if (seen[index]) {
        fabric_.warnings.push_back(formatString("%s:%u: second block for GUID %s; keeping the first",
                                                name_.c_str(), line_, guidString(guid).c_str()));
      } else {
        desc = std::string(c.desc);
        origin = {SourceKind::kIbnetdiscover, line_};
        seen[index] = 1;
      }
    } else if (!seen[index] && origin.line == 0) {
      desc = std::string(c.desc);
      origin = {SourceKind::kIbnetdiscover, line_};
    }
    return index;
  }

  void addLink(const Endpoint& x, const Endpoint& y, const Comment& c) {
    uint64_t kx = endKey(x), ky = endKey(y);
    auto known = peerOf_.find(kx);
    if (known != peerOf_.end()) {
      if (known->second != ky)
        fabric_.warnings.push_back(formatString(
            "%s:%u: port %u of %s is reported linked to two different peers; keeping the first",
            name_.c_str(), line_, x.port, x.isSwitch ? "a switch" : "an HCA"));
      else if (c.width && !fabric_.links[linkOf_[kx]].width) {  // fill the rate from this side
        fabric_.links[linkOf_[kx]].width = c.width;
        fabric_.links[linkOf_[kx]].speed = std::string(c.speed);
      }
      return;
    }
    if (peerOf_.count(ky)) {
      fabric_.warnings.push_back(formatString(
          "%s:%u: peer port %u is already linked elsewhere; keeping the first", name_.c_str(),
          line_, y.port));
      return;
    }
    Link link;
    link.a = x;
    link.b = y;
    link.width = c.width;
    link.speed = std::string(c.speed);
    link.origin = {SourceKind::kIbnetdiscover, line_};
    uint32_t li = static_cast<uint32_t>(fabric_.links.size());
    fabric_.links.push_back(std::move(link));
    peerOf_[kx] = ky;
    peerOf_[ky] = kx;
    linkOf_[kx] = li;
    linkOf_[ky] = li;
  }

  static uint64_t endKey(const Endpoint& e) {
    return (uint64_t{e.isSwitch} << 63) | (uint64_t{e.index} << 8) | e.port;
  }

  std::string_view text_;
  const std::string& name_;
  uint32_t line_ = 0;
  Fabric fabric_;
  uint64_t pendingSystemGuid_ = 0;
  struct Current {
    char type = 0;
    uint32_t index = 0;
    uint32_t ports = 0;
  } current_;
  std::unordered_map<uint64_t, uint32_t> switchIndex_, caIndex_;
  std::vector<char> switchHeaderSeen_, caHeaderSeen_;
  std::unordered_map<uint64_t, uint64_t> peerOf_;
  std::unordered_map<uint64_t, uint32_t> linkOf_;
};

}  // namespace

Result<Fabric> parseIbnetdiscover(std::string_view text, const std::string& sourceName) {
  return Parser(text, sourceName).run();
}

Result<Fabric> loadIbnetdiscover(const std::string& path) {
  TRELLIS_ASSIGN_OR_RETURN(std::string text, readTextFile(path));
  return parseIbnetdiscover(text, path);
}

}  // namespace trellis::topo::fabric
