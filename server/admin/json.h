// Minimal JSON output for the admin HTTP endpoints (no JSON library is part of the build).
//
// Only writing is supported. Strings are assumed to be UTF-8: valid sequences pass through
// unchanged, every byte that does not start a valid sequence (stray continuation bytes, overlong
// encodings, surrogates, code points above U+10FFFF, truncated sequences) becomes U+FFFD, so the
// output is always valid JSON text even for arbitrary bytes such as file names in probe details.
// `"` and `\` are escaped, control characters U+0000..U+001F use the short escapes \b \f \n \r
// \t where JSON has them and \u00XX otherwise.
#ifndef AMATERS_SERVER_ADMIN_JSON_H_
#define AMATERS_SERVER_ADMIN_JSON_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace amaters::server {

// Appends `s` as a quoted JSON string to `*out`.
void AppendJsonString(std::string* out, absl::string_view s);

// `s` as a quoted JSON string.
std::string JsonString(absl::string_view s);

// Builds one JSON object, members in call order. Keys are escaped like values. The caller keeps
// keys unique. `raw_json` in AddRaw must itself be valid JSON (a nested object or array).
class JsonObject {
 public:
  JsonObject& AddString(absl::string_view key, absl::string_view value);
  JsonObject& AddUint(absl::string_view key, uint64_t value);
  JsonObject& AddBool(absl::string_view key, bool value);
  // Finite values with `decimals` digits after the point; NaN and infinities become null
  // (JSON has no representation for them).
  JsonObject& AddDouble(absl::string_view key, double value, int decimals);
  JsonObject& AddRaw(absl::string_view key, absl::string_view raw_json);

  // The object text ("{}" when empty).
  std::string Build() const;

 private:
  void Key(absl::string_view key);

  std::string body_;  // members without the braces
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_ADMIN_JSON_H_
