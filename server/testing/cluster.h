// A cluster of real amaters-server processes on 127.0.0.1 for end-to-end tests: free ports,
// one TOML file and data directory per node, start / SIGTERM / SIGKILL, and an etcd v3 gRPC
// client per node.
#ifndef AMATERS_SERVER_TESTING_CLUSTER_H_
#define AMATERS_SERVER_TESTING_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "server/testing/process.h"

namespace amaters::server::testing {

// The channel arguments of every test client: a subchannel of its own (GRPC_ARG_USE_LOCAL_
// SUBCHANNEL_POOL: otherwise a new channel shares the process-wide subchannel of an older
// channel to the same address, reconnect backoff included) and reconnect backoff from 100 ms up
// to 1 s. gRPC's default backoff starts at 1 s and grows 1.6x per failed attempt up to 120 s:
// a client that first tried while a node was still starting (slowly, under AddressSanitizer)
// or while it was killed then sat in that backoff, failing every call at once with the old
// "connection refused", for tens of seconds after the node logged "serving".
grpc::ChannelArguments TestChannelArguments();

// A blocking etcd v3 client for one endpoint (insecure unless `credentials` is given), on
// TestChannelArguments().
class EtcdClient {
 public:
  explicit EtcdClient(const std::string& address,
                      std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  // With channel arguments of its own.
  EtcdClient(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials,
             const grpc::ChannelArguments& args);
  absl::Status Put(const std::string& key, const std::string& value);
  // nullopt when the key does not exist.
  absl::StatusOr<std::optional<std::string>> Get(const std::string& key, bool serializable = false);
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request);
  // Waits for the connection, up to its 2 s deadline (wait_for_ready): a readiness probe.
  absl::StatusOr<etcdserverpb::StatusResponse> Status();
  // Connects the channel and waits until it is READY (false at the timeout). Put, Get and
  // Range fail fast while the channel is not connected, and a blocking client without a call in
  // progress polls a connection attempt only rarely: after a node (re)starts, this brings the
  // channel up at once.
  bool WaitForConnected(absl::Duration timeout);
  // The channel's connectivity state ("READY", "TRANSIENT_FAILURE", ...), for failure messages.
  std::string ChannelState();
  etcdserverpb::KV::Stub* kv() { return kv_.get(); }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance_;
};

absl::Status FromGrpc(const grpc::Status& status);

// The sockets listening on `port` (any address) as `ss -ltnp` prints them ("nobody" if none).
std::string Listeners(int port);

class TestCluster {
 public:
  struct Node {
    int client_port = 0;
    int peer_port = 0;
    int admin_port = 0;
    std::string dir;          // node's working directory (its data is in dir/data)
    std::string config_path;
    std::unique_ptr<Process> process;
    int starts = 0;
    uint64_t id = 0;  // its node id
  };

  // `size` nodes; a single node has no peers. `extra_toml` is appended to every config (more
  // sections, e.g. "[network]\ntls_enabled = true\n..."; [cluster] and [server] are written
  // here with heartbeat 50 ms / election timeout 500 ms to keep tests quick).
  TestCluster(int size, const std::string& name, const std::string& extra_toml = "");
  ~TestCluster();

  int size() const { return static_cast<int>(nodes_.size()); }
  Node& node(int i) { return nodes_[static_cast<size_t>(i)]; }
  std::string client_address(int i) const;
  std::string endpoints() const;  // every client address, comma-separated

  // A node that joins the running cluster (docs/membership.md): new ports and directory, node
  // id `id` (what `etcdctl member add` printed), initial_cluster_state = "existing" and peers =
  // nodes `members` (indexes) plus itself. Returns its index; start it with Start.
  int AddJoiningNode(const std::string& name, uint64_t id, const std::vector<int>& members);
  // The peer port a node added with AddJoiningNode will use, reserved before `member add`.
  int ReservePeerPort();

  absl::Status Start(int i, const std::vector<std::string>& extra_args = {});
  absl::Status StartAll();
  // SIGTERM and wait; the exit code (nullopt on timeout).
  std::optional<int> Stop(int i, absl::Duration timeout = absl::Seconds(20));
  void Kill(int i);  // SIGKILL and reap
  bool Running(int i);

  // The index of the node every running node agrees is leader, polled until `timeout`.
  absl::StatusOr<int> WaitForLeader(absl::Duration timeout = absl::Seconds(20));
  // Polls Maintenance.Status on node i until it reports a leader.
  absl::Status WaitReady(int i, absl::Duration timeout = absl::Seconds(20));

  EtcdClient& client(int i);
  // Replaces node i's client (references to the old one dangle) with one on a new channel.
  void ResetClient(int i);
  // EtcdClient::WaitForConnected on every running node's client, until `timeout` in all; false
  // if one did not connect. Right after Start, this avoids the seconds a blocking client may
  // otherwise take to connect (its first attempt is refused while the node is starting).
  bool ConnectClients(absl::Duration timeout = absl::Seconds(20));
  std::string Log(int i) const;
  // For failure messages: per node, whether it runs, its client channel's state, its Status,
  // who listens on its client and peer ports, and the last lines of its log.
  std::string Describe();

 private:
  std::string TomlFor(const Node& n, uint64_t id, const std::string& cluster_lines) const;

  std::vector<Node> nodes_;
  std::vector<std::unique_ptr<EtcdClient>> clients_;
  std::string extra_toml_;
  std::vector<int> reserved_peer_ports_;
  std::string binary_;
};

}  // namespace amaters::server::testing

#endif  // AMATERS_SERVER_TESTING_CLUSTER_H_
