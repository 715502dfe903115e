// put_load: a write load for benchmarks that need one on a real cluster (bench/snapshot.sh).
// `--threads` blocking clients, each on its own channel, put `--total` keys between them:
// key i is "key-%08d" of (i mod --keys), value --value-bytes random bytes. Prints one line:
//   put_load: ok=N errors=N seconds=S rate=R/s
// and exits non-zero if any put failed (the load is meant to run against a healthy cluster).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"

ABSL_FLAG(std::string, endpoint, "127.0.0.1:7878", "client address of the node to write to");
ABSL_FLAG(uint64_t, total, 100000, "puts in all");
ABSL_FLAG(uint64_t, keys, 100000, "key space");
ABSL_FLAG(uint64_t, value_bytes, 256, "value size");
ABSL_FLAG(int, threads, 64, "concurrent clients");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const uint64_t total = absl::GetFlag(FLAGS_total);
  const uint64_t keys = absl::GetFlag(FLAGS_keys);
  // Values are slices of one random buffer (incompressible, as real data mostly is: RocksDB
  // compresses its files, and a repeated byte would shrink the state to almost nothing).
  const uint64_t value_bytes = absl::GetFlag(FLAGS_value_bytes);
  std::string random(value_bytes + (1 << 20), '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (char& c : random) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  const int threads = absl::GetFlag(FLAGS_threads);
  std::atomic<uint64_t> next{0}, ok{0}, errors{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_endpoint),
                                               grpc::InsecureChannelCredentials(), args);
      auto kv = etcdserverpb::KV::NewStub(channel);
      etcdserverpb::PutRequest req;
      etcdserverpb::PutResponse resp;
      for (uint64_t i = next.fetch_add(1); i < total; i = next.fetch_add(1)) {
        req.set_key(absl::StrFormat("key-%08d", i % keys));
        req.set_value(random.substr((i * 7919) % (1 << 20), value_bytes));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::Status s = kv->Put(&ctx, req, &resp);
        (s.ok() ? ok : errors).fetch_add(1);
      }
    });
  }
  for (std::thread& t : pool) t.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("put_load: ok=%llu errors=%llu seconds=%.1f rate=%.0f/s\n",
              static_cast<unsigned long long>(ok.load()),
              static_cast<unsigned long long>(errors.load()), secs,
              static_cast<double>(ok.load()) / secs);
  return errors.load() == 0 ? 0 : 1;
}
