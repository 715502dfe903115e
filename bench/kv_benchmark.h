// KV apply on RocksDB (bench/kv_benchmark.cc). The directory the benchmarks put their
// databases in is set by the binary's main (--kv_dir / $AMATERS_BENCH_DIR) or by the smoke test.
#ifndef AMATERS_BENCH_KV_BENCHMARK_H_
#define AMATERS_BENCH_KV_BENCHMARK_H_

#include <cstdint>
#include <string>

namespace amaters::bench {

// Each benchmark run gets a fresh subdirectory of `dir`, removed afterwards. Must be set
// before the benchmarks run.
void SetKvBenchDir(const std::string& dir);

// BM_KvPointRead loads min(K, max_keys) keys instead of its argument K (reported in its
// `keys` counter). The smoke test lowers it so that a sanitizer build stays quick; the binary
// leaves it unlimited.
void SetKvBenchMaxKeys(uint64_t max_keys);

}  // namespace amaters::bench

#endif  // AMATERS_BENCH_KV_BENCHMARK_H_
