// Crash property of the WAL: any sequence of appends, batches (whole or cut short),
// compactions and crashes — with unsynced bytes lost, kept, partly kept or torn — recovers to
// a log that is exactly the state after some prefix of the records written, never older than
// what was acknowledged (sync_mode = always), with a hard state never older than the
// acknowledged one — except for the commit index of trailing commit-only hard states, which
// are acknowledged without a sync of their own (writer.h).
//
// Replay a failure with the RC_PARAMS line rapidcheck prints (e.g. RC_PARAMS="reproduce=...");
// a longer campaign: RC_PARAMS="max_success=20000" bazel-bin/engine/wal/crash_property_test.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/wal/disk.h"
#include "engine/wal/sim_disk.h"
#include "engine/wal/writer.h"
#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace amaters::wal {
namespace {

struct State {
  std::vector<raft::Entry> log;  // from index 1
  raft::HardState hs;
};

bool Matches(const ReplayResult& r, const State& s, raft::Index snapshot_index) {
  if (r.hard_state != s.hs) return false;
  if (s.log.size() < snapshot_index) return false;
  if (r.entries.size() != s.log.size() - snapshot_index) return false;
  for (size_t i = 0; i < r.entries.size(); ++i) {
    if (!(r.entries[i] == s.log[snapshot_index + i])) return false;
  }
  return true;
}

// A hard state that changes only the commit index is acknowledged without an fdatasync of its
// own (writer.h, kAlways), so a crash may lose it: recovery must reach at least the last
// acknowledged state before such steps.
bool CommitOnlyStep(const State& before, const State& after) {
  return before.log == after.log && before.hs.term == after.hs.term &&
         before.hs.vote == after.hs.vote;
}

std::string Show(const State& s) {
  std::string out = absl::StrCat("hs{", s.hs.term, ",", s.hs.vote, ",", s.hs.commit, "} log[");
  for (const raft::Entry& e : s.log) {
    absl::StrAppend(&out, e.term, ".", e.index, "/", e.data.size(), " ");
  }
  return out + "]";
}

RC_GTEST_PROP(WalCrashProperty, RecoversAPrefixNeverOlderThanAcknowledged, ()) {
  const SyncMode mode = *rc::gen::element(SyncMode::kAlways, SyncMode::kAlways,
                                          SyncMode::kInterval, SyncMode::kNone);
  WriterOptions options;
  options.sync_mode = mode;
  options.segment_size_bytes = *rc::gen::element<uint64_t>(4096, 4096, 8192, 1 << 20);
  options.max_batch_bytes = *rc::gen::element<uint64_t>(256, 2048, 16 << 20);
  options.sync_interval_ms = 10;
  SplitMix64 crash_rng(*rc::gen::arbitrary<uint64_t>());
  const int cycles = *rc::gen::inRange(2, 6);

  SimDisk disk;
  State base;                    // the state recovery must reach at least (acknowledged)
  std::vector<State> candidates = {base};  // states recovery may reach, oldest first
  size_t acked_candidate = 0;    // candidates[acked_candidate..] are allowed
  raft::Index snapshot_index = 0;
  raft::Term term = 1;
  uint64_t now_ms = 0;

  for (int cycle = 0; cycle < cycles; ++cycle) {
    absl::StatusOr<ReplayResult> r = Recover(&disk, CorruptionPolicy::kRefuseStart,
                                             snapshot_index);
    if (!r.ok()) {
      RC_FAIL(absl::StrCat("cycle ", cycle, " mode ", SyncModeName(mode),
                           ": recovery failed: ", r.status().ToString()));
    }
    // Which candidate state did recovery reach?
    size_t found = candidates.size();
    size_t lowest = mode == SyncMode::kAlways ? acked_candidate : 0;
    while (lowest > 0 && CommitOnlyStep(candidates[lowest - 1], candidates[lowest])) --lowest;
    for (size_t k = lowest; k < candidates.size(); ++k) {
      if (Matches(*r, candidates[k], snapshot_index)) found = k;
    }
    if (found == candidates.size()) {
      std::string allowed;
      for (size_t k = lowest; k < candidates.size(); ++k) {
        absl::StrAppend(&allowed, "\n  ", Show(candidates[k]));
      }
      State got{{}, r->hard_state};
      got.log = r->entries;
      RC_FAIL(absl::StrCat("cycle ", cycle, " mode ", SyncModeName(mode), ": recovered ",
                           Show(got), " (after snapshot ", snapshot_index,
                           "), which is none of the allowed states:", allowed));
    }
    if (cycle > 0) {
      // Coverage of what the run exercised (rapidcheck prints the distribution).
      RC_CLASSIFY(r->torn_tail, "torn tail repaired");
      RC_CLASSIFY(found > lowest, "recovered more than acknowledged");
      RC_CLASSIFY(snapshot_index > 0, "compacted");
      RC_CLASSIFY(r->segments.size() > 1, "several segments");
    }
    State current = candidates[found];
    candidates = {current};
    acked_candidate = 0;

    absl::StatusOr<Writer> w = Writer::Open(options, *r);
    RC_ASSERT(w.ok());
    // persist seq -> index in `candidates` of the state once its request is fully written.
    std::vector<std::pair<uint64_t, size_t>> request_end;
    uint64_t seq = 0;
    bool crashed = false;
    const int steps = *rc::gen::inRange(5, 80);
    for (int step = 0; step < steps && !crashed; ++step) {
      const int what = *rc::gen::inRange(0, 10);
      if (what < 5) {  // a persist request, as Raft would produce it
        raft::PersistRequest req;
        req.seq = ++seq;
        State s = candidates.back();
        if (*rc::gen::inRange(0, 5) == 0) ++term;
        const raft::Index last = s.log.size();
        raft::Index from = last + 1;
        if (last > s.hs.commit && *rc::gen::inRange(0, 3) == 0) {
          from = static_cast<raft::Index>(*rc::gen::inRange<uint64_t>(s.hs.commit + 1, last + 1));
          from = std::max(from, snapshot_index + 1);
        }
        const int n = *rc::gen::inRange(0, 4);
        for (int k = 0; k < n; ++k) {
          raft::Entry e;
          e.term = term;
          e.index = from + static_cast<raft::Index>(k);
          e.data = std::string(static_cast<size_t>(*rc::gen::inRange(0, 300)),
                               static_cast<char>('a' + (seq + static_cast<uint64_t>(k)) % 26));
          req.entries.push_back(e);
        }
        // Intermediate candidate states: a crash may keep any prefix of the records.
        for (const raft::Entry& e : req.entries) {
          s.log.resize(e.index - 1);
          s.log.push_back(e);
          candidates.push_back(s);
        }
        if (n == 0 || *rc::gen::inRange(0, 2) == 0) {
          raft::HardState hs{term, 1, s.hs.commit};
          if (s.log.size() > s.hs.commit && *rc::gen::inRange(0, 2) == 0) {
            hs.commit = static_cast<raft::Index>(
                *rc::gen::inRange<uint64_t>(s.hs.commit, s.log.size() + 1));
          }
          req.hard_state = hs;
          s.hs = hs;
          candidates.push_back(s);
        }
        request_end.push_back({req.seq, candidates.size() - 1});
        RC_ASSERT(w->Append(req).ok());
      } else if (what < 8) {  // run one batch to completion
        now_ms += static_cast<uint64_t>(*rc::gen::inRange(0, 20));
        std::optional<DiskBatch> b = w->NextBatch(now_ms);
        if (!b) continue;
        RC_ASSERT(ExecuteBatch(*b, &disk).ok());
        absl::StatusOr<std::vector<uint64_t>> acked = w->OnBatchDone(b->id, absl::OkStatus());
        RC_ASSERT(acked.ok());
        for (uint64_t a : *acked) {
          auto it = std::find_if(request_end.begin(), request_end.end(),
                                 [&](const auto& p) { return p.first == a; });
          RC_ASSERT(it != request_end.end());
          acked_candidate = std::max(acked_candidate, it->second);
        }
      } else if (what < 9) {  // compaction up to the acknowledged commit (always mode only)
        if (mode != SyncMode::kAlways) continue;
        const raft::Index commit = candidates[acked_candidate].hs.commit;
        if (commit > snapshot_index) {
          snapshot_index = static_cast<raft::Index>(
              *rc::gen::inRange<uint64_t>(snapshot_index, commit + 1));
          w->Compact(snapshot_index);
        }
      } else {  // crash, possibly in the middle of a batch
        if (std::optional<DiskBatch> b = w->NextBatch(now_ms)) {
          const size_t done = static_cast<size_t>(*rc::gen::inRange<size_t>(0, b->ops.size() + 1));
          DiskBatch part = *b;
          part.ops.resize(done);
          RC_ASSERT(ExecuteBatch(part, &disk).ok());
        }
        crashed = true;
      }
    }
    disk.Crash(*rc::gen::element(SimDisk::CrashMode::kRandom, SimDisk::CrashMode::kLoseUnsynced),
               &crash_rng);
  }
}

}  // namespace
}  // namespace amaters::wal
