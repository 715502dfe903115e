#include "sim/scenario.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/base/check.h"
#include "engine/wal/writer.h"
#include "sim/trace_events.h"

namespace amaters::sim {
namespace {

// --- Options ----------------------------------------------------------------------------------

absl::Status BadValue(const std::string& name, const std::string& value, const char* expected) {
  return absl::InvalidArgumentError(
      absl::StrCat("option ", name, ": bad value \"", value, "\" (expected ", expected, ")"));
}

absl::Status SetBool(const std::string& name, const std::string& value, bool* out) {
  if (value == "on" || value == "true") {
    *out = true;
  } else if (value == "off" || value == "false") {
    *out = false;
  } else {
    return BadValue(name, value, "on or off");
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status SetNumber(const std::string& name, const std::string& value, uint64_t lo, uint64_t hi,
                       T* out) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < lo || v > hi) {
    const std::string range = absl::StrCat("a whole number in ", lo, "..", hi);
    return BadValue(name, value, range.c_str());
  }
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

absl::Status SetFraction(const std::string& name, const std::string& value, double* out) {
  double v = 0;
  if (!absl::SimpleAtod(value, &v) || !(v >= 0 && v <= 1)) {
    return BadValue(name, value, "a fraction in 0..1");
  }
  *out = v;
  return absl::OkStatus();
}

using Setter =
    std::function<absl::Status(const std::string& name, const std::string& value, SimConfig* c)>;

const std::map<std::string, Setter>& Options() {
  constexpr uint64_t kBig = uint64_t{1} << 40;
  static const auto* options = new std::map<std::string, Setter>{
      {"tick_ms",
       [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 1, 10000, &c->tick_ms); }},
      {"drift_ppm",
       [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 0, 100000, &c->drift_ppm); }},
      {"heartbeat_ticks",
       [](auto& n, auto& v, SimConfig* c) {
         return SetNumber(n, v, 1, 1000, &c->heartbeat_ticks);
       }},
      {"election_ticks",
       [](auto& n, auto& v, SimConfig* c) {
         return SetNumber(n, v, 2, 10000, &c->election_ticks);
       }},
      {"pre_vote", [](auto& n, auto& v, SimConfig* c) { return SetBool(n, v, &c->pre_vote); }},
      {"check_quorum",
       [](auto& n, auto& v, SimConfig* c) { return SetBool(n, v, &c->check_quorum); }},
      {"lease_reads",
       [](auto& n, auto& v, SimConfig* c) { return SetBool(n, v, &c->lease_reads); }},
      {"lease_client",
       [](auto& n, auto& v, SimConfig* c) { return SetBool(n, v, &c->lease_client); }},
      {"max_msg_bytes",
       [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 1, kBig, &c->max_msg_bytes); }},
      {"max_inflight_msgs",
       [](auto& n, auto& v, SimConfig* c) {
         return SetNumber(n, v, 1, 1 << 20, &c->max_inflight_msgs);
       }},
      {"slow_replication_entries",
       [](auto& n, auto& v, SimConfig* c) {
         return SetNumber(n, v, 1, kBig, &c->slow_replication_entries);
       }},
      {"sync_mode",
       [](auto& n, auto& v, SimConfig* c) {
         absl::StatusOr<wal::SyncMode> m = wal::ParseSyncMode(v);
         if (!m.ok()) return BadValue(n, v, "always, interval or none");
         c->sync_mode = *m;
         return absl::OkStatus();
       }},
      {"latency_min_us",
       [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 0, kBig, &c->latency_min_us); }},
      {"latency_max_us",
       [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 0, kBig, &c->latency_max_us); }},
      {"drop", [](auto& n, auto& v, SimConfig* c) { return SetFraction(n, v, &c->drop); }},
      {"snapshot_threshold",
       [](auto& n, auto& v, SimConfig* c) {
         return SetNumber(n, v, 0, kBig, &c->snapshot_threshold);
       }},
      {"snapshot_catchup",
       [](auto& n, auto& v, SimConfig* c) {
         return SetNumber(n, v, 0, kBig, &c->snapshot_catchup);
       }},
      {"max_snapshots",
       [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 1, 100, &c->max_snapshots); }},
      {"snapshot_chunk_bytes",
       [](auto& n, auto& v, SimConfig* c) {
         return SetNumber(n, v, 1024, 8 << 20, &c->snapshot_chunk_bytes);
       }},
      {"chunk_corruption",
       [](auto& n, auto& v, SimConfig* c) { return SetFraction(n, v, &c->chunk_corruption); }},
      {"initial_voters",
       [](auto& n, auto& v, SimConfig* c) {
         uint64_t x = 0;
         absl::Status s = SetNumber(n, v, 0, kScenarioNodesMax, &x);
         c->initial_voters = static_cast<int>(x);
         return s;
       }},
      {"wal_segment_bytes",
       [](auto& n, auto& v, SimConfig* c) {
         return SetNumber(n, v, 4096, kBig, &c->wal_segment_bytes);
       }},
      {"duplicate",
       [](auto& n, auto& v, SimConfig* c) { return SetFraction(n, v, &c->duplicate); }},
      {"write_us",
       [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 0, kBig, &c->write_us); }},
      {"fsync_us",
       [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 0, kBig, &c->fsync_us); }},
      {"clients",
       [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 0, 64, &c->clients); }},
      {"keys", [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 1, 1000, &c->keys); }},
      {"client_timeout_ms",
       [](auto& n, auto& v, SimConfig* c) {
         return SetNumber(n, v, 1, kBig, &c->client_timeout_ms);
       }},
      {"think_ms",
       [](auto& n, auto& v, SimConfig* c) { return SetNumber(n, v, 0, kBig, &c->think_ms); }},
      {"bug",
       [](auto& n, auto& v, SimConfig* c) {
         if (v == "none") {
           c->bug.clear();
           return absl::OkStatus();
         }
         for (const std::string& b : PlantedBugNames()) {
           if (b == v) {
             c->bug = v;
             return absl::OkStatus();
           }
         }
         const std::string names = absl::StrCat("none or ", absl::StrJoin(PlantedBugNames(), ", "));
         return BadValue(n, v, names.c_str());
       }},
  };
  return *options;
}

