#!/usr/bin/env bash
# Fails if engine sources (tests and testing helpers excluded) use clocks, files, sockets,
# threads or global randomness.
set -euo pipefail
cd "${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-amaters}"
forbidden='#include <(thread|chrono|fstream|random|mutex|condition_variable|future|ctime|iostream|filesystem)>|#include <(sys/|unistd\.h|fcntl\.h|netinet|arpa/)|absl/time/clock\.h|absl/synchronization/|std::rand\b|\brand\(|\bsrand\(|\btime\(nullptr\)|system_clock|steady_clock|random_device|getenv'
files=$(find -L engine -name '*.h' -o -name '*.cc' | grep -v '_test\.cc$' | grep -v '/testing/' | sort)
[[ -n "$files" ]] || { echo "no engine sources found"; exit 1; }
count=$(echo "$files" | wc -l)
if hits=$(grep -nE "$forbidden" $files); then
  echo "engine purity violated (clock, file, socket, thread or global randomness):"
  echo "$hits"
  exit 1
fi
echo "engine purity: $count files checked, clean"
