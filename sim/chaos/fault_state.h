// The faults a chaos run has in force on the network and the disks, and the control file that
// carries them to the nodes (docs/chaos.md §6). The runner rewrites the file (whole, by rename)
// when a step changes them; every amaters-server-chaos process of the run reads it.
//
// The file has one fault per line; a node applies the lines that concern it:
//   block A B       messages from node A to node B are dropped (B drops them on arrival)
//   clog A B MS     messages from A to B arrive MS milliseconds late
//   slow-disk N     N's WAL writes and syncs take 20 times longer
//   disk-full N     N's WAL creates, writes and syncs fail ("no space left on device")
// Pure: no files here (the runner and sim/chaos/file_faults.h do the I/O).
#ifndef AMATERS_SIM_CHAOS_FAULT_STATE_H_
#define AMATERS_SIM_CHAOS_FAULT_STATE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace amaters::sim::chaos {

inline constexpr uint64_t kClogMsMax = 60'000;
// A node rereads the file when a hook runs and its last read is older than this.
inline constexpr int64_t kRereadMs = 5;
inline constexpr size_t kFaultLinesMax = 1000;  // a 9-node cluster has 72 links

using Link = std::pair<int, int>;  // (from, to)

struct FaultState {
  std::set<Link> blocked;
  std::map<Link, uint64_t> clog_ms;
  std::set<int> slow_disk;
  std::set<int> full_disk;

  bool operator==(const FaultState& o) const {
    return blocked == o.blocked && clog_ms == o.clog_ms && slow_disk == o.slow_disk &&
           full_disk == o.full_disk;
  }

  // Scenario steps (sim/scenario.h), on nodes 1..nodes.
  // `partition`: only nodes in the same group talk; nodes in no group are cut off from all.
  // Replaces the blocks (clogs stay).
  void Partition(const std::vector<std::set<int>>& groups, int nodes);
  void Block(int from, int to) { blocked.insert({from, to}); }
  void Clog(int from, int to, uint64_t ms);  // 0 unclogs
  void Heal();                               // blocks and clogs
  void HealAll();                            // and the disks
};

// Where `corrupt-wal` flips a bit in a WAL segment's bytes: inside a whole record that has
// another whole record after it (a damaged last record would look like a torn write), chosen
// by `random`. Nullopt when the segment has fewer than two records.
struct WalDamage {
  uint64_t offset = 0;
  int bit = 0;  // 0..7
};
std::optional<WalDamage> PickWalDamage(absl::string_view segment, uint64_t random);

std::string RenderFaults(const FaultState& state);
// kInvalidArgument naming the line for anything RenderFaults would not write.
absl::StatusOr<FaultState> ParseFaults(absl::string_view text);

}  // namespace amaters::sim::chaos

#endif  // AMATERS_SIM_CHAOS_FAULT_STATE_H_