// Relations between options, checked once the setup is complete.
absl::Status ValidateConfig(const SimConfig& c) {
  if (c.election_ticks <= c.heartbeat_ticks) {
    return absl::InvalidArgumentError(absl::StrCat("election_ticks (", c.election_ticks,
                                                   ") must exceed heartbeat_ticks (",
                                                   c.heartbeat_ticks, ")"));
  }
  if (c.latency_min_us > c.latency_max_us) {
    return absl::InvalidArgumentError(absl::StrCat(
        "latency_min_us (", c.latency_min_us, ") exceeds latency_max_us (", c.latency_max_us, ")"));
  }
  return absl::OkStatus();
}

// --- Parsing ----------------------------------------------------------------------------------

struct Usage {
  Command::Kind kind;
  const char* usage;
};

const std::map<std::string, Usage>& Actions() {
  using K = Command::Kind;
  static const auto* actions = new std::map<std::string, Usage>{
      {"workload", {K::kWorkload, "workload on|off"}},
      {"partition", {K::kPartition, "partition {A,B} {C,D,E} ..."}},
      {"isolate", {K::kIsolate, "isolate N"}},
      {"block", {K::kBlock, "block A->B"}},
      {"clog", {K::kClog, "clog A->B DURATION"}},
      {"heal", {K::kHeal, "heal"}},
      {"heal-all", {K::kHealAll, "heal-all"}},
      {"crash", {K::kCrash, "crash N"}},
      {"restart", {K::kRestart, "restart N"}},
      {"pause", {K::kPause, "pause N"}},
      {"resume", {K::kResume, "resume N"}},
      {"slow-disk", {K::kSlowDisk, "slow-disk N on|off"}},
      {"disk-full", {K::kDiskFull, "disk-full N on|off"}},
      {"corrupt-wal", {K::kCorruptWal, "corrupt-wal N"}},
      {"wipe", {K::kWipe, "wipe N"}},
      {"campaign", {K::kCampaign, "campaign N"}},
      {"transfer", {K::kTransfer, "transfer A->B"}},
      {"add-learner", {K::kAddLearner, "add-learner N"}},
      {"promote", {K::kPromote, "promote N"}},
      {"remove", {K::kRemoveMember, "remove N"}},
      {"replace", {K::kReplace, "replace A->B"}},
      {"wait", {K::kWait, "wait DURATION"}},
      {"wait-for", {K::kWaitFor, "wait-for CONDITION DURATION"}},
      {"expect",
       {K::kExpect,
        "expect CONDITION | linearizable | converged DURATION | "
        "progress [N] DURATION | no-progress [N] DURATION"}},
  };
  return *actions;
}

