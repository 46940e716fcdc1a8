// The kernels' fatbin (sm_80 and sm_90 code, compute_90 PTX) embedded in the library by
// fatbin_embed.cc; loaded with cuModuleLoadData.
#pragma once

#include <cstddef>

extern "C" {
/// First byte of the embedded fatbin (16-byte aligned).
extern const unsigned char trellis_cuda_fatbin_begin[];
/// One past its last byte.
extern const unsigned char trellis_cuda_fatbin_end[];
}

namespace trellis::cuda {
inline const void* embeddedFatbin() { return trellis_cuda_fatbin_begin; }
inline size_t embeddedFatbinBytes() {
  return static_cast<size_t>(trellis_cuda_fatbin_end - trellis_cuda_fatbin_begin);
}
}  // namespace trellis::cuda
