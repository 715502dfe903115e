// The server's log: one line per event on stderr, as text (`I 2026-11-26T22:30:01.123Z msg
// key=value ...`) or JSON (`{"ts":...,"level":"info","msg":...,"key":"value"}`), chosen by
// `[logging] format`; the level (`[logging] level`) reloads on SIGHUP. Thread-safe.
#ifndef AMATERS_SERVER_LOG_H_
#define AMATERS_SERVER_LOG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace amaters::server {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
// Sets the threshold and the format ("text" or "json"); unknown formats keep text.
void ConfigureLog(LogLevel level, absl::string_view format);
bool LogEnabled(LogLevel level);

using LogFields = std::vector<std::pair<std::string, std::string>>;
void LogLine(LogLevel level, absl::string_view message, const LogFields& fields = {});

// Field helper: LogInfo("listening", {F("address", addr), F("node_id", id)}).
template <typename T>
std::pair<std::string, std::string> F(absl::string_view key, const T& value) {
  return {std::string(key), absl::StrCat(value)};
}

inline void LogDebug(absl::string_view m, const LogFields& f = {}) { LogLine(LogLevel::kDebug, m, f); }
inline void LogInfo(absl::string_view m, const LogFields& f = {}) { LogLine(LogLevel::kInfo, m, f); }
inline void LogWarn(absl::string_view m, const LogFields& f = {}) { LogLine(LogLevel::kWarn, m, f); }
inline void LogError(absl::string_view m, const LogFields& f = {}) { LogLine(LogLevel::kError, m, f); }

// JSON string literal for `s`, quotes included (server/admin/json.h's JsonString).
std::string JsonQuote(absl::string_view s);

}  // namespace amaters::server

#endif  // AMATERS_SERVER_LOG_H_
