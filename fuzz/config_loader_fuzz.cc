// Fuzz target: the TOML configuration loader (server/config/config.h) on arbitrary text.
//
// Input: the configuration file's text, optionally followed by a NUL byte and NUL-separated
// extra sources: "AMATERS_NAME=value" pieces become environment variables, anything else a
// `--set section.key=value` override.
//
// Checks: LoadConfig returns a Config or an error, never crashes; every error is
// kInvalidArgument with a message (the file exists and is readable); an accepted Config passes
// Validate, converts to WAL writer options, reloads onto itself with nothing to apply or
// ignore, and survives a round trip: its values written back as TOML (FormatConfigValue) load
// to the same values.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "engine/base/check.h"
#include "server/config/config.h"

namespace amaters::fuzz {
namespace {

// One scratch file per process, rewritten for every input.
const std::string& ScratchPath() {
  static const std::string* path = [] {
    const char* dir = std::getenv("TEST_TMPDIR");
    std::string templ = absl::StrCat(dir ? dir : "/tmp", "/amaters_config_fuzz_XXXXXX");
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    const int fd = mkstemp(buf.data());
    AM_CHECK(fd >= 0, "mkstemp ", templ);
    close(fd);
    return new std::string(buf.data());
  }();
  return *path;
}

void WriteScratch(absl::string_view text) {
  const int fd = open(ScratchPath().c_str(), O_WRONLY | O_TRUNC);
  AM_CHECK(fd >= 0, "open ", ScratchPath());
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    AM_CHECK(n > 0, "write ", ScratchPath());
    done += static_cast<size_t>(n);
  }
  close(fd);
}

std::string Values(const server::Config& c) {
  std::string out;
  for (const server::ConfigKeyInfo& k : server::ConfigKeys()) {
    absl::StatusOr<std::string> v = server::FormatConfigValue(c, k.key);
    AM_CHECK(v.ok(), "cannot format ", k.key, ": ", v.status().ToString());
    absl::StrAppend(&out, k.key, "=", *v, "\n");
  }
  return out;
}

// The Config as a TOML file.
std::string ToToml(const server::Config& c) {
  std::string out;
  std::string section;
  for (const server::ConfigKeyInfo& k : server::ConfigKeys()) {
    if (k.section != section) {
      section = k.section;
      absl::StrAppend(&out, "[", section, "]\n");
    }
    absl::StrAppend(&out, k.name, " = ", *server::FormatConfigValue(c, k.key), "\n");
  }
  return out;
}

void RunInput(absl::string_view data) {
  server::ConfigSources sources;
  std::vector<absl::string_view> parts = absl::StrSplit(data, absl::ByChar('\0'));
  WriteScratch(parts[0]);
  sources.file = ScratchPath();
  for (size_t i = 1; i < parts.size() && i <= 8; ++i) {
    absl::string_view p = parts[i];
    if (p.empty()) continue;
    const size_t eq = p.find('=');
    if (absl::StartsWith(p, "AMATERS_") && eq != absl::string_view::npos) {
      sources.env[std::string(p.substr(0, eq))] = std::string(p.substr(eq + 1));
    } else {
      sources.overrides.push_back(std::string(p));
    }
  }
  absl::StatusOr<server::Config> c = server::LoadConfig(sources);
  if (!c.ok()) {
    AM_CHECK(c.status().code() == absl::StatusCode::kInvalidArgument,
             "unexpected error code: ", c.status().ToString());
    AM_CHECK(!c.status().message().empty(), "error without a message");
    return;
  }
  absl::Status v = server::Validate(*c);
  AM_CHECK(v.ok(), "LoadConfig returned a config Validate refuses: ", v.ToString());
  AM_CHECK(server::WalWriterOptions(*c).ok(), "valid config, invalid WAL options");
  server::ReloadPlan plan = server::PlanReload(*c, *c);
  AM_CHECK(plan.applied.empty() && plan.ignored.empty(), "reload onto itself changes keys");

  const std::string values = Values(*c);
  const std::string toml = ToToml(*c);
  WriteScratch(toml);
  server::ConfigSources again;
  again.file = ScratchPath();
  absl::StatusOr<server::Config> c2 = server::LoadConfig(again);
  AM_CHECK(c2.ok(), "formatted config does not load: ", c2.status().ToString(), "\n", toml);
  AM_CHECK(Values(*c2) == values, "round trip changed the config:\n", values, "---\n", Values(*c2));
}

}  // namespace
}  // namespace amaters::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  amaters::fuzz::RunInput(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
