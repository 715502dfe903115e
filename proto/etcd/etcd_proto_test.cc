// Pins the wire schema to etcd 3.4's (etcdserver/etcdserverpb/rpc.proto, mvcc/mvccpb/kv.proto):
// every field number and enum value of the messages we declare, the service and method names
// (gRPC routes calls by "/etcdserverpb.KV/Range"), and a few encodings byte for byte.
//
// The tables were generated from etcd 3.4's .proto files (the Debian package
// golang-etcd-server-dev, /usr/share/gocode/src/go.etcd.io/etcd) and compared with ours; they list
// every field, so a field added here without a counterpart in etcd fails the count check.
#include <map>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "proto/etcd/kv.pb.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/etcd/rpc.pb.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

struct Field {
  const char* message;  // full name
  const char* name;
  int number;
  // The type as etcd's .proto writes it: a scalar type, or the message or enum name without its
  // package; "repeated " first for repeated fields.
  const char* type;
};

struct EnumValue {
  const char* enum_name;  // full name
  const char* name;
  int number;
};

std::string TypeOf(const FieldDescriptor* f) {
  std::string type;
  if (f->message_type() != nullptr) {
    type = f->message_type()->name();
  } else if (f->enum_type() != nullptr) {
    type = f->enum_type()->name();
  } else {
    type = f->type_name();
  }
  return f->is_repeated() ? "repeated " + type : type;
}

