// The generated code links against the system protobuf runtime, and the field numbers that make
// the requests byte-compatible with etcd's rpc.proto have not drifted.
#include <string>

#include "gtest/gtest.h"
#include "proto/kv.pb.h"

namespace amaters::kvpb {
namespace {

TEST(KvProto, CommandRoundTrips) {
  Command c;
  c.set_request_id(42);
  TxnRequest* txn = c.mutable_txn();
  Compare* cmp = txn->add_compare();
  cmp->set_key("k");
  cmp->set_target(Compare::MOD);
  cmp->set_result(Compare::LESS);
  cmp->set_mod_revision(7);
  txn->add_success()->mutable_request_put()->set_key("k");
  txn->add_failure()->mutable_request_range()->set_key("k");

  std::string bytes;
  ASSERT_TRUE(c.SerializeToString(&bytes));
  Command back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  EXPECT_EQ(back.request_id(), 42u);
  ASSERT_EQ(back.op_case(), Command::kTxn);
  EXPECT_EQ(back.txn().compare(0).mod_revision(), 7);
  EXPECT_EQ(back.txn().compare(0).target_union_case(), Compare::kModRevision);
  EXPECT_EQ(back.txn().success(0).request_put().key(), "k");
}

// etcd's field numbers: PutRequest{key=1, value=2, prev_kv=4}, Compare.range_end=64.
TEST(KvProto, EtcdFieldNumbers) {
  PutRequest put;
  put.set_key("k");
  put.set_value("v");
  put.set_prev_kv(true);
  EXPECT_EQ(put.SerializeAsString(), std::string("\x0a\x01k\x12\x01v\x20\x01", 8));

  Compare cmp;
  cmp.set_range_end("z");
  // Field 64, wire type 2: tag varint (64 << 3 | 2) = 0x202 = 0x82 0x04.
  EXPECT_EQ(cmp.SerializeAsString(), std::string("\x82\x04\x01z", 4));

  RangeRequest range;
  range.set_keys_only(true);
  range.set_count_only(true);
  EXPECT_EQ(range.SerializeAsString(), std::string("\x40\x01\x48\x01", 4));
}

}  // namespace
}  // namespace amaters::kvpb
