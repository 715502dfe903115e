// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of WAL records.
// Uses the CPU's crc32 instruction where there is one (x86-64 with SSE4.2), else software
// slicing-by-8; both give the same values, which match the values of RFC 3720 §B.4 and iSCSI / ext4 / RocksDB.
#ifndef AMATERS_ENGINE_BASE_CRC32C_H_
#define AMATERS_ENGINE_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace amaters {

// Extends `crc` (the CRC of some prefix; 0 for none) with `n` bytes.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
// The software implementation alone (what Crc32cExtend falls back to); for tests.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(absl::string_view s) { return Crc32cExtend(0, s.data(), s.size()); }

}  // namespace amaters

#endif  // AMATERS_ENGINE_BASE_CRC32C_H_
