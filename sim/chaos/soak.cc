#include "sim/chaos/soak.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::sim::chaos {

namespace {

constexpr uint64_t kConvergeEveryMs = 60000;

uint64_t Between(std::mt19937_64& rng, uint64_t lo, uint64_t hi) {
  AM_CHECK_LE(lo, hi);
  return lo + rng() % (hi - lo + 1);
}

}  // namespace

std::string SoakScript(const SoakOptions& o) {
  AM_CHECK(o.nodes >= 1 && o.nodes <= 9, "nodes ", o.nodes);
  std::mt19937_64 rng(o.seed);
  std::string s = absl::StrCat("# soak: ", o.duration_ms / 1000, " s, seed ", o.seed,
                               o.random_faults ? ", random faults" : ", no faults", "\nnodes ",
                               o.nodes, "\nseed ", o.seed, "\n");
  uint64_t t = 0;
  uint64_t next_converge = kConvergeEveryMs;
  size_t steps = 0;
  while (t < o.duration_ms) {
    AM_CHECK_LT(steps++, size_t{1} << 20, "soak schedule does not end");
    const uint64_t gap = std::min(Between(rng, 1000, 5000), o.duration_ms - t);
    absl::StrAppend(&s, "wait ", gap, "ms\n");
    t += gap;
    if (t >= o.duration_ms) break;
    if (t >= next_converge) {
      absl::StrAppend(&s, "expect converged 30s\n");
      next_converge = t + kConvergeEveryMs;
      continue;
    }
    if (!o.random_faults) continue;
    // A leader before each fault: the previous one has healed (a transfer needs a leader).
    absl::StrAppend(&s, "wait-for leader 10s\n");
    const uint64_t node = Between(rng, 1, static_cast<uint64_t>(o.nodes));
    const uint64_t kind = o.nodes == 1 ? rng() % 2 : rng() % 3;
    if (kind == 0) {
      const uint64_t down = Between(rng, 500, 3000);
      absl::StrAppend(&s, "crash ", node, "\nwait ", down, "ms\nrestart ", node, "\n");
      t += down;
    } else if (kind == 1) {
      const uint64_t paused = Between(rng, 200, 3000);
      absl::StrAppend(&s, "pause ", node, "\nwait ", paused, "ms\nresume ", node, "\n");
      t += paused;
    } else {
      absl::StrAppend(&s, "transfer leader->", node, "\n");
    }
  }
  absl::StrAppend(&s, "expect converged 30s\nexpect linearizable\n");
  return s;
}

}  // namespace amaters::sim::chaos
