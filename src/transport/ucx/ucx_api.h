// The UCP entry points Trellis uses, resolved at run time from libucp.so.0. libtrellis.so does not
// link UCX: a process loads it only when it selects the UCX transport. (UCX's library constructor
// installs its own SIGSEGV/SIGHUP handlers, loads its transport modules and scans devices; a
// PyTorch job that never asked for UCX should not get any of that.) UCX's headers are still used at
// build time for the types, constants and inline helpers.
#pragma once

#include <ucp/api/ucp.h>

#include "core/status.h"

namespace trellis::transport::ucx {

// clang-format off
#define TRELLIS_UCX_FUNCTIONS(X) \
  X(ucp_get_version) \
  X(ucp_get_version_string) \
  X(ucp_config_read) \
  X(ucp_config_modify) \
  X(ucp_config_release) \
  X(ucp_config_print) \
  X(ucp_init_version) \
  X(ucp_cleanup) \
  X(ucp_worker_create) \
  X(ucp_worker_destroy) \
  X(ucp_worker_get_address) \
  X(ucp_worker_release_address) \
  X(ucp_worker_get_efd) \
  X(ucp_worker_arm) \
  X(ucp_worker_progress) \
  X(ucp_worker_flush_nbx) \
  X(ucp_ep_create) \
  X(ucp_ep_close_nbx) \
  X(ucp_ep_print_info) \
  X(ucp_tag_send_nbx) \
  X(ucp_tag_recv_nbx) \
  X(ucp_request_cancel) \
  X(ucp_request_free) \
  X(ucp_request_check_status) \
  X(ucs_status_string)
// clang-format on

/// Function pointers named after the UCP functions they point to.
struct Api {
#define TRELLIS_UCX_MEMBER(fn) decltype(&::fn) fn = nullptr;
  TRELLIS_UCX_FUNCTIONS(TRELLIS_UCX_MEMBER)
#undef TRELLIS_UCX_MEMBER
};

/// Loads UCX once per process (never unloaded). Fails, naming the library and the loader's message,
/// when libucp.so.0 or one of its symbols is missing, or when it is older than 1.10.
Result<const Api*> load();

}  // namespace trellis::transport::ucx
