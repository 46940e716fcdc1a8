// trellis-info: the library version, every parameter (value, default, where it was set) and the
// algorithms per collective.
#include <cstdio>
#include <cstring>
#include <string>

#include "algos/coll.h"
#include "core/params.h"
#include "trellis/trellis.h"

static void printVersion() {
  int v = 0;
  trellisGetVersion(&v);
  std::printf("Trellis %d.%d.%d\n", v / 10000, v / 100 % 100, v % 100);
}

static void printParams() {
  std::printf("%-42s %-8s %-14s %-12s %s\n", "PARAMETER", "TYPE", "VALUE", "SOURCE", "DEFAULT / DESCRIPTION");
  for (trellis::ParamBase* p : trellis::allParams()) {
    std::string value = p->valueString();
    std::printf("%-42s %-8s %-14s %-12s default %s: %s\n", p->name(), p->typeName(),
                value.empty() ? "\"\"" : value.c_str(), trellis::paramSourceName(p->source()),
                p->defaultString().empty() ? "\"\"" : p->defaultString().c_str(), p->doc());
    if (!p->error().empty()) std::printf("  ! %s\n", p->error().c_str());
  }
}

static void printAlgos() {
  std::printf("%-14s %-18s %s\n", "COLLECTIVE", "ALGORITHM", "DESCRIPTION");
  for (const auto& a : trellis::algos::allAlgorithms())
    std::printf("%-14s %-18s %s\n", trellis::algos::collName(a.coll), a.name, a.description);
}

int main(int argc, char** argv) {
  std::string what = argc > 1 ? argv[1] : "all";
  if (what == "-h" || what == "--help") {
    std::printf("usage: trellis-info [version|params|algos|all]\n"
                "  version  library version\n"
                "  params   every TRELLIS_* parameter: value, type, where it was set, default, meaning\n"
                "  algos    the algorithms of each collective (TRELLIS_ALGO=<collective>:<algorithm>)\n");
    return 0;
  }
  if (what == "version" || what == "all") printVersion();
  if (what == "params" || what == "all") {
    if (what == "all") std::printf("\n");
    printParams();
  }
  if (what == "algos" || what == "all") {
    if (what == "all") std::printf("\n");
    printAlgos();
  }
  if (what != "version" && what != "params" && what != "algos" && what != "all") {
    std::fprintf(stderr, "trellis-info: unknown topic '%s' (version, params, algos, all)\n", what.c_str());
    return 2;
  }
  return 0;
}
