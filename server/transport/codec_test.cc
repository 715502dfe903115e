#include "server/transport/codec.h"

#include "gtest/gtest.h"

namespace amaters::server {
namespace {

raft::Message FullMessage() {
  raft::Message m;
  m.type = raft::MessageType::kApp;
  m.from = 1;
  m.to = 2;
  m.term = 7;
  m.log_term = 6;
  m.index = 41;
  m.entries.push_back({7, 42, raft::EntryType::kNormal, std::string("a\0b", 3)});
  m.entries.push_back({7, 43, raft::EntryType::kNoop, ""});
  m.commit = 40;
  m.reject = true;
  m.reject_hint = 39;
  m.transfer = true;
  m.read_round = 5;
  m.probe = 9;
  m.context = "ctx";
  m.snapshot = {40, 6, {1, 2, 3}};
  m.snapshot.voters_outgoing = {1, 2, 4};
  m.snapshot.learners = {5};
  m.snapshot.auto_leave = true;
  m.snapshot.members = {{4, "n4", {"https://10.0.0.4:2380"}, {"https://10.0.0.4:2379"}}};
  m.chunk = {1 << 20, 5 << 20, 0xdeadbeef, 0x12345678, std::string("chunk\0data", 10)};
  return m;
}

TEST(CodecTest, EveryFieldSurvivesTheRoundTrip) {
  const raft::Message m = FullMessage();
  peerpb::Message pm;
  ToProto(m, &pm);
  peerpb::Message parsed;
  ASSERT_TRUE(parsed.ParseFromString(pm.SerializeAsString()));
  absl::StatusOr<raft::Message> back = FromProto(parsed);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(raft::DescribeMessage(*back), raft::DescribeMessage(m));
  EXPECT_EQ(back->entries, m.entries);
  EXPECT_EQ(back->probe, m.probe);
  EXPECT_EQ(back->reject_hint, m.reject_hint);
  EXPECT_EQ(back->transfer, m.transfer);
  EXPECT_EQ(back->read_round, m.read_round);
  EXPECT_EQ(back->context, m.context);
  EXPECT_EQ(back->log_term, m.log_term);
  EXPECT_EQ(back->snapshot, m.snapshot);
  EXPECT_EQ(back->chunk, m.chunk);
}

TEST(CodecTest, EveryMessageTypeDecodes) {
  for (uint32_t t = 1; t <= 13; ++t) {
    peerpb::Message pm;
    pm.set_type(t);
    absl::StatusOr<raft::Message> m = FromProto(pm);
    ASSERT_TRUE(m.ok()) << t;
    EXPECT_EQ(static_cast<uint32_t>(m->type), t);
  }
}

TEST(CodecTest, AMalformedMemberListIsRefused) {
  peerpb::Message pm;
  pm.set_type(12);
  pm.mutable_snapshot()->set_index(3);
  pm.mutable_snapshot()->set_members(std::string("\x01\x00\x00\x00\x04", 5));  // cut short
  EXPECT_EQ(FromProto(pm).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CodecTest, UnknownTypesAreRefused) {
  for (uint32_t t : {0u, 14u, 255u, 1u << 31}) {
    peerpb::Message pm;
    pm.set_type(t);
    EXPECT_EQ(FromProto(pm).status().code(), absl::StatusCode::kInvalidArgument) << t;
  }
  peerpb::Message pm;
  pm.set_type(1);
  pm.add_entries()->set_type(3);
  absl::StatusOr<raft::Message> m = FromProto(pm);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("entry"), std::string::npos);
}

}  // namespace
}  // namespace amaters::server
