// TestFaults: the fault hooks of the chaos runner's server binary (docs/chaos.md §6).
//
// amaters-server never creates one: RuntimeOptions::test_faults is null there, and no
// configuration key, flag or environment variable sets it. Only `amaters-server-chaos`
// (sim/chaos/chaos_server.cc), a separate binary the chaos runner starts, links an
// implementation and passes it to RunServer. With a null pointer every hook below is skipped.
#ifndef AMATERS_SERVER_RUNTIME_TEST_FAULTS_H_
#define AMATERS_SERVER_RUNTIME_TEST_FAULTS_H_

#include <functional>
#include <memory>
#include <vector>

#include "engine/raft/types.h"
#include "engine/wal/disk.h"

namespace amaters::server {

class TestFaults {
 public:
  using Deliver = std::function<void(std::vector<raft::Message>)>;

  virtual ~TestFaults() = default;

  // A batch of Raft messages from peer `from` arrived. True: deliver it now. False: the faults
  // took it (dropped, or handed to `deliver` later, in arrival order per peer).
  virtual bool TakeBatch(raft::NodeId from, std::vector<raft::Message>& batch,
                         const Deliver& deliver) = 0;
  // Whether a forwarded client request from `peer` and its answer may pass now (the links in
  // both directions are open).
  virtual bool Reachable(raft::NodeId peer) = 0;
  // The node's WAL disk, wrapped (slow or failing writes and syncs).
  virtual std::unique_ptr<wal::Disk> WrapWalDisk(std::unique_ptr<wal::Disk> disk) = 0;
  // The planted bug `stale_reads`: linearizable reads are answered from the local applied state,
  // as serializable ones are, without asking the leader.
  virtual bool ServeReadsLocally() const = 0;
  // The runtime is stopping: batches held for later delivery are dropped, and no more are held.
  virtual void Close() = 0;
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_RUNTIME_TEST_FAULTS_H_
