// A test-side checker for the Prometheus text exposition format 0.0.4: the parser rules
// Prometheus applies plus the `promtool check metrics` lints that matter for our families, so
// that the default test run checks /metrics without promtool installed.
//
// Rules (each violation is one problem string naming the line or family):
//   - metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and do
//     not start with "__"; label values are quoted with only \\ \" \n escapes; values parse
//     as floats (+Inf, -Inf, NaN included); the text ends with a newline;
//   - every sample belongs to a family with exactly one "# HELP" (non-empty text) and one
//     "# TYPE" line, both before the family's first sample; a family's lines are contiguous;
//     no series (name + label set) appears twice;
//   - histogram samples are <name>_bucket (with an `le` label), <name>_sum and <name>_count;
//     per label set the buckets are cumulative (non-decreasing as le grows), end with
//     le="+Inf", and the +Inf bucket equals _count; summaries have <name>, _sum, _count;
//   - counters end with "_total" (promtool: counter metrics should have "_total" suffix) unless
//     listed in `counters_without_total`, and are never negative;
//   - counters and gauges do not end with "_count", "_sum" or "_bucket" (promtool:
//     non-histogram and non-summary metrics should not have ... suffix).
#ifndef AMATERS_SERVER_ADMIN_EXPOSITION_LINT_H_
#define AMATERS_SERVER_ADMIN_EXPOSITION_LINT_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace amaters::server {

// The problems found in `text`; empty when it passes.
std::vector<std::string> LintExposition(
    absl::string_view text, const absl::flat_hash_set<std::string>& counters_without_total = {});

}  // namespace amaters::server

#endif  // AMATERS_SERVER_ADMIN_EXPOSITION_LINT_H_
