#include "sim/chaos/soak.h"

#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::sim::chaos {

namespace {

constexpr uint64_t kConvergeEveryMs = 60000;

uint64_t Between(std::mt19937_64& rng, uint64_t lo, uint64_t hi) {
  AM_CHECK_LE(lo, hi);
  return lo + rng() % (hi - lo + 1);
}

// One random fault and its end; returns how long it lasts (ms). Network faults need two nodes.
uint64_t AppendFault(std::mt19937_64& rng, int nodes, std::string* s) {
  const uint64_t n = static_cast<uint64_t>(nodes);
  const uint64_t node = Between(rng, 1, n);
  const uint64_t other = n == 1 ? node : 1 + (node + Between(rng, 0, n - 2)) % n;  // != node
  const uint64_t kind = n == 1 ? rng() % 2 : rng() % 6;
  const uint64_t lasts = kind == 1 ? Between(rng, 200, 3000) : Between(rng, 500, 3000);
  switch (kind) {
    case 0:
      absl::StrAppend(s, "crash ", node, "\nwait ", lasts, "ms\nrestart ", node, "\n");
      return lasts;
    case 1:
      absl::StrAppend(s, "pause ", node, "\nwait ", lasts, "ms\nresume ", node, "\n");
      return lasts;
    case 2:
      absl::StrAppend(s, "transfer leader->", node, "\n");
      return 0;
    case 3:
      absl::StrAppend(s, "isolate ", node, "\nwait ", lasts, "ms\nheal\n");
      return lasts;
    case 4:
      absl::StrAppend(s, "block ", node, "->", other, "\nwait ", lasts, "ms\nheal\n");
      return lasts;
    default:
      absl::StrAppend(s, "clog ", node, "->", other, " ", Between(rng, 50, 1000), "ms\nwait ",
                      lasts, "ms\nheal\n");
      return lasts;
  }
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
    t += AppendFault(rng, o.nodes, &s);
  }
  absl::StrAppend(&s, "expect converged 30s\nexpect linearizable\n");
  return s;
}

}  // namespace amaters::sim::chaos
