#include "engine/base/check.h"

#include <cstdio>
#include <cstdlib>

namespace amaters {
namespace {
thread_local CheckFailureHandler g_handler = nullptr;
}  // namespace

void SetCheckFailureHandler(CheckFailureHandler handler) { g_handler = handler; }

void CheckFailed(const char* file, int line, const char* condition, const std::string& message) {
  if (g_handler != nullptr) g_handler(file, line, condition, message);
  std::fprintf(stderr, "%s:%d: invariant violated: %s: %s\n", file, line, condition,
               message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace amaters
