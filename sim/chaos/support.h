// Which steps of the scenario language (sim/scenario.h) the chaos runner gives a real meaning
// on real processes (docs/chaos.md lists them with what each one does). Pure.
#ifndef AMATERS_SIM_CHAOS_SUPPORT_H_
#define AMATERS_SIM_CHAOS_SUPPORT_H_

#include <string>

#include "absl/status/status.h"
#include "sim/scenario.h"

namespace amaters::sim::chaos {

// Empty when the runner supports `command` on real processes, else why not.
std::string WhyUnsupported(const Command& command);

// OK, or kInvalidArgument listing every step the runner does not support, one per line, as
// "FILE:LINE: `text`: not supported for real clusters: why". `option` lines configure the
// simulator and are refused too; `nodes` and `seed` are kept.
absl::Status CheckRealClusterSupport(const Scenario& scenario);

}  // namespace amaters::sim::chaos

#endif  // AMATERS_SIM_CHAOS_SUPPORT_H_
