#include "engine/wal/replay.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/wal/format.h"

namespace amaters::wal {
namespace {

bool AllZero(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
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
      const DecodeResult after_header =
          DecodeRecord(absl::string_view(seg.bytes).substr(
              std::min(seg.bytes.size(), kSegmentHeaderBytes)));
      const bool entry_after_header = after_header.kind == DecodeResult::Kind::kOk &&
                                      after_header.record.type == RecordType::kEntry;
      if (last_file && seg.bytes.size() <= kSegmentHeaderBytes + kHardStateRecordBytes &&
          !entry_after_header) {
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
      } else if (rec.type == RecordType::kEntry && rec.entry.index == 0) {
        bad = "entry index 0";
      } else if (rec.type == RecordType::kEntry && rec.entry.index > snapshot_index) {
        raft::Index last = snapshot_index + out.entries.size();
        if (rec.entry.index > last + 1) {
          bad = absl::StrCat("entry index ", rec.entry.index, " leaves a gap after ", last,
                             snapshot_index > 0 || header->segment_seq > 0
                                 ? absl::StrCat(" (snapshot index ", snapshot_index, ")")
                                 : "");
        } else if (rec.entry.index > snapshot_index + 1 &&
                   out.entries[rec.entry.index - snapshot_index - 2].term > rec.entry.term) {
          bad = absl::StrCat("entry term ", rec.entry.term, " at index ", rec.entry.index,
                             " is below its predecessor's");
        }
      }
      if (!bad.empty()) {
        if (absl::Status s = stop(f, offset, bad, /*torn=*/false); !s.ok()) return s;
        stopped = true;
        break;
      }
      out.last_record_seq = rec.seq;
      if (rec.type == RecordType::kEntry) {
        info.max_entry_index = std::max(info.max_entry_index, rec.entry.index);
      } else {
        info.has_hard_state = true;
      }
      if (rec.type == RecordType::kEntry) {
        if (rec.entry.index > snapshot_index) {
          out.entries.resize(rec.entry.index - snapshot_index - 1);
          out.entries.push_back(rec.entry);
        } else {
          // Covered by the snapshot, but it still replaces every entry after it: drop the
          // entries above the snapshot that an older leader wrote before it.
          out.entries.clear();
        }
      } else {
        out.hard_state = rec.hard_state;
      }
      offset += d.size;
    }
    info.size_bytes = offset;
    out.segments.push_back(info);
    if (stopped) break;
  }
  if (out.hard_state.commit > snapshot_index + out.entries.size()) {
    // Hard state is written after the entries it covers; a commit beyond the log means
    // records were lost from the middle.
    return absl::DataLossError(absl::StrCat("hard state commit ", out.hard_state.commit,
                                            " is beyond the last entry ",
                                            snapshot_index + out.entries.size(),
                                            " in the WAL"));
  }
  return out;
}

}  // namespace amaters::wal
