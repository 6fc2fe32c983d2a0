// core/random.h: Generator, the explicit seed and position of a Philox stream (core/philox.h).
//
// A generator is (seed, offset). Each random op reserves the counters it needs and advances the
// offset, so the numbers an op draws depend on the seed and on how many numbers were drawn
// before it: not on thread count, device or timing. Save and restore state() to resume a run
// exactly.
#pragma once

#include <cstdint>
#include <mutex>

namespace aft {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}

  struct State {
    uint64_t seed = 0;
    uint64_t offset = 0;
  };
  uint64_t seed() const { return seed_; }
  void manual_seed(uint64_t seed);
  State state() const;
  void set_state(State s);

  // Reserves `blocks` Philox counters and returns the first.
  uint64_t reserve(uint64_t blocks);

 private:
  mutable std::mutex mu_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The generator used when an op is given none.
Generator& default_generator();
// Seeds the default generator (and resets its offset).
void manual_seed(uint64_t seed);

}  // namespace aft
