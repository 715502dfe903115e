// Encode/decode of what a replica writes for an AppendEntries (docs/design.md §4.9: figures are
// measured; bench/RESULTS.md quotes real runs).
//
//   BM_PeerEncode/entries:N   raft::Message (kApp, N entries of 256 data bytes) -> peer wire
//                             bytes: server::ToProto (server/transport/codec.h) into a reused
//                             peerpb::Message, then SerializeToString (what PeerSender sends).
//   BM_PeerDecode/entries:N   wire bytes -> raft::Message: ParseFromString into a reused
//                             peerpb::Message, then server::FromProto (what the peer service
//                             does before Node::Receive).
//   BM_WalEncode/entries:N    the N entries -> N WAL records (wal::AppendEntryRecord into one
//                             reused buffer, as the WAL writer builds a batch).
//   BM_WalDecode/entries:N    the N records -> N entries (wal::DecodeRecord, one after another,
//                             as replay does; CRC-32C of header and payload checked).
// N = 1 and 64. One iteration = one message (N entries). bytes_per_second counts the encoded
// bytes (the wire message or the records), items_per_second the entries.
// After the loop each benchmark checks that the round trip gives back the original message /
// entries (SkipWithError otherwise); the smoke test runs every benchmark with a tiny budget.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "engine/raft/types.h"
#include "engine/wal/format.h"
#include "proto/peer.pb.h"
#include "server/transport/codec.h"

namespace amaters::bench {
namespace {

constexpr size_t kDataBytes = 256;

raft::Message MakeAppend(int entries) {
  raft::Message m;
  m.type = raft::MessageType::kApp;
  m.from = 1;
  m.to = 2;
  m.term = 7;
  m.log_term = 7;
  m.index = 1000;
  m.commit = 990;
  for (int i = 0; i < entries; ++i) {
    raft::Entry e;
    e.term = 7;
    e.index = 1001 + static_cast<raft::Index>(i);
    e.type = raft::EntryType::kNormal;
    e.data.assign(kDataBytes, static_cast<char>('a' + i % 26));
    m.entries.push_back(std::move(e));
  }
  return m;
}

[[maybe_unused]] bool SameMessage(const raft::Message& a, const raft::Message& b) {
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.log_term == b.log_term && a.index == b.index && a.entries == b.entries &&
         a.commit == b.commit && a.reject == b.reject && a.reject_hint == b.reject_hint &&
         a.transfer == b.transfer && a.read_round == b.read_round && a.probe == b.probe &&
         a.context == b.context;
}

void BM_PeerEncode(benchmark::State& state) {
  const raft::Message m = MakeAppend(static_cast<int>(state.range(0)));
  peerpb::Message pb;
  std::string wire;
  for (auto _ : state) {
    pb.Clear();
    server::ToProto(m, &pb);
    pb.SerializeToString(&wire);
    benchmark::DoNotOptimize(wire.data());
  }
  peerpb::Message back;
  absl::StatusOr<raft::Message> decoded = absl::InternalError("wire bytes do not parse");
  if (back.ParseFromString(wire)) decoded = server::FromProto(back);
  if (!decoded.ok() || !SameMessage(*decoded, m)) {
    state.SkipWithError("the encoded message does not decode to the original");
    return;
  }
  state.counters["wire_bytes"] = static_cast<double>(wire.size());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(wire.size()));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_PeerDecode(benchmark::State& state) {
  const raft::Message m = MakeAppend(static_cast<int>(state.range(0)));
  std::string wire;
  {
    peerpb::Message pb;
    server::ToProto(m, &pb);
    pb.SerializeToString(&wire);
  }
  peerpb::Message pb;
  absl::StatusOr<raft::Message> decoded = absl::InternalError("not run");
  for (auto _ : state) {
    if (!pb.ParseFromString(wire)) {
      state.SkipWithError("ParseFromString failed");
      return;
    }
    decoded = server::FromProto(pb);
    benchmark::DoNotOptimize(decoded);
  }
  if (!decoded.ok() || !SameMessage(*decoded, m)) {
    state.SkipWithError("the decoded message differs from the original");
    return;
  }
  state.counters["wire_bytes"] = static_cast<double>(wire.size());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(wire.size()));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}


void BM_WalEncode(benchmark::State& state) {
  const raft::Message m = MakeAppend(static_cast<int>(state.range(0)));
  std::string buf;
  uint64_t seq = 1;
  for (auto _ : state) {
    buf.clear();
    for (const raft::Entry& e : m.entries) wal::AppendEntryRecord(seq++, e, &buf);
    benchmark::DoNotOptimize(buf.data());
  }
  // The last buffer decodes back to the entries.
  size_t off = 0;
  for (const raft::Entry& e : m.entries) {
    wal::DecodeResult r = wal::DecodeRecord(absl::string_view(buf).substr(off));
    if (r.kind != wal::DecodeResult::Kind::kOk || !(r.record.entry == e)) {
      state.SkipWithError("an encoded record does not decode to its entry");
      return;
    }
    off += r.size;
  }
  if (off != buf.size()) {
    state.SkipWithError("bytes left over after the records");
    return;
  }
  state.counters["record_bytes"] = static_cast<double>(buf.size());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(buf.size()));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_WalDecode(benchmark::State& state) {
  const raft::Message m = MakeAppend(static_cast<int>(state.range(0)));
  std::string buf;
  for (size_t i = 0; i < m.entries.size(); ++i) wal::AppendEntryRecord(i + 1, m.entries[i], &buf);
  std::vector<raft::Entry> out;
  out.reserve(m.entries.size());
  bool ok = true;
  for (auto _ : state) {
    out.clear();
    absl::string_view rest(buf);
    while (!rest.empty()) {
      wal::DecodeResult r = wal::DecodeRecord(rest);
      if (r.kind != wal::DecodeResult::Kind::kOk) {
        ok = false;
        break;
      }
      out.push_back(std::move(r.record.entry));
      rest.remove_prefix(r.size);
    }
    benchmark::DoNotOptimize(out.data());
  }
  if (!ok || out != m.entries) {
    state.SkipWithError("the records do not decode to the original entries");
    return;
  }
  state.counters["record_bytes"] = static_cast<double>(buf.size());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(buf.size()));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_PeerEncode)->ArgName("entries")->Arg(1)->Arg(64);
BENCHMARK(BM_PeerDecode)->ArgName("entries")->Arg(1)->Arg(64);
BENCHMARK(BM_WalEncode)->ArgName("entries")->Arg(1)->Arg(64);
BENCHMARK(BM_WalDecode)->ArgName("entries")->Arg(1)->Arg(64);

}  // namespace
}  // namespace amaters::bench
