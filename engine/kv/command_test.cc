// Commands on the wire: round trips, garbage bytes and the validation rules (command.h).
#include "engine/kv/command.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/kv.pb.h"

namespace amaters::kv {
namespace {

Command SampleTxn() {
  Command c;
  c.request_id = 99;
  TxnRequest t;
  Compare by_value;
  by_value.target = Compare::Target::kValue;
  by_value.result = Compare::Result::kNotEqual;
  by_value.key = std::string("k\0ey", 4);
  by_value.value = std::string("\xff\x00", 2);
  Compare by_mod;
  by_mod.target = Compare::Target::kMod;
  by_mod.result = Compare::Result::kLess;
  by_mod.key = "a";
  by_mod.range_end = std::string(1, '\0');
  by_mod.number = -5;
  Compare by_version;
  by_version.target = Compare::Target::kVersion;
  by_version.result = Compare::Result::kGreater;
  by_version.key = "v";
  by_version.number = 3;
  Compare by_create;
  by_create.target = Compare::Target::kCreate;
  by_create.result = Compare::Result::kEqual;
  by_create.key = "c";
  by_create.range_end = "d";
  by_create.number = 1LL << 40;
  t.compare = {by_value, by_mod, by_version, by_create};
  RangeRequest r;
  r.key = "a";
  r.range_end = "b";
  r.limit = 10;
  r.keys_only = true;
  r.count_only = true;
  t.success = {r, PutRequest{"p", "", true}, DeleteRangeRequest{"d", "e", true}};
  t.failure = {PutRequest{"x", "y", false}};
  c.op = t;
  return c;
}

TEST(Command, RoundTripsEveryKind) {
  Command put;
  put.request_id = 1;
  put.op = PutRequest{std::string("bin\0key", 7), std::string(1000, '\xfe'), true};
  Command del;
  del.op = DeleteRangeRequest{"a", std::string(1, '\0'), true};
  Command empty_txn;
  empty_txn.op = TxnRequest{};
  Command leased;
  PutRequest lp{"k", "v", false};
  lp.lease = 1LL << 50;
  leased.op = lp;
  Command keep;
  PutRequest kp{"k", "v", true};
  kp.ignore_lease = true;
  keep.op = kp;
  Command grant;
  grant.request_id = 5;
  grant.op = LeaseGrantRequest{(1LL << 62) + 3, kMaxLeaseTtl};
  Command revoke;
  revoke.op = LeaseRevokeRequest{42};
  Command checkpoint;
  checkpoint.op = LeaseCheckpointRequest{{{1, 2}, {3, 4}}};
  Compare by_lease;
  by_lease.target = Compare::Target::kLease;
  by_lease.key = "l";
  by_lease.number = 9;
  Command lease_txn;
  lease_txn.op = TxnRequest{{by_lease}, {lp}, {kp}};
  for (const Command& c : {put, del, empty_txn, SampleTxn(), leased, keep, grant, revoke,
                           checkpoint, lease_txn}) {
    SCOPED_TRACE(Describe(c));
    std::string bytes = EncodeCommand(c);
    EXPECT_FALSE(bytes.empty()) << "must never look like a no-op entry";
    absl::StatusOr<Command> back = DecodeCommand(bytes);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, c);
  }
}

TEST(Command, CompareOperandGoesInTheMatchingUnionMember) {
  kvpb::Command proto;
  ToProto(SampleTxn(), &proto);
  ASSERT_EQ(proto.txn().compare_size(), 4);
  EXPECT_EQ(proto.txn().compare(0).target_union_case(), kvpb::Compare::kValue);
  EXPECT_EQ(proto.txn().compare(1).target_union_case(), kvpb::Compare::kModRevision);
  EXPECT_EQ(proto.txn().compare(2).target_union_case(), kvpb::Compare::kVersion);
  EXPECT_EQ(proto.txn().compare(3).target_union_case(), kvpb::Compare::kCreateRevision);
}

TEST(Command, MismatchedUnionMemberComparesAgainstZeroLikeEtcd) {
  kvpb::Command proto;
  kvpb::Compare* cmp = proto.mutable_txn()->add_compare();
  cmp->set_key("k");
  cmp->set_target(kvpb::Compare::VERSION);
  cmp->set_mod_revision(7);  // not the version member
  absl::StatusOr<Command> c = FromProto(proto);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(std::get<TxnRequest>(c->op).compare[0].number, 0);
}

TEST(Command, GarbageBytesAreInvalidArgument) {
  const std::vector<std::string> garbage = {
      std::string("\xff\xff\xff\xff", 4),       // invalid tag / varint
      std::string("\x08\xff\xff", 3),           // truncated varint
      std::string("\x12\x05\x0a", 3),           // length beyond the end
      std::string("\x0f", 1),                   // field 1 with wire type 7
      std::string("\x08\x01", 2),               // parses, but no operation
      // Last: put, then delete_range; not garbage (checked below).
      std::string("\x12\x00", 2) + std::string("\x1a\x00", 2),
  };
  for (size_t i = 0; i + 1 < garbage.size(); ++i) {
    SCOPED_TRACE(i);
    absl::StatusOr<Command> c = DecodeCommand(garbage[i]);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
    EXPECT_NE(c.status().message().find("kv command"), absl::string_view::npos) << c.status();
  }
  // A oneof set twice on the wire keeps the last member (protobuf rules): a valid delete.
  absl::StatusOr<Command> last = DecodeCommand(garbage.back());
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_TRUE(std::holds_alternative<DeleteRangeRequest>(last->op));
  // Every prefix of a valid encoding either decodes or is kInvalidArgument; nothing crashes.
  std::string bytes = EncodeCommand(SampleTxn());
  for (size_t n = 0; n < bytes.size(); ++n) {
    absl::StatusOr<Command> c = DecodeCommand(absl::string_view(bytes).substr(0, n));
    if (!c.ok()) {
      EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(Command, UnknownEnumsAreInvalidArgumentAndLeaseComparesDecode) {
  auto decode_compare = [](const kvpb::Compare& cmp) {
    kvpb::Command proto;
    *proto.mutable_txn()->add_compare() = cmp;
    return DecodeCommand(proto.SerializeAsString()).status();
  };
  kvpb::Compare lease;
  lease.set_key("k");
  lease.set_target(kvpb::Compare::LEASE);
  lease.set_lease(5);
  EXPECT_TRUE(decode_compare(lease).ok());
  kvpb::Command with_lease;
  *with_lease.mutable_txn()->add_compare() = lease;
  absl::StatusOr<Command> decoded = DecodeCommand(with_lease.SerializeAsString());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  const Compare& c = std::get<TxnRequest>(decoded->op).compare.at(0);
  EXPECT_EQ(c.target, Compare::Target::kLease);
  EXPECT_EQ(c.number, 5);

  kvpb::Compare bad_result;
  bad_result.set_key("k");
  bad_result.set_result(static_cast<kvpb::Compare::CompareResult>(17));
  EXPECT_EQ(decode_compare(bad_result).code(), absl::StatusCode::kInvalidArgument);

  kvpb::Compare bad_target;
  bad_target.set_key("k");
  bad_target.set_target(static_cast<kvpb::Compare::CompareTarget>(9));
  EXPECT_EQ(decode_compare(bad_target).code(), absl::StatusCode::kInvalidArgument);

  // A txn op with no request (for example a nested txn, field 4, which we do not support).
  kvpb::Command proto;
  proto.mutable_txn()->add_success();
  absl::Status s = DecodeCommand(proto.SerializeAsString()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("success[0]"), absl::string_view::npos) << s;
}

TEST(Command, UnknownFieldsAreIgnored) {
  Command c;
  c.op = PutRequest{"k", "v", false};
  std::string bytes = EncodeCommand(c) + std::string("\xf8\x01\x05", 3);  // field 31 varint
  absl::StatusOr<Command> back = DecodeCommand(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
}

TEST(Command, DecodeEntryBuildsTheThreeKindsOfItem) {
  ApplyItem noop = DecodeEntry(5, "");
  EXPECT_EQ(noop.index, 5u);
  EXPECT_FALSE(noop.command.has_value());
  EXPECT_TRUE(noop.decode_error.ok());

  ApplyItem cmd = DecodeEntry(6, EncodeCommand(SampleTxn()));
  ASSERT_TRUE(cmd.command.has_value());
  EXPECT_EQ(*cmd.command, SampleTxn());
  EXPECT_TRUE(cmd.decode_error.ok());

  ApplyItem bad = DecodeEntry(7, "\xff");
  EXPECT_FALSE(bad.command.has_value());
  EXPECT_EQ(bad.decode_error.code(), absl::StatusCode::kInvalidArgument);
}

TEST(Command, ValidateCommand) {
  EXPECT_TRUE(ValidateCommand(SampleTxn()).ok());
  Command c;
  c.op = PutRequest{"", "v", false};
  absl::Status s = ValidateCommand(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("key is not provided"), absl::string_view::npos) << s;

  TxnRequest t;
  t.success.assign(kMaxTxnOps + 1, RangeRequest{"a", "", 0, false, false});
  c.op = t;
  s = ValidateCommand(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("too many operations"), absl::string_view::npos) << s;

  t = TxnRequest{};
  t.failure = {PutRequest{"k", "1", false}, DeleteRangeRequest{"a", "z", false}};
  c.op = t;
  s = ValidateCommand(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("duplicate key"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("failure"), absl::string_view::npos) << s;

  // An empty interval (range_end <= key) covers nothing.
  t.failure = {PutRequest{"k", "1", false}, DeleteRangeRequest{"z", "a", false}};
  c.op = t;
  EXPECT_TRUE(ValidateCommand(c).ok());

  EXPECT_EQ(ValidateRangeRequest(RangeRequest{}).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace amaters::kv
