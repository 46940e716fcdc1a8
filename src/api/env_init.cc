// trellisCommInitFromEnv: a communicator from what the launcher put in the environment.
//   1. trellis-run:  TRELLIS_UNIQUE_ID (hex) + TRELLIS_RANK + TRELLIS_WORLD_SIZE.
//   2. otherwise rank/size from TRELLIS_RANK/TRELLIS_WORLD_SIZE, OMPI_COMM_WORLD_RANK/SIZE (mpirun),
//      PMI_RANK/PMI_SIZE, SLURM_PROCID/SLURM_NTASKS (srun) or RANK/WORLD_SIZE (torchrun), and the
//      root address from TRELLIS_ROOT_ADDR=host:port or MASTER_ADDR + (MASTER_PORT + 1) (torchrun's
//      own store keeps MASTER_PORT). Rank 0 starts the rendezvous root there. The secret is
//      TRELLIS_SECRET (32 hex characters) when set; otherwise it is derived from the job's ids,
//      which keeps jobs apart but is not a secret (set TRELLIS_SECRET where that matters).
#include <cstring>
#include <functional>

#include "api/api_internal.h"
#include "core/log.h"
#include "core/params.h"

using namespace trellis;  // NOLINT

namespace trellis {
namespace {

Result<int> envInt(const char* name, const std::string& text) {
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 0 || v > INT32_MAX)
    return invalidArgument("%s='%s' is not a non-negative integer", name, text.c_str());
  return static_cast<int>(v);
}

struct EnvPair {
  const char* rank;
  const char* size;
  const char* launcher;
};
constexpr EnvPair kPairs[] = {{"TRELLIS_RANK", "TRELLIS_WORLD_SIZE", "trellis-run"},
                              {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "mpirun (Open MPI)"},
                              {"PMI_RANK", "PMI_SIZE", "PMI"},
                              {"SLURM_PROCID", "SLURM_NTASKS", "srun"},
                              {"RANK", "WORLD_SIZE", "torchrun"}};

Status rankAndSize(int* rank, int* size, const char** launcher) {
  for (const EnvPair& p : kPairs) {
    auto r = envLookup(p.rank), s = envLookup(p.size);
    if (!r || !s) continue;
    TRELLIS_ASSIGN_OR_RETURN(*rank, envInt(p.rank, *r));
    TRELLIS_ASSIGN_OR_RETURN(*size, envInt(p.size, *s));
    if (*size < 1 || *rank >= *size)
      return invalidArgument("%s=%d and %s=%d are inconsistent", p.rank, *rank, p.size, *size);
    *launcher = p.launcher;
    return Status::ok();
  }
  return invalidUsage("trellisCommInitFromEnv: no launcher environment found (TRELLIS_RANK/TRELLIS_WORLD_SIZE, "
                      "OMPI_COMM_WORLD_*, PMI_*, SLURM_PROCID/SLURM_NTASKS or RANK/WORLD_SIZE)");
}

Status deriveSecret(uint8_t out[16]) {
  if (auto hex = envLookup("TRELLIS_SECRET")) {
    if (hex->size() != 32) return invalidArgument("TRELLIS_SECRET must be 32 hex characters, got %zu", hex->size());
    for (int i = 0; i < 16; ++i) {
      unsigned v;
      if (std::sscanf(hex->c_str() + 2 * i, "%2x", &v) != 1)
        return invalidArgument("TRELLIS_SECRET has a non-hex character near offset %d", 2 * i);
      out[i] = static_cast<uint8_t>(v);
    }
    return Status::ok();
  }
  std::string seed = "trellis";
  for (const char* n : {"OMPI_MCA_orte_hnp_uri", "OMPI_MCA_ess_base_jobid", "PMIX_NAMESPACE", "SLURM_JOB_ID",
                        "SLURM_STEP_ID", "TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT", "TRELLIS_ROOT_ADDR"})
    seed += "|" + envLookup(n).value_or("");
  uint64_t h1 = std::hash<std::string>{}(seed), h2 = std::hash<std::string>{}(seed + "#2");
  std::memcpy(out, &h1, 8);
  std::memcpy(out + 8, &h2, 8);
  return Status::ok();
}

Result<trellisComm*> initFromEnv() {
  auto opts = commOptions(nullptr);
  if (!opts) return opts.status();
  if (auto hex = envLookup("TRELLIS_UNIQUE_ID")) {
    auto rank = envLookup("TRELLIS_RANK"), size = envLookup("TRELLIS_WORLD_SIZE");
    if (!rank || !size) return invalidUsage("TRELLIS_UNIQUE_ID is set but TRELLIS_RANK/TRELLIS_WORLD_SIZE are not");
    TRELLIS_ASSIGN_OR_RETURN(int r, envInt("TRELLIS_RANK", *rank));
    TRELLIS_ASSIGN_OR_RETURN(int n, envInt("TRELLIS_WORLD_SIZE", *size));
    if (n < 1 || r >= n) return invalidArgument("TRELLIS_RANK=%d and TRELLIS_WORLD_SIZE=%d are inconsistent", r, n);
    TRELLIS_ASSIGN_OR_RETURN(trellisUniqueId id, UniqueIdData::fromHex(*hex));
    TRELLIS_ASSIGN_OR_RETURN(UniqueIdData data, UniqueIdData::decode(id));
    return trellisComm::create(data, n, r, opts.value());
  }
  int rank = 0, size = 0;
  const char* launcher = "";
  TRELLIS_TRY(rankAndSize(&rank, &size, &launcher));
  std::string rootText;
  if (auto a = envLookup("TRELLIS_ROOT_ADDR")) {
    rootText = *a;
  } else if (auto m = envLookup("MASTER_ADDR")) {
    auto port = envLookup("MASTER_PORT");
    if (!port) return invalidUsage("MASTER_ADDR is set but MASTER_PORT is not");
    TRELLIS_ASSIGN_OR_RETURN(int p, envInt("MASTER_PORT", *port));
    rootText = *m + ":" + std::to_string(p + 1);
  } else {
    return invalidUsage("trellisCommInitFromEnv: rank %d of %d (from %s) but no rendezvous address: set "
                        "TRELLIS_ROOT_ADDR=host:port (rank 0's host) or MASTER_ADDR/MASTER_PORT",
                        rank, size, launcher);
  }
  UniqueIdData id;
  TRELLIS_ASSIGN_OR_RETURN(id.root, net::parseHostPort(rootText));
  TRELLIS_TRY(deriveSecret(id.secret));
  if (rank == 0) {
    // Rank 0 hosts the rendezvous on the given address.
    TRELLIS_ASSIGN_OR_RETURN(UniqueIdData started, startBootstrapRootAt(id.root, id.secret, opts->bootstrapTimeoutS));
    id.root = started.root;
  }
  TRELLIS_INFO(kInit, "rank %d of %d from %s, rendezvous at %s", rank, size, launcher, id.root.toString().c_str());
  return trellisComm::create(id, size, rank, opts.value());
}

}  // namespace
}  // namespace trellis

extern "C" TRELLIS_EXPORT trellisResult_t trellisCommInitFromEnv(trellisComm_t* comm) {
  if (comm == nullptr) return report(nullptr, invalidArgument("trellisCommInitFromEnv: comm is NULL"));
  *comm = nullptr;
  auto c = initFromEnv();
  if (!c) return report(nullptr, c.status().withContext("trellisCommInitFromEnv"));
  *comm = c.value();
  return trellisSuccess;
}
