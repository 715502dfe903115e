// MemoryStateMachine against the conformance suite (engine/kv/testing/conformance.h).
#include <memory>

#include "engine/kv/memory_state_machine.h"
#include "engine/kv/testing/conformance.h"
#include "gtest/gtest.h"

namespace amaters::kv::testing {
namespace {

class MemoryStore : public StoreUnderTest {
 public:
  StateMachine& sm() override { return sm_; }
  absl::Status Reopen() override { return absl::UnimplementedError("in-memory: not durable"); }
  absl::Status CrashAndReopen() override {
    return absl::UnimplementedError("in-memory: not durable");
  }

 private:
  MemoryStateMachine sm_;
};

StateMachineFactory MemoryFactory() {
  StateMachineFactory f;
  f.name = "Memory";
  f.durable = false;
  f.open = []() -> absl::StatusOr<std::unique_ptr<StoreUnderTest>> {
    return std::unique_ptr<StoreUnderTest>(std::make_unique<MemoryStore>());
  };
  return f;
}

INSTANTIATE_TEST_SUITE_P(Memory, StateMachineConformanceTest, ::testing::Values(MemoryFactory()),
                         FactoryName);

TEST(MemoryStateMachine, SizeCountsLiveKeys) {
  MemoryStateMachine sm;
  Command put;
  put.op = PutRequest{"a", "1", false};
  Command del;
  del.op = DeleteRangeRequest{"a", "", false};
  ASSERT_TRUE(sm.Apply({ApplyItem::Of(1, put)}).ok());
  EXPECT_EQ(sm.size(), 1u);
  ASSERT_TRUE(sm.Apply({ApplyItem::Of(2, del)}).ok());
  EXPECT_EQ(sm.size(), 0u);
}

}  // namespace
}  // namespace amaters::kv::testing