// Splits a line into words; a node set `{1, 2}` is one word, blanks inside removed.
absl::StatusOr<std::vector<std::string>> Tokenize(absl::string_view line) {
  std::vector<std::string> words;
  std::string cur;
  for (size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (ch == '{') {
      const size_t close = line.find('}', i);
      if (close == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("unclosed \"{\" in \"", line, "\""));
      }
      for (size_t j = i; j <= close; ++j) {
        if (!absl::ascii_isspace(static_cast<unsigned char>(line[j]))) cur.push_back(line[j]);
      }
      i = close;
    } else if (absl::ascii_isspace(static_cast<unsigned char>(ch))) {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

class Parser {
 public:
  explicit Parser(absl::string_view file) : file_(file) {}

  absl::StatusOr<Scenario> Parse(absl::string_view text) {
    scenario_.file = std::string(file_);
    int line_no = 0;
    for (absl::string_view raw : absl::StrSplit(text, '\n')) {
      ++line_no;
      line_ = line_no;
      absl::string_view body = raw;
      if (size_t hash = body.find('#'); hash != absl::string_view::npos) {
        body = body.substr(0, hash);
      }
      body = absl::StripAsciiWhitespace(body);
      if (body.empty()) continue;
      absl::StatusOr<std::vector<std::string>> words = Tokenize(body);
      if (!words.ok()) {
        Error(std::string(words.status().message()));
        continue;
      }
      ParseLine(std::string(body), *words);
      if (errors_.size() >= kScenarioErrorsMax) break;
    }
    if (first_action_line_ == 0) FinishSetup();
    if (!errors_.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
    return std::move(scenario_);
  }

 private:
  void Error(const std::string& what) {
    if (errors_.size() < kScenarioErrorsMax) {
      errors_.push_back(absl::StrCat(file_, ":", line_, ": ", what));
    }
  }

  // Options must fit together; checked when the first action ends the setup.
  void FinishSetup() {
    if (last_option_line_ == 0) return;
    absl::Status s = ValidateConfig(ScenarioConfig(scenario_));
    if (!s.ok()) {
      const int at = line_;
      line_ = last_option_line_;
      Error(std::string(s.message()));
      line_ = at;
    }
  }

  void ParseLine(const std::string& text, const std::vector<std::string>& w) {
    const std::string& verb = w[0];
    if (verb == "nodes" || verb == "seed" || verb == "option") {
      if (first_action_line_ != 0) {
        Error(absl::StrCat("\"", verb, "\" must come before the first action (line ",
                           first_action_line_, ")"));
        return;
      }
      ParseSetup(w);
      return;
    }
    auto it = Actions().find(verb);
    if (it == Actions().end()) {
      Error(absl::StrCat("unknown command \"", verb, "\""));
      return;
    }
    if (first_action_line_ == 0) {
      FinishSetup();
      first_action_line_ = line_;
    }
    Command c;
    c.kind = it->second.kind;
    c.line = line_;
    c.text = text;
    usage_ = it->second.usage;
    if (ParseAction(w, &c)) scenario_.commands.push_back(std::move(c));
  }

  void ParseSetup(const std::vector<std::string>& w) {
    const std::string& verb = w[0];
    if (verb == "nodes") {
      uint64_t n = 0;
      if (w.size() != 2) {
        Error("wrong arguments: usage is \"nodes N\"");
      } else if (!absl::SimpleAtoi(w[1], &n) || n < 1 || n > kScenarioNodesMax) {
        Error(absl::StrCat("bad node count \"", w[1], "\" (1..", kScenarioNodesMax, ")"));
      } else {
        scenario_.nodes = static_cast<int>(n);
      }
    } else if (verb == "seed") {
      uint64_t s = 0;
      if (w.size() != 2) {
        Error("wrong arguments: usage is \"seed N\"");
      } else if (!absl::SimpleAtoi(w[1], &s)) {
        Error(absl::StrCat("bad seed \"", w[1], "\" (a whole number)"));
      } else {
        scenario_.seed = s;
      }
    } else {
      if (w.size() != 3) {
        Error("wrong arguments: usage is \"option NAME VALUE\"");
        return;
      }
      auto it = Options().find(w[1]);
      if (it == Options().end()) {
        Error(absl::StrCat("unknown option \"", w[1],
                           "\" (options: ", absl::StrJoin(ScenarioOptionNames(), ", "), ")"));
        return;
      }
      SimConfig scratch;
      absl::Status s = it->second(w[1], w[2], &scratch);
      if (!s.ok()) {
        Error(std::string(s.message()));
        return;
      }
      scenario_.options.push_back({line_, w[1], w[2]});
      last_option_line_ = line_;
    }
  }

  bool WrongArgs() {
    Error(absl::StrCat("wrong arguments: usage is \"", usage_, "\""));
    return false;
  }

  // A node id; `leader` too where `leader_ok` (resolved when the command runs).
  std::optional<NodeId> Node(const std::string& s, bool leader_ok = false) {
    if (leader_ok && s == "leader") return kLeaderNode;
    uint64_t id = 0;
    if (!absl::SimpleAtoi(s, &id) || id < 1 || id > static_cast<uint64_t>(scenario_.nodes)) {
      Error(absl::StrCat("bad node id \"", s, "\" (this cluster has nodes 1..", scenario_.nodes,
                         ")"));
      return std::nullopt;
    }
    return static_cast<NodeId>(id);
  }

  bool Link(const std::string& s, bool leader_to_ok, NodeId* from, NodeId* to) {
    std::vector<std::string> ends = absl::StrSplit(s, "->");
    if (ends.size() != 2) {
      Error(absl::StrCat("bad link \"", s, "\" (expected FROM->TO, e.g. 1->2)"));
      return false;
    }
    std::optional<NodeId> a = Node(ends[0], /*leader_ok=*/true);
    std::optional<NodeId> b = Node(ends[1], leader_to_ok);
    if (!a || !b) return false;
    if (*a == *b) {
      Error(absl::StrCat("bad link \"", s, "\" (a link joins two different nodes)"));
      return false;
    }
    *from = *a;
    *to = *b;
    return true;
  }

  std::optional<std::set<NodeId>> Set(const std::string& s) {
    if (s.size() < 2 || s.front() != '{' || s.back() != '}') {
      Error(absl::StrCat("bad node set \"", s, "\" (expected e.g. {1,2})"));
      return std::nullopt;
    }
    std::set<NodeId> out;
    const absl::string_view inner = absl::string_view(s).substr(1, s.size() - 2);
    if (inner.empty()) {
      Error(absl::StrCat("empty node set \"", s, "\""));
      return std::nullopt;
    }
    for (absl::string_view part : absl::StrSplit(inner, ',')) {
      std::optional<NodeId> id = Node(std::string(part));
      if (!id) return std::nullopt;
      if (!out.insert(*id).second) {
        Error(absl::StrCat("node ", *id, " twice in \"", s, "\""));
        return std::nullopt;
      }
    }
    return out;
  }

  std::optional<uint64_t> Duration(const std::string& s) {
    uint64_t v = 0;
    uint64_t scale = 0;
    absl::string_view num = s;
    if (absl::ConsumeSuffix(&num, "ms")) {
      scale = 1;
    } else if (absl::ConsumeSuffix(&num, "s")) {
      scale = 1000;
    }
    if (scale == 0 || !absl::SimpleAtoi(num, &v) || num.empty() || num[0] == '+' || num[0] == '-') {
      Error(absl::StrCat("bad duration \"", s,
                         "\" (expected a whole number of ms or s, e.g. 300ms or 2s)"));
      return std::nullopt;
    }
    if (v > kScenarioDurationMaxMs / scale) {
      Error(
          absl::StrCat("duration \"", s, "\" is longer than ", kScenarioDurationMaxMs / 1000, "s"));
      return std::nullopt;
    }
    return v * scale;
  }

  std::optional<bool> OnOff(const std::string& s) {
    if (s == "on") return true;
    if (s == "off") return false;
    Error(absl::StrCat("expected on or off, got \"", s, "\""));
    return std::nullopt;
  }

  // A condition from w[from, to).
  bool ParseCondition(const std::vector<std::string>& w, size_t from, size_t to, Condition* c) {
    using K = Condition::Kind;
    if (from >= to) return WrongArgs();
    const std::string& what = w[from];
    const size_t n = to - from;
    if (what == "leader") {
      c->kind = K::kLeader;
      if (n == 1) return true;
      if (n != 2) return WrongCondition("leader [N]");
      std::optional<NodeId> id = Node(w[from + 1]);
      if (!id) return false;
      c->nodes = {*id};
      return true;
    }
    if (what == "no-leader") {
      c->kind = K::kNoLeader;
      return n == 1 || WrongCondition("no-leader");
    }
    if (what == "leader-in") {
      c->kind = K::kLeaderIn;
      if (n != 2) return WrongCondition("leader-in {A,B}");
      std::optional<std::set<NodeId>> set = Set(w[from + 1]);
      if (!set) return false;
      c->nodes = *set;
      return true;
    }
    if (what == "voters" || what == "learners") {
      c->kind = what == "voters" ? K::kVoters : K::kLearners;
      if (n != 3) return WrongCondition(absl::StrCat(what, " N {A,B}"));
      std::optional<NodeId> id = Node(w[from + 1]);
      if (!id) return false;
      c->nodes = {*id};
      if (w[from + 2] == "{}") return true;
      std::optional<std::set<NodeId>> set = Set(w[from + 2]);
      if (!set) return false;
      c->members = *set;
      return true;
    }
    if (what == "up" || what == "down" || what == "refused") {
      c->kind = what == "up" ? K::kUp : what == "down" ? K::kDown : K::kRefused;
      if (n != 2) return WrongCondition(absl::StrCat(what, " N"));
      std::optional<NodeId> id = Node(w[from + 1]);
      if (!id) return false;
      c->nodes = {*id};
      return true;
    }
    if (what == "alert") {
      c->kind = K::kAlert;
      if (n != 3) return WrongCondition("alert N KEY");
      std::optional<NodeId> id = Node(w[from + 1]);
      if (!id) return false;
      c->nodes = {*id};
      c->key = w[from + 2];
      return true;
    }
    if (what == "term" || what == "committed" || what == "alerts" || what == "snapshot" ||
        what == "installs") {
      c->kind = what == "term"        ? K::kTerm
                : what == "committed" ? K::kCommitted
                : what == "snapshot"  ? K::kSnapshot
                : what == "installs"  ? K::kInstalls
                                      : K::kAlertCount;
      if (c->kind == K::kAlertCount) {
        if (n != 5) return WrongCondition("alerts N KEY OP VALUE");
      } else if (c->kind == K::kInstalls) {
        if (n != 4) return WrongCondition("installs N OP VALUE");
      } else if (n != 3 && n != 4) {
        return WrongCondition(absl::StrCat(what, " [N] OP VALUE"));
      }
      size_t i = from + 1;
      if (n >= 4) {
        std::optional<NodeId> id = Node(w[i++]);
        if (!id) return false;
        c->nodes = {*id};
      }
      if (c->kind == K::kAlertCount) c->key = w[i++];
      static const std::map<std::string, CompareOp>* ops = new std::map<std::string, CompareOp>{
          {"==", CompareOp::kEq}, {"!=", CompareOp::kNe}, {"<", CompareOp::kLt},
          {"<=", CompareOp::kLe}, {">", CompareOp::kGt},  {">=", CompareOp::kGe}};
      auto op = ops->find(w[i]);
      if (op == ops->end()) {
        Error(absl::StrCat("bad comparison \"", w[i], "\" (one of >= <= == != > <)"));
        return false;
      }
      c->op = op->second;
      if (!absl::SimpleAtoi(w[i + 1], &c->value)) {
        Error(absl::StrCat("bad number \"", w[i + 1], "\""));
        return false;
      }
      return true;
    }
    Error(absl::StrCat("unknown condition \"", what,
                       "\" (leader, no-leader, leader-in, term, committed, snapshot, installs, "
                       "up, down, refused, alert, alerts)"));
    return false;
  }

  bool WrongCondition(const std::string& usage) {
    Error(absl::StrCat("wrong arguments: usage is \"", usage, "\""));
    return false;
  }

  bool ParseAction(const std::vector<std::string>& w, Command* c) {
    using K = Command::Kind;
    const size_t n = w.size();
    switch (c->kind) {
      case K::kHeal:
      case K::kHealAll:
        return n == 1 || WrongArgs();
      case K::kWorkload: {
        if (n != 2) return WrongArgs();
        std::optional<bool> on = OnOff(w[1]);
        if (!on) return false;
        c->on = *on;
        return true;
      }
      case K::kPartition: {
        if (n < 2) return WrongArgs();
        std::set<NodeId> seen;
        for (size_t i = 1; i < n; ++i) {
          std::optional<std::set<NodeId>> g = Set(w[i]);
          if (!g) return false;
          for (NodeId id : *g) {
            if (!seen.insert(id).second) {
              Error(absl::StrCat("node ", id, " is in two groups"));
              return false;
            }
          }
          c->groups.push_back(*g);
        }
        return true;
      }
      case K::kAddLearner:
      case K::kPromote:
      case K::kRemoveMember: {
        if (n != 2) return WrongArgs();
        std::optional<NodeId> id = Node(w[1], /*leader_ok=*/c->kind == K::kRemoveMember);
        if (!id) return false;
        c->node = *id;
        return true;
      }
      case K::kReplace:
        if (n != 2) return WrongArgs();
        return Link(w[1], /*leader_to_ok=*/false, &c->node, &c->peer);
      case K::kIsolate:
      case K::kCrash:
      case K::kRestart:
      case K::kPause:
      case K::kResume:
      case K::kCorruptWal:
      case K::kWipe:
      case K::kCampaign: {
        if (n != 2) return WrongArgs();
        // `leader` names a running leader: nothing to restart, resume or make campaign.
        const bool leader_ok = c->kind != K::kRestart && c->kind != K::kResume &&
                               c->kind != K::kCampaign && c->kind != K::kWipe;
        std::optional<NodeId> id = Node(w[1], leader_ok);
        if (!id) return false;
        c->node = *id;
        return true;
      }
      case K::kSlowDisk:
      case K::kDiskFull: {
        if (n != 3) return WrongArgs();
        std::optional<NodeId> id = Node(w[1], /*leader_ok=*/true);
        if (!id) return false;
        std::optional<bool> on = OnOff(w[2]);
        if (!on) return false;
        c->node = *id;
        c->on = *on;
        return true;
      }
      case K::kBlock:
      case K::kTransfer:
        if (n != 2) return WrongArgs();
        return Link(w[1], /*leader_to_ok=*/c->kind == K::kBlock, &c->node, &c->peer);
      case K::kClog: {
        if (n != 3) return WrongArgs();
        if (!Link(w[1], /*leader_to_ok=*/true, &c->node, &c->peer)) return false;
        std::optional<uint64_t> d = Duration(w[2]);
        if (!d) return false;
        c->duration_ms = *d;
        return true;
      }
      case K::kWait: {
        if (n != 2) return WrongArgs();
        std::optional<uint64_t> d = Duration(w[1]);
        if (!d) return false;
        c->duration_ms = *d;
        return true;
      }
      case K::kWaitFor: {
        if (n < 3) return WrongArgs();
        if (!ParseCondition(w, 1, n - 1, &c->condition)) return false;
        std::optional<uint64_t> d = Duration(w[n - 1]);
        if (!d) return false;
        c->duration_ms = *d;
        return true;
      }
      case K::kExpect:
        return ParseExpect(w, c);
      default:
        break;
    }
    AM_CHECK(false, "unhandled command kind ", static_cast<int>(c->kind));
    return false;
  }

  bool ParseExpect(const std::vector<std::string>& w, Command* c) {
    using K = Command::Kind;
    const size_t n = w.size();
    if (n < 2) return WrongArgs();
    const std::string& what = w[1];
    if (what == "linearizable") {
      c->kind = K::kExpectLinearizable;
      return n == 2 || WrongCondition("expect linearizable");
    }
    if (what == "converged") {
      c->kind = K::kExpectConverged;
      if (n != 3) return WrongCondition("expect converged DURATION");
      std::optional<uint64_t> d = Duration(w[2]);
      if (!d) return false;
      c->duration_ms = *d;
      return true;
    }
    if (what == "progress" || what == "no-progress") {
      c->kind = what == "progress" ? K::kExpectProgress : K::kExpectNoProgress;
      if (n != 3 && n != 4) return WrongCondition(absl::StrCat("expect ", what, " [N] DURATION"));
      if (n == 4) {
        std::optional<NodeId> id = Node(w[2]);
        if (!id) return false;
        c->node = *id;
      }
      std::optional<uint64_t> d = Duration(w[n - 1]);
      if (!d) return false;
      c->duration_ms = *d;
      return true;
    }
    return ParseCondition(w, 1, n, &c->condition);
  }

  absl::string_view file_;
  int line_ = 0;
  const char* usage_ = "";
  int first_action_line_ = 0;
  int last_option_line_ = 0;
  Scenario scenario_;
  std::vector<std::string> errors_;
};

// --- Running ----------------------------------------------------------------------------------

struct CheckFailure {
  std::string what;
};

[[noreturn]] void ThrowOnCheckFailure(const char* file, int line, const char* condition,
                                      const std::string& message) {
  throw CheckFailure{
      absl::StrCat("invariant violated at ", file, ":", line, ": ", condition, ": ", message)};
}

std::string Ms(uint64_t ms) {
  return ms % 1000 == 0 ? absl::StrCat(ms / 1000, "s") : absl::StrCat(ms, "ms");
}

class Runner {
 public:
  explicit Runner(Simulation& sim) : sim_(sim) {}

  // Runs one command. An error status is the command's failure (what was observed); `note`
  // says what a successful command observed, if anything worth a line.
  absl::Status Run(const Command& command, std::string* note) {
    if (command.node != kLeaderNode && command.peer != kLeaderNode) {
      return RunResolved(command, note);
    }
    const std::optional<NodeId> leader = sim_.Leader();
    if (!leader) {
      return absl::FailedPreconditionError(absl::StrCat("no leader to act on; ", Cluster()));
    }
    Command c = command;
    if (c.node == kLeaderNode) c.node = *leader;
    if (c.peer == kLeaderNode) c.peer = *leader;
    const std::string who = absl::StrCat("the leader is n", *leader);
    if (c.node == c.peer) {
      if (c.kind == Command::Kind::kTransfer) {
        *note = absl::StrCat(who, " already");
        return absl::OkStatus();
      }
      return absl::FailedPreconditionError(absl::StrCat(who, ", both ends of the link"));
    }
    absl::Status s = RunResolved(c, note);
    *note = note->empty() ? who : absl::StrCat(who, "; ", *note);
    return s;
  }

  const std::optional<checker::CheckResult>& linearizability() const { return lin_; }

 private:
  absl::Status RunResolved(const Command& c, std::string* note) {
    using K = Command::Kind;
    switch (c.kind) {
      case K::kWorkload:
        if (c.on) {
          sim_.StartWorkload();
        } else {
          sim_.StopWorkload();
        }
        return absl::OkStatus();
      case K::kPartition:
        sim_.Partition(c.groups);
        return absl::OkStatus();
      case K::kIsolate: {
        std::set<NodeId> rest;
        for (NodeId id = 1; id <= static_cast<NodeId>(sim_.nodes()); ++id) {
          if (id != c.node) rest.insert(id);
        }
        sim_.Partition({{c.node}, rest});
        return absl::OkStatus();
      }
      case K::kBlock:
        sim_.BlockLink(c.node, c.peer);
        return absl::OkStatus();
      case K::kClog:
        sim_.Clog(c.node, c.peer, c.duration_ms * kMs);
        return absl::OkStatus();
      case K::kHeal:
        sim_.Heal();
        return absl::OkStatus();
      case K::kHealAll:
        sim_.HealAll();
        *note = Cluster();
        return absl::OkStatus();
      case K::kCrash:
        if (!sim_.IsUp(c.node)) *note = absl::StrCat("n", c.node, " was already down");
        sim_.Crash(c.node);
        return absl::OkStatus();
      case K::kRestart:
        if (sim_.IsUp(c.node)) {
          *note = absl::StrCat("n", c.node, " was already up");
          return absl::OkStatus();
        }
        sim_.Restart(c.node);
        *note = NodeState(c.node);
        return absl::OkStatus();
      case K::kPause:
        if (!sim_.IsUp(c.node)) *note = absl::StrCat("n", c.node, " is down");
        sim_.Pause(c.node);
        return absl::OkStatus();
      case K::kResume:
        if (!sim_.IsPaused(c.node)) *note = absl::StrCat("n", c.node, " was not paused");
        sim_.Resume(c.node);
        return absl::OkStatus();
      case K::kSlowDisk:
        sim_.SetSlowDisk(c.node, c.on);
        return absl::OkStatus();
      case K::kDiskFull:
        sim_.SetDiskFull(c.node, c.on);
        return absl::OkStatus();
      case K::kCorruptWal:
        if (!sim_.CorruptWal(c.node)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "n", c.node, " has no WAL record to corrupt (needs two records in one segment)"));
        }
        return absl::OkStatus();
      case K::kWipe:
        if (!sim_.Wipe(c.node)) {
          return absl::FailedPreconditionError(
              absl::StrCat("n", c.node, " is up: crash it before wiping its disk"));
        }
        return absl::OkStatus();
      case K::kCampaign:
        return sim_.Campaign(c.node);
      case K::kTransfer:
        return sim_.TransferLeadership(c.node, c.peer);
      case K::kAddLearner:
      case K::kPromote:
      case K::kRemoveMember:
      case K::kReplace: {
        using Type = raft::ConfChangeStep::Type;
        raft::ConfChange change;
        if (c.kind == K::kReplace) {
          change.steps = {{Type::kAddVoter, c.peer}, {Type::kRemove, c.node}};
        } else {
          const Type t = c.kind == K::kAddLearner ? Type::kAddLearner
                         : c.kind == K::kPromote  ? Type::kAddVoter
                                                  : Type::kRemove;
          change.steps = {{t, c.node}};
        }
        return sim_.ProposeConfChange(change);
      }
      case K::kWait:
        sim_.RunFor(c.duration_ms * kMs);
        *note = Cluster();
        return absl::OkStatus();
      case K::kWaitFor: {
        const uint64_t start = sim_.now();
        std::string observed;
        const bool ok =
            sim_.RunUntil([&] { return Eval(c.condition, &observed); }, c.duration_ms * kMs);
        if (sim_.failed()) return absl::OkStatus();  // reported by the caller
        if (!ok) {
          return absl::DeadlineExceededError(absl::StrCat(
              "not within ", Ms(c.duration_ms), ": observed ", observed, "; ", Cluster()));
        }
        *note = absl::StrCat(observed, " after ", (sim_.now() - start) / kMs, "ms");
        return absl::OkStatus();
      }
      case K::kExpect: {
        std::string observed;
        if (!Eval(c.condition, &observed)) {
          return absl::FailedPreconditionError(
              absl::StrCat("observed ", observed, "; ", Cluster()));
        }
        *note = observed;
        return absl::OkStatus();
      }
      case K::kExpectLinearizable: {
        checker::CheckResult r = sim_.CheckLinearizability();
        lin_ = r;
        if (sim_.failed()) return absl::OkStatus();  // a violation fails the simulation
        if (r.verdict != checker::Verdict::kOk) {
          return absl::FailedPreconditionError(
              absl::StrCat("observed verdict ", checker::VerdictName(r.verdict), ": ", r.Summary(),
                           " unknown keys: ", absl::StrJoin(r.unknown_keys, ",")));
        }
        *note = r.Summary();
        return absl::OkStatus();
      }
      case K::kExpectConverged: {
        const uint64_t start = sim_.now();
        const bool ok = sim_.RunUntil([this] { return sim_.AllCaughtUp(); }, c.duration_ms * kMs);
        if (sim_.failed()) return absl::OkStatus();
        if (!ok) {
          return absl::DeadlineExceededError(absl::StrCat("replicas did not catch up within ",
                                                          Ms(c.duration_ms), ": ", Cluster()));
        }
        const std::optional<NodeId> leader = sim_.Leader();
        const raft::Index commit = leader ? sim_.node(*leader)->raft().commit() : 0;
        sim_.CheckConvergence();  // compares the replicas' data; a difference fails the run
        *note = absl::StrCat("caught up at commit ", commit, " after ", (sim_.now() - start) / kMs,
                             "ms");
        return absl::OkStatus();
      }
      case K::kExpectProgress:
      case K::kExpectNoProgress: {
        const bool want = c.kind == K::kExpectProgress;
        const std::optional<uint64_t> before = Commit(c.node);
        if (!before && c.node != 0) {
          return absl::FailedPreconditionError(absl::StrCat("n", c.node, " is not running"));
        }
        const uint64_t base = before.value_or(0);
        const uint64_t start = sim_.now();
        const bool rose = sim_.RunUntil(
            [&] {
              std::optional<uint64_t> now = Commit(c.node);
              return now && *now > base;
            },
            c.duration_ms * kMs);
        if (sim_.failed()) return absl::OkStatus();
        const std::string who =
            c.node == 0 ? "the highest commit index" : absl::StrCat("n", c.node, "'s commit index");
        const std::optional<uint64_t> after = Commit(c.node);
        const std::string now_text = after ? absl::StrCat(*after) : "(not running)";
        if (rose != want) {
          return absl::FailedPreconditionError(
              rose ? absl::StrCat(who, " rose from ", base, " to ", now_text, " after ",
                                  (sim_.now() - start) / kMs, "ms")
                   : absl::StrCat(who, " stayed at ", base, " for ", Ms(c.duration_ms), "; ",
                                  Cluster()));
        }
        *note = rose ? absl::StrCat(who, " rose from ", base, " to ", now_text, " after ",
                                    (sim_.now() - start) / kMs, "ms")
                     : absl::StrCat(who, " stayed at ", base);
        return absl::OkStatus();
      }
    }
    AM_CHECK(false, "unhandled command kind ", static_cast<int>(c.kind));
    return absl::OkStatus();
  }

  bool Running(NodeId id) const { return sim_.IsUp(id) && !sim_.IsPaused(id); }

  // The commit index of `id`, or the highest over running nodes (id 0); nullopt if not running.
  std::optional<uint64_t> Commit(NodeId id) const {
    return Metric(id, [](const raft::Raft& r) { return r.commit(); });
  }

  std::optional<uint64_t> Metric(NodeId id,
                                 const std::function<uint64_t(const raft::Raft&)>& f) const {
    if (id != 0) {
      if (!Running(id)) return std::nullopt;
      return f(sim_.node(id)->raft());
    }
    std::optional<uint64_t> best;
    for (NodeId n = 1; n <= static_cast<NodeId>(sim_.nodes()); ++n) {
      if (!Running(n)) continue;
      best = std::max(best.value_or(0), f(sim_.node(n)->raft()));
    }
    return best;
  }

  std::string LeaderText() const {
    const std::optional<NodeId> l = sim_.Leader();
    if (!l) return "no leader";
    return absl::StrCat("leader n", *l, " (term ", sim_.node(*l)->raft().term(), ")");
  }

  bool Eval(const Condition& c, std::string* observed) const {
    using K = Condition::Kind;
    const NodeId one = c.nodes.empty() ? 0 : *c.nodes.begin();
    switch (c.kind) {
      case K::kLeader: {
        const std::optional<NodeId> l = sim_.Leader();
        *observed = LeaderText();
        return l && (one == 0 || *l == one);
      }
      case K::kNoLeader:
        *observed = LeaderText();
        return !sim_.Leader();
      case K::kLeaderIn: {
        const std::optional<NodeId> l = sim_.Leader();
        *observed = LeaderText();
        return l && c.nodes.count(*l) > 0;
      }
      case K::kTerm:
      case K::kCommitted: {
        const bool term = c.kind == K::kTerm;
        const std::optional<uint64_t> v =
            Metric(one, [term](const raft::Raft& r) { return term ? r.term() : r.commit(); });
        const std::string what = absl::StrCat(one == 0 ? "highest " : absl::StrCat("n", one, " "),
                                              term ? "term" : "commit index");
        if (!v) {
          *observed = one == 0 ? "no node running" : absl::StrCat("n", one, " not running");
          return false;
        }
        *observed = absl::StrCat(what, " ", *v);
        return Compare(*v, c.op, c.value);
      }
      case K::kSnapshot: {
        const std::optional<uint64_t> v =
            Metric(one, [](const raft::Raft& r) { return r.snapshot().index; });
        if (!v) {
          *observed = one == 0 ? "no node running" : absl::StrCat("n", one, " not running");
          return false;
        }
        *observed = absl::StrCat(one == 0 ? "highest " : absl::StrCat("n", one, " "),
                                 "snapshot index ", *v);
        return Compare(*v, c.op, c.value);
      }
      case K::kInstalls:
        *observed = absl::StrCat("n", one, " installed ", sim_.installs(one), " snapshots");
        return Compare(sim_.installs(one), c.op, c.value);
      case K::kVoters:
      case K::kLearners: {
        const node::Node* node = sim_.node(one);
        if (node == nullptr || !sim_.IsUp(one)) {
          *observed = NodeState(one);
          return false;
        }
        const raft::Configuration& conf = node->raft().configuration();
        *observed = absl::StrCat("n", one, " ", conf.Describe());
        const std::vector<NodeId>& ids = c.kind == K::kVoters ? conf.voters : conf.learners;
        return std::set<NodeId>(ids.begin(), ids.end()) == c.members &&
               (c.kind == K::kLearners || !conf.joint());
      }
      case K::kUp:
      case K::kDown:
      case K::kRefused:
        *observed = NodeState(one);
        if (c.kind == K::kRefused) return sim_.IsRefused(one);
        return sim_.IsUp(one) == (c.kind == K::kUp);
      case K::kAlert:
      case K::kAlertCount: {
        const std::vector<Simulation::AlertRecord>& fired = sim_.alerts(one);
        const uint64_t count = static_cast<uint64_t>(
            std::count_if(fired.begin(), fired.end(),
                          [&](const Simulation::AlertRecord& a) { return a.key == c.key; }));
        std::vector<std::string> all;
        for (const Simulation::AlertRecord& a : fired) {
          all.push_back(absl::StrCat(a.key, "@", a.at_ms, "ms"));
        }
        *observed = absl::StrCat("n", one, " fired ", count, " x ", c.key, " (all: ",
                                 all.empty() ? "none" : absl::StrJoin(all, " "), ")");
        return c.kind == K::kAlert ? count > 0 : Compare(count, c.op, c.value);
      }
    }
    return false;
  }

  std::string NodeState(NodeId id) const {
    if (sim_.IsRefused(id)) return absl::StrCat("n", id, " refused to start (corruption detected)");
    if (!sim_.IsUp(id)) return absl::StrCat("n", id, " down");
    const node::Node* n = sim_.node(id);
    return absl::StrCat("n", id, sim_.IsPaused(id) ? " paused" : "", " ",
                        raft::RoleName(n->raft().role()), " term ", n->raft().term(), " last ",
                        n->raft().log().LastTerm(), "/", n->raft().log().LastIndex(), " commit ",
                        n->raft().commit(), " applied ", n->applied());
  }

  std::string Cluster() const {
    std::vector<std::string> parts;
    for (NodeId id = 1; id <= static_cast<NodeId>(sim_.nodes()); ++id) {
      parts.push_back(NodeState(id));
    }
    return absl::StrCat("[", absl::StrJoin(parts, "; "), "]");
  }

  Simulation& sim_;
  std::optional<checker::CheckResult> lin_;  // of the last `expect linearizable`
};

}  // namespace

