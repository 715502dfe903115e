#include "engine/wal/sim_disk.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::wal {

absl::Status SimDisk::CheckFault() {
  if (!fault_armed_) return absl::OkStatus();
  if (fault_ops_left_ > 0) {
    --fault_ops_left_;
    return absl::OkStatus();
  }
  return fault_;
}

void SimDisk::FailAfter(uint64_t ops_ok, absl::Status status) {
  AM_CHECK(!status.ok());
  fault_armed_ = true;
  fault_ops_left_ = ops_ok;
  fault_ = std::move(status);
}

void SimDisk::ClearFault() {
  fault_armed_ = false;
  fault_ = absl::OkStatus();
}

absl::StatusOr<SimDisk::File*> SimDisk::Find(const std::string& name) {
  if (absl::Status s = ValidateFileName(name); !s.ok()) return s;
  auto it = files_.find(name);
  if (it == files_.end() || !it->second.exists) {
    return absl::NotFoundError(absl::StrCat(name, ": no such file"));
  }
  return &it->second;
}

absl::StatusOr<std::vector<std::string>> SimDisk::List() {
  if (absl::Status s = CheckFault(); !s.ok()) return s;
  std::vector<std::string> names;
  for (const auto& [name, f] : files_) {
    if (f.exists) names.push_back(name);
  }
  return names;
}

absl::StatusOr<std::string> SimDisk::Read(const std::string& name) {
  if (absl::Status s = CheckFault(); !s.ok()) return s;
  absl::StatusOr<File*> f = Find(name);
  if (!f.ok()) return f.status();
  return (*f)->data;
}

std::optional<std::string> SimDisk::DurableContents(const std::string& name) const {
  auto it = files_.find(name);
  if (it == files_.end() || !it->second.durable_exists) return std::nullopt;
  return it->second.durable;
}

absl::Status SimDisk::Create(const std::string& name) {
  if (absl::Status s = CheckFault(); !s.ok()) return s;
  if (absl::Status s = ValidateFileName(name); !s.ok()) return s;
  File& f = files_[name];
  if (f.exists) return absl::AlreadyExistsError(absl::StrCat(name, ": file exists"));
  f.exists = true;
  f.data.clear();
  f.rewritten = !f.durable.empty();
  // A file deleted without a directory sync and created again: its old durable contents are
  // what a crash could bring back, which the model keeps in `durable`.
  if (!f.durable_exists) f.durable.clear();
  return absl::OkStatus();
}

absl::Status SimDisk::Write(const std::string& name, uint64_t offset, absl::string_view data) {
  if (absl::Status s = CheckFault(); !s.ok()) return s;
  absl::StatusOr<File*> f = Find(name);
  if (!f.ok()) return f.status();
  std::string& d = (*f)->data;
  if (offset > d.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": write at ", offset, " beyond the end (", d.size(), ")"));
  }
  const uint64_t grow = offset + data.size() > d.size() ? offset + data.size() - d.size() : 0;
  if (capacity_bytes_ > 0 && used_bytes() + grow > capacity_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(name, ": no space left on device"));
  }
  if (offset < (*f)->durable.size()) (*f)->rewritten = true;
  if (offset == d.size()) {
    d.append(data.data(), data.size());
  } else {
    if (offset + data.size() > d.size()) d.resize(offset + data.size());
    std::copy(data.begin(), data.end(), d.begin() + static_cast<std::ptrdiff_t>(offset));
  }
  return absl::OkStatus();
}

absl::Status SimDisk::Sync(const std::string& name) {
  if (absl::Status s = CheckFault(); !s.ok()) return s;
  absl::StatusOr<File*> f = Find(name);
  if (!f.ok()) return f.status();
  File& file = **f;
  if (file.rewritten || file.data.size() < file.durable.size()) {
    file.durable = file.data;
  } else {
    // Only appended since the last sync: copy just the new bytes (segments are append-only, so
    // this is the common case and keeps a sync O(new bytes)).
    file.durable.append(file.data, file.durable.size(), std::string::npos);
  }
  file.rewritten = false;
  return absl::OkStatus();
}

