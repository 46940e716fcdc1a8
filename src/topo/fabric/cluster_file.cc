// Operator-supplied cluster description (JSON), for fabrics without ibnetdiscover output:
//
//   {"format": "trellis-cluster", "version": 1, "link": "4xNDR",
//    "cores":  ["core01"],
//    "spines": [{"name": "spine[01-08]", "uplinks": ["core01"]}],    // or plain names
//    "leaves": [{"name": "su1-r[0-7]", "uplinks": ["spine[01-08]"]}],   // "uplink_link": "4xXDR"
//                                          // sets the rate of an entry's uplinks (default "link")
//    "nodes":  [{"name": "gpu[001-032]", "leaves": ["su1-r[0-7]"],
//                "hcas": ["mlx5_0", ...]}]}                          // optional; default mlx5_<k>
//
// Every name may be a Slurm hostlist expression; lists expand in order. HCA k of every node of
// an entry is cabled to the k-th leaf of its expanded "leaves" list. Switch ports are numbered in the
// order cables are declared, host cables first, then uplinks. Errors name the file and the JSON path.
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "topo/fabric/fabric.h"
#include "topo/fabric/hostlist.h"
#include "topo/fabric/text_util.h"

namespace trellis::topo::fabric {
namespace {

using nlohmann::json;

constexpr size_t kMaxNodes = 1u << 20;
constexpr size_t kMaxHcasPerNode = 64;

class ClusterLoader {
 public:
  explicit ClusterLoader(const std::string& name) : name_(name) {
    f_.sourceName = name;
    f_.sourceKind = SourceKind::kClusterFile;
  }

  Result<Fabric> load(const json& doc) {
    if (!doc.is_object()) return fail("", "the document is not a JSON object");
    if (!doc.contains("format") || !doc["format"].is_string() || doc["format"] != "trellis-cluster")
      return fail("format", "expected \"trellis-cluster\"");
    if (!doc.contains("version") || !doc["version"].is_number_integer() || doc["version"] != 1)
      return fail("version", "only version 1 is known");
    if (doc.contains("link")) TRELLIS_TRY(rate("link", doc["link"], &width_, &speed_));
    TRELLIS_TRY(switches(doc, "cores"));
    TRELLIS_TRY(switches(doc, "spines"));
    TRELLIS_TRY(switches(doc, "leaves"));
    TRELLIS_TRY(nodes(doc));
    // Uplinks after the host cables, so a leaf's low ports face the hosts as on real leaves.
    for (const Uplink& u : uplinks_) {
      TRELLIS_TRY(portCheck(u.path, u.from));
      TRELLIS_TRY(portCheck(u.path, u.to));
      cable({true, u.from, nextPort_[u.from]++}, {true, u.to, nextPort_[u.to]++}, u.width, u.speed);
    }
    classifyTiers(f_);
    return std::move(f_);
  }

 private:
  Status fail(const std::string& path, const std::string& what) {
    return invalidArgument("%s: %s%s%s", name_.c_str(), path.c_str(), path.empty() ? "" : ": ",
                           what.c_str());
  }

  Result<uint32_t> addSwitch(const std::string& path, const std::string& name) {
    if (name.empty() || name.size() > 64) return fail(path, "switch names are 1..64 characters");
    if (switchIndex_.count(name)) return fail(path, "switch '" + clip(name) + "' is declared twice");
    uint32_t index = static_cast<uint32_t>(f_.switches.size());
    Switch s;
    s.name = s.description = name;
    s.origin = {SourceKind::kClusterFile, 0};
    f_.switches.push_back(std::move(s));
    nextPort_.push_back(1);
    switchIndex_.emplace(name, index);
    return index;
  }

  // "<lanes>x<speed>" ("4xNDR") into width and lane speed.
  Status rate(const std::string& path, const json& v, uint32_t* width, std::string* speed) {
    if (!v.is_string()) return fail(path, "expected a string such as \"4xNDR\"");
    std::string text = v.get<std::string>();
    size_t x = text.find('x');
    if (x == std::string::npos || !parseUint(text.substr(0, x), width) || *width == 0 ||
        laneGbps(text.substr(x + 1)) == 0)
      return fail(path, "'" + clip(text) + "' is not <lanes>x<SDR|DDR|QDR|FDR10|FDR|EDR|HDR|NDR|XDR>");
    *speed = text.substr(x + 1);
    return Status::ok();
  }

