// One test suite for every wal::Disk implementation (SimDisk, PosixDisk): the disk operations
// themselves, and the WAL writer + recovery running on top of them.
//
// Instantiate with a factory (the suite must be named by its bare identifier, and the name
// lambda's parameter must not be called `info`, which the macro uses):
//   using amaters::wal::testing::DiskSuite;
//   INSTANTIATE_TEST_SUITE_P(Posix, DiskSuite, ::testing::Values(DiskSuiteParam{
//       "posix", [] { return std::make_unique<MyEnv>(); }}),
//       [](const auto& param_info) { return param_info.param.name; });
#ifndef AMATERS_ENGINE_WAL_TESTING_DISK_SUITE_H_
#define AMATERS_ENGINE_WAL_TESTING_DISK_SUITE_H_

#include <functional>
#include <memory>
#include <string>

#include "engine/wal/disk.h"
#include "gtest/gtest.h"

namespace amaters::wal::testing {

// A fresh, empty WAL directory and a Disk on it.
class DiskEnv {
 public:
  virtual ~DiskEnv() = default;
  virtual Disk* disk() = 0;
  // Replaces disk() with a new Disk object on the same storage, as after a clean restart of
  // the process (everything written stays; nothing is lost).
  virtual void Reopen() = 0;
};

struct DiskSuiteParam {
  std::string name;
  std::function<std::unique_ptr<DiskEnv>()> make;
};

class DiskSuite : public ::testing::TestWithParam<DiskSuiteParam> {
 protected:
  void SetUp() override { env_ = GetParam().make(); }
  Disk* disk() { return env_->disk(); }
  std::unique_ptr<DiskEnv> env_;
};

}  // namespace amaters::wal::testing

#endif  // AMATERS_ENGINE_WAL_TESTING_DISK_SUITE_H_