// etcd 3.4: (message, field, number) for every field of every message in proto/etcd.
const Field kFields[] = {
    // clang-format off
    {"etcdserverpb.ResponseHeader", "cluster_id", 1, "uint64"},
    {"etcdserverpb.ResponseHeader", "member_id", 2, "uint64"},
    {"etcdserverpb.ResponseHeader", "revision", 3, "int64"},
    {"etcdserverpb.ResponseHeader", "raft_term", 4, "uint64"},
    {"etcdserverpb.RangeRequest", "key", 1, "bytes"},
    {"etcdserverpb.RangeRequest", "range_end", 2, "bytes"},
    {"etcdserverpb.RangeRequest", "limit", 3, "int64"},
    {"etcdserverpb.RangeRequest", "revision", 4, "int64"},
    {"etcdserverpb.RangeRequest", "sort_order", 5, "SortOrder"},
    {"etcdserverpb.RangeRequest", "sort_target", 6, "SortTarget"},
    {"etcdserverpb.RangeRequest", "serializable", 7, "bool"},
    {"etcdserverpb.RangeRequest", "keys_only", 8, "bool"},
    {"etcdserverpb.RangeRequest", "count_only", 9, "bool"},
    {"etcdserverpb.RangeRequest", "min_mod_revision", 10, "int64"},
    {"etcdserverpb.RangeRequest", "max_mod_revision", 11, "int64"},
    {"etcdserverpb.RangeRequest", "min_create_revision", 12, "int64"},
    {"etcdserverpb.RangeRequest", "max_create_revision", 13, "int64"},
    {"etcdserverpb.RangeResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.RangeResponse", "kvs", 2, "repeated KeyValue"},
    {"etcdserverpb.RangeResponse", "more", 3, "bool"},
    {"etcdserverpb.RangeResponse", "count", 4, "int64"},
    {"etcdserverpb.PutRequest", "key", 1, "bytes"},
    {"etcdserverpb.PutRequest", "value", 2, "bytes"},
    {"etcdserverpb.PutRequest", "lease", 3, "int64"},
    {"etcdserverpb.PutRequest", "prev_kv", 4, "bool"},
    {"etcdserverpb.PutRequest", "ignore_value", 5, "bool"},
    {"etcdserverpb.PutRequest", "ignore_lease", 6, "bool"},
    {"etcdserverpb.PutResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.PutResponse", "prev_kv", 2, "KeyValue"},
    {"etcdserverpb.DeleteRangeRequest", "key", 1, "bytes"},
    {"etcdserverpb.DeleteRangeRequest", "range_end", 2, "bytes"},
    {"etcdserverpb.DeleteRangeRequest", "prev_kv", 3, "bool"},
    {"etcdserverpb.DeleteRangeResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.DeleteRangeResponse", "deleted", 2, "int64"},
    {"etcdserverpb.DeleteRangeResponse", "prev_kvs", 3, "repeated KeyValue"},
    {"etcdserverpb.RequestOp", "request_range", 1, "RangeRequest"},
    {"etcdserverpb.RequestOp", "request_put", 2, "PutRequest"},
    {"etcdserverpb.RequestOp", "request_delete_range", 3, "DeleteRangeRequest"},
    {"etcdserverpb.RequestOp", "request_txn", 4, "TxnRequest"},
    {"etcdserverpb.ResponseOp", "response_range", 1, "RangeResponse"},
    {"etcdserverpb.ResponseOp", "response_put", 2, "PutResponse"},
    {"etcdserverpb.ResponseOp", "response_delete_range", 3, "DeleteRangeResponse"},
    {"etcdserverpb.ResponseOp", "response_txn", 4, "TxnResponse"},
    {"etcdserverpb.Compare", "result", 1, "CompareResult"},
    {"etcdserverpb.Compare", "target", 2, "CompareTarget"},
    {"etcdserverpb.Compare", "key", 3, "bytes"},
    {"etcdserverpb.Compare", "version", 4, "int64"},
    {"etcdserverpb.Compare", "create_revision", 5, "int64"},
    {"etcdserverpb.Compare", "mod_revision", 6, "int64"},
    {"etcdserverpb.Compare", "value", 7, "bytes"},
    {"etcdserverpb.Compare", "lease", 8, "int64"},
    {"etcdserverpb.Compare", "range_end", 64, "bytes"},
    {"etcdserverpb.TxnRequest", "compare", 1, "repeated Compare"},
    {"etcdserverpb.TxnRequest", "success", 2, "repeated RequestOp"},
    {"etcdserverpb.TxnRequest", "failure", 3, "repeated RequestOp"},
    {"etcdserverpb.TxnResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.TxnResponse", "succeeded", 2, "bool"},
    {"etcdserverpb.TxnResponse", "responses", 3, "repeated ResponseOp"},
    {"etcdserverpb.CompactionRequest", "revision", 1, "int64"},
    {"etcdserverpb.CompactionRequest", "physical", 2, "bool"},
    {"etcdserverpb.CompactionResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.Member", "ID", 1, "uint64"},
    {"etcdserverpb.Member", "name", 2, "string"},
    {"etcdserverpb.Member", "peerURLs", 3, "repeated string"},
    {"etcdserverpb.Member", "clientURLs", 4, "repeated string"},
    {"etcdserverpb.Member", "isLearner", 5, "bool"},
    {"etcdserverpb.MemberAddRequest", "peerURLs", 1, "repeated string"},
    {"etcdserverpb.MemberAddRequest", "isLearner", 2, "bool"},
    {"etcdserverpb.MemberAddResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.MemberAddResponse", "member", 2, "Member"},
    {"etcdserverpb.MemberAddResponse", "members", 3, "repeated Member"},
    {"etcdserverpb.MemberRemoveRequest", "ID", 1, "uint64"},
    {"etcdserverpb.MemberRemoveResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.MemberRemoveResponse", "members", 2, "repeated Member"},
    {"etcdserverpb.MemberUpdateRequest", "ID", 1, "uint64"},
    {"etcdserverpb.MemberUpdateRequest", "peerURLs", 2, "repeated string"},
    {"etcdserverpb.MemberUpdateResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.MemberUpdateResponse", "members", 2, "repeated Member"},
    {"etcdserverpb.MemberPromoteRequest", "ID", 1, "uint64"},
    {"etcdserverpb.MemberPromoteResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.MemberPromoteResponse", "members", 2, "repeated Member"},
    {"etcdserverpb.MemberListResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.MemberListResponse", "members", 2, "repeated Member"},
    {"etcdserverpb.StatusResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.StatusResponse", "version", 2, "string"},
    {"etcdserverpb.StatusResponse", "dbSize", 3, "int64"},
    {"etcdserverpb.StatusResponse", "leader", 4, "uint64"},
    {"etcdserverpb.StatusResponse", "raftIndex", 5, "uint64"},
    {"etcdserverpb.StatusResponse", "raftTerm", 6, "uint64"},
    {"etcdserverpb.StatusResponse", "raftAppliedIndex", 7, "uint64"},
    {"etcdserverpb.StatusResponse", "errors", 8, "repeated string"},
    {"etcdserverpb.StatusResponse", "dbSizeInUse", 9, "int64"},
    {"etcdserverpb.StatusResponse", "isLearner", 10, "bool"},
    {"etcdserverpb.MoveLeaderRequest", "targetID", 1, "uint64"},
    {"etcdserverpb.MoveLeaderResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.DefragmentResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.HashKVRequest", "revision", 1, "int64"},
    {"etcdserverpb.HashKVResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.HashKVResponse", "hash", 2, "uint32"},
    {"etcdserverpb.HashKVResponse", "compact_revision", 3, "int64"},
    {"etcdserverpb.HashKVResponse", "hash_revision", 4, "int64"},
    {"etcdserverpb.SnapshotResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.SnapshotResponse", "remaining_bytes", 2, "uint64"},
    {"etcdserverpb.SnapshotResponse", "blob", 3, "bytes"},
    {"mvccpb.KeyValue", "key", 1, "bytes"},
    {"mvccpb.KeyValue", "create_revision", 2, "int64"},
    {"mvccpb.KeyValue", "mod_revision", 3, "int64"},
    {"mvccpb.KeyValue", "version", 4, "int64"},
    {"mvccpb.KeyValue", "value", 5, "bytes"},
    {"mvccpb.KeyValue", "lease", 6, "int64"},
    {"mvccpb.Event", "type", 1, "EventType"},
    {"etcdserverpb.AlarmRequest", "action", 1, "AlarmAction"},
    {"etcdserverpb.AlarmRequest", "memberID", 2, "uint64"},
    {"etcdserverpb.AlarmRequest", "alarm", 3, "AlarmType"},
    {"etcdserverpb.AlarmMember", "memberID", 1, "uint64"},
    {"etcdserverpb.AlarmMember", "alarm", 2, "AlarmType"},
    {"etcdserverpb.AlarmResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.AlarmResponse", "alarms", 2, "repeated AlarmMember"},
    {"mvccpb.Event", "kv", 2, "KeyValue"},
    {"mvccpb.Event", "prev_kv", 3, "KeyValue"},
    {"etcdserverpb.LeaseGrantRequest", "TTL", 1, "int64"},
    {"etcdserverpb.LeaseGrantRequest", "ID", 2, "int64"},
    {"etcdserverpb.LeaseGrantResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.LeaseGrantResponse", "ID", 2, "int64"},
    {"etcdserverpb.LeaseGrantResponse", "TTL", 3, "int64"},
    {"etcdserverpb.LeaseGrantResponse", "error", 4, "string"},
    {"etcdserverpb.LeaseRevokeRequest", "ID", 1, "int64"},
    {"etcdserverpb.LeaseRevokeResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.LeaseKeepAliveRequest", "ID", 1, "int64"},
    {"etcdserverpb.LeaseKeepAliveResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.LeaseKeepAliveResponse", "ID", 2, "int64"},
    {"etcdserverpb.LeaseKeepAliveResponse", "TTL", 3, "int64"},
    {"etcdserverpb.LeaseTimeToLiveRequest", "ID", 1, "int64"},
    {"etcdserverpb.LeaseTimeToLiveRequest", "keys", 2, "bool"},
    {"etcdserverpb.LeaseTimeToLiveResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.LeaseTimeToLiveResponse", "ID", 2, "int64"},
    {"etcdserverpb.LeaseTimeToLiveResponse", "TTL", 3, "int64"},
    {"etcdserverpb.LeaseTimeToLiveResponse", "grantedTTL", 4, "int64"},
    {"etcdserverpb.LeaseTimeToLiveResponse", "keys", 5, "repeated bytes"},
    {"etcdserverpb.LeaseStatus", "ID", 1, "int64"},
    {"etcdserverpb.LeaseLeasesResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.LeaseLeasesResponse", "leases", 2, "repeated LeaseStatus"},
    {"etcdserverpb.WatchRequest", "create_request", 1, "WatchCreateRequest"},
    {"etcdserverpb.WatchRequest", "cancel_request", 2, "WatchCancelRequest"},
    {"etcdserverpb.WatchRequest", "progress_request", 3, "WatchProgressRequest"},
    {"etcdserverpb.WatchCreateRequest", "key", 1, "bytes"},
    {"etcdserverpb.WatchCreateRequest", "range_end", 2, "bytes"},
    {"etcdserverpb.WatchCreateRequest", "start_revision", 3, "int64"},
    {"etcdserverpb.WatchCreateRequest", "progress_notify", 4, "bool"},
    {"etcdserverpb.WatchCreateRequest", "filters", 5, "repeated FilterType"},
    {"etcdserverpb.WatchCreateRequest", "prev_kv", 6, "bool"},
    {"etcdserverpb.WatchCreateRequest", "watch_id", 7, "int64"},
    {"etcdserverpb.WatchCreateRequest", "fragment", 8, "bool"},
    {"etcdserverpb.WatchCancelRequest", "watch_id", 1, "int64"},
    {"etcdserverpb.WatchResponse", "header", 1, "ResponseHeader"},
    {"etcdserverpb.WatchResponse", "watch_id", 2, "int64"},
    {"etcdserverpb.WatchResponse", "created", 3, "bool"},
    {"etcdserverpb.WatchResponse", "canceled", 4, "bool"},
    {"etcdserverpb.WatchResponse", "compact_revision", 5, "int64"},
    {"etcdserverpb.WatchResponse", "cancel_reason", 6, "string"},
    {"etcdserverpb.WatchResponse", "fragment", 7, "bool"},
    {"etcdserverpb.WatchResponse", "events", 11, "repeated Event"},
    // clang-format on
};

