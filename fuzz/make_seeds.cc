// Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the real WAL
// writer, codec and protobuf encoders, so that every seed is an input the code really
// produces or accepts:
//   ./bazelw run //fuzz:make_seeds -- $PWD/fuzz/corpus
// Existing files of the same name are overwritten; others (found by fuzzing) are left alone.
// docs/examples/amaters.toml is copied into corpus/config_loader by fuzz/run.sh --seeds.
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/kv/command.h"
#include "engine/raft/raft.h"
#include "engine/raft/types.h"
#include "engine/wal/disk.h"
#include "engine/wal/replay.h"
#include "engine/wal/sim_disk.h"
#include "engine/wal/writer.h"
#include "fuzz/fuzz_input.h"
#include "proto/etcd/rpc.pb.h"
#include "proto/peer.pb.h"
#include "server/config/config.h"
#include "server/transport/codec.h"

namespace amaters::fuzz {
namespace {

std::string g_root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = absl::StrCat(g_root, "/", target);
  mkdir(dir.c_str(), 0755);
  const std::string path = absl::StrCat(dir, "/", name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out.good()) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

// ---- wal_decoder ----------------------------------------------------------------------------

raft::Entry E(raft::Term term, raft::Index index, std::string data) {
  raft::Entry e;
  e.term = term;
  e.index = index;
  e.data = std::move(data);
  return e;
}

// Runs the real writer over `requests` on an empty SimDisk; returns the segment files
// concatenated in name order.
std::string WriterOutput(const std::vector<raft::PersistRequest>& requests,
                         uint64_t segment_size_bytes) {
  wal::SimDisk disk;
  absl::StatusOr<wal::ReplayResult> rec = wal::Recover(&disk, wal::CorruptionPolicy::kRefuseStart);
  wal::WriterOptions options;
  options.segment_size_bytes = segment_size_bytes;
  if (!rec.ok()) std::abort();
  absl::StatusOr<wal::Writer> w = wal::Writer::Open(options, *rec);
  if (!w.ok()) std::abort();
  for (const raft::PersistRequest& r : requests) {
    if (!w->Append(r).ok()) std::abort();
    while (std::optional<wal::DiskBatch> b = w->NextBatch(0)) {
      absl::Status s = wal::ExecuteBatch(*b, &disk);
      if (!s.ok() || !w->OnBatchDone(b->id, s).ok()) std::abort();
    }
  }
  absl::StatusOr<std::vector<std::string>> names = disk.List();
  if (!names.ok()) std::abort();
  std::string out;
  for (const std::string& name : *names) {
    absl::StatusOr<std::string> bytes = disk.Read(name);
    if (!bytes.ok()) std::abort();
    out += *bytes;
  }
  return out;
}

void WalSeeds() {
  std::vector<raft::PersistRequest> simple;
  uint64_t seq = 1;
  for (raft::Index i = 1; i <= 6; ++i) {
    raft::PersistRequest r;
    r.seq = seq++;
    r.entries.push_back(E(1, i, absl::StrCat("value-", i)));
    r.hard_state = raft::HardState{1, 1, i - 1};
    simple.push_back(r);
  }
  const std::string one = WriterOutput(simple, 64 << 10);
  Write("wal_decoder", "one_segment", std::string(1, '\0') + one);
  Write("wal_decoder", "one_segment_truncate_policy", std::string(1, '\1') + one);
  // Torn tail: the last record cut in half.
  Write("wal_decoder", "torn_tail", std::string(1, '\0') + one.substr(0, one.size() - 20));
  // A flipped bit in the middle (corruption).
  std::string flipped = one;
  flipped[flipped.size() / 2] ^= 0x10;
  Write("wal_decoder", "corrupt_middle", std::string(1, '\1') + flipped);

  // Several segments, an overwritten suffix (a new leader replaced entries 4..), a noop.
  std::vector<raft::PersistRequest> multi = simple;
  raft::PersistRequest over;
  over.seq = seq++;
  over.entries.push_back(E(2, 4, "replaced-4"));
  raft::Entry noop = E(2, 5, "");
  noop.type = raft::EntryType::kNoop;
  over.entries.push_back(noop);
  over.hard_state = raft::HardState{2, 2, 3};
  multi.push_back(over);
  for (raft::Index i = 6; i <= 12; ++i) {
    raft::PersistRequest r;
    r.seq = seq++;
    r.entries.push_back(E(2, i, std::string(1500, static_cast<char>('a' + i))));
    r.hard_state = raft::HardState{2, 2, i - 2};
    multi.push_back(r);
  }
  Write("wal_decoder", "multi_segment", std::string(1, '\0') + WriterOutput(multi, 4096));
  // Snapshot index 2 (control bits 1-3).
  Write("wal_decoder", "multi_segment_snapshot2", std::string(1, '\4') + WriterOutput(multi, 4096));
  Write("wal_decoder", "empty_wal", std::string(1, '\0'));

  // Snapshot records (format version 2): one taken locally at 8, a roll-over copying it into
  // the next segment, then one installed from a leader at 20 that replaces the log.
  std::vector<raft::PersistRequest> snap = multi;
  raft::PersistRequest local;
  local.seq = seq++;
  local.snapshot = raft::SnapshotMeta{8, 2, {1, 2, 3}};
  snap.push_back(local);
  for (raft::Index i = 13; i <= 16; ++i) {
    raft::PersistRequest r;
    r.seq = seq++;
    r.entries.push_back(E(2, i, std::string(1500, static_cast<char>('a' + i))));
    r.hard_state = raft::HardState{2, 2, i - 2};
    snap.push_back(r);
  }
  Write("wal_decoder", "snapshot_record", std::string(1, '\0') + WriterOutput(snap, 4096));
  raft::PersistRequest installed;
  installed.seq = seq++;
  installed.snapshot = raft::SnapshotMeta{20, 3, {1, 2, 3}};
  installed.snapshot_replaces_log = true;
  installed.hard_state = raft::HardState{3, 0, 20};
  installed.entries.push_back(E(3, 21, "after-install"));
  snap.push_back(installed);
  Write("wal_decoder", "snapshot_installed", std::string(1, '\0') + WriterOutput(snap, 4096));

  // Format version 3: a configuration-change entry, then a snapshot in a joint configuration
  // with a learner.
  raft::PersistRequest change;
  change.seq = seq++;
  raft::Entry cc = E(3, 22, raft::EncodeConfChange({{{raft::ConfChangeStep::Type::kAddVoter, 4},
                                                      {raft::ConfChangeStep::Type::kRemove, 1}},
                                                     {{4, "n4", {"http://10.0.0.4:2380"},
                                                       {"http://10.0.0.4:2379"}}},
                                                     std::nullopt}));
  cc.type = raft::EntryType::kConfChange;
  change.entries.push_back(cc);
  snap.push_back(change);
  raft::PersistRequest joint;
  joint.seq = seq++;
  joint.snapshot = raft::SnapshotMeta{22, 3, {2, 3, 4}};
  joint.snapshot->voters_outgoing = {1, 2, 3};
  joint.snapshot->learners = {5};
  joint.snapshot->auto_leave = true;
  joint.snapshot->members = {{4, "n4", {"http://10.0.0.4:2380"}, {"http://10.0.0.4:2379"}}};
  snap.push_back(joint);
  Write("wal_decoder", "snapshot_configuration", std::string(1, '\0') + WriterOutput(snap, 4096));
}

// ---- raft_step ------------------------------------------------------------------------------

// Events as raft_step_fuzz.cc reads them (kind, a, b); a small LCG makes varied schedules.
std::string RaftSchedule(uint8_t options, uint8_t seed, uint64_t lcg, int events) {
  std::string out;
  out.push_back(static_cast<char>(options));
  out.push_back(static_cast<char>(seed));
  // An election first: campaign node 1, deliver everything, so that proposals commit.
  auto ev = [&](int k, int a, int b) {
    out.push_back(static_cast<char>(k));
    out.push_back(static_cast<char>(a));
    out.push_back(static_cast<char>(b));
  };
  ev(98, 0, 0);
  for (int i = 0; i < 12; ++i) ev(30, 0, 0);
  for (int i = 0; i < events; ++i) {
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    const uint64_t r = lcg >> 33;
    ev(static_cast<int>(r % 100), static_cast<int>((r >> 8) & 0xff),
       static_cast<int>((r >> 16) & 0xff));
  }
  return out;
}

void RaftSeeds() {
  Write("raft_step", "elect_only", RaftSchedule(3, 1, 0, 0));
  Write("raft_step", "prevote_checkquorum", RaftSchedule(3, 7, 11, 300));
  Write("raft_step", "no_prevote", RaftSchedule(0, 3, 12, 300));
  Write("raft_step", "lease_reads", RaftSchedule(7, 5, 13, 300));
  Write("raft_step", "five_nodes", RaftSchedule(11, 9, 14, 400));
}

// ---- config_loader --------------------------------------------------------------------------

void ConfigSeeds() {
  Write("config_loader", "generated_default.toml", server::GenerateDefaultConfig());
  Write("config_loader", "three_node.toml",
        "[server]\nbind_address = \"127.0.0.1:7878\"\ndata_dir = \"./data/n1\"\n"
        "[cluster]\nnode_id = 1\npeers = [\"1:127.0.0.1:7879\", \"2:127.0.0.1:7889\", "
        "\"3:[::1]:7899\"]\nelection_timeout_ms = 600\n"
        "[storage.wal]\nsegment_size_mb = 16\nsync_mode = \"interval\"\nsync_interval_ms = 50\n"
        "[metrics]\nbind_address = \"0.0.0.0:9091\"\n[logging]\nlevel = \"debug\"\n"
        "format = \"json\"\n");
  Write("config_loader", "tls.toml",
        "[network]\ntls_enabled = true\ntls_cert = \"server.crt\"\ntls_key = \"server.key\"\n"
        "tls_ca = \"ca.crt\"\nrequire_client_cert = true\n[alerts]\n"
        "webhook_url = \"https://hooks.example.com:8443/alert\"\n");
  Write("config_loader", "errors.toml",
        "[server]\nbind_adress = \"x\"\n[storage.wal]\nsync_mode = \"sometimes\"\n");
  std::string with_env = "[cluster]\nnode_id = 2\n";
  with_env.push_back('\0');
  with_env += "AMATERS_CLUSTER_PEERS=1:h1:1,2:h2:2";
  with_env.push_back('\0');
  with_env += "server.max_key_bytes=100";
  with_env.push_back('\0');
  with_env += "storage.wal.sync_mode=none";
  Write("config_loader", "env_and_overrides", with_env);
}

// ---- etcd_handler / peer_request ------------------------------------------------------------

std::string Rec(int kind, const google::protobuf::Message& m) {
  std::string out(1, static_cast<char>(kind));
  AppendRecord(m.SerializeAsString(), &out);
  return out;
}

void EtcdSeeds() {
  etcdserverpb::PutRequest put;
  put.set_key("foo");
  put.set_value("bar");
  put.set_prev_kv(true);
  etcdserverpb::PutRequest put2;
  put2.set_key("fop");
  put2.set_value("baz");
  etcdserverpb::RangeRequest range;
  range.set_key("f");
  range.set_range_end("g");
  range.set_limit(1);
  range.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  range.set_sort_target(etcdserverpb::RangeRequest::VALUE);
  etcdserverpb::RangeRequest get;
  get.set_key("foo");
  get.set_serializable(true);
  etcdserverpb::DeleteRangeRequest del;
  del.set_key("f");
  del.set_range_end(std::string(1, '\0'));
  del.set_prev_kv(true);
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("foo");
  cmp->set_target(etcdserverpb::Compare::VALUE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_value("bar");
  *txn.add_success()->mutable_request_put() = put2;
  *txn.add_success()->mutable_request_range() = range;
  *txn.add_failure()->mutable_request_delete_range() = del;
  peerpb::ForwardRequest fwd;
  fwd.set_method(peerpb::ForwardRequest::PUT);
  fwd.set_request(put.SerializeAsString());

  const std::string base = std::string(1, '\0');
  Write("etcd_handler", "put_get", base + Rec(0, put) + Rec(3, get));
  Write("etcd_handler", "put_range_sorted", base + Rec(0, put) + Rec(0, put2) + Rec(3, range));
  Write("etcd_handler", "txn", base + Rec(0, put) + Rec(2, txn) + Rec(3, range));
  Write("etcd_handler", "delete", base + Rec(0, put) + Rec(0, put2) + Rec(1, del) + Rec(3, get));
  Write("etcd_handler", "forward", base + Rec(4, fwd) + Rec(3, get));
  Write("etcd_handler", "small_limits", std::string(1, '\1') + Rec(0, put) + Rec(2, txn));
}

peerpb::Message Pb(const raft::Message& m) {
  peerpb::Message pb;
  server::ToProto(m, &pb);
  return pb;
}

void PeerSeeds() {
  raft::Message vote;
  vote.type = raft::MessageType::kVote;
  vote.from = 2;
  vote.to = 1;
  vote.term = 2;
  raft::Message app;
  app.type = raft::MessageType::kApp;
  app.from = 2;
  app.to = 1;
  app.term = 2;
  app.commit = 2;
  for (raft::Index i = 1; i <= 3; ++i) app.entries.push_back(E(2, i, absl::StrCat("e", i)));
  raft::Message hb;
  hb.type = raft::MessageType::kHeartbeat;
  hb.from = 2;
  hb.to = 1;
  hb.term = 2;
  hb.commit = 3;
  hb.read_round = 1;
  raft::Message ri;
  ri.type = raft::MessageType::kReadIndex;
  ri.from = 3;
  ri.to = 1;
  ri.term = 1;
  ri.context = "read-1";
  raft::Message resp;
  resp.type = raft::MessageType::kAppResp;
  resp.from = 3;
  resp.to = 1;
  resp.term = 1;
  resp.index = 4;
  peerpb::Batch batch;
  batch.set_from(2);
  *batch.add_messages() = Pb(vote);
  *batch.add_messages() = Pb(app);
  *batch.add_messages() = Pb(hb);
  std::string tick;
  AppendRecord("\x03", &tick);
  Write("peer_request", "follower_batch", std::string(1, '\0') + Rec(0, batch) + "\x03" + tick);
  Write("peer_request", "follower_restart",
        std::string(1, '\1') + Rec(0, batch) + std::string(1, '\2') + std::string(2, '\0') +
            Rec(1, Pb(hb)));
  Write("peer_request", "leader_reads",
        std::string(1, '\3') + Rec(1, Pb(ri)) + Rec(1, Pb(resp)) + "\x03" + tick);
  kv::Command c;
  c.op = kv::PutRequest{"k", "v", false};
  std::string prop(1, '\3');
  prop.push_back('\4');
  AppendRecord(kv::EncodeCommand(c), &prop);
  prop += Rec(1, Pb(resp));
  Write("peer_request", "leader_propose", prop);
  etcdserverpb::RangeRequest get;
  get.set_key("k");
  peerpb::ForwardRequest fwd;
  fwd.set_method(peerpb::ForwardRequest::RANGE);
  fwd.set_request(get.SerializeAsString());
  Write("peer_request", "forward", std::string(1, '\0') + Rec(5, fwd));
}

// ---- sim ------------------------------------------------------------------------------------

void SimSeeds() {
  auto seed = [](uint16_t s, uint8_t options, std::vector<std::vector<int>> events) {
    std::string out;
    out.push_back(static_cast<char>(s & 0xff));
    out.push_back(static_cast<char>(s >> 8));
    out.push_back(static_cast<char>(options));
    for (const auto& e : events) {
      for (int b : e) out.push_back(static_cast<char>(b));
    }
    return out;
  };
  Write("sim", "quiet", seed(1, 0, {}));
  Write("sim", "random_faults", seed(2, 1, {}));
  // Partition {1} | {2,3}, wait, heal; crash 2, restart it.
  Write(
      "sim", "partition_heal",
      seed(
          3, 2,
          {{0, 15, 0b1100}, {13, 15, 0}, {3, 10, 0}, {4, 1 + 15, 0}, {13, 15, 0}, {5, 1 + 15, 0}}));
  Write("sim", "crash_leader_paths",
        seed(4, 4,
             {{4, 0, 0},
              {13, 15, 0},
              {4, 1, 0},
              {13, 15, 0},
              {5, 0, 0},
              {5, 1, 0},
              {12, 2 + 3, 0},
              {11, 2, 0}}));
  Write("sim", "disk_faults",
        seed(5, 2,
             {{8, 0, 0}, {9, 1, 0}, {13, 15, 0}, {10, 2, 0}, {13, 15, 0}, {9, 1, 0}, {8, 0, 0}}));
  Write("sim", "clogs_pauses",
        seed(6, 6, {{2, 0, 1}, {1, 1, 2}, {6, 2, 0}, {13, 15, 0}, {7, 2, 0}, {3, 0, 0}}));
}

}  // namespace
}  // namespace amaters::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
    return 2;
  }
  amaters::fuzz::g_root = argv[1];
  mkdir(argv[1], 0755);
  amaters::fuzz::WalSeeds();
  amaters::fuzz::RaftSeeds();
  amaters::fuzz::ConfigSeeds();
  amaters::fuzz::EtcdSeeds();
  amaters::fuzz::PeerSeeds();
  amaters::fuzz::SimSeeds();
  return 0;
}
