// Recovery time and memory of a node with a large WAL (restart with a WAL of 1 GiB / 4M
// entries until the node serves reads). bench/recovery.sh runs the whole measurement;
// bench/RESULTS.md records it. Three subcommands:
//
//   recovery_tool prepare --dir=D [--entries=N] [--value_bytes=V] [--apply]
//       Writes the data directory of a single-node server as the server itself would have left
//       it: D/wal written by the real wal::Writer on a PosixDisk (sync_mode=always; one
//       PersistRequest per 4096 entries, batches as the writer cuts them), N entries of term 1,
//       each a kv put command (key 8 B: distinct keys in scattered order, value V B) encoded
//       with kv::EncodeCommand, then the hard state (term 1, vote 1, commit N). With --apply,
//       the same entries are also applied (batches of 512) to the server's RocksDbStateMachine
//       in D/kv, so that the store's applied index is N: the state after a clean run. Without
//       it D/kv does not exist: the server must re-apply the whole log at start.
//       Prints the probe key (the last put) and its value's first 16 bytes.
//
//   recovery_tool replay --dir=D
//       The server's start-up work on D in this process, as server/runtime/runtime.cc
//       Runtime::Open does it: RocksDbStateMachine::Open, then node::StartFromDisk (the one
//       start-up path: wal::Recover, Node::Create). Prints each phase's wall time and this
//       process's peak RSS (getrusage ru_maxrss) afterwards. Opens D read-write (Recover may
//       repair a torn tail) but appends nothing.
//
//   recovery_tool serve --dir=D --server=BIN --port=P --probe_key=K --probe_prefix=X
//       The true figure: starts BIN (amaters-server) on D as a single-node cluster (client gRPC
//       127.0.0.1:P, admin HTTP 127.0.0.1:P+1) and measures, from just before fork/exec, until
//         first_answer  the first gRPC answer of any kind on the client port, and
//         read_ok       the first linearizable Range of K (etcd KV API, serializable = false)
//                       that returns K with a value starting with X,
//       probing every 5 ms (each probe: a fresh attempt with a 200 ms deadline; the channel's
//       reconnect backoff is capped at 20 ms). Then it reads the server's VmHWM/VmRSS from
//       /proc/PID/status, stops it with SIGTERM, and reports its ru_maxrss from wait4.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/kv/command.h"
#include "engine/kv/state_machine.h"
#include "engine/node/node.h"
#include "engine/node/startup.h"
#include "engine/raft/types.h"
#include "engine/wal/disk.h"
#include "engine/wal/writer.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "server/storage/posix_disk.h"
#include "server/storage/rocksdb_state_machine.h"

namespace amaters::bench {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Peak RSS of this process in MiB (Linux: ru_maxrss is in KiB).
double PeakRssMiB() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

std::string KeyOf(uint64_t i) {
  return absl::StrFormat("%08x", static_cast<uint32_t>(i * 2654435761u));
}
std::string ValueOf(uint64_t i, size_t bytes) {
  std::string v(bytes, static_cast<char>('a' + i % 26));
  const std::string head = absl::StrFormat("%016x", i);
  v.replace(0, std::min(bytes, head.size()), head.substr(0, std::min(bytes, head.size())));
  return v;
}
std::string EntryData(uint64_t i, size_t value_bytes) {
  kv::Command c;
  c.request_id = i + 1;
  c.op = kv::PutRequest{KeyOf(i), ValueOf(i, value_bytes), false};
  return kv::EncodeCommand(c);
}

struct Flags {
  std::map<std::string, std::string> values;
  bool Has(const std::string& k) const { return values.count(k) > 0; }
  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = values.find(k);
    return it == values.end() ? def : it->second;
  }
  uint64_t GetU64(const std::string& k, uint64_t def) const {
    uint64_t v = def;
    if (Has(k) && !absl::SimpleAtoi(Get(k), &v)) {
      std::fprintf(stderr, "--%s: not a number: %s\n", k.c_str(), Get(k).c_str());
      std::exit(2);
    }
    return v;
  }
};

