// KV apply on RocksDB (bench/kv_benchmark.cc). The directory the benchmarks put their
// databases in is set by the binary's main (--kv_dir / $AMATERS_BENCH_DIR) or by the smoke test.
#ifndef AMATERS_BENCH_KV_BENCHMARK_H_
#define AMATERS_BENCH_KV_BENCHMARK_H_

#include <string>

namespace amaters::bench {

// Each benchmark run gets a fresh subdirectory of `dir`, removed afterwards. Must be set
// before the benchmarks run.
void SetKvBenchDir(const std::string& dir);

}  // namespace amaters::bench

#endif  // AMATERS_BENCH_KV_BENCHMARK_H_