// etcd 3.4: (enum, value, number) for every enum in proto/etcd.
const EnumValue kEnumValues[] = {
    {"mvccpb.Event.EventType", "PUT", 0},
    {"etcdserverpb.AlarmType", "NONE", 0},
    {"etcdserverpb.AlarmType", "NOSPACE", 1},
    {"etcdserverpb.AlarmType", "CORRUPT", 2},
    {"etcdserverpb.AlarmRequest.AlarmAction", "GET", 0},
    {"etcdserverpb.AlarmRequest.AlarmAction", "ACTIVATE", 1},
    {"etcdserverpb.AlarmRequest.AlarmAction", "DEACTIVATE", 2},
    {"mvccpb.Event.EventType", "DELETE", 1},
    {"etcdserverpb.WatchCreateRequest.FilterType", "NOPUT", 0},
    {"etcdserverpb.WatchCreateRequest.FilterType", "NODELETE", 1},
    {"etcdserverpb.RangeRequest.SortOrder", "NONE", 0},
    {"etcdserverpb.RangeRequest.SortOrder", "ASCEND", 1},
    {"etcdserverpb.RangeRequest.SortOrder", "DESCEND", 2},
    {"etcdserverpb.RangeRequest.SortTarget", "KEY", 0},
    {"etcdserverpb.RangeRequest.SortTarget", "VERSION", 1},
    {"etcdserverpb.RangeRequest.SortTarget", "CREATE", 2},
    {"etcdserverpb.RangeRequest.SortTarget", "MOD", 3},
    {"etcdserverpb.RangeRequest.SortTarget", "VALUE", 4},
    {"etcdserverpb.Compare.CompareResult", "EQUAL", 0},
    {"etcdserverpb.Compare.CompareResult", "GREATER", 1},
    {"etcdserverpb.Compare.CompareResult", "LESS", 2},
    {"etcdserverpb.Compare.CompareResult", "NOT_EQUAL", 3},
    {"etcdserverpb.Compare.CompareTarget", "VERSION", 0},
    {"etcdserverpb.Compare.CompareTarget", "CREATE", 1},
    {"etcdserverpb.Compare.CompareTarget", "MOD", 2},
    {"etcdserverpb.Compare.CompareTarget", "VALUE", 3},
    {"etcdserverpb.Compare.CompareTarget", "LEASE", 4},
};