absl::Status Mkdir(const std::string& path) {
  if (mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// --- prepare --------------------------------------------------------------------------------

absl::Status Prepare(const Flags& flags) {
  const std::string dir = flags.Get("dir");
  const uint64_t n = flags.GetU64("entries", 4194304);
  const size_t value_bytes = flags.GetU64("value_bytes", 196);
  const bool apply = flags.Has("apply");
  if (absl::Status s = Mkdir(dir); !s.ok()) return s;
  if (absl::Status s = Mkdir(dir + "/wal"); !s.ok()) return s;

  const Clock::time_point t0 = Clock::now();
  absl::StatusOr<std::unique_ptr<storage::PosixDisk>> disk = storage::PosixDisk::Open(dir + "/wal");
  if (!disk.ok()) return disk.status();
  absl::StatusOr<wal::ReplayResult> rec =
      wal::Recover(disk->get(), wal::CorruptionPolicy::kRefuseStart);
  if (!rec.ok()) return rec.status();
  if (!rec->entries.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(dir, "/wal is not empty"));
  }
  wal::WriterOptions options;  // the server's defaults: 64 MiB segments, sync_mode always
  absl::StatusOr<wal::Writer> writer = wal::Writer::Open(options, *rec);
  if (!writer.ok()) return writer.status();
  uint64_t seq = 0, record_bytes = 0, batches = 0;
  auto flush = [&]() -> absl::Status {
    while (std::optional<wal::DiskBatch> batch = writer->NextBatch(0)) {
      const absl::Status st = wal::ExecuteBatch(*batch, disk->get());
      record_bytes += batch->record_bytes;
      ++batches;
      absl::StatusOr<std::vector<uint64_t>> acked = writer->OnBatchDone(batch->id, st);
      if (!acked.ok()) return acked.status();
    }
    return absl::OkStatus();
  };
  constexpr uint64_t kPerRequest = 4096;
  for (uint64_t first = 0; first < n; first += kPerRequest) {
    raft::PersistRequest req;
    req.seq = ++seq;
    if (first == 0) req.hard_state = raft::HardState{1, 1, 0};
    for (uint64_t i = first; i < std::min(n, first + kPerRequest); ++i) {
      req.entries.push_back(
          raft::Entry{1, i + 1, raft::EntryType::kNormal, EntryData(i, value_bytes)});
    }
    if (absl::Status s = writer->Append(req); !s.ok()) return s;
    if (absl::Status s = flush(); !s.ok()) return s;
  }
  raft::PersistRequest last;
  last.seq = ++seq;
  last.hard_state = raft::HardState{1, 1, n};
  if (absl::Status s = writer->Append(last); !s.ok()) return s;
  if (absl::Status s = flush(); !s.ok()) return s;
  const double wal_seconds = SecondsSince(t0);
  std::printf("prepare: wal: %llu entries, %llu bytes of records (%.3f GiB), %llu batches, "
              "%.1f s\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(record_bytes),
              static_cast<double>(record_bytes) / (1ull << 30),
              static_cast<unsigned long long>(batches), wal_seconds);
  std::printf("prepare: entry: key 8 B, value %zu B, command %zu B, record %zu B\n", value_bytes,
              EntryData(n - 1, value_bytes).size(),
              EntryData(n - 1, value_bytes).size() + 41);

  if (apply) {
    const Clock::time_point t1 = Clock::now();
    absl::StatusOr<std::unique_ptr<storage::RocksDbStateMachine>> sm =
        storage::RocksDbStateMachine::Open(dir + "/kv");
    if (!sm.ok()) return sm.status();
    std::vector<kv::ApplyItem> items;
    for (uint64_t i = 0; i < n;) {
      items.clear();
      for (int k = 0; k < 512 && i < n; ++k, ++i) {
        items.push_back(kv::DecodeEntry(i + 1, EntryData(i, value_bytes)));
      }
      absl::StatusOr<std::vector<kv::ApplyResult>> r = (*sm)->Apply(items);
      if (!r.ok()) return r.status();
      if (i % (1u << 20) == 0) {  // the apply rate as the store grows
        std::printf("prepare: kv: %llu applied, %.1f s\n", static_cast<unsigned long long>(i),
                    SecondsSince(t1));
        std::fflush(stdout);
      }
    }
    if (absl::Status s = (*sm)->Sync(); !s.ok()) return s;
    const uint64_t applied = (*sm)->applied_index();
    if (absl::Status s = (*sm)->Close(); !s.ok()) return s;
    std::printf("prepare: kv: applied index %llu in RocksDB, %.1f s\n",
                static_cast<unsigned long long>(applied), SecondsSince(t1));
  } else {
    std::printf("prepare: kv: none (the server re-applies the whole log at start)\n");
  }
  std::printf("probe_key=%s\nprobe_prefix=%s\n", KeyOf(n - 1).c_str(),
              ValueOf(n - 1, value_bytes).substr(0, 16).c_str());
  return absl::OkStatus();
}

// --- replay ---------------------------------------------------------------------------------

// The tool's state machine for node::StartFromDisk (it keeps no snapshots).
class StateOf : public node::DurableState {
 public:
  explicit StateOf(storage::RocksDbStateMachine* sm) : sm_(sm) {}
  raft::Index applied_index() const override { return sm_->applied_index(); }
  absl::Status RestoreSnapshot(const raft::SnapshotMeta& meta) override {
    return absl::FailedPreconditionError(
        absl::StrCat("the WAL's snapshot ", meta.index, " is newer than the state store"));
  }

 private:
  storage::RocksDbStateMachine* sm_;
};

absl::Status Replay(const Flags& flags) {
  const std::string dir = flags.Get("dir");
  std::printf("replay: peak RSS before: %.1f MiB\n", PeakRssMiB());
  const Clock::time_point t0 = Clock::now();
  absl::StatusOr<std::unique_ptr<storage::PosixDisk>> disk = storage::PosixDisk::Open(dir + "/wal");
  if (!disk.ok()) return disk.status();
  absl::StatusOr<std::unique_ptr<storage::RocksDbStateMachine>> sm =
      storage::RocksDbStateMachine::Open(dir + "/kv");
  if (!sm.ok()) return sm.status();
  std::printf("replay: RocksDbStateMachine::Open: applied index %llu, %.3f s, peak RSS %.1f MiB\n",
              static_cast<unsigned long long>((*sm)->applied_index()), SecondsSince(t0),
              PeakRssMiB());

  // The server's start-up path (node::StartFromDisk: wal::Recover, then Node::Create).
  const Clock::time_point t1 = Clock::now();
  node::NodeConfig config;
  config.raft.id = 1;
  config.raft.voters = {1};
  StateOf state(sm->get());
  absl::StatusOr<node::Started> started = node::StartFromDisk(
      config, disk->get(), wal::CorruptionPolicy::kRefuseStart, dir + "/wal", state);
  if (!started.ok()) return started.status();
  std::printf("replay: node::StartFromDisk: %zu entries in %zu segments, %.3f s, peak RSS "
              "%.1f MiB\n",
              started->entries, started->segments, SecondsSince(t1), PeakRssMiB());
  std::printf("replay: total %.3f s; peak RSS %.1f MiB\n", SecondsSince(t0), PeakRssMiB());
  return absl::OkStatus();
}

// --- serve ----------------------------------------------------------------------------------

std::string ProcStatusField(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field + ":")) {
      std::string v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "?";
}

