#include "engine/testing/datadriven.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace amaters::testing {

std::string Command::Get(const std::string& key, const std::string& def) const {
  auto it = kv.find(key);
  return it == kv.end() ? def : it->second;
}

long long Command::GetInt(const std::string& key, long long def) const {
  auto it = kv.find(key);
  long long v = def;
  if (it != kv.end() && !absl::SimpleAtoi(it->second, &v)) {
    v = def;
  }
  return v;
}

Command ParseCommand(const std::string& line, int line_number) {
  Command c;
  c.line = line;
  c.line_number = line_number;
  std::vector<std::string> toks = absl::StrSplit(line, ' ', absl::SkipWhitespace());
  for (size_t i = 0; i < toks.size(); ++i) {
    if (i == 0) {
      c.name = toks[0];
      continue;
    }
    size_t eq = toks[i].find('=');
    if (eq == std::string::npos) {
      c.args.push_back(toks[i]);
    } else {
      c.kv[toks[i].substr(0, eq)] = toks[i].substr(eq + 1);
    }
  }
  return c;
}

namespace {

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string RunScenarioFile(const std::string& path,
                            const std::function<std::string(const Command&)>& run) {
  std::ifstream in(path);
  if (!in) return absl::StrCat("cannot open ", path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);

  std::string rewritten;
  std::string failures;
  size_t i = 0;
  while (i < lines.size()) {
    const std::string& l = lines[i];
    if (l.empty() || l[0] == '#') {
      absl::StrAppend(&rewritten, l, "\n");
      ++i;
      continue;
    }
    Command cmd = ParseCommand(l, static_cast<int>(i + 1));
    ++i;
    if (i >= lines.size() || lines[i] != "----") {
      absl::StrAppend(&failures, path, ":", cmd.line_number, ": expected ---- after command\n");
      return failures;
    }
    ++i;
    std::string expected;
    while (i < lines.size() && !lines[i].empty()) {
      absl::StrAppend(&expected, lines[i], "\n");
      ++i;
    }
    std::string actual = Trimmed(run(cmd));
    if (actual.empty()) actual = "ok";
    if (Trimmed(expected) != actual) {
      absl::StrAppend(&failures, path, ":", cmd.line_number, ": ", cmd.line,
                      "\n--- expected\n", Trimmed(expected), "\n--- actual\n", actual, "\n");
    }
    absl::StrAppend(&rewritten, cmd.line, "\n----\n", actual, "\n");
  }

  const char* rewrite = std::getenv("AMATERS_REWRITE");
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (rewrite != nullptr && std::string(rewrite) == "1") {
    if (workspace == nullptr) {
      return "AMATERS_REWRITE=1 needs `bazel run` (BUILD_WORKSPACE_DIRECTORY is not set)";
    }
    std::ofstream out(std::string(workspace) + "/" + path);
    out << rewritten;
    return "";
  }
  return failures;
}

std::vector<std::string> ListFiles(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string p = e.path().string();
    if (p.size() >= suffix.size() && p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(p);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace amaters::testing
