#include "sim/chaos/workload.h"

#include <chrono>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "sim/chaos/real_cluster.h"

namespace amaters::sim::chaos {

namespace {

std::unique_ptr<etcdserverpb::KV::Stub> KvStub(const std::string& endpoint) {
  return etcdserverpb::KV::NewStub(grpc::CreateCustomChannel(
      endpoint, grpc::InsecureChannelCredentials(), ClientChannelArguments()));
}

std::string StatusText(const grpc::Status& s) {
  return absl::StrCat(s.error_code(), ": ", s.error_message());
}

}  // namespace

Workload::Workload(WorkloadOptions options)
    : options_(std::move(options)), start_(absl::Now()) {
  AM_CHECK(!options_.endpoints.empty());
  AM_CHECK(options_.clients >= 1 && options_.keys >= 1 && options_.ops_per_node >= 1);
  next_seq_.assign(static_cast<size_t>(options_.clients), 0);
  history_.reserve(std::min<size_t>(options_.max_ops, 1 << 16));
}

Workload::~Workload() { Stop(); }

uint64_t Workload::NowNs() const {
  return static_cast<uint64_t>(absl::ToInt64Nanoseconds(absl::Now() - start_));
}

std::vector<std::string> Workload::Keys() const {
  std::vector<std::string> keys;
  for (int k = 0; k < options_.keys; ++k) keys.push_back(absl::StrCat("k", k));
  return keys;
}

bool Workload::capped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return history_.size() >= options_.max_ops;
}

void Workload::Start() {
  if (running()) return;
  stop_ = false;
  for (int c = 0; c < options_.clients; ++c) threads_.emplace_back([this, c] { ClientMain(c); });
}

void Workload::Stop() {
  stop_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

std::vector<ClientOp> Workload::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return history_;
}

Tally Workload::CurrentTally() const {
  std::lock_guard<std::mutex> lock(mu_);
  return TallyOf(history_);
}

std::optional<size_t> Workload::Invoke(ClientOp op, bool bounded) {
  std::lock_guard<std::mutex> lock(mu_);
  if (bounded && history_.size() >= options_.max_ops) return std::nullopt;
  op.invoke_ns = NowNs();
  history_.push_back(std::move(op));
  return history_.size() - 1;
}

void Workload::Complete(size_t index, Outcome outcome, std::optional<std::string> read,
                        std::string error) {
  AM_CHECK(outcome != Outcome::kPending);
  std::lock_guard<std::mutex> lock(mu_);
  AM_CHECK_LT(index, history_.size());
  ClientOp& op = history_[index];
  AM_CHECK(op.outcome == Outcome::kPending, "operation ", index, " completed twice");
  op.complete_ns = std::max(NowNs(), op.invoke_ns);
  op.outcome = outcome;
  op.read = std::move(read);
  op.error = std::move(error);
}

void Workload::ClientMain(int client) {
  std::mt19937_64 rng(options_.seed * 1000003 + static_cast<uint64_t>(client) +
                      next_seq_[static_cast<size_t>(client)] * 7919);
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (const std::string& e : options_.endpoints) stubs.push_back(KvStub(e));
  size_t at = static_cast<size_t>(client) % stubs.size();
  int ops_here = 0;  // on stubs[at]
  while (!stop_) {
    if (ops_here++ >= options_.ops_per_node) {
      at = (at + 1) % stubs.size();
      ops_here = 1;
    }
    ClientOp op;
    op.process = static_cast<uint64_t>(client);
    op.is_put = rng() % 2 == 0;
    op.key = absl::StrCat("k", rng() % static_cast<uint64_t>(options_.keys));
    if (op.is_put) {
      op.value = absl::StrCat("c", client, "-", next_seq_[static_cast<size_t>(client)]++);
    }
    const bool is_put = op.is_put;
    etcdserverpb::PutRequest put;
    etcdserverpb::RangeRequest get;
    if (is_put) {
      put.set_key(op.key);
      put.set_value(op.value);
    } else {
      get.set_key(op.key);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.op_timeout));
    const std::optional<size_t> index = Invoke(std::move(op), /*bounded=*/true);
    if (!index.has_value()) return;  // the history is full
    grpc::Status s;
    std::optional<std::string> read;
    if (is_put) {
      etcdserverpb::PutResponse resp;
      s = stubs[at]->Put(&ctx, put, &resp);
    } else {
      etcdserverpb::RangeResponse resp;
      s = stubs[at]->Range(&ctx, get, &resp);
      if (s.ok() && resp.kvs_size() > 0) read = resp.kvs(0).value();
    }
    if (s.ok()) {
      Complete(*index, Outcome::kOk, std::move(read), "");
      std::this_thread::sleep_for(absl::ToChronoNanoseconds(options_.think_time));
      continue;
    }
    Complete(*index, is_put ? Outcome::kInfo : Outcome::kFail, std::nullopt, StatusText(s));
    at = (at + 1) % stubs.size();  // try another node
    ops_here = 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::StatusOr<std::optional<std::string>> Workload::FinalRead(const std::string& endpoint,
                                                               const std::string& key) {
  std::unique_ptr<etcdserverpb::KV::Stub> stub = KvStub(endpoint);
  ClientOp op;
  op.process = static_cast<uint64_t>(options_.clients);  // a client of its own
  op.key = key;
  etcdserverpb::RangeRequest get;
  get.set_key(key);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  ctx.set_wait_for_ready(true);
  const size_t index = *Invoke(std::move(op), /*bounded=*/false);  // final reads always count
  etcdserverpb::RangeResponse resp;
  const grpc::Status s = stub->Range(&ctx, get, &resp);
  if (!s.ok()) {
    Complete(index, Outcome::kFail, std::nullopt, StatusText(s));
    return absl::UnavailableError(absl::StrCat("final read of ", key, " on ", endpoint, ": ",
                                               StatusText(s)));
  }
  std::optional<std::string> read;
  if (resp.kvs_size() > 0) read = resp.kvs(0).value();
  Complete(index, Outcome::kOk, read, "");
  return read;
}

}  // namespace amaters::sim::chaos
