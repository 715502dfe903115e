// A steady client load for end-to-end tests: a thread putting distinct keys through one
// endpoint and remembering which puts were acknowledged, and a reader of every key under a
// prefix.
#ifndef AMATERS_SERVER_TESTING_WRITER_H_
#define AMATERS_SERVER_TESTING_WRITER_H_

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "proto/etcd/rpc.pb.h"
#include "server/testing/cluster.h"

namespace amaters::server::testing {

// Every key under `prefix` that `client`'s node holds, with its value (linearizable unless
// `serializable`).
inline absl::StatusOr<std::map<std::string, std::string>> KeysWithPrefix(EtcdClient& client,
                                                                  const std::string& prefix,
                                                                  bool serializable) {
  etcdserverpb::RangeRequest req;
  req.set_key(prefix);
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);
  req.set_range_end(end);
  req.set_serializable(serializable);
  absl::StatusOr<etcdserverpb::RangeResponse> resp = client.Range(req);
  if (!resp.ok()) return resp.status();
  std::map<std::string, std::string> kvs;
  for (const auto& kv : resp->kvs()) kvs[kv.key()] = kv.value();
  return kvs;
}

// Puts distinct keys ("<prefix>000000", ...) through one endpoint until stopped, remembering
// which puts were acknowledged.
class Writer {
 public:
  Writer(const std::string& address, std::string prefix)
      : client_(address), prefix_(std::move(prefix)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Writer() { Stop(); }

  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  int attempts() {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }
  std::string errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

 private:
  void Run() {
    for (int n = 0; !stop_.load(); ++n) {
      const std::string key = absl::StrFormat("%s%06d", prefix_, n);
      absl::Status s = client_.Put(key, absl::StrCat("value-", n));
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++attempts_;
        if (s.ok()) {
          acked_.push_back(key);
        } else {
          // Not acknowledged: it may or may not be there later.
          absl::StrAppend(&errors_, key, ": ", s.ToString(), "\n");
        }
      }
      if (!s.ok()) absl::SleepFor(absl::Milliseconds(20));  // no spinning on a dead leader
    }
  }

  EtcdClient client_;
  const std::string prefix_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> acked_;
  int attempts_ = 0;
  std::string errors_;
  std::thread thread_;
};

}  // namespace amaters::server::testing

#endif  // AMATERS_SERVER_TESTING_WRITER_H_