const DescriptorPool* Pool() {
  // Referencing the generated types links them in and registers their descriptors.
  etcdserverpb::RangeRequest range;
  mvccpb::KeyValue kv;
  (void)range;
  (void)kv;
  return DescriptorPool::generated_pool();
}

TEST(EtcdProto, FieldNumbersAndTypesAreEtcds) {
  std::map<std::string, int> fields_per_message;
  for (const Field& row : kFields) {
    SCOPED_TRACE(std::string(row.message) + "." + row.name);
    const Descriptor* message = Pool()->FindMessageTypeByName(row.message);
    ASSERT_NE(message, nullptr);
    const FieldDescriptor* field = message->FindFieldByName(row.name);
    ASSERT_NE(field, nullptr);
    EXPECT_EQ(field->number(), row.number);
    EXPECT_EQ(TypeOf(field), row.type);
    ++fields_per_message[row.message];
  }
  for (const auto& [name, count] : fields_per_message) {
    const Descriptor* message = Pool()->FindMessageTypeByName(name);
    ASSERT_NE(message, nullptr);
    EXPECT_EQ(message->field_count(), count) << name << " has fields etcd does not have";
  }
}

TEST(EtcdProto, EnumValuesAreEtcds) {
  for (const EnumValue& row : kEnumValues) {
    SCOPED_TRACE(std::string(row.enum_name) + "." + row.name);
    const EnumDescriptor* e = Pool()->FindEnumTypeByName(row.enum_name);
    ASSERT_NE(e, nullptr);
    const EnumValueDescriptor* value = e->FindValueByName(row.name);
    ASSERT_NE(value, nullptr);
    EXPECT_EQ(value->number(), row.number);
  }
}

