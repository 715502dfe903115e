#include "sim/chaos/fault_state.h"

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/base/check.h"
#include "engine/wal/format.h"
#include "sim/scenario.h"

namespace amaters::sim::chaos {

namespace {

int GroupOf(const std::vector<std::set<int>>& groups, int node) {
  for (size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].count(node) > 0) return static_cast<int>(g);
  }
  return -1;  // in no group: cut off
}

absl::Status LineError(size_t line, absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("fault file line ", line, ": `", text, "`: ", why));
}

}  // namespace

void FaultState::Partition(const std::vector<std::set<int>>& groups, int nodes) {
  AM_CHECK(nodes >= 1);
  blocked.clear();
  for (int a = 1; a <= nodes; ++a) {
    for (int b = 1; b <= nodes; ++b) {
      if (a == b) continue;
      const int ga = GroupOf(groups, a);
      if (ga < 0 || ga != GroupOf(groups, b)) blocked.insert({a, b});
    }
  }
}

void FaultState::Clog(int from, int to, uint64_t ms) {
  AM_CHECK(from != to);
  if (ms == 0) {
    clog_ms.erase({from, to});
  } else {
    clog_ms[{from, to}] = std::min(ms, kClogMsMax);
  }
}

void FaultState::Heal() {
  blocked.clear();
  clog_ms.clear();
}

void FaultState::HealAll() {
  Heal();
  slow_disk.clear();
  full_disk.clear();
}

std::optional<WalDamage> PickWalDamage(absl::string_view segment, uint64_t random) {
  std::vector<std::pair<size_t, size_t>> records;  // (offset, size)
  size_t off = wal::kSegmentHeaderBytes;
  while (off < segment.size()) {
    const wal::DecodeResult d = wal::DecodeRecord(segment.substr(off));
    if (d.kind != wal::DecodeResult::Kind::kOk) break;
    AM_CHECK(d.size > 0);
    records.push_back({off, d.size});
    off += d.size;
  }
  if (records.size() < 2) return std::nullopt;
  const auto [start, size] = records[random % (records.size() - 1)];
  WalDamage damage;
  damage.offset = start + (random / 7) % size;
  damage.bit = static_cast<int>((random / 13) % 8);
  AM_CHECK_LT(damage.offset, segment.size());
  return damage;
}

std::string RenderFaults(const FaultState& state) {
  std::string out;
  for (const auto& [from, to] : state.blocked) absl::StrAppend(&out, "block ", from, " ", to, "\n");
  for (const auto& [link, ms] : state.clog_ms) {
    absl::StrAppend(&out, "clog ", link.first, " ", link.second, " ", ms, "\n");
  }
  for (int n : state.slow_disk) absl::StrAppend(&out, "slow-disk ", n, "\n");
  for (int n : state.full_disk) absl::StrAppend(&out, "disk-full ", n, "\n");
  return out;
}

absl::StatusOr<FaultState> ParseFaults(absl::string_view text) {
  FaultState state;
  const std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (lines.size() > kFaultLinesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("fault file: ", lines.size(), " lines, at most ", kFaultLinesMax));
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    const absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
    if (line.empty()) continue;
    const std::vector<absl::string_view> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
    std::vector<uint64_t> n(w.size() - 1);
    for (size_t k = 1; k < w.size(); ++k) {
      if (!absl::SimpleAtoi(w[k], &n[k - 1])) return LineError(i + 1, line, "not a number");
    }
    const bool link = w[0] == "block" || w[0] == "clog";
    const size_t want = w[0] == "clog" ? 3 : (link ? 2 : 1);
    if (n.size() != want) return LineError(i + 1, line, "wrong number of fields");
    const auto bad_id = [](uint64_t id) { return id == 0 || id > kScenarioNodesMax; };
    if (bad_id(n[0]) || (link && (bad_id(n[1]) || n[0] == n[1]))) {
      return LineError(i + 1, line, "bad node id");
    }
    const int a = static_cast<int>(n[0]);
    if (w[0] == "block") {
      state.Block(a, static_cast<int>(n[1]));
    } else if (w[0] == "clog") {
      if (n[2] == 0 || n[2] > kClogMsMax) return LineError(i + 1, line, "bad delay");
      state.Clog(a, static_cast<int>(n[1]), n[2]);
    } else if (w[0] == "slow-disk") {
      state.slow_disk.insert(a);
    } else if (w[0] == "disk-full") {
      state.full_disk.insert(a);
    } else {
      return LineError(i + 1, line, "unknown fault");
    }
  }
  return state;
}

}  // namespace amaters::sim::chaos
