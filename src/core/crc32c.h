// CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected; the checksum of iSCSI, ext4 and SCTP).
// Uses the SSE4.2 crc32 instruction when the CPU has it, else an 8-bytes-at-a-time table.
// (Debian 12 packages no CRC32C library for C++; this is the small, standard algorithm.)
#pragma once

#include <cstddef>
#include <cstdint>

namespace trellis {

/// Extends `crc` (0 to start) over `bytes` at `data`: crc32c(crc32c(0, a), b) == crc32c(0, a+b).
uint32_t crc32c(uint32_t crc, const void* data, size_t bytes);
/// The portable path, whatever the CPU (tests compare both).
uint32_t crc32cSoftware(uint32_t crc, const void* data, size_t bytes);
/// Whether crc32c() uses the crc32 instruction on this CPU.
bool crc32cHardware();

}  // namespace trellis
