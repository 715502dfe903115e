// Runs the scripted Raft scenarios in engine/raft/testdata/*.txt (see
// engine/testing/datadriven.h for the file format and the rewrite mode).
//
// Commands:
//   add-nodes N [pre-vote=B] [check-quorum=B] [election=T] [heartbeat=T] [lease-read=B]
//               [max-inflight=N] [max-msg-bytes=N] [seed=S]
//   campaign ID | tick ID [N] | propose ID DATA | read-index ID CTX
//   transfer-leadership FROM TO
//   deliver [from=ID] [to=ID] [type=T] | drop [from=ID] [to=ID] [type=T] | stabilize
//   partition 1,2 3,4,5 | heal | crash ID | restart ID
//   manual-persist ID on|off | persist ID
//   restore ID terms=1,1,2 [term=T] [vote=V] [commit=C]
//   status [ID] | log ID | progress ID | in-flight
#include <memory>
#include <set>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/raft/testing/harness.h"
#include "engine/testing/datadriven.h"
#include "gtest/gtest.h"

namespace amaters::raft {
namespace {

using ::amaters::testing::Command;

NodeId Id(const std::string& s) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) return kNone;
  return v;
}

bool Flag(const Command& c, const std::string& key, bool def) {
  if (!c.Has(key)) return def;
  return c.Get(key, "") == "true";
}

class ScenarioRunner {
 public:
  std::string Run(const Command& c) {
    if (c.name == "add-nodes") return AddNodes(c);
    if (!h_) return "error: add-nodes first";
    std::string out;
    if (c.name == "campaign") {
      h_->Campaign(Id(c.args.at(0)));
    } else if (c.name == "tick") {
      h_->Tick(Id(c.args.at(0)), c.args.size() > 1 ? std::stoi(c.args[1]) : 1);
    } else if (c.name == "propose") {
      ProposeResult r = h_->Propose(Id(c.args.at(0)), c.args.size() > 1 ? c.args[1] : "");
      if (!r.status.ok()) {
        out = absl::StrCat("error: ", r.status.ToString(), " (leader hint ", r.leader, ")\n");
      } else {
        out = absl::StrCat("accepted at ", r.term, "/", r.index, "\n");
      }
    } else if (c.name == "read-index") {
      absl::Status s = h_->ReadIndex(Id(c.args.at(0)), c.args.at(1));
      if (!s.ok()) out = absl::StrCat("error: ", s.ToString(), "\n");
    } else if (c.name == "transfer-leadership") {
      absl::Status s = h_->TransferLeadership(Id(c.args.at(0)), Id(c.args.at(1)));
      if (!s.ok()) out = absl::StrCat("error: ", s.ToString(), "\n");
    } else if (c.name == "deliver" || c.name == "drop") {
      auto filter = [&c](const Message& m) {
        if (c.Has("from") && m.from != Id(c.Get("from", ""))) return false;
        if (c.Has("to") && m.to != Id(c.Get("to", ""))) return false;
        if (c.Has("type") && c.Get("type", "") != MessageTypeName(m.type)) return false;
        return true;
      };
      if (c.name == "deliver") {
        h_->Deliver(filter);
      } else {
        h_->Drop(filter);
      }
    } else if (c.name == "stabilize") {
      if (!h_->Stabilize()) out = "error: did not stabilize\n";
    } else if (c.name == "partition") {
      std::vector<std::set<NodeId>> groups;
      for (const std::string& g : c.args) {
        std::set<NodeId> set;
        for (absl::string_view id : absl::StrSplit(g, ',')) set.insert(Id(std::string(id)));
        groups.push_back(set);
      }
      h_->Partition(groups);
    } else if (c.name == "heal") {
      h_->Heal();
    } else if (c.name == "crash") {
      h_->Crash(Id(c.args.at(0)));
    } else if (c.name == "restart") {
      h_->Restart(Id(c.args.at(0)));
    } else if (c.name == "manual-persist") {
      h_->SetManualPersist(Id(c.args.at(0)), c.args.at(1) == "on");
    } else if (c.name == "persist") {
      int n = h_->Persist(Id(c.args.at(0)));
      out = absl::StrCat("completed ", n, " write(s)\n");
    } else if (c.name == "restore") {
      std::vector<Term> terms;
      for (absl::string_view t : absl::StrSplit(c.Get("terms", ""), ',', absl::SkipEmpty())) {
        uint64_t v = 0;
        if (absl::SimpleAtoi(t, &v)) terms.push_back(v);
      }
      HardState hs;
      hs.term = c.GetInt("term", terms.empty() ? 0 : static_cast<long long>(terms.back()));
      hs.vote = c.GetInt("vote", 0);
      hs.commit = c.GetInt("commit", 0);
      h_->RestoreNode(Id(c.args.at(0)), terms, hs);
    } else if (c.name == "status") {
      for (NodeId id : h_->ids()) {
        if (!c.args.empty() && Id(c.args[0]) != id) continue;
        absl::StrAppend(&out, h_->alive(id) ? h_->node(id).Describe() : absl::StrCat(id, " crashed"), "\n");
      }
    } else if (c.name == "log") {
      const RaftLog& log = h_->node(Id(c.args.at(0))).log();
      for (Index i = log.FirstIndex(); i <= log.LastIndex(); ++i) {
        absl::StrAppend(&out, DescribeEntry(log.At(i)), "\n");
      }
      if (out.empty()) out = "empty log\n";
    } else if (c.name == "progress") {
      Raft& r = h_->node(Id(c.args.at(0)));
      for (NodeId v : r.voters()) {
        const Progress* p = r.progress(v);
        if (p) absl::StrAppend(&out, v, ": ", p->Describe(), "\n");
      }
      if (out.empty()) out = "not the leader\n";
    } else if (c.name == "in-flight") {
      for (const Message& m : h_->in_flight()) absl::StrAppend(&out, DescribeMessage(m), "\n");
      if (out.empty()) out = "no messages in flight\n";
    } else {
      return absl::StrCat("error: unknown command ", c.name);
    }
    return h_->TakeEvents() + out;
  }