bool Compare(uint64_t a, CompareOp op, uint64_t b) {
  switch (op) {
    case CompareOp::kEq:
      return a == b;
    case CompareOp::kNe:
      return a != b;
    case CompareOp::kLt:
      return a < b;
    case CompareOp::kLe:
      return a <= b;
    case CompareOp::kGt:
      return a > b;
    case CompareOp::kGe:
      return a >= b;
  }
  return false;
}

std::vector<std::string> ScenarioOptionNames() {
  std::vector<std::string> names;
  for (const auto& [name, setter] : Options()) names.push_back(name);
  return names;
}

absl::Status SetSimOption(const std::string& name, const std::string& value, SimConfig* config) {
  auto it = Options().find(name);
  if (it == Options().end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown option \"", name, "\""));
  }
  return it->second(name, value, config);
}

SimConfig ScenarioConfig(const Scenario& scenario) {
  SimConfig c;
  c.seed = scenario.seed;
  c.nodes = scenario.nodes;
  c.drop = 0;
  c.duplicate = 0;
  c.lease_client = false;  // scripts are written against the key-value clients alone
  for (const ScenarioOption& o : scenario.options) {
    absl::Status s = SetSimOption(o.name, o.value, &c);
    AM_CHECK(s.ok(), "option validated by the parser: ", s.ToString());
  }
  return c;
}

