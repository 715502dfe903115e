#include "server/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/admin/json.h"

namespace amaters::server {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};
std::mutex g_mu;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}

bool NeedsQuoting(absl::string_view s) {
  if (s.empty()) return true;
  for (char c : s) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "debug") return LogLevel::kDebug;
  if (n == "info") return LogLevel::kInfo;
  if (n == "warn" || n == "warning") return LogLevel::kWarn;
  if (n == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level \"", name, "\": must be debug, info, warn or error"));
}

void ConfigureLog(LogLevel level, absl::string_view format) {
  g_level.store(static_cast<int>(level));
  g_json.store(format == "json");
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

std::string JsonQuote(absl::string_view s) { return JsonString(s); }

void LogLine(LogLevel level, absl::string_view message, const LogFields& fields) {
  if (!LogEnabled(level)) return;
  const std::string ts =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::string line;
  if (g_json.load()) {
    line = absl::StrCat("{\"ts\":\"", ts, "\",\"level\":\"", LevelName(level),
                        "\",\"msg\":", JsonQuote(message));
    for (const auto& [k, v] : fields) absl::StrAppend(&line, ",", JsonQuote(k), ":", JsonQuote(v));
    line += "}\n";
  } else {
    line = absl::StrCat(absl::AsciiStrToUpper(absl::string_view(LevelName(level), 1)), " ", ts,
                        " ", message);
    for (const auto& [k, v] : fields) {
      absl::StrAppend(&line, " ", k, "=", NeedsQuoting(v) ? JsonQuote(v) : v);
    }
    line += "\n";
  }
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace amaters::server