absl::Status Serve(const Flags& flags) {
  const std::string dir = flags.Get("dir");
  const std::string server = flags.Get("server");
  const uint64_t port = flags.GetU64("port", 23790);
  const std::string key = flags.Get("probe_key");
  const std::string prefix = flags.Get("probe_prefix");
  const std::string log = flags.Get("log", dir + ".server.log");
  const double timeout_s = static_cast<double>(flags.GetU64("timeout_s", 600));
  if (server.empty() || key.empty()) {
    return absl::InvalidArgumentError("serve needs --server and --probe_key");
  }
  std::vector<std::string> args = {server,
                                   "start",
                                   absl::StrCat("--data-dir=", dir),
                                   absl::StrCat("--bind-address=127.0.0.1:", port),
                                   absl::StrCat("--metrics-address=127.0.0.1:", port + 1)};
  std::printf("serve: %s", server.c_str());
  for (size_t i = 1; i < args.size(); ++i) std::printf(" %s", args[i].c_str());
  std::printf("  (log: %s)\n", log.c_str());
  std::fflush(stdout);

  grpc::ChannelArguments ch_args;
  ch_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 10);
  ch_args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 10);
  ch_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 20);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                           grpc::InsecureChannelCredentials(), ch_args);
  auto stub = etcdserverpb::KV::NewStub(channel);

  const Clock::time_point t0 = Clock::now();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    if (f != nullptr) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    std::perror("execv");
    _exit(127);
  }

  std::optional<double> first_answer, read_ok;
  std::string last_error;
  uint64_t probes = 0;
  while (SecondsSince(t0) < timeout_s) {
    int wstatus = 0;
    if (waitpid(pid, &wstatus, WNOHANG) == pid) {
      return absl::InternalError(absl::StrCat("the server exited early (status ", wstatus,
                                              "); see ", log));
    }
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    req.set_serializable(false);
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    ctx.set_wait_for_ready(true);
    const grpc::Status st = stub->Range(&ctx, req, &resp);
    ++probes;
    const double t = SecondsSince(t0);
    // DEADLINE_EXCEEDED with wait_for_ready means nothing answered (port not yet open);
    // anything else came from the server.
    if (!first_answer && (st.ok() || st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED)) {
      first_answer = t;
    }
    if (st.ok() && resp.kvs_size() == 1 && absl::StartsWith(resp.kvs(0).value(), prefix)) {
      read_ok = t;
      break;
    }
    last_error = st.ok() ? absl::StrCat("answered with ", resp.kvs_size(), " kvs")
                         : absl::StrCat(st.error_code(), " ", st.error_message());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const std::string hwm = ProcStatusField(pid, "VmHWM");
  const std::string rss = ProcStatusField(pid, "VmRSS");
  kill(pid, SIGTERM);
  int wstatus = 0;
  struct rusage ru;
  std::memset(&ru, 0, sizeof(ru));
  wait4(pid, &wstatus, 0, &ru);
  if (!read_ok) {
    return absl::DeadlineExceededError(absl::StrCat("no successful read within ", timeout_s,
                                                    " s; last probe: ", last_error));
  }
  std::printf(
      "serve: first_answer %.3f s, read_ok %.3f s (linearizable Range of %s, %llu probes)\n",
      first_answer.value_or(-1), *read_ok, key.c_str(), static_cast<unsigned long long>(probes));
  std::printf("serve: server memory when the read answered: VmHWM %s, VmRSS %s; "
              "ru_maxrss at exit %.1f MiB; exit status %d\n",
              hwm.c_str(), rss.c_str(), static_cast<double>(ru.ru_maxrss) / 1024.0,
              WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -WTERMSIG(wstatus));
  return absl::OkStatus();
}

}  // namespace
}  // namespace amaters::bench