absl::StatusOr<Scenario> ParseScenario(absl::string_view text, absl::string_view file) {
  return Parser(file).Parse(text);
}

absl::StatusOr<Scenario> LoadScenario(const std::string& path, const std::string& display_name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read scenario ", display_name));
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading scenario ", display_name));
  return ParseScenario(buf.str(), display_name);
}

ScenarioResult RunScenario(const Scenario& scenario, const ScenarioRunOptions& options) {
  ScenarioResult result;
  SimConfig config = ScenarioConfig(scenario);
  if (!options.bug.empty()) config.bug = options.bug;
  SetCheckFailureHandler(&ThrowOnCheckFailure);
  Simulation sim(config, options.keep_trace);
  Runner runner(sim);
  const Command* current = nullptr;
  auto fail_at = [&](const Command& c, const std::string& what) {
    result.ok = false;
    result.failed_line = c.line;
    result.failure = absl::StrCat(scenario.file, ":", c.line, ": `", c.text, "`: ", what);
    // The step names the failure's first line; `failure` has all of it.
    const std::string first(absl::string_view(what).substr(0, what.find('\n')));
    result.steps.push_back(absl::StrFormat("%9.3fs line %d: %s  => FAILED: %s", sim.now() / 1e9,
                                           c.line, c.text, first));
  };
  try {
    for (const Command& c : scenario.commands) {
      current = &c;
      sim.Note(trace::ScenarioStep(scenario.file, c.line, c.text));
      std::string note;
      absl::Status s = runner.Run(c, &note);
      if (sim.failed()) {
        fail_at(c, sim.failure());
        break;
      }
      if (!s.ok()) {
        fail_at(c, std::string(s.message()));
        break;
      }
      result.steps.push_back(absl::StrFormat("%9.3fs line %d: %s%s", sim.now() / 1e9, c.line,
                                             c.text, note.empty() ? "" : "  => " + note));
    }
    current = nullptr;
    const bool checked_last = !scenario.commands.empty() &&
                              scenario.commands.back().kind == Command::Kind::kExpectLinearizable;
    if (result.ok && !checked_last) {
      sim.Note("scenario end: linearizability");
      result.linearizability = sim.CheckLinearizability();
      if (!sim.failed() && result.linearizability.verdict == checker::Verdict::kUnknown) {
        sim.Fail(absl::StrCat("linearizability unknown (search budget exhausted): ",
                              result.linearizability.Summary()));
      }
      if (sim.failed()) {
        result.ok = false;
        result.failure = absl::StrCat(scenario.file, ": at the end: ", sim.failure());
      } else {
        result.steps.push_back(
            absl::StrFormat("%9.3fs end: %s", sim.now() / 1e9, result.linearizability.Summary()));
      }
    } else if (runner.linearizability()) {
      result.linearizability = *runner.linearizability();
    }
  } catch (const CheckFailure& f) {
    sim.Fail(f.what);
    if (current != nullptr) {
      fail_at(*current, sim.failure());
    } else {
      result.ok = false;
      result.failure = absl::StrCat(scenario.file, ": at the end: ", sim.failure());
    }
  }
  SetCheckFailureHandler(nullptr);
  result.trace_hash = sim.trace_hash();
  result.sim_seconds = static_cast<double>(sim.now()) / 1e9;
  result.stats = sim.stats();
  result.trace = sim.TakeTrace();
  return result;
}

}  // namespace amaters::sim