TEST(EtcdProto, EveryMessageIsPinned) {
  std::map<std::string, bool> pinned;
  for (const Field& row : kFields) pinned[row.message] = true;
  for (const char* file : {"proto/etcd/rpc.proto", "proto/etcd/kv.proto"}) {
    const google::protobuf::FileDescriptor* fd = Pool()->FindFileByName(file);
    ASSERT_NE(fd, nullptr) << file;
    for (int i = 0; i < fd->message_type_count(); ++i) {
      const Descriptor* m = fd->message_type(i);
      // Empty requests have no row; everything else must.
      if (m->field_count() == 0) continue;
      EXPECT_TRUE(pinned.count(m->full_name())) << m->full_name() << " is not in kFields";
    }
  }
}

// gRPC routes a call by "/<package>.<service>/<method>"; etcd clients call these paths.
TEST(EtcdProto, ServicesAndMethodsAreEtcds) {
  struct Method {
    const char* service;
    const char* method;
    const char* input;
    const char* output;
  };
  const Method kMethods[] = {
      {"etcdserverpb.KV", "Range", "etcdserverpb.RangeRequest", "etcdserverpb.RangeResponse"},
      {"etcdserverpb.KV", "Put", "etcdserverpb.PutRequest", "etcdserverpb.PutResponse"},
      {"etcdserverpb.KV", "DeleteRange", "etcdserverpb.DeleteRangeRequest",
       "etcdserverpb.DeleteRangeResponse"},
      {"etcdserverpb.KV", "Txn", "etcdserverpb.TxnRequest", "etcdserverpb.TxnResponse"},
      {"etcdserverpb.KV", "Compact", "etcdserverpb.CompactionRequest",
       "etcdserverpb.CompactionResponse"},
      {"etcdserverpb.Cluster", "MemberAdd", "etcdserverpb.MemberAddRequest",
       "etcdserverpb.MemberAddResponse"},
      {"etcdserverpb.Cluster", "MemberRemove", "etcdserverpb.MemberRemoveRequest",
       "etcdserverpb.MemberRemoveResponse"},
      {"etcdserverpb.Cluster", "MemberUpdate", "etcdserverpb.MemberUpdateRequest",
       "etcdserverpb.MemberUpdateResponse"},
      {"etcdserverpb.Cluster", "MemberPromote", "etcdserverpb.MemberPromoteRequest",
       "etcdserverpb.MemberPromoteResponse"},
      {"etcdserverpb.Cluster", "MemberList", "etcdserverpb.MemberListRequest",
       "etcdserverpb.MemberListResponse"},
      {"etcdserverpb.Maintenance", "Status", "etcdserverpb.StatusRequest",
       "etcdserverpb.StatusResponse"},
      {"etcdserverpb.Maintenance", "MoveLeader", "etcdserverpb.MoveLeaderRequest",
       "etcdserverpb.MoveLeaderResponse"},
      {"etcdserverpb.Maintenance", "Defragment", "etcdserverpb.DefragmentRequest",
       "etcdserverpb.DefragmentResponse"},
      {"etcdserverpb.Maintenance", "HashKV", "etcdserverpb.HashKVRequest",
       "etcdserverpb.HashKVResponse"},
      {"etcdserverpb.Maintenance", "Alarm", "etcdserverpb.AlarmRequest",
       "etcdserverpb.AlarmResponse"},
      {"etcdserverpb.Lease", "LeaseGrant", "etcdserverpb.LeaseGrantRequest",
       "etcdserverpb.LeaseGrantResponse"},
      {"etcdserverpb.Lease", "LeaseRevoke", "etcdserverpb.LeaseRevokeRequest",
       "etcdserverpb.LeaseRevokeResponse"},
      {"etcdserverpb.Lease", "LeaseTimeToLive", "etcdserverpb.LeaseTimeToLiveRequest",
       "etcdserverpb.LeaseTimeToLiveResponse"},
      {"etcdserverpb.Lease", "LeaseLeases", "etcdserverpb.LeaseLeasesRequest",
       "etcdserverpb.LeaseLeasesResponse"},
  };
  // The bidirectional stream: Lease.LeaseKeepAlive.
  {
    const ServiceDescriptor* lease = Pool()->FindServiceByName("etcdserverpb.Lease");
    ASSERT_NE(lease, nullptr);
    const MethodDescriptor* m = lease->FindMethodByName("LeaseKeepAlive");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->input_type()->full_name(), "etcdserverpb.LeaseKeepAliveRequest");
    EXPECT_EQ(m->output_type()->full_name(), "etcdserverpb.LeaseKeepAliveResponse");
    EXPECT_TRUE(m->client_streaming());
    EXPECT_TRUE(m->server_streaming());
  }
  // The bidirectional stream: Watch.Watch.
  {
    const ServiceDescriptor* watch = Pool()->FindServiceByName("etcdserverpb.Watch");
    ASSERT_NE(watch, nullptr);
    const MethodDescriptor* m = watch->FindMethodByName("Watch");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->input_type()->full_name(), "etcdserverpb.WatchRequest");
    EXPECT_EQ(m->output_type()->full_name(), "etcdserverpb.WatchResponse");
    EXPECT_TRUE(m->client_streaming());
    EXPECT_TRUE(m->server_streaming());
  }
  // The one server-streaming method: Maintenance.Snapshot (etcd's `snapshot save`).
  {
    const MethodDescriptor* snapshot =
        Pool()->FindServiceByName("etcdserverpb.Maintenance")->FindMethodByName("Snapshot");
    ASSERT_NE(snapshot, nullptr);
    EXPECT_EQ(snapshot->input_type()->full_name(), "etcdserverpb.SnapshotRequest");
    EXPECT_EQ(snapshot->output_type()->full_name(), "etcdserverpb.SnapshotResponse");
    EXPECT_FALSE(snapshot->client_streaming());
    EXPECT_TRUE(snapshot->server_streaming());
  }
  for (const Method& m : kMethods) {
    SCOPED_TRACE(std::string(m.service) + "/" + m.method);
    const ServiceDescriptor* service = Pool()->FindServiceByName(m.service);
    ASSERT_NE(service, nullptr);
    const MethodDescriptor* method = service->FindMethodByName(m.method);
    ASSERT_NE(method, nullptr);
    EXPECT_EQ(method->input_type()->full_name(), m.input);
    EXPECT_EQ(method->output_type()->full_name(), m.output);
    EXPECT_FALSE(method->client_streaming());
    EXPECT_FALSE(method->server_streaming());
  }
  EXPECT_STREQ(etcdserverpb::KV::service_full_name(), "etcdserverpb.KV");
  EXPECT_STREQ(etcdserverpb::Cluster::service_full_name(), "etcdserverpb.Cluster");
  EXPECT_STREQ(etcdserverpb::Maintenance::service_full_name(), "etcdserverpb.Maintenance");
}

