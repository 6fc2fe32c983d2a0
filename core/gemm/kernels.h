// core/gemm/kernels.h: the micro-kernels of the CPU GEMM (core/gemm/gemm.cpp), one set per
// instruction-set path, with the tile and block sizes that go with each. Internal to core/gemm.
//
// A micro-kernel computes one MR x NR tile of C from a packed A micro-panel and a packed B
// micro-panel (layout in gemm.cpp):
//   c[i·ldc + j] = alpha · Σ_p a[p·MR + i] · b[p·NR + j] + beta · c[i·ldc + j]
// with beta == 0 meaning c is not read. Every kernel sums p in increasing order with one fused
// or unfused multiply-add per term into a per-element accumulator, so a path gives the same
// bits whatever the blocking around it; different paths (tile shapes, FMA or not) may differ
// in the last bits.
//
// Each ISA's kernels live in their own file, compiled with per-function target attributes, so
// that a portable build (AFT_NATIVE=OFF) still contains them; gemm.cpp calls one only when
// CPUID says the CPU has its instructions.
#pragma once

#include <cstdint>

#include "core/gemm/gemm.h"

namespace aft::gemm_detail {

template <class T>
using MicroKernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha,
                             T beta);

using Isa = GemmIsa;

// Tile (MR x NR) and cache blocks: KC (the K block; a B micro-panel KC·NR sits in L1 or L2),
// MC (rows of a packed A block, MC·KC in L2), NC (columns of C per region); and the kernel.
template <class T, int MR_, int NR_, int64_t MC_, int64_t KC_, int64_t NC_, MicroKernel<T> K_>
struct Blocks {
  static constexpr int MR = MR_, NR = NR_;
  static constexpr int64_t MC = MC_, KC = KC_, NC = NC_;
  static constexpr MicroKernel<T> kernel = K_;
};
template <class T, Isa I>
struct Config;

using F32Kernel = void(int64_t, const float*, const float*, float*, int64_t, float, float);
using F64Kernel = void(int64_t, const double*, const double*, double*, int64_t, double, double);

// scalar (plain C++; kernel_scalar.cpp), blocks as for AVX2.
F32Kernel kernel_f32_scalar;
F64Kernel kernel_f64_scalar;
template <> struct Config<float, Isa::scalar> : Blocks<float, 6, 16, 144, 256, 4080, kernel_f32_scalar> {};
template <> struct Config<double, Isa::scalar> : Blocks<double, 6, 8, 72, 256, 4080, kernel_f64_scalar> {};

// AVX2 + FMA (kernel_avx2.cpp): 12 ymm accumulators. Blocks for Zen 3 (32 KiB L1d, 512 KiB
// L2): B micro-panel 16 KiB in L1, A block 144 KiB in L2.
F32Kernel kernel_f32_avx2;
F64Kernel kernel_f64_avx2;
template <> struct Config<float, Isa::avx2> : Blocks<float, 6, 16, 144, 256, 4080, kernel_f32_avx2> {};
template <> struct Config<double, Isa::avx2> : Blocks<double, 6, 8, 72, 256, 4080, kernel_f64_avx2> {};

// AVX-512 F (kernel_avx512.cpp): 28 of the 32 zmm registers are accumulators. Blocks measured
// on Zen 5 (48 KiB L1d, 1 MiB L2): a long K block (the B micro-panel, 64 KiB at KC = 512,
// streams from L2 with the prefetches) halves the passes over C and beat KC = 192 or 256 by
// 10-15% at 1024^3 to 2048^3; the A block MC·KC is 672 KiB (f32) / 504 KiB (f64) of L2.
F32Kernel kernel_f32_avx512;
F64Kernel kernel_f64_avx512;
template <> struct Config<float, Isa::avx512> : Blocks<float, 14, 32, 336, 512, 4096, kernel_f32_avx512> {};
template <> struct Config<double, Isa::avx512> : Blocks<double, 14, 16, 168, 384, 4096, kernel_f64_avx512> {};

// What the CPU (and the OS, for the wider registers' state) supports; cached after the first
// call. False on non-x86 builds.
bool cpu_has_avx2_fma();
bool cpu_has_avx512();

// The path for an AFT_CPU_ISA value: null or empty gives the widest supported path;
// "avx512" | "avx2" | "scalar" that path; aft::Error for any other value or a path this CPU
// lacks (core/gemm/dispatch.cpp).
GemmIsa parse_isa(const char* value);

}  // namespace aft::gemm_detail
