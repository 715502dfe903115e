// A small deterministic PRNG (SplitMix64) for the engine.
//
// The engine never draws global randomness (docs/design.md §2): every random choice, such as the
// randomized election timeout, comes from an instance seeded by the driver, so that the
// simulator can replay any run from its seed.
#ifndef AMATERS_ENGINE_BASE_RAND_H_
#define AMATERS_ENGINE_BASE_RAND_H_

#include <cstdint>

namespace amaters {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, bound). `bound` must be > 0. The modulo bias is below 2^-40 for the
  // small bounds the engine uses (election timeouts of at most a few thousand ticks).
  uint64_t Uniform(uint64_t bound) { return Next() % bound; }

 private:
  uint64_t state_;
};

}  // namespace amaters

#endif  // AMATERS_ENGINE_BASE_RAND_H_
