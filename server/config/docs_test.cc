// docs/configuration-reference.md carries the key tables generated from the key table
// (GenerateReferenceTables), between two marker lines. This test fails when they differ;
//   AMATERS_REWRITE=1 ./bazelw run //server/config:docs_test
// rewrites the tables in the source tree. Under `bazel run` the document is read from the
// source tree ($BUILD_WORKSPACE_DIRECTORY); under `bazel test` from the runfiles (a data
// dependency; see the BUILD file).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/config.h"

namespace amaters::server {
namespace {

constexpr char kDocPath[] = "docs/configuration-reference.md";

std::string DocLocation() {
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (workspace != nullptr) return absl::StrCat(workspace, "/", kDocPath);
  return kDocPath;  // runfiles: the test starts in the workspace's runfiles directory
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(ConfigDocsTest, KeyTablesMatchTheKeyTable) {
  const std::string doc = ReadFile(DocLocation());
  ASSERT_FALSE(doc.empty()) << "cannot read " << DocLocation();
  const size_t begin = doc.find(kDocsBeginMarker);
  const size_t end = doc.find(kDocsEndMarker);
  ASSERT_NE(begin, std::string::npos) << "missing marker line: " << kDocsBeginMarker;
  ASSERT_NE(end, std::string::npos) << "missing marker line: " << kDocsEndMarker;
  ASSERT_LT(begin, end);
  const size_t tables_begin = begin + std::string(kDocsBeginMarker).size() + 1;  // after the newline
  const std::string actual = doc.substr(tables_begin, end - tables_begin);
  const std::string expected = GenerateReferenceTables();
  if (actual == expected) return;

  const char* rewrite = std::getenv("AMATERS_REWRITE");
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (rewrite != nullptr && std::string(rewrite) == "1") {
    ASSERT_NE(workspace, nullptr) << "AMATERS_REWRITE=1 needs `bazel run` (BUILD_WORKSPACE_DIRECTORY is not set)";
    const std::string target = absl::StrCat(workspace, "/", kDocPath);
    std::ofstream out(target, std::ios::trunc);
    out << doc.substr(0, tables_begin) << expected << doc.substr(end);
    out.close();
    ASSERT_TRUE(out.good()) << "cannot write " << target;
    std::cerr << "rewrote the key tables of " << target << "\n";
    return;
  }
  ADD_FAILURE() << kDocPath << ": the key tables differ from the key table in server/config/config.cc;"
                << " run: AMATERS_REWRITE=1 ./bazelw run //server/config:docs_test\n--- expected\n"
                << expected << "--- actual\n"
                << actual;
}

// The prose around the tables states the contract the server implements.
TEST(ConfigDocsTest, ProseMentionsTheInterface) {
  const std::string doc = ReadFile(DocLocation());
  ASSERT_FALSE(doc.empty()) << "cannot read " << DocLocation();
  for (const char* phrase : {"--config=FILE", "--set section.key=value", "--generate-config",
                             "validate-config --config=FILE", "AMATERS_", "SIGHUP", "AMATERS_TEST_",
                             "AMATERS_KV_SEED", "AMATERS_REWRITE"}) {
    EXPECT_TRUE(absl::StrContains(doc, phrase)) << phrase;
  }
}

}  // namespace
}  // namespace amaters::server
