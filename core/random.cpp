// core/random.cpp: Generator bookkeeping (the numbers themselves come from core/philox.h).
#include "core/random.h"

namespace aft {

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard lock(mu_);
  seed_ = seed;
  offset_ = 0;
}

Generator::State Generator::state() const {
  std::lock_guard lock(mu_);
  return {seed_, offset_};
}

void Generator::set_state(State s) {
  std::lock_guard lock(mu_);
  seed_ = s.seed;
  offset_ = s.offset;
}

uint64_t Generator::reserve(uint64_t blocks) {
  std::lock_guard lock(mu_);
  uint64_t first = offset_;
  offset_ += blocks;
  return first;
}

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace aft
