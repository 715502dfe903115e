// Always-on invariant assertions (docs/design.md §4.2).
//
// AM_CHECK(cond, msg...) aborts the process with the file, line, condition and a message
// built by absl::StrCat from the remaining arguments when `cond` is false. It stays on in
// optimized builds: a broken invariant in a consensus engine must stop the node, never be
// carried forward into the log or the state machine.
#ifndef AMATERS_ENGINE_BASE_CHECK_H_
#define AMATERS_ENGINE_BASE_CHECK_H_

#include <string>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"

namespace amaters {

[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const std::string& message);

// Test and simulator hook: called on a failed check instead of printing. It must not return
// (the simulator throws, to report the seed and go on with the next one); if it does, the
// process aborts as usual. nullptr restores the default. The handler is per thread: it applies
// to checks failing on the thread that set it (the simulator runs seeds on several threads).
using CheckFailureHandler = void (*)(const char* file, int line, const char* condition,
                                     const std::string& message);
void SetCheckFailureHandler(CheckFailureHandler handler);

}  // namespace amaters

#define AM_CHECK(cond, ...)                                                      \
  do {                                                                           \
    if (ABSL_PREDICT_FALSE(!(cond))) {                                           \
      ::amaters::CheckFailed(__FILE__, __LINE__, #cond, absl::StrCat(__VA_ARGS__)); \
    }                                                                            \
  } while (0)

#define AM_CHECK_EQ(a, b, ...) AM_CHECK((a) == (b), #a "=", (a), " " #b "=", (b), " ", ##__VA_ARGS__)
#define AM_CHECK_LE(a, b, ...) AM_CHECK((a) <= (b), #a "=", (a), " " #b "=", (b), " ", ##__VA_ARGS__)
#define AM_CHECK_LT(a, b, ...) AM_CHECK((a) < (b), #a "=", (a), " " #b "=", (b), " ", ##__VA_ARGS__)
#define AM_CHECK_GE(a, b, ...) AM_CHECK((a) >= (b), #a "=", (a), " " #b "=", (b), " ", ##__VA_ARGS__)

#endif  // AMATERS_ENGINE_BASE_CHECK_H_
