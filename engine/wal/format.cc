#include "engine/wal/format.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/base/crc32c.h"
#include "engine/raft/configuration.h"

namespace amaters::wal {
namespace {

// Little-endian fixed-width integers. Each Put is one append (byte-wise push_back showed up in
// the simulator's profile: every WAL record is encoded on the hot path).
void StoreU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void StoreU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutU32(std::string* out, uint32_t v) {
  char b[4];
  StoreU32(b, v);
  out->append(b, sizeof(b));
}
void PutU64(std::string* out, uint64_t v) {
  char b[8];
  StoreU64(b, v);
  out->append(b, sizeof(b));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Fills in both checksums of the record that starts at `start` and runs to the end of `out`.
void FinishRecord(size_t start, std::string* out) {
  const char* base = out->data() + start;
  uint32_t payload_crc =
      Crc32cExtend(0, base + kRecordHeaderBytes, out->size() - start - kRecordHeaderBytes);
  uint32_t header_crc = Crc32cExtend(0, base + 4, 16);
  StoreU32(&(*out)[start], payload_crc);
  StoreU32(&(*out)[start + 20], header_crc);
}

void StartRecord(uint64_t seq, RecordType type, uint32_t payload_len, std::string* out) {
  char h[kRecordHeaderBytes] = {};  // checksums (bytes 0..3, 20..23) are filled by FinishRecord
  StoreU32(h + 4, payload_len);
  StoreU64(h + 8, seq);
  h[16] = static_cast<char>(type);
  out->append(h, sizeof(h));
}

}  // namespace

std::string EncodeSegmentHeader(const SegmentHeader& h) {
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, h.version);
  PutU32(&out, 0);
  PutU64(&out, h.segment_seq);
  PutU32(&out, 0);
  PutU32(&out, Crc32c(out));
  return out;
}

absl::StatusOr<SegmentHeader> DecodeSegmentHeader(absl::string_view b) {
  if (b.size() < kSegmentHeaderBytes) {
    return absl::DataLossError(absl::StrCat("segment header truncated: ", b.size(), " of ",
                                            kSegmentHeaderBytes, " bytes"));
  }
  if (std::memcmp(b.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError("not an amaters WAL segment (wrong magic)");
  }
  if (GetU32(b.data() + 28) != Crc32cExtend(0, b.data(), 28)) {
    return absl::DataLossError("segment header checksum mismatch");
  }
  SegmentHeader h;
  h.version = GetU32(b.data() + 8);
  if (h.version > kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "segment written by a newer format version ", h.version, " (this build reads up to ",
        kFormatVersion, "); upgrade amaters"));
  }
  if (h.version == 0) return absl::DataLossError("segment format version 0");
  // Flags and reserved bytes are 0 in every version this build reads. With a valid checksum
  // they were written on purpose (by a build that knows more), not torn: refuse the segment as
  // for a newer version rather than misread it. (Found by fuzz/wal_decoder.)
  const uint32_t flags = GetU32(b.data() + 12);
  const uint32_t reserved = GetU32(b.data() + 24);
  if (flags != 0 || reserved != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "segment header has flags ", flags, " and reserved ", reserved,
        " (this build knows only 0); written by a newer build? upgrade amaters"));
  }
  h.segment_seq = GetU64(b.data() + 16);
  return h;
}

void AppendEntryRecord(uint64_t seq, const raft::Entry& e, std::string* out) {
  size_t start = out->size();
  StartRecord(seq, RecordType::kEntry, static_cast<uint32_t>(17 + e.data.size()), out);
  char p[17];
  StoreU64(p, e.term);
  StoreU64(p + 8, e.index);
  p[16] = static_cast<char>(e.type);
  out->append(p, sizeof(p));
  out->append(e.data);
  FinishRecord(start, out);
}

void AppendHardStateRecord(uint64_t seq, const raft::HardState& hs, std::string* out) {
  size_t start = out->size();
  StartRecord(seq, RecordType::kHardState, 24, out);
  char p[24];
  StoreU64(p, hs.term);
  StoreU64(p + 8, hs.vote);
  StoreU64(p + 16, hs.commit);
  out->append(p, sizeof(p));
  FinishRecord(start, out);
}

void AppendSnapshotRecord(uint64_t seq, const raft::SnapshotMeta& snapshot, bool replaces_log,
                          std::string* out) {
  size_t start = out->size();
  StartRecord(seq, RecordType::kSnapshot,
              static_cast<uint32_t>(SnapshotRecordBytes(snapshot) - kRecordHeaderBytes),
              out);
  out->push_back(static_cast<char>(replaces_log ? 1 : 0));
  PutU64(out, snapshot.index);
  PutU64(out, snapshot.term);
  for (const std::vector<raft::NodeId>* ids :
       {&snapshot.voters, &snapshot.voters_outgoing, &snapshot.learners}) {
    PutU32(out, static_cast<uint32_t>(ids->size()));
    for (raft::NodeId v : *ids) PutU64(out, v);
  }
  out->push_back(static_cast<char>(snapshot.auto_leave ? 1 : 0));
  raft::AppendMemberList(snapshot.members, out);
  FinishRecord(start, out);
}

std::string EncodeEntryRecord(uint64_t seq, const raft::Entry& e) {
  std::string out;
  AppendEntryRecord(seq, e, &out);
  return out;
}

std::string EncodeHardStateRecord(uint64_t seq, const raft::HardState& hs) {
  std::string out;
  AppendHardStateRecord(seq, hs, &out);
  return out;
}