int main(int argc, char** argv) {
  using amaters::bench::Flags;
  if (argc < 2) {
    std::fprintf(stderr, "usage: recovery_tool prepare|replay|serve --dir=D [flags]\n"
                         "(see the comment at the top of bench/recovery_tool.cc)\n");
    return 2;
  }
  const std::string cmd = argv[1];
  Flags flags;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (!absl::StartsWith(a, "--")) {
      std::fprintf(stderr, "unexpected argument %s\n", a.c_str());
      return 2;
    }
    a = a.substr(2);
    const size_t eq = a.find('=');
    if (eq == std::string::npos) {
      flags.values[a] = "";
    } else {
      flags.values[a.substr(0, eq)] = a.substr(eq + 1);
    }
  }
  if (!flags.Has("dir")) {
    std::fprintf(stderr, "--dir is required\n");
    return 2;
  }
  absl::Status s;
  if (cmd == "prepare") {
    s = amaters::bench::Prepare(flags);
  } else if (cmd == "replay") {
    s = amaters::bench::Replay(flags);
  } else if (cmd == "serve") {
    s = amaters::bench::Serve(flags);
  } else {
    std::fprintf(stderr, "unknown command %s\n", cmd.c_str());
    return 2;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), s.ToString().c_str());
    return 1;
  }
  return 0;
}
