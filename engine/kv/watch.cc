#include "engine/kv/watch.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include "engine/base/check.h"
#include "engine/kv/apply.h"

namespace amaters::kv {

WatchResponse WatchHub::Response(WatchStreamId stream, WatchId id) const {
  WatchResponse r;
  r.stream = stream;
  r.watch_id = id;
  r.revision = store_.revision();
  return r;
}

size_t WatchHub::unsynced() const {
  return static_cast<size_t>(std::count_if(watchers_.begin(), watchers_.end(),
                                           [](const auto& w) { return !w.second.synced; }));
}

void WatchHub::Create(WatchStreamId stream, const WatchCreate& request) {
  Stream& st = streams_[stream];
  WatchId id = request.watch_id;
  if (id <= 0) {
    while (watchers_.count({stream, st.next_id}) != 0) ++st.next_id;
    id = st.next_id++;
  }
  auto refuse = [&](const std::string& reason) {
    WatchResponse r = Response(stream, kProgressWatchId);
    r.created = true;
    r.canceled = true;
    r.cancel_reason = reason;
    output_.push_back(std::move(r));
  };
  if (watchers_.count({stream, id}) != 0) return refuse(kErrWatcherDuplicateId);
  if (!request.range_end.empty() && request.range_end != std::string(1, '\0') &&
      request.range_end <= (request.key.empty() ? std::string(1, '\0') : request.key)) {
    return refuse(kErrEmptyWatcherRange);
  }
  if (watchers_.size() >= limits_.max_watchers ||
      st.watchers >= limits_.max_watchers_per_stream) {
    return refuse(kErrTooManyWatchers);
  }
  Watcher w;
  w.spec = request;
  // etcd: an empty key watches from the smallest key, "\0".
  if (w.spec.key.empty()) w.spec.key = std::string(1, '\0');
  const int64_t now = store_.revision();
  w.next_revision = request.start_revision > 0 ? request.start_revision : now + 1;
  // A watcher starting after the current revision is caught up: it only waits.
  w.synced = w.next_revision > now;
  const Key key{stream, id};
  watchers_.emplace(key, std::move(w));
  ++st.watchers;
  WatchResponse created = Response(stream, id);
  created.created = true;
  output_.push_back(std::move(created));
  if (request.start_revision > 0 && request.start_revision < store_.compact_revision()) {
    CancelCompacted(key);
  }
}

void WatchHub::Remove(const Key& key) {
  auto it = watchers_.find(key);
  AM_CHECK(it != watchers_.end(), "removing an unknown watcher ", key.second);
  watchers_.erase(it);
  Stream& st = streams_.at(key.first);
  AM_CHECK_LT(size_t{0}, st.watchers);
  --st.watchers;
}

void WatchHub::Cancel(WatchStreamId stream, WatchId id) {
  if (watchers_.count({stream, id}) == 0) return;
  Remove({stream, id});
  WatchResponse r = Response(stream, id);
  r.canceled = true;
  output_.push_back(std::move(r));
}

void WatchHub::CancelCompacted(const Key& key) {
  WatchResponse r = Response(key.first, key.second);
  r.canceled = true;
  r.compact_revision = store_.compact_revision();
  AM_CHECK_LT(watchers_.at(key).next_revision, r.compact_revision);
  Remove(key);
  output_.push_back(std::move(r));
}

void WatchHub::CloseStream(WatchStreamId stream) {
  for (auto it = watchers_.lower_bound({stream, std::numeric_limits<WatchId>::min()});
       it != watchers_.end() && it->first.first == stream;) {
    it = watchers_.erase(it);
  }
  streams_.erase(stream);
}

void WatchHub::RequestProgress(WatchStreamId stream) {
  for (auto it = watchers_.lower_bound({stream, std::numeric_limits<WatchId>::min()});
       it != watchers_.end() && it->first.first == stream; ++it) {
    if (!it->second.synced) return;
  }
  output_.push_back(Response(stream, kProgressWatchId));
}

void WatchHub::SetBlocked(WatchStreamId stream, bool blocked) {
  streams_[stream].blocked = blocked;
}

void WatchHub::Undelivered(const WatchResponse& response) {
  AM_CHECK(!response.events.empty(), "a response without events must be sent");
  streams_[response.stream].blocked = true;
  auto it = watchers_.find({response.stream, response.watch_id});
  if (it == watchers_.end()) return;  // canceled since
  Watcher& w = it->second;
  w.next_revision = std::min(w.next_revision, response.events.front().kv.mod_revision);
  w.synced = false;
}

bool WatchHub::Wants(const Watcher& w, const KeyValue& version) const {
  if (!InRange(version.key, w.spec.key, w.spec.range_end)) return false;
  return IsTombstone(version) ? !w.spec.no_delete : !w.spec.no_put;
}

WatchEvent WatchHub::Event(const Watcher& w, const KeyValue& version) const {
  WatchEvent e;
  e.kv = version;
  if (!w.spec.prev_kv) return e;
  // The key as it was just before (etcd reads it the same way); nothing when compacted away.
  RangeRequest before;
  before.key = version.key;
  before.revision = version.mod_revision - 1;
  absl::StatusOr<RangeResponse> r = store_.Range(before);
  if (r.ok() && !r->kvs.empty()) e.prev_kv = r->kvs.front();
  return e;
}

namespace {

// What an event adds to a response, about.
size_t EventBytes(const KeyValue& kv) { return kv.key.size() + kv.value.size() + 32; }

}  // namespace

void WatchHub::Emit(const Key& key, std::vector<WatchEvent> events) {
  WatchResponse r = Response(key.first, key.second);
  size_t bytes = 0;
  for (WatchEvent& e : events) {
    const bool new_revision = !r.events.empty() && r.events.back().kv.mod_revision != e.kv.mod_revision;
    if (new_revision && bytes >= limits_.max_response_bytes) {
      output_.push_back(std::move(r));
      r = Response(key.first, key.second);
      bytes = 0;
    }
    AM_CHECK(r.events.empty() || r.events.back().kv.mod_revision <= e.kv.mod_revision,
             "watch events out of revision order");
    bytes += EventBytes(e.kv);
    r.events.push_back(std::move(e));
  }
  if (!r.events.empty()) output_.push_back(std::move(r));
}

void WatchHub::OnApplied() {
  const std::vector<KeyValue>& versions = store_.last_applied_versions();
  const int64_t now = store_.revision();
  for (auto& [key, w] : watchers_) {
    if (!w.synced) continue;
    if (streams_.at(key.first).blocked) {
      w.synced = false;  // these events will come from the history
      continue;
    }
    std::vector<WatchEvent> events;
    for (const KeyValue& v : versions) {
      AM_CHECK_LE(v.mod_revision, now);
      const bool due = v.mod_revision >= w.next_revision || bugs_.deliver_before_next;
      if (due && Wants(w, v)) events.push_back(Event(w, v));
    }
    w.next_revision = std::max(w.next_revision, now + 1);
    // Within a revision in key order, as a catch-up from the history gives them.
    std::stable_sort(events.begin(), events.end(), [](const WatchEvent& a, const WatchEvent& b) {
      return a.kv.mod_revision != b.kv.mod_revision ? a.kv.mod_revision < b.kv.mod_revision
                                                      : a.kv.key < b.kv.key;
    });
    Emit(key, std::move(events));
  }
}

void WatchHub::OnRestored() {
  for (auto& [key, w] : watchers_) w.synced = false;
}

void WatchHub::CatchUp(const Key& key, Watcher& w) {
  AM_CHECK(!w.synced, "catching up a synced watcher");
  if (w.next_revision < store_.compact_revision()) return CancelCompacted(key);
  const int64_t now = store_.revision();
  // Every event in [next_revision, cut), by (revision, key); `cut` drops below the newest
  // revision whenever the chunk overflows, so only whole revisions stay.
  std::map<std::pair<int64_t, std::string>, KeyValue> chunk;
  size_t chunk_bytes = 0;
  int64_t cut = std::numeric_limits<int64_t>::max();
  absl::Status s = store_.History(w.spec.key, w.spec.range_end, w.next_revision,
                                  [&](const KeyValue& v) {
    if (v.mod_revision >= cut) return true;
    chunk.emplace(std::make_pair(v.mod_revision, v.key), v);
    chunk_bytes += EventBytes(v);
    // Over a bound: drop the newest revision, unless it is the only one (never split).
    while (chunk.size() > limits_.max_events_per_response ||
           chunk_bytes > limits_.max_response_bytes) {
      const int64_t newest = std::prev(chunk.end())->first.first;
      if (chunk.begin()->first.first == newest) {
        cut = newest + 1;
        break;
      }
      cut = newest;
      for (auto it = chunk.lower_bound({newest, std::string()}); it != chunk.end();) {
        chunk_bytes -= EventBytes(it->second);
        it = chunk.erase(it);
      }
    }
    return true;
  });
  if (s.code() == absl::StatusCode::kOutOfRange) return CancelCompacted(key);
  if (!s.ok()) {
    WatchResponse r = Response(key.first, key.second);
    r.canceled = true;
    r.cancel_reason = s.ToString();
    Remove(key);
    output_.push_back(std::move(r));
    return;
  }
  std::vector<WatchEvent> events;
  for (const auto& [at, v] : chunk) {
    if (Wants(w, v)) events.push_back(Event(w, v));
  }
  const bool complete = cut == std::numeric_limits<int64_t>::max();
  // A watcher waiting for a future revision keeps waiting for it.
  const int64_t next = complete ? std::max(w.next_revision, now + 1) : cut;
  AM_CHECK(complete ? next >= w.next_revision : next > w.next_revision,
           "a catch-up chunk must make progress");
  w.next_revision = next;
  w.synced = complete;
  Emit(key, std::move(events));
}

bool WatchHub::Sync() {
  std::vector<Key> behind;
  for (const auto& [key, w] : watchers_) {
    if (!w.synced && !streams_.at(key.first).blocked) behind.push_back(key);
  }
  for (const Key& key : behind) CatchUp(key, watchers_.at(key));
  for (const auto& [key, w] : watchers_) {
    if (!w.synced && !streams_.at(key.first).blocked) return true;
  }
  return false;
}

void WatchHub::NotifyProgress() {
  for (const auto& [key, w] : watchers_) {
    if (w.synced && w.spec.progress_notify && !streams_.at(key.first).blocked) {
      output_.push_back(Response(key.first, key.second));
    }
  }
}

}  // namespace amaters::kv
