// Watchers of the key-value store (etcd's Watch), as a pure state machine over a StateMachine's
// history (docs/watch.md).
//
// The driver owns one WatchHub next to its state machine, on the thread that applies, and
// feeds it: watch requests of client streams (Create, Cancel, RequestProgress, CloseStream),
// the end of every Apply (OnApplied: the versions the batch wrote are the events), its flow
// control (SetBlocked) and, on a timer, NotifyProgress. What to send comes out of TakeOutput.
//
// Delivery. Each watcher has a next revision: every event of its range at or after it is
// delivered exactly once, in revision order (within a revision, in key order), and the next
// revision only moves past events that were delivered (or filtered out). A watcher is
//  - synced: caught up; each OnApplied hands it the batch's matching events at once;
//  - unsynced: behind (a start revision in the past, or a stream that was blocked); Sync reads
//    its events from the history, at most limits.max_events_per_response per call (a single
//    revision is never split), until it is caught up.
// While a stream is blocked (its client reads slowly) its watchers receive nothing and become
// unsynced, so the hub buffers nothing for them: memory is bounded by the watchers and one
// chunk, whatever the clients do (etcd's unsynced/victim watchers, with the history as the
// only buffer). A watcher whose next revision was compacted away is canceled with the
// compact revision, as etcd does; the client resumes from there or relists.
#ifndef AMATERS_ENGINE_KV_WATCH_H_
#define AMATERS_ENGINE_KV_WATCH_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/kv/state_machine.h"

namespace amaters::kv {

using WatchStreamId = uint64_t;
using WatchId = int64_t;

// etcd's watch_id of a progress response to a ProgressRequest (not any one watcher's).
inline constexpr WatchId kProgressWatchId = -1;

// etcd's refusals of a create (watch_id kProgressWatchId, created and canceled, this reason).
inline constexpr char kErrWatcherDuplicateId[] =
    "mvcc: duplicate watch ID provided on the WatchStream";
inline constexpr char kErrEmptyWatcherRange[] = "mvcc: watcher range is empty";
inline constexpr char kErrTooManyWatchers[] = "too many watchers";

struct WatchCreate {
  std::string key;  // not empty; range semantics as RangeRequest
  std::string range_end;
  // The first revision to deliver; 0 (or negative) = the revision after the current one.
  int64_t start_revision = 0;
  WatchId watch_id = 0;  // > 0: the client's choice; 0: the hub picks the next free id
  bool prev_kv = false;  // events carry the key's previous version
  bool no_put = false;   // filters (etcd's NOPUT / NODELETE)
  bool no_delete = false;
  bool progress_notify = false;  // NotifyProgress reaches this watcher
};

struct WatchEvent {
  KeyValue kv;  // a tombstone (IsTombstone) for a delete
  std::optional<KeyValue> prev_kv;

  bool operator==(const WatchEvent& o) const { return kv == o.kv && prev_kv == o.prev_kv; }
};

struct WatchResponse {
  WatchStreamId stream = 0;
  WatchId watch_id = 0;
  int64_t revision = 0;  // the header revision: the store revision when it was made
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // set on a cancel because the history was compacted
  std::string cancel_reason;
  std::vector<WatchEvent> events;  // in revision order
};

struct WatchLimits {
  size_t max_watchers = 10000;            // over every stream
  size_t max_watchers_per_stream = 1000;  // etcd has no limit; ours bounds a client
  size_t max_events_per_response = 1000;  // a catch-up chunk (one revision is never split)
  // Keys and values of the events of one response, about (prev_kv not counted): a response
  // is closed at the first revision boundary past it, so that clients with gRPC's default
  // 4 MiB receive limit can read every response made of writes within the request limit.
  size_t max_response_bytes = 1 << 20;
};

class WatchHub {
 public:
  // `store` serves the history (catch-up, prev_kv); it outlives the hub.
  WatchHub(const StateMachine& store, WatchLimits limits) : store_(store), limits_(limits) {}
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Starts a watcher (an empty key watches from "\0", as etcd). Output: `created` (with the
  // id); or, as etcd, `created` and `canceled` with watch_id kProgressWatchId and the reason
  // for a duplicate id, a range_end at or below the key, or too many watchers; or `created`
  // followed by a compaction cancel when start_revision is below the compact revision.
  void Create(WatchStreamId stream, const WatchCreate& request);
  // Output: `canceled` for a watcher of the stream; nothing for an unknown id.
  void Cancel(WatchStreamId stream, WatchId id);
  // Forgets every watcher of the stream. No output.
  void CloseStream(WatchStreamId stream);
  // etcd's ProgressRequest: when every watcher of the stream is synced, a response with
  // kProgressWatchId and the current revision (no event before it is undelivered); else
  // nothing (the events that come carry the revision).
  void RequestProgress(WatchStreamId stream);
  // After every Apply of the store (store.last_applied_versions() are the events).
  void OnApplied();
  // After the store's state was replaced (a snapshot restored): every watcher catches up from
  // the history, or is canceled when what it still needs was compacted away.
  void OnRestored();
  // The driver's flow control: a blocked stream's watchers get nothing until it is unblocked.
  void SetBlocked(WatchStreamId stream, bool blocked);
  // The driver could not send `response` (events of one watcher, taken from TakeOutput): its
  // watcher goes back to the response's first revision and catches up later; the stream is
  // blocked. Responses without events (created, canceled, progress) must always be sent.
  void Undelivered(const WatchResponse& response);
  // Catches up unsynced watchers of unblocked streams, one chunk each. Returns whether some
  // are still behind (call again, after the driver has sent the output).
  bool Sync();
  // Progress notification (etcd: every 10 minutes): each synced watcher with progress_notify
  // gets an empty response with the current revision.
  void NotifyProgress();

  std::vector<WatchResponse> TakeOutput() { return std::exchange(output_, {}); }

  // Planted bugs (docs/design.md §4.8), for the simulator's watch checker to catch.
  struct PlantedBugs {
    bool deliver_before_next = false;  // live events below a watcher's next revision go out
  };
  void set_planted_bugs(PlantedBugs bugs) { bugs_ = bugs; }

  size_t watchers() const { return watchers_.size(); }
  size_t unsynced() const;

 private:
  struct Watcher {
    WatchCreate spec;
    int64_t next_revision = 0;
    bool synced = false;
  };
  struct Stream {
    WatchId next_id = 0;
    bool blocked = false;
    size_t watchers = 0;
  };
  using Key = std::pair<WatchStreamId, WatchId>;

  WatchResponse Response(WatchStreamId stream, WatchId id) const;
  bool Wants(const Watcher& w, const KeyValue& version) const;
  WatchEvent Event(const Watcher& w, const KeyValue& version) const;
  // Sends `events` (revision order) as responses of at most max_response_bytes, split only
  // between revisions.
  void Emit(const Key& key, std::vector<WatchEvent> events);
  // One catch-up chunk for `w`: its events from the history, up to a whole revision.
  void CatchUp(const Key& key, Watcher& w);
  void CancelCompacted(const Key& key);
  void Remove(const Key& key);

  const StateMachine& store_;
  const WatchLimits limits_;
  std::map<Key, Watcher> watchers_;
  std::map<WatchStreamId, Stream> streams_;
  std::vector<WatchResponse> output_;
  PlantedBugs bugs_;
};

}  // namespace amaters::kv

#endif  // AMATERS_ENGINE_KV_WATCH_H_
