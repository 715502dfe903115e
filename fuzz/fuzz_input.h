// Reading structured values out of a fuzzer's input bytes (fuzz targets only).
//
// Every read succeeds: past the end of the input it returns zeros / empty strings, so a target
// never has to special-case short inputs and libFuzzer can grow an input one byte at a time.
#ifndef AMATERS_FUZZ_FUZZ_INPUT_H_
#define AMATERS_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace amaters::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size)
      : data_(reinterpret_cast<const char*>(data)), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return size_ - pos_; }

  uint8_t U8() {
    if (pos_ >= size_) return 0;
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint16_t U16() {
    uint16_t lo = U8();
    return static_cast<uint16_t>(lo | (static_cast<uint16_t>(U8()) << 8));
  }
  uint32_t U32() {
    uint32_t lo = U16();
    return lo | (static_cast<uint32_t>(U16()) << 16);
  }
  uint64_t U64() {
    uint64_t lo = U32();
    return lo | (static_cast<uint64_t>(U32()) << 32);
  }
  bool Bool() { return (U8() & 1) != 0; }
  // Up to `n` bytes (fewer at the end of the input).
  absl::string_view Bytes(size_t n) {
    if (n > remaining()) n = remaining();
    absl::string_view out(data_ + pos_, n);
    pos_ += n;
    return out;
  }
  // A u16 length, then that many bytes: a length-prefixed record.
  absl::string_view Record() { return Bytes(U16()); }
  absl::string_view Rest() { return Bytes(remaining()); }

 private:
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Appends the record framing FuzzInput::Record reads (for seed generators).
inline void AppendRecord(absl::string_view bytes, std::string* out) {
  size_t n = bytes.size() > 0xffff ? 0xffff : bytes.size();
  out->push_back(static_cast<char>(n & 0xff));
  out->push_back(static_cast<char>(n >> 8));
  out->append(bytes.data(), n);
}

}  // namespace amaters::fuzz

#endif  // AMATERS_FUZZ_FUZZ_INPUT_H_
