#include "engine/wal/replay.h"

#include <algorithm>
#include <deque>
#include <iterator>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/wal/format.h"

namespace amaters::wal {
namespace {

bool AllZero(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

// Whether a newest segment whose header is damaged holds nothing but what the writer makes
// durable when it creates a segment (a hard state copy, then a snapshot copy), the last of
// them possibly torn. Then the crash interrupted the creation and the file can go.
bool OnlyCreationRecords(const SegmentFile& seg) {
  absl::string_view rest(seg.bytes);
  size_t offset = std::min(seg.bytes.size(), kSegmentHeaderBytes);
  if (seg.bytes.size() <= kSegmentHeaderBytes + kHardStateRecordBytes) {
    const DecodeResult d = DecodeRecord(rest.substr(offset));
    return !(d.kind == DecodeResult::Kind::kOk && d.record.type == RecordType::kEntry);
  }
  for (int k = 0; k < 2 && offset < seg.bytes.size(); ++k) {
    const DecodeResult d = DecodeRecord(rest.substr(offset));
    if (d.kind != DecodeResult::Kind::kOk) break;
    if (d.record.type == RecordType::kEntry) return false;
    offset += d.size;
  }
  if (offset == seg.bytes.size()) return true;
  const DecodeResult tail = DecodeRecord(rest.substr(offset));
  return tail.kind == DecodeResult::Kind::kIncomplete || AllZero(rest.substr(offset));
}

// The log as replay rebuilds it: entries after `base`, plus the newest snapshot record.
struct ReplayLog {
  raft::Index base = 0;  // the index before entries.front()
  bool started = false;  // whether an entry or a snapshot fixed `base`
  std::deque<raft::Entry> entries;
  raft::SnapshotMeta snapshot;
  raft::Index floor = 0;  // the caller's snapshot index: it covers entries up to here too
  std::optional<raft::Index> gap_after;  // the last entry before the newest gap, if any
  raft::Index last() const { return base + entries.size(); }

  // Empty if the entry fits; otherwise why it is corruption.
  std::string AddEntry(const raft::Entry& e) {
    if (e.index == 0) return "entry index 0";
    if (!started || e.index <= base || e.index > last() + 1) {
      // The first entry (the WAL may start after a compaction), one that replaces every entry
      // from its index on, down to below what is held, or one after a gap. A gap is legal
      // only where a snapshot covers it: the segments before it were compacted, and the
      // snapshot record that allowed it may come later. Finish checks that.
      if (started && e.index > last() + 1) gap_after = last();
      started = true;
      entries.clear();
      base = e.index - 1;
    }
    entries.resize(e.index - base - 1);
    const raft::Term prev = entries.empty()
                                ? (snapshot.index == base ? snapshot.term : 0)
                                : entries.back().term;
    if (e.term < prev) {
      return absl::StrCat("entry term ", e.term, " at index ", e.index,
                          " is below its predecessor's");
    }
    entries.push_back(e);
    return "";
  }

  std::string AddSnapshot(const raft::SnapshotMeta& snap, bool replaces_log) {
    if (snap.index < snapshot.index) {
      return absl::StrCat("snapshot record at ", snap.index, " follows one at ", snapshot.index);
    }
    if (started && !replaces_log && snap.index > base && snap.index <= last() &&
        entries[snap.index - base - 1].term != snap.term) {
      return absl::StrCat("snapshot record ", snap.term, "/", snap.index,
                          " disagrees with the entry's term ",
                          entries[snap.index - base - 1].term);
    }
    snapshot = snap;
    DropThrough(snap.index, replaces_log);
    return "";
  }

  // Drops what a snapshot at `index` covers (everything, if it replaces the log).
  void DropThrough(raft::Index index, bool everything) {
    if (everything || !started || index >= last()) {
      entries.clear();
    } else if (index > base) {
      entries.erase(entries.begin(), entries.begin() + static_cast<long>(index - base));
    } else {
      return;  // covers nothing held
    }
    base = index;
    started = true;
  }
};

absl::StatusOr<ReplayResult> Finish(ReplayLog log, raft::Index snapshot_index, ReplayResult out) {
  // Entries the newest snapshot (or the caller's snapshot index) covers are dropped; the rest
  // must start right after it.
  const raft::Index floor = std::max(snapshot_index, log.snapshot.index);
  if (log.started && !log.entries.empty() && log.base > floor) {
    const std::string where =
        log.gap_after ? absl::StrCat("entry index ", log.base + 1, " leaves a gap after ",
                                     *log.gap_after)
                      : absl::StrCat("the WAL's entries start at index ", log.base + 1);
    return absl::DataLossError(absl::StrCat(
        where, " but ",
        floor > 0 ? absl::StrCat("the newest snapshot covers only up to ", floor)
                  : std::string("there is no snapshot"),
        ": entries are missing; refusing to start, no file was changed"));
  }
  if (floor > log.base) log.DropThrough(floor, /*everything=*/false);
  const raft::Index last = std::max(floor, log.last());
  if (out.hard_state.commit > last) {
    // Hard state is written after the entries it covers; a commit beyond the log means
    // records were lost from the middle.
    return absl::DataLossError(absl::StrCat("hard state commit ", out.hard_state.commit,
                                            " is beyond the last entry ", last, " in the WAL"));
  }
  out.snapshot = log.snapshot;
  out.entries.assign(std::make_move_iterator(log.entries.begin()),
                     std::make_move_iterator(log.entries.end()));
  return out;
}

}  // namespace

absl::StatusOr<ReplayResult> Replay(const std::vector<SegmentFile>& segments_in,
                                    CorruptionPolicy policy, raft::Index snapshot_index) {
  std::vector<const SegmentFile*> segments;
  for (const SegmentFile& s : segments_in) segments.push_back(&s);
  std::sort(segments.begin(), segments.end(),
            [](const SegmentFile* a, const SegmentFile* b) { return a->name < b->name; });

  ReplayResult out;
  // Where decoding stopped, if it stopped early: the file index and offset, and why.
  auto stop = [&](size_t file, uint64_t offset, const std::string& why,
                  bool torn) -> absl::Status {
    const std::string& name = segments[file]->name;
    if (torn) {
      out.torn_tail = true;
      out.notes.push_back(absl::StrCat("torn tail in ", name, " at offset ", offset, " (",
                                       segments[file]->bytes.size() - offset,
                                       " bytes dropped): ", why));
    } else {
      if (policy == CorruptionPolicy::kRefuseStart) {
        return absl::DataLossError(absl::StrCat(
            "WAL corruption in ", name, " at offset ", offset, ": ", why,
            "; refusing to start (corruption_policy = \"refuse_start\"). See the WAL corruption "
            "runbook; no file was changed"));
      }
      out.corruption_truncated = true;
      out.notes.push_back(absl::StrCat("WAL corruption in ", name, " at offset ", offset, ": ",
                                       why, "; truncated to the last good record "
                                       "(corruption_policy = \"truncate_to_last_good\")"));
    }
    out.truncate_file = name;
    out.truncate_to_bytes = offset;
    for (size_t k = file + 1; k < segments.size(); ++k) {
      out.delete_files.push_back(segments[k]->name);
      out.notes.push_back(absl::StrCat("dropping later segment ", segments[k]->name));
    }
    return absl::OkStatus();
  };

  ReplayLog log;
  log.floor = snapshot_index;
  uint64_t expected_segment_seq = 0;
  for (size_t f = 0; f < segments.size(); ++f) {
    const SegmentFile& seg = *segments[f];
    const bool last_file = f + 1 == segments.size();
    absl::StatusOr<SegmentHeader> header = DecodeSegmentHeader(seg.bytes);
    if (!header.ok()) {
      if (header.status().code() == absl::StatusCode::kFailedPrecondition) {
        return absl::FailedPreconditionError(
            absl::StrCat(seg.name, ": ", header.status().message()));
      }
      // A crash while creating the newest segment can leave its header incomplete or torn.
      // The writer makes the header and a hard state copy durable before it writes any other
      // record, so this is only a torn creation if the file holds nothing beyond those.
      // A complete entry record after the header proves the header was durable (the writer
      // syncs it first): then the damage is corruption, not a torn creation.
      if (last_file && OnlyCreationRecords(seg)) {
        out.torn_tail = true;
        out.notes.push_back(absl::StrCat("incomplete header of the newest segment ", seg.name,
                                         " (", seg.bytes.size(), " bytes); it is removed"));
        out.delete_files.push_back(seg.name);
        break;
      }
      return absl::DataLossError(absl::StrCat(seg.name, ": ", header.status().message(),
                                              "; refusing to start, no file was changed"));
    }
    if (f == 0) expected_segment_seq = header->segment_seq;
    if (header->segment_seq != expected_segment_seq) {
      return absl::DataLossError(absl::StrCat(seg.name, ": segment sequence ",
                                              header->segment_seq, ", expected ",
                                              expected_segment_seq, " (a segment is missing)"));
    }
    ++expected_segment_seq;

    absl::string_view rest(seg.bytes);
    uint64_t offset = kSegmentHeaderBytes;
    bool stopped = false;
    SegmentInfo info{seg.name, header->segment_seq, 0, 0};
    while (offset < seg.bytes.size()) {
      absl::string_view at = rest.substr(offset);
      DecodeResult d = DecodeRecord(at);
      if (d.kind != DecodeResult::Kind::kOk) {
        // Torn tail: only in the newest segment, and only if no valid record header follows
        // the bad spot (after the bad record, if its checksummed header gives its size). A
        // crash tears only the end of what was being written: incomplete records, zero fill,
        // or garbage. Anything valid after the damage means it is not the end: corruption.
        // Damage confined to the very last record cannot be told from a torn write.
        bool zero_fill = AllZero(at);
        // An incomplete record reaches the end of the file by definition (a short header, or
        // a valid header whose payload is cut off): nothing follows it, and its payload —
        // client data, which may contain anything — is not scanned.
        const size_t scan_from = d.kind == DecodeResult::Kind::kCorruptPayload ? d.size : 1;
        bool valid_after = false;
        for (size_t k = scan_from; d.kind != DecodeResult::Kind::kIncomplete &&
                                   k + kRecordHeaderBytes <= at.size() && !valid_after;
             ++k) {
          valid_after = IsValidRecordHeader(at.substr(k));
        }
        bool torn = last_file && !valid_after;
        if (absl::Status s = stop(f, offset, zero_fill ? "zero-filled tail" : d.error, torn);
            !s.ok()) {
          return s;
        }
        stopped = true;
        break;
      }
      const Record& rec = d.record;
      std::string bad;
      if (out.last_record_seq != 0 && rec.seq != out.last_record_seq + 1) {
        bad = absl::StrCat("record sequence ", rec.seq, " follows ", out.last_record_seq);
      } else if (rec.type == RecordType::kEntry) {
        bad = log.AddEntry(rec.entry);
      } else if (rec.type == RecordType::kSnapshot) {
        bad = log.AddSnapshot(rec.snapshot, rec.snapshot_replaces_log);
      }
      if (!bad.empty()) {
        if (absl::Status s = stop(f, offset, bad, /*torn=*/false); !s.ok()) return s;
        stopped = true;
        break;
      }
      out.last_record_seq = rec.seq;
      if (rec.type == RecordType::kEntry) {
        info.max_entry_index = std::max(info.max_entry_index, rec.entry.index);
      } else if (rec.type == RecordType::kHardState) {
        info.has_hard_state = true;
        out.hard_state = rec.hard_state;
      } else {
        info.snapshot_index = rec.snapshot.index;
      }
      offset += d.size;
    }
    info.size_bytes = offset;
    out.segments.push_back(info);
    if (stopped) break;
  }
  return Finish(std::move(log), snapshot_index, std::move(out));
}

}  // namespace amaters::wal