absl::Status SimDisk::SyncDir() {
  if (absl::Status s = CheckFault(); !s.ok()) return s;
  for (auto it = files_.begin(); it != files_.end();) {
    it->second.durable_exists = it->second.exists;
    if (!it->second.exists) {
      it = files_.erase(it);
    } else {
      ++it;
    }
  }
  return absl::OkStatus();
}

absl::Status SimDisk::Truncate(const std::string& name, uint64_t size) {
  if (absl::Status s = CheckFault(); !s.ok()) return s;
  absl::StatusOr<File*> f = Find(name);
  if (!f.ok()) return f.status();
  if (size > (*f)->data.size()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": truncate to ", size,
                                                   " beyond the end (", (*f)->data.size(), ")"));
  }
  if (size < (*f)->durable.size()) (*f)->rewritten = true;
  (*f)->data.resize(size);
  return absl::OkStatus();
}

absl::Status SimDisk::Delete(const std::string& name) {
  if (absl::Status s = CheckFault(); !s.ok()) return s;
  absl::StatusOr<File*> f = Find(name);
  if (!f.ok()) return f.status();
  (*f)->exists = false;
  (*f)->data.clear();
  (*f)->rewritten = !(*f)->durable.empty();
  return absl::OkStatus();
}

void SimDisk::Crash(CrashMode mode, SplitMix64* rng) {
  if (mode == CrashMode::kProcessOnly) {
    // The kernel still has everything the process wrote; it reaches the disk eventually.
    for (auto it = files_.begin(); it != files_.end();) {
      if (!it->second.exists) {
        it = files_.erase(it);
        continue;
      }
      it->second.durable_exists = true;
      it->second.durable = it->second.data;
      it->second.rewritten = false;
      ++it;
    }
    return;
  }
  const bool random = mode == CrashMode::kRandom;
  AM_CHECK(!random || rng != nullptr);
  for (auto it = files_.begin(); it != files_.end();) {
    File& f = it->second;
    bool exists = f.durable_exists;
    if (random && f.exists != f.durable_exists) exists = rng->Uniform(2) == 0 ? f.exists : exists;
    if (!exists) {
      it = files_.erase(it);
      continue;
    }
    std::string after = f.durable;
    if (random && f.exists) {
      const std::string& cur = f.data;
      const bool appended = cur.size() >= f.durable.size() &&
                            cur.compare(0, f.durable.size(), f.durable) == 0;
      if (appended && cur.size() > f.durable.size()) {
        // Keep a random prefix of the unsynced tail; maybe tear its end.
        const uint64_t extra = cur.size() - f.durable.size();
        const uint64_t keep = rng->Uniform(extra + 1);
        after = cur.substr(0, f.durable.size() + keep);
        if (keep > 0 && rng->Uniform(3) == 0) {
          const uint64_t torn = 1 + rng->Uniform(std::min<uint64_t>(keep, 512));
          const bool zeros = rng->Uniform(2) == 0;
          for (uint64_t k = after.size() - torn; k < after.size(); ++k) {
            after[k] = zeros ? '\0' : static_cast<char>(rng->Next());
          }
        }
      } else if (!appended && rng->Uniform(2) == 0) {
        after = cur;  // an unsynced truncate or overwrite that happened to reach the disk
      }
    }
    f.exists = true;
    f.durable_exists = true;
    f.data = after;
    f.durable = after;
    f.rewritten = false;
    ++it;
  }
}

void SimDisk::Corrupt(const std::string& name, uint64_t offset, int bit) {
  auto it = files_.find(name);
  AM_CHECK(it != files_.end());
  File& f = it->second;
  if (offset < f.data.size()) f.data[offset] ^= static_cast<char>(1 << bit);
  if (offset < f.durable.size()) f.durable[offset] ^= static_cast<char>(1 << bit);
}

uint64_t SimDisk::used_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, f] : files_) n += std::max(f.data.size(), f.durable.size());
  return n;
}

uint64_t SimDisk::unsynced_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, f] : files_) {
    if (f.exists && f.data.size() > f.durable.size()) n += f.data.size() - f.durable.size();
  }
  return n;
}

}  // namespace amaters::wal
