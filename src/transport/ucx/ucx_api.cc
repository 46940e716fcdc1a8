#include "transport/ucx/ucx_api.h"

#include <dlfcn.h>

#include <mutex>

namespace trellis::transport::ucx {

namespace {
constexpr const char* kLibrary = "libucp.so.0";

Status loadInto(Api* api) {
  void* lib = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr)
    return Status(Code::kSystemError,
                  formatString("cannot load UCX (%s, Debian package libucx0): %s; the ucx "
                               "transport is unavailable",
                               kLibrary, dlerror()));
#define TRELLIS_UCX_RESOLVE(fn)                                 \
  api->fn = reinterpret_cast<decltype(&::fn)>(dlsym(lib, #fn)); \
  if (api->fn == nullptr) return internalError("UCX (%s) lacks %s: %s", kLibrary, #fn, dlerror());
  TRELLIS_UCX_FUNCTIONS(TRELLIS_UCX_RESOLVE)
#undef TRELLIS_UCX_RESOLVE
  unsigned major = 0, minor = 0, release = 0;
  api->ucp_get_version(&major, &minor, &release);
  if (major < 1 || (major == 1 && minor < 10))
    return internalError("UCX %u.%u.%u (%s) is too old: the ucx transport needs 1.10 or newer",
                         major, minor, release, kLibrary);
  return Status::ok();
}
}  // namespace

Result<const Api*> load() {
  static std::once_flag once;
  static Api api;
  static Status status;
  std::call_once(once, [] { status = loadInto(&api); });
  if (!status.isOk()) return status;
  return static_cast<const Api*>(&api);
}

}  // namespace trellis::transport::ucx
