// `amaters-server restore FILE --data-dir=DIR`: builds a node's data directory from a snapshot
// file (`etcdctl snapshot save`, Maintenance.Snapshot), for disaster recovery of a whole
// cluster (docs/snapshots.md, docs/runbooks.md). The state store gets the file's state (its
// checksum is verified first) and keeps it as the snapshot at the file's applied index A; the
// WAL gets a snapshot record (A, term 1) and a hard state (term 1, no vote, commit A). Every
// member restored from the same file starts from the same log position and elects a leader in
// term 2.
#ifndef AMATERS_SERVER_STORAGE_RESTORE_H_
#define AMATERS_SERVER_STORAGE_RESTORE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace amaters::storage {

struct RestoreSummary {
  uint64_t applied_index = 0;
  int64_t revision = 0;
  uint64_t keys = 0;      // live keys
  uint64_t versions = 0;  // versions of the history, tombstones included
  uint64_t leases = 0;
  uint64_t bytes = 0;
};

// `data_dir` must not exist or be empty: a restore never overwrites a node's data.
absl::StatusOr<RestoreSummary> RestoreDataDir(const std::string& snapshot_file,
                                              const std::string& data_dir);

}  // namespace amaters::storage

#endif  // AMATERS_SERVER_STORAGE_RESTORE_H_