 private:
  std::string AddNodes(const Command& c) {
    int n = std::stoi(c.args.at(0));
    auto tweak = [&c](Config& cfg) {
      cfg.pre_vote = Flag(c, "pre-vote", true);
      cfg.check_quorum = Flag(c, "check-quorum", true);
      cfg.election_ticks = static_cast<int>(c.GetInt("election", 10));
      cfg.heartbeat_ticks = static_cast<int>(c.GetInt("heartbeat", 1));
      if (Flag(c, "lease-read", false)) cfg.read_only = ReadOnlyOption::kLeaseBased;
      cfg.max_inflight_msgs = c.GetInt("max-inflight", 256);
      cfg.max_msg_bytes = c.GetInt("max-msg-bytes", 1 << 20);
    };
    h_ = std::make_unique<testing::Harness>(n, tweak, c.GetInt("seed", 1));
    std::string out;
    for (NodeId id : h_->ids()) absl::StrAppend(&out, h_->node(id).Describe(), "\n");
    h_->TakeEvents();
    return out;
  }

  std::unique_ptr<testing::Harness> h_;
};

TEST(RaftScenarios, AllFiles) {
  std::vector<std::string> files = amaters::testing::ListFiles("engine/raft/testdata", ".txt");
  ASSERT_FALSE(files.empty()) << "no scenario files found";
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    ScenarioRunner runner;
    std::string failures = amaters::testing::RunScenarioFile(
        f, [&runner](const Command& c) { return runner.Run(c); });
    EXPECT_EQ(failures, "") << "scenario " << f << " differs; to accept the new output run:\n"
                            << "  AMATERS_REWRITE=1 ./bazelw run //engine/raft:scenario_test\n";
  }
}

}  // namespace
}  // namespace amaters::raft
