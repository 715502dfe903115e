// The chaos runner's soak mode (docs/chaos.md §4): a seeded schedule of random faults written
// as a scenario script, so the same runner executes it and --export-scenario hands it to the
// simulator unchanged. Pure.
#ifndef AMATERS_SIM_CHAOS_SOAK_H_
#define AMATERS_SIM_CHAOS_SOAK_H_

#include <cstdint>
#include <string>

namespace amaters::sim::chaos {

struct SoakOptions {
  int nodes = 3;
  uint64_t seed = 1;
  uint64_t duration_ms = 60000;
  bool random_faults = false;  // without it: the workload alone
};

// The script: `nodes`, `seed`, then until duration_ms one fault at a time (gaps of 1-5 s, drawn
// from the seed; each fault waits up to 10 s for a leader first), each kind as likely: a crash
// and a restart 0.5-3 s later, a pause and a resume 0.2-3 s later, a leadership transfer, and
// with two nodes or more a node isolated, a link blocked one way, or a link clogged by
// 50-1000 ms, each healed 0.5-3 s later; every minute or so `expect converged 30s`; at the end
// `expect converged 30s` and `expect linearizable`. One fault at a time, each on one node or
// link, so a quorum can talk between them. The same options give the same text.
std::string SoakScript(const SoakOptions& options);

}  // namespace amaters::sim::chaos

#endif  // AMATERS_SIM_CHAOS_SOAK_H_