// A few encodings written out by hand from etcd's numbers (tag = number << 3 | wire type).
TEST(EtcdProto, EncodingsMatchEtcdByteForByte) {
  etcdserverpb::RangeRequest range;
  range.set_serializable(true);  // 7, varint: 0x38
  range.set_sort_order(etcdserverpb::RangeRequest::DESCEND);  // 5: 0x28
  range.set_sort_target(etcdserverpb::RangeRequest::MOD);     // 6: 0x30
  range.set_max_create_revision(9);                           // 13: 0x68
  EXPECT_EQ(range.SerializeAsString(), std::string("\x28\x02\x30\x03\x38\x01\x68\x09", 8));

  etcdserverpb::TxnRequest txn;
  txn.add_failure();  // 3, length-delimited: 0x1a, empty RequestOp
  EXPECT_EQ(txn.SerializeAsString(), std::string("\x1a\x00", 2));

  etcdserverpb::ResponseHeader header;
  header.set_raft_term(5);  // 4: 0x20
  header.set_revision(3);   // 3: 0x18
  EXPECT_EQ(header.SerializeAsString(), std::string("\x18\x03\x20\x05", 4));

  etcdserverpb::StatusResponse status;
  status.set_raftterm(7);  // 6: 0x30
  status.set_leader(2);    // 4: 0x20
  EXPECT_EQ(status.SerializeAsString(), std::string("\x20\x02\x30\x07", 4));

  mvccpb::KeyValue kv;
  kv.set_key("k");    // 1: 0x0a
  kv.set_value("v");  // 5: 0x2a
  kv.set_version(1);  // 4: 0x20
  EXPECT_EQ(kv.SerializeAsString(), std::string("\x0a\x01k\x20\x01\x2a\x01v", 8));

  etcdserverpb::Compare cmp;
  cmp.set_range_end("z");  // 64, length-delimited: tag 0x202 = varint 0x82 0x04
  EXPECT_EQ(cmp.SerializeAsString(), std::string("\x82\x04\x01z", 4));

  etcdserverpb::RequestOp op;
  op.mutable_request_txn();  // 4: 0x22 (nested txns are on the wire, refused by the server)
  EXPECT_EQ(op.SerializeAsString(), std::string("\x22\x00", 2));
}

}  // namespace
