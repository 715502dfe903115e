// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of WAL records.
// Pure software, slicing-by-8; matches the values of RFC 3720 §B.4 and iSCSI / ext4 / RocksDB.
#ifndef AMATERS_ENGINE_BASE_CRC32C_H_
#define AMATERS_ENGINE_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace amaters {

// Extends `crc` (the CRC of some prefix; 0 for none) with `n` bytes.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(absl::string_view s) { return Crc32cExtend(0, s.data(), s.size()); }

}  // namespace amaters

#endif  // AMATERS_ENGINE_BASE_CRC32C_H_
