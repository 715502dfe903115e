// Maintenance.Snapshot (`etcdctl snapshot save FILE`): streams a consistent copy of the member's
// applied state as an amaters snapshot file (docs/snapshots.md). The runtime makes a RocksDB
// checkpoint on its apply thread (after every entry handed to it so far); a thread of this call
// exports it to <data>/snap/export-<n>.tmp and releases the checkpoint; the file, padded with
// zeros to a multiple of 512 bytes and followed by its SHA-256 (the layout etcdctl checks), is
// then sent in 1 MiB pieces, each with the bytes still to come, and removed when the call ends.
#ifndef AMATERS_SERVER_SERVICE_SNAPSHOT_STREAM_H_
#define AMATERS_SERVER_SERVICE_SNAPSHOT_STREAM_H_

#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "server/service/etcd_handler.h"
#include "server/service/etcd_service.h"

namespace amaters::server {

// The reactor of one Snapshot call; it deletes itself when the call is done.
grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* StartSnapshotStream(
    EtcdHandler* handler, const RequestObserver& observer);

}  // namespace amaters::server

#endif  // AMATERS_SERVER_SERVICE_SNAPSHOT_STREAM_H_
