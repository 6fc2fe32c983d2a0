// core/philox.h: the Philox4x32-10 counter-based generator (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011) and the mapping from its words to uniform and normal
// numbers. Header-only and free of library calls beyond <cmath> so that CUDA kernels include it
// too: element i of a random tensor depends only on (seed, offset, i), never on which thread
// or device computes it.
//
// Layout of the stream. A generator call reserves `blocks` consecutive counters starting at
// `offset`; counter c = offset + j yields four 32-bit words philox(c, seed).
//   float32 uniform: word w of block j is element 4j + w;      u = (word >> 8) * 2^-24 in [0, 1)
//   float64 uniform: words (2w, 2w+1) of block j are element 2j + w; 53 bits, u in [0, 1)
//   float32 normal : block j gives elements 4j..4j+3, Box-Muller on (u0,u1) and (u2,u3)
//   float64 normal : block j gives elements 2j, 2j+1, Box-Muller on the two float64 uniforms
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define AFT_HD __host__ __device__
#else
#define AFT_HD
#endif

namespace aft::philox {

struct Words {
  uint32_t x[4];
};

AFT_HD inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 on the 128-bit counter (counter, 0) with the 64-bit key seed.
AFT_HD inline Words philox4x32(uint64_t counter, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Words{{c0, c1, c2, c3}};
}

AFT_HD inline float uniform_f32(uint32_t w) { return static_cast<float>(w >> 8) * 0x1.0p-24f; }
AFT_HD inline double uniform_f64(uint32_t lo, uint32_t hi) {
  uint64_t bits = (static_cast<uint64_t>(hi) << 32 | lo) >> 11;
  return static_cast<double>(bits) * 0x1.0p-53;
}

// Box-Muller: two uniforms in [0, 1) -> two independent standard normals.
template <class T>
AFT_HD inline void box_muller(T u0, T u1, T* z0, T* z1) {
  const T two_pi = static_cast<T>(6.283185307179586476925);
  T r = std::sqrt(-2 * std::log(static_cast<T>(1) - u0));  // 1 - u0 is in (0, 1]: log is finite
  T a = two_pi * u1;
  *z0 = r * std::cos(a);
  *z1 = r * std::sin(a);
}

// Element i of a float32 uniform stream starting at counter `offset`.
AFT_HD inline float uniform_f32_at(uint64_t seed, uint64_t offset, uint64_t i) {
  return uniform_f32(philox4x32(offset + i / 4, seed).x[i % 4]);
}

}  // namespace aft::philox
