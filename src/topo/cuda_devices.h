// CUDA device ordinals of the GPUs in a topology, from the CUDA driver (libcuda.so.1, loaded with
// dlopen so Trellis needs no NVIDIA library to build or run). The ordinal is what NCCL writes as a
// GPU's `dev` and what frameworks pass to cudaSetDevice; it is not the PCI order in general
// (CUDA_DEVICE_ORDER defaults to FASTEST_FIRST and CUDA_VISIBLE_DEVICES reorders and hides GPUs),
// so it is asked of the driver rather than guessed.
#pragma once

#include <string>

#include "topo/model.h"

namespace trellis::topo {

/// Sets Node::gpuDev of each GPU of `s` the CUDA driver sees (matched by PCI bus id). GPUs the
/// driver does not list (hidden by CUDA_VISIBLE_DEVICES) keep -1 and get a note. Without a driver
/// it logs once at info level and changes nothing. `library` "" means libcuda.so.1.
Status addCudaDeviceIds(System& s, const std::string& library = "");

}  // namespace trellis::topo