  void cable(Endpoint a, Endpoint b) { cable(a, b, width_, speed_); }
  void cable(Endpoint a, Endpoint b, uint32_t width, const std::string& speed) {
    Link l;
    l.a = a;
    l.b = b;
    l.width = width;
    l.speed = speed;
    l.origin = {SourceKind::kClusterFile, 0};
    f_.links.push_back(std::move(l));
  }

  // "cores" / "spines" / "leaves": names or {"name", "uplinks"} objects; uplinks must name
  // switches declared in an earlier list.
  Status switches(const json& doc, const char* key) {
    if (!doc.contains(key)) return Status::ok();
    const json& list = doc[key];
    if (!list.is_array()) return fail(key, "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string path = formatString("%s[%zu]", key, i);
      const json& e = list[i];
      const json* uplinks = nullptr;
      std::string expr;
      uint32_t upWidth = width_;
      std::string upSpeed = speed_;
      if (e.is_string()) {
        expr = e.get<std::string>();
      } else if (e.is_object() && e.contains("name") && e["name"].is_string()) {
        expr = e["name"].get<std::string>();
        if (e.contains("uplinks")) uplinks = &e["uplinks"];
        if (e.contains("uplink_link")) TRELLIS_TRY(rate(path + ".uplink_link", e["uplink_link"], &upWidth, &upSpeed));
      } else {
        return fail(path, "expected a name or an object with \"name\"");
      }
      TRELLIS_ASSIGN_OR_RETURN(std::vector<std::string> names, expand(path + ".name", expr));
      std::vector<uint32_t> ups;
      if (uplinks) {
        if (!uplinks->is_array()) return fail(path + ".uplinks", "expected an array of switch names");
        for (size_t u = 0; u < uplinks->size(); ++u) {
          std::string upath = formatString("%s.uplinks[%zu]", path.c_str(), u);
          TRELLIS_ASSIGN_OR_RETURN(std::vector<uint32_t> found, lookup(upath, (*uplinks)[u]));
          ups.insert(ups.end(), found.begin(), found.end());
        }
      }
      for (const std::string& name : names) {
        TRELLIS_ASSIGN_OR_RETURN(uint32_t index, addSwitch(path, name));
        for (uint32_t up : ups) uplinks_.push_back({path, index, up, upWidth, upSpeed});
      }
    }
    return Status::ok();
  }

  Result<std::vector<std::string>> expand(const std::string& path, const std::string& expr) {
    Result<std::vector<std::string>> names = expandHostlist(expr, kMaxNodes);
    if (!names.isOk()) return fail(path, names.status().message());
    if (names->empty()) return fail(path, "names nothing");
    return names;
  }

  // Declared switches named by a string (a name or hostlist expression), in order.
  Result<std::vector<uint32_t>> lookup(const std::string& path, const json& value) {
    if (!value.is_string()) return fail(path, "expected a switch name");
    TRELLIS_ASSIGN_OR_RETURN(std::vector<std::string> names, expand(path, value.get<std::string>()));
    std::vector<uint32_t> out;
    for (const std::string& n : names) {
      auto it = switchIndex_.find(n);
      if (it == switchIndex_.end()) return fail(path, "'" + clip(n) + "' is not a switch declared before");
      out.push_back(it->second);
    }
    return out;
  }

  Status portCheck(const std::string& path, uint32_t sw) {
    if (nextPort_[sw] > 255) return fail(path, "switch '" + f_.switches[sw].name + "' has more than 255 cables");
    return Status::ok();
  }