bool IsValidRecordHeader(absl::string_view b) {
  if (b.size() < kRecordHeaderBytes) return false;
  const char* p = b.data();
  return GetU32(p + 20) == Crc32cExtend(0, p + 4, 16) && GetU32(p + 4) <= kMaxRecordPayloadBytes &&
         p[17] == 0 && p[18] == 0 && p[19] == 0;
}

namespace {

// The id lists of a snapshot payload of `len` bytes (from offset 17): the voters, then, in
// version 3, the configuration tail. False if the counts do not fill the payload exactly.
bool DecodeSnapshotIds(const char* payload, uint32_t len, raft::SnapshotMeta* snap) {
  size_t at = 17;
  std::vector<raft::NodeId>* lists[] = {&snap->voters, &snap->voters_outgoing, &snap->learners};
  for (size_t k = 0; k < 3; ++k) {
    if (k == 1 && at == len) return true;  // version 2: no configuration tail
    if (len - at < 4) return false;
    const uint32_t n = GetU32(payload + at);
    at += 4;
    if (n > kMaxSnapshotVoters || (len - at) / 8 < n) return false;
    for (uint32_t i = 0; i < n; ++i, at += 8) lists[k]->push_back(GetU64(payload + at));
  }
  if (len - at < 1 || static_cast<uint8_t>(payload[at]) > 1) return false;
  snap->auto_leave = payload[at] == 1;
  at += 1;
  return raft::ParseMemberList(absl::string_view(payload, len), &at, raft::kMaxMembers,
                               &snap->members) &&
         at == len;
}

}  // namespace

DecodeResult DecodeRecord(absl::string_view b) {
  DecodeResult r;
  if (b.size() < kRecordHeaderBytes) {
    r.kind = DecodeResult::Kind::kIncomplete;
    r.error = absl::StrCat("record header truncated (", b.size(), " bytes)");
    return r;
  }
  const char* p = b.data();
  if (GetU32(p + 20) != Crc32cExtend(0, p + 4, 16)) {
    r.error = "record header checksum mismatch";
    return r;
  }
  uint32_t len = GetU32(p + 4);
  if (len > kMaxRecordPayloadBytes) {
    r.error = absl::StrCat("record length ", len, " exceeds the limit ", kMaxRecordPayloadBytes);
    return r;
  }
  if (p[17] != 0 || p[18] != 0 || p[19] != 0) {
    r.error = "record reserved bytes are not zero";
    return r;
  }
  if (b.size() < kRecordHeaderBytes + len) {
    r.kind = DecodeResult::Kind::kIncomplete;
    r.error = absl::StrCat("record payload truncated (", b.size() - kRecordHeaderBytes, " of ",
                           len, " bytes)");
    return r;
  }
  if (Crc32cExtend(0, p + kRecordHeaderBytes, len) != GetU32(p)) {
    r.kind = DecodeResult::Kind::kCorruptPayload;
    r.size = kRecordHeaderBytes + len;
    r.error = "record checksum mismatch";
    return r;
  }
  r.record.seq = GetU64(p + 8);
  const char* payload = p + kRecordHeaderBytes;
  switch (static_cast<RecordType>(static_cast<uint8_t>(p[16]))) {
    case RecordType::kEntry: {
      if (len < 17) {
        r.error = absl::StrCat("entry record payload too short (", len, " bytes)");
        return r;
      }
      uint8_t et = static_cast<uint8_t>(payload[16]);
      if (et > static_cast<uint8_t>(raft::EntryType::kConfChange)) {
        r.error = absl::StrCat("unknown entry type ", et);
        return r;
      }
      r.record.type = RecordType::kEntry;
      r.record.entry.term = GetU64(payload);
      r.record.entry.index = GetU64(payload + 8);
      r.record.entry.type = static_cast<raft::EntryType>(et);
      r.record.entry.data.assign(payload + 17, len - 17);
      break;
    }
    case RecordType::kHardState:
      if (len != 24) {
        r.error = absl::StrCat("hard state record payload is ", len, " bytes, expected 24");
        return r;
      }
      r.record.type = RecordType::kHardState;
      r.record.hard_state.term = GetU64(payload);
      r.record.hard_state.vote = GetU64(payload + 8);
      r.record.hard_state.commit = GetU64(payload + 16);
      break;
    case RecordType::kSnapshot: {
      const uint8_t kind = len >= 1 ? static_cast<uint8_t>(payload[0]) : 0;
      if (len < 21 || kind > 1 || !DecodeSnapshotIds(payload, len, &r.record.snapshot)) {
        r.error = absl::StrCat("malformed snapshot record (", len, " bytes)");
        return r;
      }
      r.record.type = RecordType::kSnapshot;
      r.record.snapshot_replaces_log = kind == 1;
      r.record.snapshot.index = GetU64(payload + 1);
      r.record.snapshot.term = GetU64(payload + 9);
      if (r.record.snapshot.index == 0 || r.record.snapshot.term == 0) {
        r.error = "snapshot record with index or term 0";
        return r;
      }
      break;
    }
    default:
      r.error = absl::StrCat("unknown record type ", static_cast<int>(static_cast<uint8_t>(p[16])));
      return r;
  }
  r.kind = DecodeResult::Kind::kOk;
  r.size = kRecordHeaderBytes + len;
  return r;
}

}  // namespace amaters::wal
