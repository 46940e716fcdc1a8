// Embeds the kernels' fatbin (built by nvcc from reduce_kernels.cu; path in TRELLIS_FATBIN_PATH) into
// read-only data with the assembler's .incbin. The build compiles this file without ccache: the
// preprocessed text does not change when the fatbin does, so a cached object would be stale.
#include "cuda/fatbin.h"

#ifndef TRELLIS_FATBIN_PATH
#error "TRELLIS_FATBIN_PATH must name the fatbin to embed"
#endif

__asm__(
    ".section .rodata.trellis_cuda_fatbin,\"a\",@progbits\n"
    ".balign 16\n"
    ".globl trellis_cuda_fatbin_begin\n"
    ".hidden trellis_cuda_fatbin_begin\n"
    "trellis_cuda_fatbin_begin:\n"
    ".incbin \"" TRELLIS_FATBIN_PATH "\"\n"
    ".globl trellis_cuda_fatbin_end\n"
    ".hidden trellis_cuda_fatbin_end\n"
    "trellis_cuda_fatbin_end:\n"
    ".byte 0\n"
    ".previous\n");