  Status nodes(const json& doc) {
    if (!doc.contains("nodes") || !doc["nodes"].is_array() || doc["nodes"].empty())
      return fail("nodes", "expected a non-empty array");
    std::unordered_set<std::string> seen;
    const json& list = doc["nodes"];
    for (size_t i = 0; i < list.size(); ++i) {
      std::string path = formatString("nodes[%zu]", i);
      const json& e = list[i];
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
        return fail(path, "expected an object with \"name\" (a host name or hostlist)");
      if (!e.contains("leaves") || !e["leaves"].is_array() || e["leaves"].empty() ||
          e["leaves"].size() > kMaxHcasPerNode)
        return fail(path + ".leaves", formatString("expected 1..%zu leaf names, one per HCA", kMaxHcasPerNode));
      TRELLIS_ASSIGN_OR_RETURN(std::vector<std::string> names, expand(path + ".name", e["name"].get<std::string>()));
      std::vector<uint32_t> leaves;
      for (size_t k = 0; k < e["leaves"].size(); ++k) {
        TRELLIS_ASSIGN_OR_RETURN(std::vector<uint32_t> found,
                                 lookup(formatString("%s.leaves[%zu]", path.c_str(), k), e["leaves"][k]));
        leaves.insert(leaves.end(), found.begin(), found.end());
      }
      if (leaves.size() > kMaxHcasPerNode)
        return fail(path + ".leaves", formatString("more than %zu HCAs per node", kMaxHcasPerNode));
      std::vector<std::string> hcaNames;
      for (size_t k = 0; k < leaves.size(); ++k) hcaNames.push_back("mlx5_" + std::to_string(k));
      if (e.contains("hcas")) {
        const json& h = e["hcas"];
        if (!h.is_array() || h.size() != leaves.size())
          return fail(path + ".hcas", "expected one HCA name per leaf");
        for (size_t k = 0; k < h.size(); ++k) {
          if (!h[k].is_string() || h[k].get<std::string>().empty())
            return fail(formatString("%s.hcas[%zu]", path.c_str(), k), "expected an HCA name");
          hcaNames[k] = h[k].get<std::string>();
        }
      }
      for (const std::string& host : names) {
        if (!seen.insert(host).second) return fail(path + ".name", "host '" + clip(host) + "' is listed twice");
        if (f_.hcas.size() + leaves.size() > kMaxNodes * 8) return fail(path, "too many HCAs");
        for (size_t k = 0; k < leaves.size(); ++k) {
          Hca hca;
          hca.description = host + " " + hcaNames[k];
          describeHca(hca);
          if (hca.nameStatus != NameStatus::kNamed)
            return fail(path, "'" + clip(hca.description) + "' is not a usable '<host> <hca>' name");
          if (hca.hcaIndex < 0) hca.hcaIndex = static_cast<int>(k);
          hca.portCount = 1;
          hca.origin = {SourceKind::kClusterFile, 0};
          uint32_t index = static_cast<uint32_t>(f_.hcas.size());
          f_.hcas.push_back(std::move(hca));
          TRELLIS_TRY(portCheck(path, leaves[k]));
          cable({true, leaves[k], nextPort_[leaves[k]]++}, {false, index, 1});
        }
      }
    }
    return Status::ok();
  }

  const std::string& name_;
  Fabric f_;
  uint32_t width_ = 0;
  std::string speed_;
  std::unordered_map<std::string, uint32_t> switchIndex_;
  std::vector<uint32_t> nextPort_;
  struct Uplink {
    std::string path;
    uint32_t from, to;
    uint32_t width;  // the entry's "uplink_link", else the file's "link"
    std::string speed;
  };
  std::vector<Uplink> uplinks_;
};

}  // namespace

Result<Fabric> parseClusterFile(std::string_view text, const std::string& sourceName) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    size_t line = 1;
    for (size_t i = 0; i < e.byte && i < text.size(); ++i) line += text[i] == '\n';
    return invalidArgument("%s:%zu: not valid JSON (%s)", sourceName.c_str(), line, e.what());
  } catch (const json::exception& e) {  // out_of_range: a number too large for a double (found by fuzzing)
    return invalidArgument("%s: not valid JSON (%s)", sourceName.c_str(), e.what());
  }
  // Every field is type-checked before use; this catches what a check missed (nlohmann throws on
  // a type mismatch) so that a malformed file is an error, never std::terminate.
  try {
    return ClusterLoader(sourceName).load(doc);
  } catch (const json::exception& e) {
    return invalidArgument("%s: a field has an unexpected JSON type (%s)", sourceName.c_str(), e.what());
  }
}

Result<Fabric> loadClusterFile(const std::string& path) {
  TRELLIS_ASSIGN_OR_RETURN(std::string text, readTextFile(path));
  return parseClusterFile(text, path);
}

}  // namespace trellis::topo::fabric
