// The StateMachine conformance suite (testonly): one set of gtest cases that every
// implementation must pass, parameterized by a factory.
//
// An implementation's test instantiates it:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, StateMachineConformanceTest,
//                            ::testing::Values(MemoryFactory()), FactoryName);
//
// and links :conformance (alwayslink, so the TEST_Ps register). Durable implementations set
// `durable` and implement Reopen/CrashAndReopen; the durability cases skip otherwise.
//
// The randomized case (RandomOpsMatchModel) compares every result, the applied index, the
// revision and the whole state with a naive model after every batch. It runs seeds
// 1..AMATERS_KV_SEEDS (default 8) and prints the seed of a failure; replay one seed with
//   ./bazelw test <target> --test_env=AMATERS_KV_SEED=N --test_filter='*RandomOpsMatchModel*'
#ifndef AMATERS_ENGINE_KV_TESTING_CONFORMANCE_H_
#define AMATERS_ENGINE_KV_TESTING_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/kv/state_machine.h"
#include "gtest/gtest.h"

namespace amaters::kv {

// gtest printers (found by argument-dependent lookup).
void PrintTo(const KeyValue& kv, std::ostream* os);
void PrintTo(const RangeResponse& r, std::ostream* os);
void PrintTo(const ApplyResult& r, std::ostream* os);

namespace testing {

// One store under test, owned by one test case.
class StoreUnderTest {
 public:
  virtual ~StoreUnderTest() = default;

  // The open state machine; valid until the next Reopen/CrashAndReopen.
  virtual StateMachine& sm() = 0;

  // Durable implementations only: close the state machine cleanly and open the same store.
  virtual absl::Status Reopen() = 0;

  // Durable implementations only: open what a crash of the process at this moment (between
  // two Apply calls; nothing closed or flushed) would leave on disk. The running instance is
  // abandoned.
  virtual absl::Status CrashAndReopen() = 0;
};

struct StateMachineFactory {
  std::string name;  // the instantiation's parameter name: [A-Za-z0-9_]
  bool durable = false;
  // Opens a new, empty store; called once per test case (and per randomized seed).
  std::function<absl::StatusOr<std::unique_ptr<StoreUnderTest>>()> open;
};

void PrintTo(const StateMachineFactory& f, std::ostream* os);
std::string FactoryName(const ::testing::TestParamInfo<StateMachineFactory>& info);

class StateMachineConformanceTest : public ::testing::TestWithParam<StateMachineFactory> {
 protected:
  void SetUp() override;

  StateMachine& sm() { return store_->sm(); }

  // Applies `items` as one batch; a failed Apply is a test failure (returns no results).
  std::vector<ApplyResult> ApplyBatch(const std::vector<ApplyItem>& items);
  // Applies one command at the next index as a batch of one and returns its result.
  ApplyResult ApplyOne(Command c);
  // Every key-value pair in the store, ascending.
  std::vector<KeyValue> All();
  // The pair stored under `key`, if any.
  std::optional<KeyValue> Get(const std::string& key);
  RangeResponse RangeOf(const RangeRequest& r);

  std::unique_ptr<StoreUnderTest> store_;
};

}  // namespace testing
}  // namespace amaters::kv

#endif  // AMATERS_ENGINE_KV_TESTING_CONFORMANCE_H_
