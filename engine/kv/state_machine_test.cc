#include "engine/kv/state_machine.h"

#include <string>

#include "gtest/gtest.h"

namespace amaters::kv {
namespace {

// etcd clientv3's GetPrefixRangeEnd.
TEST(PrefixEnd, IncrementsTheLastByteBelow0xff) {
  EXPECT_EQ(PrefixEnd("a"), "b");
  EXPECT_EQ(PrefixEnd("abc"), "abd");
  EXPECT_EQ(PrefixEnd("a\xff"), "b");
  EXPECT_EQ(PrefixEnd("a\xff\xff"), "b");
  EXPECT_EQ(PrefixEnd(std::string("a\0", 2)), std::string("a\x01", 2));
  EXPECT_EQ(PrefixEnd("\xfe\xff"), "\xff");
}

TEST(PrefixEnd, NoUpperBoundMeansFromKey) {
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd("\xff"), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd("\xff\xff\xff"), std::string(1, '\0'));
}

TEST(SnapshotName, Validation) {
  EXPECT_TRUE(ValidateSnapshotName("snap-00012_a").ok());
  EXPECT_TRUE(ValidateSnapshotName(std::string(kMaxSnapshotNameBytes, 'a')).ok());
  EXPECT_FALSE(ValidateSnapshotName("").ok());
  EXPECT_FALSE(ValidateSnapshotName(std::string(kMaxSnapshotNameBytes + 1, 'a')).ok());
  EXPECT_FALSE(ValidateSnapshotName("..").ok());
  EXPECT_FALSE(ValidateSnapshotName("a/b").ok());
  EXPECT_FALSE(ValidateSnapshotName("a.tmp").ok());
}

TEST(Describe, IsReadableAndEscapesBytes) {
  EXPECT_EQ(Describe(KeyValue{std::string("k\0", 2), "\xff", 2, 3, 4}),
            "\"k\\x00\"=\"\\xff\"@c2/m3/v4");
  Command c;
  c.request_id = 3;
  c.op = DeleteRangeRequest{"a", std::string(1, '\0'), true};
  EXPECT_EQ(Describe(c), "#3 delete [\"a\",+inf) prev_kv");
  ApplyResult r;
  r.index = 9;
  EXPECT_EQ(Describe(r), "@9 noop");
}

}  // namespace
}  // namespace amaters::kv
